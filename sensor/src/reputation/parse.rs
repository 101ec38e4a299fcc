//! The list formats: names normalized to lowercase ASCII (punycode for IDN), one entry per listed
//! domain, every line that is neither an entry nor a comment reported with its number.

use std::net::IpAddr;

use super::ListFormat;

/// What one line (or CSV row, or zone record) holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Name(String),
    /// An exception (RPZ `rpz-passthru.`): the name and its subdomains are not listed, whatever a
    /// parent's entry says.
    Exception(String),
    /// Not a domain, and not an error: an address in a CSV column, hosts-file boilerplate, an RPZ
    /// SOA/NS record or a trigger on something other than the query name.
    Ignored,
    Bad(&'static str),
}

/// A listed name in the form the decoder keeps names: lowercase, dotted, no trailing dot, IDN as
/// punycode. A leading `*.` (a wildcard: the subdomains) is dropped, as parents match children.
pub fn normalize(raw: &str) -> Result<String, &'static str> {
    let s = raw.trim().trim_end_matches('.');
    let s = s.strip_prefix("*.").unwrap_or(s);
    if s.is_empty() {
        return Err("empty name");
    }
    let ascii = if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(s).map_err(|_| "not a valid internationalized domain name")?
    };
    if ascii.len() > 253 {
        return Err("name longer than 253 characters");
    }
    if ascii.parse::<IpAddr>().is_ok() {
        return Err("an IP address, not a domain");
    }
    let mut labels = 0;
    for label in ascii.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("empty label or label longer than 63 characters");
        }
        if !label.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
            return Err("character not allowed in a domain name");
        }
        labels += 1;
    }
    if labels < 2 {
        return Err("a single label (a whole top-level domain) is not listed");
    }
    Ok(ascii)
}

/// The format of a list whose config says `auto`, from its first meaningful line.
pub fn detect_format(text: &str) -> ListFormat {
    let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with(['#', ';', '!']))
    else {
        return ListFormat::Domains;
    };
    let upper = line.to_ascii_uppercase();
    let tokens: Vec<&str> = upper.split_whitespace().collect();
    if line.starts_with('$') || tokens.iter().any(|t| matches!(*t, "SOA" | "CNAME" | "NS")) {
        ListFormat::Rpz
    } else if tokens.len() >= 2 && tokens[0].parse::<IpAddr>().is_ok() {
        ListFormat::Hosts
    } else if line.contains(',') {
        ListFormat::Csv
    } else {
        ListFormat::Domains
    }
}

/// Calls `f(line_number, item)` for every entry-bearing line of `text`.
pub fn each_entry(text: &str, format: ListFormat, column: usize, f: &mut dyn FnMut(usize, Item)) {
    match format {
        ListFormat::Csv => csv_rows(text, column, f),
        ListFormat::Rpz => rpz(text, f),
        ListFormat::Hosts | ListFormat::Domains | ListFormat::Auto => {
            for (i, raw) in text.lines().enumerate() {
                let line = raw.split('#').next().unwrap_or("").trim();
                if line.is_empty() || line.starts_with('!') {
                    continue;
                }
                if format == ListFormat::Hosts {
                    hosts_line(line, &mut |item| f(i + 1, item));
                } else {
                    f(i + 1, domain_line(line));
                }
            }
        }
    }
}

fn item(r: Result<String, &'static str>) -> Item {
    match r {
        Ok(n) => Item::Name(n),
        Err(e) => Item::Bad(e),
    }
}

/// One domain; adblock's `||name^` form is accepted too.
fn domain_line(line: &str) -> Item {
    let mut tokens = line.split_whitespace();
    let (Some(name), None) = (tokens.next(), tokens.next()) else {
        return Item::Bad("expected one domain per line");
    };
    let name = name.strip_prefix("||").unwrap_or(name);
    let name = name.strip_suffix('^').unwrap_or(name);
    item(normalize(name))
}

/// Names every hosts file carries for the machine itself.
const HOSTS_BOILERPLATE: [&str; 11] = [
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
];

fn hosts_line(line: &str, f: &mut dyn FnMut(Item)) {
    let mut tokens = line.split_whitespace();
    let addr = tokens.next().unwrap_or("");
    if addr.parse::<IpAddr>().is_err() {
        return f(Item::Bad("expected `<address> <name>...`"));
    }
    let mut any = false;
    for name in tokens {
        any = true;
        if HOSTS_BOILERPLATE.contains(&name.to_ascii_lowercase().as_str()) || name.parse::<IpAddr>().is_ok() {
            f(Item::Ignored);
        } else {
            f(item(normalize(name)));
        }
    }
    if !any {
        f(Item::Bad("an address without a name"));
    }
}

/// The host of a URL (`scheme://[user@]host[:port][/...]`), if `s` is one.
fn url_host(s: &str) -> Option<&str> {
    let (_, rest) = s.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    if let Some(v6) = host.strip_prefix('[') {
        return Some(v6.split(']').next().unwrap_or(""));
    }
    Some(host.split(':').next().unwrap_or(""))
}

/// A CSV field: a domain, the host of a URL, or an address (ignored).
fn csv_field(v: &str) -> Item {
    // abuse.ch writes `"a", "b"`: the quotes after the space are not CSV quoting, so strip them.
    let v = v.trim().trim_matches('"').trim();
    let host = url_host(v).unwrap_or(v);
    // Addresses, with or without a port (abuse.ch lists `ip:port` IOCs beside domains).
    let bare = host.rsplit_once(':').map_or(host, |(h, p)| if p.parse::<u16>().is_ok() { h } else { host });
    if host.parse::<IpAddr>().is_ok() || bare.parse::<IpAddr>().is_ok() {
        return Item::Ignored;
    }
    item(normalize(host))
}

fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

/// Rows looked at to find the domain column.
const SNIFF_ROWS: usize = 100;

/// Column names that hold the listed domain, most specific first.
const DOMAIN_HEADERS: [&str; 10] =
    ["domain", "ioc_value", "hostname", "host", "fqdn", "dns", "indicator", "ioc", "url", "name"];

/// The domain column a header names: the first row, or a commented header line as abuse.ch
/// writes it (`# "first_seen_utc","ioc_id","ioc_value",...`).
fn header_column(text: &str) -> Option<usize> {
    let line = text.lines().take(20).map(|l| l.trim_start_matches('#').trim()).find(|l| l.contains(','))?;
    let names: Vec<String> =
        line.split(',').map(|f| f.trim().trim_matches('"').trim().to_ascii_lowercase()).collect();
    DOMAIN_HEADERS.iter().find_map(|h| names.iter().position(|n| n == h))
}

/// How much a field looks like a listed domain: a URL or a name under a known public suffix
/// (2), another name (1, or 0 with an underscore: malware family names such as
/// `win.cobalt_strike` look like names otherwise).
fn domain_likeness(v: &str) -> usize {
    match csv_field(v) {
        Item::Name(_) if url_host(v.trim().trim_matches('"')).is_some() => 2,
        Item::Name(n) if psl::suffix(n.as_bytes()).is_some_and(|s| s.is_known()) => 2,
        Item::Name(n) => !n.contains('_') as usize,
        _ => 0,
    }
}

/// The 0-based domain column: named by a header, else the one where the first rows look most
/// like domains (leftmost on a tie).
fn sniff_column(text: &str) -> usize {
    if let Some(c) = header_column(text) {
        return c;
    }
    let mut score: Vec<usize> = Vec::new();
    for row in csv_reader(text).records().take(SNIFF_ROWS).flatten() {
        for (i, v) in row.iter().enumerate() {
            if score.len() <= i {
                score.resize(i + 1, 0);
            }
            score[i] += domain_likeness(v);
        }
    }
    let best = score.iter().copied().max().unwrap_or(0);
    score.iter().position(|&c| c == best).unwrap_or(0)
}

fn csv_rows(text: &str, column: usize, f: &mut dyn FnMut(usize, Item)) {
    let col = if column == 0 { sniff_column(text) } else { column - 1 };
    for (n, row) in csv_reader(text).records().enumerate() {
        match row {
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                f(line, Item::Bad("not a CSV row"));
            }
            Ok(row) => {
                let line = row.position().map_or(0, |p| p.line() as usize);
                let item = match row.get(col) {
                    None => Item::Bad("the domain column is missing"),
                    Some(v) => csv_field(v),
                };
                // A first row without a single domain is a header.
                let header = n == 0 && !row.iter().any(|v| matches!(csv_field(v), Item::Name(_)));
                f(line, if header { Item::Ignored } else { item });
            }
        }
    }
}

/// RPZ's passthru action (draft-vixie-dnsop-dns-rpz §4): an exception, not a listing.
fn rpz_passthru(target: &str) -> bool {
    target.eq_ignore_ascii_case("rpz-passthru.")
}

/// Triggers on something other than the query name: their owner names end in these labels.
const RPZ_OTHER_TRIGGERS: [&str; 4] = ["rpz-ip", "rpz-nsdname", "rpz-nsip", "rpz-client-ip"];

/// A response-policy zone: each policy record's QNAME trigger (its owner name relative to the
/// zone origin) is listed.
fn rpz(text: &str, f: &mut dyn FnMut(usize, Item)) {
    let mut origin = String::new();
    let mut owner = String::new();
    let mut open: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split(';').next().unwrap_or("");
        // Parentheses continue a record over lines (SOA): join them first.
        let (start, joined) = match open.take() {
            Some((start, mut acc)) => {
                acc.push(' ');
                acc.push_str(line);
                (start, acc)
            }
            None => (i + 1, line.to_string()),
        };
        if joined.matches('(').count() > joined.matches(')').count() {
            open = Some((start, joined));
            continue;
        }
        let continued = joined.starts_with([' ', '\t']);
        let record = joined.replace(['(', ')'], " ");
        let mut tokens: Vec<&str> = record.split_whitespace().collect();
        if tokens.is_empty() {
            continue;
        }
        if tokens[0].starts_with('$') {
            match (tokens[0].to_ascii_uppercase().as_str(), tokens.get(1)) {
                ("$ORIGIN", Some(o)) => origin = o.to_ascii_lowercase(),
                ("$TTL", Some(_)) => {}
                ("$INCLUDE", _) => f(start, Item::Bad("$INCLUDE is not followed")),
                _ => f(start, Item::Bad("unknown or incomplete directive")),
            }
            continue;
        }
        if !continued {
            owner = tokens.remove(0).to_ascii_lowercase();
        }
        // [ttl] [class] type rdata, TTL and class in either order.
        while tokens.first().is_some_and(|t| {
            t.bytes().next().is_some_and(|c| c.is_ascii_digit())
                || matches!(t.to_ascii_uppercase().as_str(), "IN" | "CH" | "HS")
        }) {
            tokens.remove(0);
        }
        let Some(rtype) = tokens.first().map(|t| t.to_ascii_uppercase()) else {
            f(start, Item::Bad("a record without a type"));
            continue;
        };
        let mut exception = false;
        match rtype.as_str() {
            "SOA" | "NS" => {
                f(start, Item::Ignored);
                continue;
            }
            "CNAME" => match tokens.get(1) {
                None => {
                    f(start, Item::Bad("CNAME without a target"));
                    continue;
                }
                Some(t) => exception = rpz_passthru(t),
            },
            t if t.bytes().all(|c| c.is_ascii_alphanumeric()) && tokens.len() >= 2 => {}
            _ => {
                f(start, Item::Bad("not a resource record"));
                continue;
            }
        }
        f(
            start,
            match rpz_trigger(&owner, &origin) {
                Item::Name(n) if exception => Item::Exception(n),
                other => other,
            },
        );
    }
    if let Some((start, _)) = open {
        f(start, Item::Bad("unbalanced parenthesis"));
    }
}

/// The QNAME trigger of a policy record's owner name.
fn rpz_trigger(owner: &str, origin: &str) -> Item {
    if owner == "@" {
        return Item::Ignored;
    }
    let relative = match owner.strip_suffix('.') {
        // Absolute: must be inside the zone.
        Some(abs) => {
            let origin = origin.trim_end_matches('.');
            if origin.is_empty() {
                return Item::Bad("absolute owner name without $ORIGIN");
            }
            match abs.strip_suffix(origin).and_then(|r| r.strip_suffix('.')) {
                Some(r) => r.to_string(),
                None if abs == origin => return Item::Ignored,
                None => return Item::Bad("owner name outside the zone's $ORIGIN"),
            }
        }
        None => owner.to_string(),
    };
    let last = relative.rsplit('.').next().unwrap_or("");
    if RPZ_OTHER_TRIGGERS.contains(&last) {
        return Item::Ignored;
    }
    item(normalize(&relative))
}

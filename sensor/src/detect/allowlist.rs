//! Benign-transport families: legitimate DNS that carries high-information names.
//!
//! Suffix rules come from the shipped list (`allowlist.txt`, compiled in) plus the user's config;
//! label rules (DKIM, ACME, trust-anchor telemetry, QNAME-minimisation probes, service discovery)
//! are structural and live in code. Matching never allocates: it walks the name's label
//! boundaries from the right and looks each suffix up in a hash set.

use std::collections::HashMap;

/// The families, reported in alarms as `benign_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Family {
    Antivirus = 1,
    Dnsbl = 2,
    Cdn = 3,
    EmailAuth = 4,
    Acme = 5,
    Reverse = 6,
    QnameMinimisation = 7,
    TrustAnchor = 8,
    ServiceDiscovery = 9,
    Telemetry = 10,
    /// Suffixes the operator added in the config file.
    Local = 11,
}

impl Family {
    pub const ALL: [Family; 11] = [
        Family::Antivirus,
        Family::Dnsbl,
        Family::Cdn,
        Family::EmailAuth,
        Family::Acme,
        Family::Reverse,
        Family::QnameMinimisation,
        Family::TrustAnchor,
        Family::ServiceDiscovery,
        Family::Telemetry,
        Family::Local,
    ];

    pub fn from_u8(v: u8) -> Option<Family> {
        Family::ALL.get((v as usize).wrapping_sub(1)).copied()
    }

    pub const fn name(self) -> &'static str {
        match self {
            Family::Antivirus => "antivirus",
            Family::Dnsbl => "dnsbl",
            Family::Cdn => "cdn",
            Family::EmailAuth => "email_auth",
            Family::Acme => "acme",
            Family::Reverse => "reverse",
            Family::QnameMinimisation => "qname_minimisation",
            Family::TrustAnchor => "trust_anchor",
            Family::ServiceDiscovery => "service_discovery",
            Family::Telemetry => "telemetry",
            Family::Local => "local",
        }
    }

    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL.iter().copied().find(|f| f.name() == s)
    }
}

const BUILTIN: &str = include_str!("allowlist.txt");

/// Error in an allow-list line.
#[derive(Debug, thiserror::Error)]
#[error("allow-list line {line}: {reason}")]
pub struct AllowlistError {
    pub line: usize,
    pub reason: String,
}

/// The compiled allow-list.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    suffixes: HashMap<Box<[u8]>, Family, crate::hash::FastState>,
}

impl Allowlist {
    /// The shipped list (if `builtin`) plus `extra` suffixes as family `local`.
    pub fn new(builtin: bool, extra: &[String]) -> Self {
        let mut list = Allowlist::default();
        if builtin {
            // The shipped file is tested below; a bad line there is a build-time bug.
            list.add_text(BUILTIN).unwrap_or_else(|e| panic!("built-in allow-list: {e}"));
        }
        for s in extra {
            list.insert(s, Family::Local);
        }
        list
    }

    fn insert(&mut self, suffix: &str, family: Family) {
        let s = suffix.trim().trim_end_matches('.').to_ascii_lowercase();
        if !s.is_empty() {
            self.suffixes.insert(s.into_bytes().into_boxed_slice(), family);
        }
    }

    /// Adds `<family> <suffix>` lines (comments with `#`).
    pub fn add_text(&mut self, text: &str) -> Result<(), AllowlistError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (Some(fam), Some(suffix), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(AllowlistError { line: i + 1, reason: "expected `<family> <suffix>`".into() });
            };
            let family = Family::from_name(fam)
                .ok_or_else(|| AllowlistError { line: i + 1, reason: format!("unknown family `{fam}`") })?;
            self.insert(suffix, family);
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.suffixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.suffixes.is_empty()
    }

    /// The family of a lowercased, dotted query name, if any.
    pub fn classify(&self, name: &[u8], first_label: &[u8], qtype: u16) -> Option<Family> {
        if first_label == b"_" {
            return Some(Family::QnameMinimisation);
        }
        if first_label.starts_with(b"_ta-") {
            return Some(Family::TrustAnchor);
        }
        if first_label == b"_acme-challenge" {
            return Some(Family::Acme);
        }
        // The underscore labels below: most names have no `_` at all.
        let underscore = name.contains(&b'_');
        let has = |label: &[u8]| underscore && name.split(|&c| c == b'.').any(|l| l == label);
        if has(b"_domainkey")
            || first_label == b"_dmarc"
            || first_label == b"_spf"
            || first_label == b"_mta-sts"
        {
            return Some(Family::EmailAuth);
        }
        if qtype == crate::dns::view::TYPE_SRV && (has(b"_tcp") || has(b"_udp")) {
            return Some(Family::ServiceDiscovery);
        }
        // Longest suffix first is not needed: families do not nest in practice; the first hit
        // from the left is the most specific.
        let mut start = 0;
        loop {
            if let Some(f) = self.suffixes.get(&name[start..]) {
                return Some(*f);
            }
            match name[start..].iter().position(|&c| c == b'.') {
                Some(dot) => start += dot + 1,
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(list: &Allowlist, name: &str) -> Option<&'static str> {
        let first = name.split('.').next().unwrap_or("");
        list.classify(name.as_bytes(), first.as_bytes(), 1).map(Family::name)
    }

    #[test]
    fn builtin_parses_and_matches() {
        let l = Allowlist::new(true, &["corp.example".into()]);
        assert!(l.len() > 50);
        assert_eq!(c(&l, "0a1b2c.avqs.mcafee.com"), Some("antivirus"));
        assert_eq!(c(&l, "4.3.2.1.zen.spamhaus.org"), Some("dnsbl"));
        assert_eq!(c(&l, "e1234.dscb.akamaiedge.net"), Some("cdn"));
        assert_eq!(c(&l, "sel1._domainkey.example.com"), Some("email_auth"));
        assert_eq!(c(&l, "_acme-challenge.www.example.com"), Some("acme"));
        assert_eq!(c(&l, "1.0.0.10.in-addr.arpa"), Some("reverse"));
        assert_eq!(c(&l, "_.example.com"), Some("qname_minimisation"));
        assert_eq!(c(&l, "_ta-4f66"), Some("trust_anchor"));
        assert_eq!(c(&l, "host.corp.example"), Some("local"));
        assert_eq!(c(&l, "mcafee.com"), None);
        assert_eq!(c(&l, "notakamaiedge.net"), None);
        assert_eq!(c(&l, "x.example.attack"), None);
        assert!(Allowlist::new(false, &[]).is_empty());
    }

    #[test]
    fn bad_lines_name_the_line() {
        let mut l = Allowlist::default();
        let e = l.add_text("cdn a.net\nbogus b.net\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(l.add_text("cdn\n").is_err());
    }
}

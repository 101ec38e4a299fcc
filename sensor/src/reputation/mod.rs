//! Domain reputation: known-bad domains from the threat-intelligence lists security teams already
//! keep (plain domain lists, hosts files, RPZ zones, abuse.ch-style CSV).
//!
//! Lists are parsed off the hot path (start and SIGHUP) into one immutable [`Reputation`]: every
//! listed name lowercased and in ASCII (IDN as punycode) back to back in one byte arena, an index
//! per entry, and a hash table of entry numbers. A lookup walks the name's suffixes from the
//! longest, so `x.y.bad.example` finds a listed `bad.example`; nothing is allocated.
//!
//! Clean names pay one short hash and one cache line: the last two labels of every entry (its
//! *anchor*: `evil.example` for `login.evil.example`) are in a blocked Bloom filter of about one
//! byte per entry, small enough to stay in cache, and only a name whose anchor may be there walks
//! the table (a probe per suffix, each a likely cache miss in a table of a million). The filter
//! uses the fast unseeded [`crate::hash::hash_bytes`]; names crafted to pass it only buy the table
//! walk, whose hash is seeded. Each worker also remembers the anchors the filter turned down
//! lately ([`CleanAnchors`]), and the anchor of most query names is their registered domain,
//! whose hash every record carries.

mod filter;
mod parse;

use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

pub use parse::{detect_format, normalize};

/// What a listed domain is known for; reported in alarms and exported in NetFlow/IPFIX (the code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Category {
    #[default]
    Malware = 1,
    C2 = 2,
    Phishing = 3,
    Spam = 4,
    Scam = 5,
    Cryptomining = 6,
    Adware = 7,
    Tracking = 8,
    Other = 9,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Malware,
        Category::C2,
        Category::Phishing,
        Category::Spam,
        Category::Scam,
        Category::Cryptomining,
        Category::Adware,
        Category::Tracking,
        Category::Other,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Category::Malware => "malware",
            Category::C2 => "c2",
            Category::Phishing => "phishing",
            Category::Spam => "spam",
            Category::Scam => "scam",
            Category::Cryptomining => "cryptomining",
            Category::Adware => "adware",
            Category::Tracking => "tracking",
            Category::Other => "other",
        }
    }

    pub fn from_name(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn from_u8(v: u8) -> Option<Category> {
        Category::ALL.get((v as usize).wrapping_sub(1)).copied()
    }
}

/// How a list file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// Decided from the first lines (see [`detect_format`]).
    #[default]
    Auto,
    /// One domain per line, `#` comments; a leading `*.` is allowed.
    Domains,
    /// A hosts file: `<address> <name> [<name>...]`.
    Hosts,
    /// A response-policy zone: QNAME triggers of its policy records.
    Rpz,
    /// Comma-separated values, `#` comments, a column of domains or URLs.
    Csv,
}

/// The severity of a list's alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ListSeverity {
    Low,
    #[default]
    High,
}

/// One list of the `[reputation]` config section (`[[reputation.lists]]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// Name in alarms and metrics (default: the file name without its extension).
    #[serde(default)]
    pub name: String,
    /// The list file.
    pub path: PathBuf,
    #[serde(default)]
    pub category: Category,
    #[serde(default)]
    pub format: ListFormat,
    /// CSV: 1-based column of the domain or URL (0: the column where most of the first rows hold
    /// one).
    #[serde(default)]
    pub column: usize,
    #[serde(default)]
    pub severity: ListSeverity,
}

impl ListSpec {
    /// A list from the command line: `[CATEGORY:]FILE`.
    pub fn from_arg(arg: &str) -> Result<ListSpec, String> {
        let (category, path) = match arg.split_once(':') {
            Some((c, p)) if Category::from_name(c).is_some() => (Category::from_name(c), p),
            Some((c, _)) if !c.contains('/') => {
                let names: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
                return Err(format!("unknown category `{c}` (expected one of {})", names.join(", ")));
            }
            _ => (None, arg),
        };
        Ok(ListSpec {
            name: String::new(),
            path: PathBuf::from(path),
            category: category.unwrap_or_default(),
            format: ListFormat::Auto,
            column: 0,
            severity: ListSeverity::High,
        })
    }

    /// The name, or the file name without its extension.
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        self.path.file_stem().map_or_else(|| self.path.display().to_string(), |s| s.to_string_lossy().into())
    }
}

/// What alarms and metrics say about a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    pub name: String,
    pub path: PathBuf,
    pub category: Category,
    pub severity: ListSeverity,
    /// Entries this list contributed (a name already listed by an earlier list counts there).
    pub entries: u64,
}

/// A line that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// How one list loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReport {
    pub format: Option<ListFormat>,
    pub entries: u64,
    /// Names already listed (by this list or an earlier one).
    pub duplicates: u64,
    /// Exceptions (RPZ passthru): names never reported, even under a listed parent.
    pub exceptions: u64,
    /// Lines that hold no domain (addresses in a CSV column, hosts-file boilerplate, RPZ triggers
    /// other than names): skipped silently.
    pub ignored: u64,
    /// Malformed lines, skipped: how many, and the first few.
    pub bad_lines: u64,
    pub first_bad: Vec<BadLine>,
}

/// Malformed lines remembered per list (all are counted).
const BAD_KEPT: usize = 10;

/// A list that cannot be used; the running lists are kept when this happens on reload.
#[derive(Debug, thiserror::Error)]
pub enum ReputationError {
    #[error("reputation list {path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error(
        "reputation list {path}: line {line}: {reason} ({bad} of {lines} lines malformed: wrong format?)"
    )]
    Broken { path: PathBuf, line: usize, reason: String, bad: u64, lines: u64 },
    #[error("reputation list {path}: more than 253 lists")]
    TooManyLists { path: PathBuf },
    #[error("reputation list {path}: the lists hold more than 4 GiB of names")]
    TooLarge { path: PathBuf },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: u32,
    len: u8,
    /// The list's index, or [`EXCEPTION`].
    list: u8,
}

/// The list index of an exception entry: a match there ends the lookup with no hit.
const EXCEPTION: u8 = u8::MAX;
/// The list index of an anchor marker: the last two labels of listed names that are not listed
/// themselves (`evil.example` for `login.evil.example`), so that a worker can tell an anchor with
/// no entry under it (and remember it clean) with one probe. Not a hit.
const ANCHOR: u8 = u8::MAX - 1;

/// The loaded lists: immutable, shared by every worker.
#[derive(Debug, Default)]
pub struct Reputation {
    lists: Vec<Arc<ListInfo>>,
    names: Vec<u8>,
    entries: Vec<Entry>,
    table: hashbrown::HashTable<u32>,
    hasher: crate::hash::FastState,
    /// Longest entry: longer suffixes are not looked up.
    longest: usize,
    /// Anchor markers among the entries.
    markers: usize,
    /// The anchors' blocked Bloom filter.
    filter: filter::Filter,
}

/// Slots of [`CleanAnchors`]: 128 KiB.
const CLEAN_SLOTS: usize = 16_384;

/// A worker's side of the lookups. It remembers the anchors found clean lately (turned down by
/// the filter, or passed by it but absent from the table), so a repeated clean domain (a response
/// after its query, a popular name) costs one compare in a small table. Direct-mapped by the
/// anchor's hash; cleared whenever the lists change.
///
/// A new anchor's filter line is a likely cache miss (a million entries' filter does not stay in
/// cache beside the traffic), so a lookup has two steps: [`CleanAnchors::start`], when the
/// decoder has the name, asks the CPU for the line; [`CleanAnchors::finish`], once the worker's
/// whole batch is decoded, reads it, and by then it has arrived.
pub struct CleanAnchors {
    slots: Box<[u64]>,
}

impl Default for CleanAnchors {
    fn default() -> Self {
        CleanAnchors { slots: vec![0; CLEAN_SLOTS].into_boxed_slice() }
    }
}

impl CleanAnchors {
    /// Forgets every anchor (the lists changed).
    pub fn clear(&mut self) {
        self.slots.fill(0);
    }

    fn slot(h: u64) -> usize {
        // The filter takes the low bits for its line; the slot comes from the top ones.
        (h >> 50) as usize % CLEAN_SLOTS
    }

    /// First step: false when there is nothing to look up (no lists, a single label, an anchor
    /// known clean); otherwise the filter line is on its way and [`CleanAnchors::finish`] decides.
    #[inline]
    pub fn start(&self, rep: &Reputation, name: &[u8], suffix_hash: Option<(usize, u64)>) -> bool {
        if rep.is_empty() {
            return false;
        }
        let Some((_, h)) = anchor_hash(name, suffix_hash) else { return false };
        if self.slots[Self::slot(h)] == h {
            return false;
        }
        rep.filter.prefetch(h);
        true
    }

    /// Second step of a lookup [`CleanAnchors::start`] began: the most specific listed entry for
    /// the name.
    #[inline]
    pub fn finish(
        &mut self,
        rep: &Reputation,
        name: &[u8],
        suffix_hash: Option<(usize, u64)>,
    ) -> Option<u32> {
        if rep.is_empty() {
            return None;
        }
        let (a, h) = anchor_hash(name, suffix_hash)?;
        // Clean when the filter turns the anchor down, or when the table does not hold it (a
        // false positive): no entry can match any name under it.
        if !rep.may_hold(h) || rep.lookup_exact(a).is_none() {
            self.slots[Self::slot(h)] = h;
            return None;
        }
        rep.walk(name)
    }

    /// Both steps at once (the line is read at once).
    #[inline]
    pub fn lookup(
        &mut self,
        rep: &Reputation,
        name: &[u8],
        suffix_hash: Option<(usize, u64)>,
    ) -> Option<u32> {
        if !self.start(rep, name, suffix_hash) {
            return None;
        }
        self.finish(rep, name, suffix_hash)
    }
}

/// An entry's name in the arena.
fn bytes_of<'a>(names: &'a [u8], e: &Entry) -> &'a [u8] {
    &names[e.at as usize..e.at as usize + e.len as usize]
}

/// The last two labels of a dotted name and their filter hash (none for a single label).
/// `suffix_hash`: the `hash_bytes` of a suffix of `name` of a known length (the registered
/// domain's, which every record carries), used when that suffix is the anchor.
#[inline]
fn anchor_hash(name: &[u8], suffix_hash: Option<(usize, u64)>) -> Option<(&[u8], u64)> {
    let a = anchor(name)?;
    let h = match suffix_hash {
        Some((len, h)) if len == a.len() => h,
        _ => crate::hash::hash_bytes(a),
    };
    Some((a, h))
}

/// The last two labels of a dotted name (none for a single label).
#[inline]
fn anchor(name: &[u8]) -> Option<&[u8]> {
    let last = name.iter().rposition(|&c| c == b'.')?;
    let start = name[..last].iter().rposition(|&c| c == b'.').map_or(0, |d| d + 1);
    Some(&name[start..])
}

/// Two sets are equal when they hold the same lists with the same counts (configs compare them).
impl PartialEq for Reputation {
    fn eq(&self, o: &Self) -> bool {
        self.lists == o.lists && self.entries.len() == o.entries.len()
    }
}

impl Reputation {
    /// Loads `specs` in order; a name in several lists belongs to the first.
    pub fn load(specs: &[ListSpec]) -> Result<(Reputation, Vec<ListReport>), ReputationError> {
        let mut set = Reputation::default();
        let mut reports = Vec::new();
        for spec in specs {
            let text = std::fs::read(&spec.path)
                .map_err(|source| ReputationError::Read { path: spec.path.clone(), source })?;
            let text = String::from_utf8_lossy(&text);
            reports.push(set.add(spec, &text)?);
        }
        Ok((set, reports))
    }

    /// Adds one list from its text.
    pub fn add(&mut self, spec: &ListSpec, text: &str) -> Result<ListReport, ReputationError> {
        let list = u8::try_from(self.lists.len())
            .ok()
            .filter(|&l| l < ANCHOR)
            .ok_or_else(|| ReputationError::TooManyLists { path: spec.path.clone() })?;
        let format = match spec.format {
            ListFormat::Auto => detect_format(text),
            f => f,
        };
        let mut report = ListReport { format: Some(format), ..Default::default() };
        let mut lines = 0u64;
        let mut too_large = false;
        parse::each_entry(text, format, spec.column, &mut |line, item| {
            lines += 1;
            match item {
                parse::Item::Name(name) => match self.insert(name.as_bytes(), list) {
                    Ok(true) => report.entries += 1,
                    Ok(false) => report.duplicates += 1,
                    Err(()) => too_large = true,
                },
                parse::Item::Exception(name) => match self.insert(name.as_bytes(), EXCEPTION) {
                    Ok(_) => report.exceptions += 1,
                    Err(()) => too_large = true,
                },
                parse::Item::Ignored => report.ignored += 1,
                parse::Item::Bad(reason) => {
                    report.bad_lines += 1;
                    if report.first_bad.len() < BAD_KEPT {
                        report.first_bad.push(BadLine { line, reason: reason.to_string() });
                    }
                }
            }
        });
        if too_large {
            return Err(ReputationError::TooLarge { path: spec.path.clone() });
        }
        // More bad lines than good ones: the wrong format, or not a list at all.
        if report.bad_lines > 0 && report.bad_lines > report.entries + report.duplicates {
            let first =
                report.first_bad.first().cloned().unwrap_or(BadLine { line: 0, reason: String::new() });
            return Err(ReputationError::Broken {
                path: spec.path.clone(),
                line: first.line,
                reason: first.reason,
                bad: report.bad_lines,
                lines,
            });
        }
        self.rebuild_filter();
        self.lists.push(Arc::new(ListInfo {
            name: spec.display_name(),
            path: spec.path.clone(),
            category: spec.category,
            severity: spec.severity,
            entries: report.entries,
        }));
        Ok(report)
    }

    fn hash(&self, name: &[u8]) -> u64 {
        self.hasher.hash_one(name)
    }

    fn entry_name(&self, e: &Entry) -> &[u8] {
        bytes_of(&self.names, e)
    }

    /// Indexes a new entry whose name (hash `h`) is already in the arena.
    fn push_entry(&mut self, e: Entry, h: u64) {
        let index = self.entries.len() as u32;
        self.entries.push(e);
        let Self { names, entries, table, hasher, .. } = self;
        table.insert_unique(h, index, |&i| hasher.hash_one(bytes_of(names, &entries[i as usize])));
    }

    /// Adds a normalized name; false for a duplicate (it keeps its first list). Err when the
    /// arena is full.
    fn insert(&mut self, name: &[u8], list: u8) -> Result<bool, ()> {
        let h = self.hash(name);
        if let Some(i) = self.lookup_hashed(name, h) {
            // A marker becomes the entry (or exception) now listed under its name.
            let e = &mut self.entries[i as usize];
            if e.list != ANCHOR {
                return Ok(false);
            }
            e.list = list;
            self.markers -= 1;
            return Ok(true);
        }
        let at = u32::try_from(self.names.len()).map_err(|_| ())?;
        u32::try_from(self.entries.len()).map_err(|_| ())?;
        self.names.extend_from_slice(name);
        self.push_entry(Entry { at, len: name.len() as u8, list }, h);
        self.longest = self.longest.max(name.len());
        Ok(true)
    }

    /// Adds the anchor markers the new entries need, sizes the anchor filter to the entries
    /// (about 8 bits per entry) and fills it.
    fn rebuild_filter(&mut self) {
        for i in 0..self.entries.len() {
            let e = self.entries[i];
            if e.list >= ANCHOR {
                continue;
            }
            let name = self.entry_name(&e);
            let Some(a) = anchor(name) else { continue };
            if a.len() < name.len() && self.lookup_exact(a).is_none() {
                // The anchor's bytes are the entry's own last bytes: no new name bytes.
                let h = self.hash(a);
                let len = a.len() as u8;
                self.push_entry(Entry { at: e.at + u32::from(e.len - len), len, list: ANCHOR }, h);
                self.markers += 1;
            }
        }
        let mut filter = filter::Filter::with_bits(self.entries.len() * 8);
        for e in &self.entries {
            if e.list == EXCEPTION {
                continue;
            }
            if let Some(a) = anchor(self.entry_name(e)) {
                filter.insert(crate::hash::hash_bytes(a));
            }
        }
        self.filter = filter;
    }

    /// False when no entry has an anchor of this hash (true may be a false positive, about 4 %).
    #[inline]
    fn may_hold(&self, anchor_hash: u64) -> bool {
        self.filter.may_hold(anchor_hash)
    }

    fn lookup_exact(&self, name: &[u8]) -> Option<u32> {
        self.lookup_hashed(name, self.hash(name))
    }

    fn lookup_hashed(&self, name: &[u8], h: u64) -> Option<u32> {
        self.table.find(h, |&i| self.entry_name(&self.entries[i as usize]) == name).copied()
    }

    /// The most specific listed entry that is `name` or a parent of it. `name` is lowercased and
    /// dotted without the trailing dot, as the decoder keeps names.
    pub fn lookup(&self, name: &[u8]) -> Option<u32> {
        if self.entries.is_empty() || !self.may_hold(anchor_hash(name, None)?.1) {
            return None;
        }
        self.walk(name)
    }

    /// Looks `name`'s suffixes up in the table, longest first.
    fn walk(&self, name: &[u8]) -> Option<u32> {
        let mut start = 0;
        loop {
            let suffix = &name[start..];
            // A single label is never listed (entries have two labels at least).
            let dot = suffix.iter().position(|&c| c == b'.')?;
            if suffix.len() <= self.longest {
                if let Some(i) = self.lookup_exact(suffix) {
                    // The most specific entry decides: an exception ends the lookup; a marker
                    // is not an entry.
                    match self.entries[i as usize].list {
                        EXCEPTION => return None,
                        ANCHOR => {}
                        _ => return Some(i),
                    }
                }
            }
            start += dot + 1;
        }
    }

    /// An entry's name and list (none for an exception).
    pub fn entry(&self, index: u32) -> Option<(&[u8], &Arc<ListInfo>)> {
        let e = self.entries.get(index as usize)?;
        Some((self.entry_name(e), self.lists.get(e.list as usize)?))
    }

    /// The hit a decoder found: `hit` is the entry's index + 1 (a record's `hit` field).
    pub fn hit(&self, hit: u32, via_cname: bool) -> Option<Hit> {
        let (entry, list) = self.entry(hit.checked_sub(1)?)?;
        Some(Hit { list: list.clone(), entry: String::from_utf8_lossy(entry).into(), via_cname })
    }

    /// The lists, in config order.
    pub fn lists(&self) -> &[Arc<ListInfo>] {
        &self.lists
    }

    /// Listed names (exceptions included), all lists together.
    pub fn len(&self) -> usize {
        self.entries.len() - self.markers
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of memory the set holds.
    pub fn memory_bytes(&self) -> usize {
        self.names.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.table.allocation_size()
            + self.filter.memory_bytes()
    }

    /// Gives back the growth slack of the arena and the entry index once loading is done.
    pub fn shrink(&mut self) {
        self.names.shrink_to_fit();
        self.entries.shrink_to_fit();
        let Self { names, entries, table, hasher, .. } = self;
        table.shrink_to_fit(|&i| hasher.hash_one(bytes_of(names, &entries[i as usize])));
    }
}

/// A reputation hit as it travels from a worker to the shard that alarms: the list, the listed
/// entry, and whether the listed name was a CNAME target in the answer rather than the query name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub list: Arc<ListInfo>,
    pub entry: Box<str>,
    pub via_cname: bool,
}

#[cfg(test)]
mod tests;

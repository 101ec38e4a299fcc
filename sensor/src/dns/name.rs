//! Domain-name decompression into a fixed stack buffer (RFC 1035 §4.1.4).
//!
//! Loops are impossible by construction: every compression pointer must point strictly before the
//! target of the previous one (and the first one before itself), so targets strictly decrease. The
//! hop count is bounded as well, for a clear error on pathological chains.

use super::DnsError;

/// Longest name on the wire, length octets and root label included.
pub const MAX_WIRE_LEN: usize = 255;
/// Pointer hops allowed while decoding one name.
pub const MAX_POINTER_HOPS: usize = 64;
/// Room for the dotted form: at most 253 characters for a 255-octet wire name.
const TEXT_CAP: usize = 256;
/// At most 127 labels fit in 255 octets.
const LABEL_CAP: usize = 128;

/// A decoded name: dotted text (no trailing dot; empty for the root) and its label boundaries,
/// so labels containing a literal `.` are still told apart. Lives on the stack, no allocation.
#[derive(Clone)]
pub struct NameBuf {
    text: [u8; TEXT_CAP],
    len: usize,
    /// End offset (exclusive) of each label in `text`.
    ends: [u8; LABEL_CAP],
    labels: usize,
}

impl Default for NameBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for NameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NameBuf({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl NameBuf {
    pub const fn new() -> Self {
        NameBuf { text: [0; TEXT_CAP], len: 0, ends: [0; LABEL_CAP], labels: 0 }
    }

    /// Dotted text without the trailing dot (empty for the root). Label bytes are raw.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text[..self.len]
    }

    /// Number of labels (0 for the root).
    pub fn label_count(&self) -> usize {
        self.labels
    }

    /// The labels, leftmost first.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        (0..self.labels).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize + 1 };
            &self.text[start..self.ends[i] as usize]
        })
    }

    /// Wire length of the name (length octets + labels + root octet).
    pub fn wire_len(&self) -> usize {
        // Each label costs its bytes plus one length octet; dots stand for those octets but one.
        if self.labels == 0 {
            1
        } else {
            self.len + 2
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.labels = 0;
    }

    fn push_label(&mut self, label: &[u8]) {
        // Callers guarantee the 255-octet wire limit, which keeps these writes in bounds.
        if self.labels > 0 {
            self.text[self.len] = b'.';
            self.len += 1;
        }
        self.text[self.len..self.len + label.len()].copy_from_slice(label);
        self.len += label.len();
        self.ends[self.labels] = self.len as u8;
        self.labels += 1;
    }
}

/// Decodes the name starting at `start` in `msg` into `out`. Returns the offset just past the
/// name *in the original position* (after the first pointer, if any), where the next field starts.
pub fn read_name(msg: &[u8], start: usize, out: &mut NameBuf) -> Result<usize, DnsError> {
    out.clear();
    let mut pos = start;
    // Offset after the first pointer: where parsing of the enclosing record resumes.
    let mut resume: Option<usize> = None;
    // Every pointer target must be below this bound.
    let mut bound = start;
    let mut hops = 0;
    let mut wire_len = 1; // the root octet
    loop {
        let len = *msg.get(pos).ok_or(DnsError::NameTruncated)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Ok(resume.unwrap_or(pos + 1));
                }
                let label = msg.get(pos + 1..pos + 1 + len).ok_or(DnsError::NameTruncated)?;
                wire_len += len + 1;
                if wire_len > MAX_WIRE_LEN {
                    return Err(DnsError::NameTooLong);
                }
                out.push_label(label);
                pos += 1 + len;
            }
            0xC0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::NameTruncated)? as usize;
                let target = ((len & 0x3F) << 8) | low;
                if target >= bound {
                    return Err(DnsError::BadPointer);
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err(DnsError::PointerHops);
                }
                resume.get_or_insert(pos + 2);
                bound = target;
                pos = target;
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

/// Skips the name at `start` without decoding it, checking what can be checked locally (label
/// bounds, label types, a backward first pointer). Returns the offset after the name.
pub fn skip_name(msg: &[u8], start: usize) -> Result<usize, DnsError> {
    let mut pos = start;
    let mut wire_len = 1;
    loop {
        let len = *msg.get(pos).ok_or(DnsError::NameTruncated)? as usize;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    return Ok(pos + 1);
                }
                wire_len += len + 1;
                if wire_len > MAX_WIRE_LEN {
                    return Err(DnsError::NameTooLong);
                }
                pos += 1 + len;
                if pos > msg.len() {
                    return Err(DnsError::NameTruncated);
                }
            }
            0xC0 => {
                let low = *msg.get(pos + 1).ok_or(DnsError::NameTruncated)? as usize;
                if ((len & 0x3F) << 8) | low >= start {
                    return Err(DnsError::BadPointer);
                }
                return Ok(pos + 2);
            }
            _ => return Err(DnsError::BadLabelType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(msg: &[u8], at: usize) -> Result<(String, usize), DnsError> {
        let mut buf = NameBuf::new();
        let end = read_name(msg, at, &mut buf)?;
        Ok((String::from_utf8_lossy(buf.as_bytes()).into_owned(), end))
    }

    #[test]
    fn plain_and_compressed() {
        // "www.example.com" at 0, then "mail" + pointer to "example.com" at 4.
        let mut m = b"\x03www\x07example\x03com\x00".to_vec();
        m.extend_from_slice(b"\x04mail\xC0\x04");
        assert_eq!(decode(&m, 0).unwrap(), ("www.example.com".into(), 17));
        assert_eq!(decode(&m, 17).unwrap(), ("mail.example.com".into(), 24));
        assert_eq!(skip_name(&m, 17).unwrap(), 24);
    }

    #[test]
    fn root_name() {
        let mut b = NameBuf::new();
        assert_eq!(read_name(b"\x00", 0, &mut b).unwrap(), 1);
        assert_eq!(b.label_count(), 0);
        assert_eq!(b.wire_len(), 1);
    }

    #[test]
    fn loops_and_forward_pointers_rejected() {
        // Pointer to itself.
        assert_eq!(decode(b"\xC0\x00", 0).unwrap_err(), DnsError::BadPointer);
        // Forward pointer.
        assert_eq!(decode(b"\xC0\x02\x00", 0).unwrap_err(), DnsError::BadPointer);
        // Two-step loop: 0 -> label, pointer at 3 to 0; start at 3 -> 0 -> pointer at 3 again.
        let m = b"\x01a\xC0\x00";
        assert_eq!(decode(m, 2).unwrap_err(), DnsError::BadPointer);
    }

    #[test]
    fn truncated_and_too_long() {
        assert_eq!(decode(b"\x05ab", 0).unwrap_err(), DnsError::NameTruncated);
        assert_eq!(decode(b"\x01a", 0).unwrap_err(), DnsError::NameTruncated);
        assert_eq!(decode(b"\xC0", 0).unwrap_err(), DnsError::NameTruncated);
        assert_eq!(decode(b"\x40", 0).unwrap_err(), DnsError::BadLabelType);
        let mut long = Vec::new();
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.push(0);
        assert_eq!(decode(&long, 0).unwrap_err(), DnsError::NameTooLong);
        assert_eq!(skip_name(&long, 0).unwrap_err(), DnsError::NameTooLong);
    }

    #[test]
    fn longest_legal_name_fits() {
        // 3 x 63 + 61 label bytes + 4 length octets + root = 255 octets.
        let mut m = Vec::new();
        for n in [63usize, 63, 63, 61] {
            m.push(n as u8);
            m.extend(std::iter::repeat_n(b'x', n));
        }
        m.push(0);
        assert_eq!(m.len(), 255);
        let mut b = NameBuf::new();
        read_name(&m, 0, &mut b).unwrap();
        assert_eq!(b.as_bytes().len(), 253);
        assert_eq!(b.wire_len(), 255);
        assert_eq!(b.labels().count(), 4);
    }

    #[test]
    fn labels_with_dots_stay_separate() {
        let m = b"\x03a.b\x01c\x00";
        let mut b = NameBuf::new();
        read_name(m, 0, &mut b).unwrap();
        let labels: Vec<&[u8]> = b.labels().collect();
        assert_eq!(labels, vec![&b"a.b"[..], &b"c"[..]]);
    }
}

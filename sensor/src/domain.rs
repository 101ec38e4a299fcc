//! The registered domain (eTLD+1) of a query name, from the Public Suffix List (the `psl` crate,
//! private section included, so `user.github.io` is its own registered domain).

/// Returns the length of the registered-domain suffix of `name` (lowercase, dotted, no trailing
/// dot). Unknown TLDs (`.attack`, `.test`) fall back to the last two labels; a name that is itself
/// a public suffix, or a single label, is its own registered domain.
pub fn registered_domain_len(name: &[u8]) -> usize {
    if name.is_empty() {
        return 0;
    }
    if let Some(d) = psl::domain(name) {
        // `psl` applies the implicit `*` rule, so unknown TLDs already give the last two labels.
        return d.as_bytes().len();
    }
    name.len()
}

/// The registered domain of `name` as a sub-slice.
pub fn registered_domain(name: &[u8]) -> &[u8] {
    &name[name.len() - registered_domain_len(name)..]
}

#[cfg(test)]
mod tests {
    use super::registered_domain as rd;

    #[test]
    fn public_suffix_list_with_private_section() {
        assert_eq!(rd(b"www.example.com"), b"example.com");
        assert_eq!(rd(b"a.b.example.co.uk"), b"example.co.uk");
        assert_eq!(rd(b"alice.github.io"), b"alice.github.io");
        assert_eq!(rd(b"x.y.example.attack"), b"example.attack");
        assert_eq!(rd(b"t.iodine-lab.test"), b"iodine-lab.test");
        assert_eq!(rd(b"4.3.2.1.in-addr.arpa"), b"1.in-addr.arpa");
        assert_eq!(rd(b"com"), b"com");
        assert_eq!(rd(b"localhost"), b"localhost");
        assert_eq!(rd(b""), b"");
    }
}

//! Constant-time comparison of secrets (a leaf module, as quinn-proto has).

use subtle::ConstantTimeEq as _;

/// Constant-time string equality (the length is not secret): `state`, `nonce`.
pub(crate) fn eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_for_equal_bytes() {
        assert!(super::eq("abc", "abc"));
        assert!(super::eq("", ""));
        assert!(!super::eq("abc", "abd"));
        assert!(!super::eq("abc", "abcd"));
        assert!(!super::eq("abc", "ABC"));
    }
}

//! Secrets the TCP side hands out and checks: the data folder's token and the one-time
//! view codes. Their bytes come from the operating system (`getrandom`), and a secret a
//! client sends is compared in constant time (`subtle`), so how long a refusal takes
//! says nothing about how much of a guess was right.

use subtle::ConstantTimeEq;

/// `bytes` random bytes from the operating system, as lowercase hex.
pub fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether a secret a client sent is the one expected. The time taken depends on the
/// lengths only (a secret's length is no secret).
pub fn same(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_hex_is_fresh_hex_of_the_asked_size() {
        let a = random_hex(32).unwrap();
        let b = random_hex(32).unwrap();
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{a}"
        );
        assert_ne!(a, b, "two tokens alike");
    }

    #[test]
    fn same_only_for_equal_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abd", b"abc"));
        assert!(!same(b"ab", b"abc"));
        assert!(!same(b"", b"abc"));
        assert!(same(b"", b""));
    }
}

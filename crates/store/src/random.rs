//! Secrets and ids from the operating system's random source (`getrandom`).

/// `bytes` random bytes from the OS, as lowercase hex (`2 * bytes` characters).
///
/// Panics when the OS has no random source to give: nothing that needs an unguessable id or
/// secret can go on without one.
pub fn hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_has_the_asked_length_and_differs_each_call() {
        let a = super::hex(16);
        let b = super::hex(16);
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}

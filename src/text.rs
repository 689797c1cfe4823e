//! Cutting text to a size in bytes without splitting a character: for messages, excerpts
//! and transcripts that are capped.

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(super::prefix("héllo", 2), "h");
        assert_eq!(super::prefix("héllo", 3), "hé");
        assert_eq!(super::prefix("abc", 9), "abc");
    }
}

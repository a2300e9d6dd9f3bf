//! Bounded text for people: what backstop passes on from outside (error messages, logs,
//! command output) is cut to a size that fits a notification, a deployer's comment field or
//! a log line, always on a character boundary.

/// `text` cut to at most `max` bytes on a character boundary, the cut marked with `...`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_a_character_boundary_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 8), "abcde...");
        let cut = truncate("ééééé", 8);
        assert!(cut.len() <= 8 && cut.ends_with("..."), "{cut}");
        assert_eq!(cut, "éé...");
    }
}

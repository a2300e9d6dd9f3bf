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

/// `text` fit for one line of a message: terminal escape sequences (colours in a tool's log)
/// removed, other control characters (tabs, newlines, bells) made spaces, outer space trimmed.
pub fn clean_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI is ESC [ parameters and a final letter; other escapes are ESC and one char.
            if chars.next_if_eq(&'[').is_some() {
                while chars.next_if(|c| !c.is_ascii_alphabetic()).is_some() {}
            }
            chars.next();
        } else if c.is_control() {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// The newest of `lines` that fit: each cut to `max_line` bytes, then the oldest dropped until
/// at most `max_lines` remain and they join (with newlines) into at most `max_total` bytes.
pub fn last_lines(
    lines: Vec<String>,
    max_lines: usize,
    max_line: usize,
    max_total: usize,
) -> Vec<String> {
    let skip = lines.len().saturating_sub(max_lines);
    let mut out: Vec<String> = lines
        .into_iter()
        .skip(skip)
        .map(|l| truncate(&l, max_line))
        .collect();
    // Counted with a newline after each line, one more than the joined length.
    let mut size: usize = out.iter().map(|l| l.len() + 1).sum();
    let mut first = 0;
    while size > max_total + 1 && first < out.len() {
        size -= out[first].len() + 1;
        first += 1;
    }
    out.drain(..first);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keep_the_newest_that_fit() {
        let lines: Vec<String> = (0..30)
            .map(|i| format!("{i:02}{}", "x".repeat(98)))
            .collect();
        let kept = last_lines(lines.clone(), 20, 50, 1000);
        assert_eq!(kept.len(), 19, "{kept:?}");
        assert!(kept.iter().all(|l| l.len() == 50));
        assert!(kept.join("\n").len() <= 1000);
        assert!(kept[0].starts_with("11") && kept[18].starts_with("29"));
        assert_eq!(last_lines(lines, 3, 400, 4096).len(), 3);
        assert!(last_lines(vec!["x".repeat(10)], 5, 400, 4).is_empty());
    }

    #[test]
    fn clean_lines_lose_escapes_and_control_characters() {
        assert_eq!(clean_line("\u{1b}[1;31mred\u{1b}[0m\tok\r\n"), "red ok");
        assert_eq!(clean_line("a\u{7}b\u{1b}Mc"), "a bc");
        assert_eq!(clean_line("  ünïcødé 🚀 "), "ünïcødé 🚀");
        assert_eq!(clean_line("\u{1b}[31"), "");
    }

    #[test]
    fn cuts_on_a_character_boundary_and_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdefghij", 8), "abcde...");
        let cut = truncate("ééééé", 8);
        assert!(cut.len() <= 8 && cut.ends_with("..."), "{cut}");
        assert_eq!(cut, "éé...");
    }
}

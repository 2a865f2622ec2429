//! [`Quoted`]: a string in an error message, as `{:?}` shows it, through `Display`.
//!
//! The browser client is built with `-Zfmt-debug=none` (every `{:?}` prints nothing) and without
//! `str::escape_debug`, whose Unicode tables cost it some kilobytes (issue 16). Messages that
//! show what a caller sent (a room name, a URL) use this instead: in double quotes, with `"`,
//! `\` and control characters escaped, so a newline in a room name cannot forge a log line.

use std::fmt::{self, Write};

/// `s` in double quotes, with `"`, `\` and control characters escaped as `{:?}` escapes them
/// (other characters, printable or not, are written as they are).
#[derive(Clone, Copy)]
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                '\0' => f.write_str("\\0")?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_str("\"")
    }
}

#[cfg(test)]
mod tests {
    use super::Quoted;

    #[test]
    fn quotes_as_debug_does_for_text_and_control_characters() {
        for s in [
            "doc",
            "a\"b\\c",
            "line\nbreak\r\t\0",
            "bell\u{7}\u{9f}",
            "é ü 字",
            "",
        ] {
            assert_eq!(Quoted(s).to_string(), format!("{s:?}"), "{s:?}");
        }
    }
}

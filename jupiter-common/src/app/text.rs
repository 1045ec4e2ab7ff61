//! Reading a user's text file so that its errors point into it: where the
//! bytes stop being UTF-8 (a binary file, or one saved as Latin-1), where
//! YAML meets a control character, and user values quoted short enough to
//! read when someone hands in a file of one 100 kB line.

use std::fmt;
use std::path::Path;

/// Why a file is not text: its first byte that is not UTF-8, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8 {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub byte: u8,
}

impl NotUtf8 {
    /// What is wrong, without where.
    pub fn problem(&self) -> String {
        format!(
            "not UTF-8 text (byte 0x{:02X}): a binary file, or text in another encoding? save it as UTF-8",
            self.byte
        )
    }
}

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {}: {}", self.line, self.column, self.problem())
    }
}

/// Why a file cannot be read as text.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    NotUtf8(NotUtf8),
}

/// The file's text, or where it stops being UTF-8.
pub fn read(path: &Path) -> Result<String, TextError> {
    let bytes = std::fs::read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let valid = &bytes[..e.utf8_error().valid_up_to()];
        // `valid` is UTF-8 by definition; lossy only to avoid an unwrap.
        let before = String::from_utf8_lossy(valid);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        TextError::NotUtf8(NotUtf8 {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            byte: bytes[valid.len()],
        })
    })
}

/// The first character YAML refuses (a control character other than tab,
/// line feed and carriage return), as (line, column, character), 1-based:
/// the YAML parser names it by byte offset only.
pub fn yaml_control_character(text: &str) -> Option<(usize, usize, char)> {
    for (l, line) in text.split('\n').enumerate() {
        for (c, ch) in line.chars().enumerate() {
            if ch.is_control() && !matches!(ch, '\t' | '\r' | '\u{85}') {
                return Some((l + 1, c + 1, ch));
            }
        }
    }
    None
}

/// A YAML error as `line L column C: message`: serde_yaml ends its message
/// with the same place, which is then said once, first.
pub fn yaml_error(e: &serde_yaml::Error) -> String {
    let message = e.to_string();
    match e.location() {
        Some(l) => {
            let place = format!(" at line {} column {}", l.line(), l.column());
            let message = message.strip_suffix(&place).unwrap_or(&message);
            format!("line {} column {}: {message}", l.line(), l.column())
        }
        None => message,
    }
}

/// Longest user value a message quotes in full.
const QUOTE_MAX: usize = 60;

/// `value` quoted as `{:?}` does, cut short past [`QUOTE_MAX`] characters
/// with its length said, so an error about a huge token stays one line.
pub fn quote(value: &str) -> String {
    let chars = value.chars().count();
    if chars <= QUOTE_MAX {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(QUOTE_MAX).collect();
    format!("{head:?}... ({chars} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_utf8_is_located() {
        let dir = tempfile::tempdir().expect("temporary folder");
        let file = dir.path().join("f.txt");
        std::fs::write(
            &file,
            "ok\nnaïve caf".bytes().chain(*b"\xe9\n").collect::<Vec<u8>>(),
        )
        .expect("write");
        match read(&file) {
            Err(TextError::NotUtf8(e)) => assert_eq!(
                e,
                NotUtf8 {
                    line: 2,
                    column: 10,
                    byte: 0xe9
                }
            ),
            other => panic!("{other:?}"),
        }
        std::fs::write(&file, "fine\n").expect("write");
        assert_eq!(read(&file).expect("UTF-8"), "fine\n");
    }

    #[test]
    fn control_characters_and_quotes() {
        assert_eq!(yaml_control_character("a: 1\nb:\t\"x\"\r\n"), None);
        assert_eq!(
            yaml_control_character("a: 1\nbc: d\u{0}\n"),
            Some((2, 6, '\u{0}'))
        );
        assert_eq!(quote("ab"), "\"ab\"");
        let long = quote(&"x".repeat(1000));
        assert!(
            long.ends_with("... (1000 characters)") && long.len() < 90,
            "{long}"
        );
    }
}

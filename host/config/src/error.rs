//! Why a config could not be used, pointing at the line, column and text at fault: the TOML
//! parser's span for syntax and schema errors; for a validation error, the key or name its
//! message starts with (`server.max_headers`, `route 'api'`, `[gpu] backend 'a'`), found in
//! the text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse or did not match the schema.
    #[error("{path}:{at}: {message}\n{}", at.excerpt)]
    Parse {
        /// The file (or `<inline>`).
        path: PathBuf,
        /// Where.
        at: Location,
        /// What was wrong.
        message: String,
    },
    /// The config parsed but is inconsistent.
    #[error("{}", invalid_text(path, at.as_ref(), message))]
    Invalid {
        /// The file (or `<inline>`).
        path: PathBuf,
        /// Where, when the message names a key or a name found in the text.
        at: Option<Location>,
        /// What was wrong.
        message: String,
    },
}

/// A place in the config text.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// The line, numbered, with carets under the offending text.
    pub excerpt: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

fn invalid_text(path: &Path, at: Option<&Location>, message: &str) -> String {
    match at {
        Some(at) => format!("{}:{at}: {message}\n{}", path.display(), at.excerpt),
        None => format!("{}: {message}", path.display()),
    }
}

impl ConfigError {
    /// A parse error of `text` at the byte range `span`.
    pub(crate) fn parse(text: &str, path: &Path, span: Range<usize>, message: &str) -> Self {
        ConfigError::Parse {
            path: path.to_path_buf(),
            at: Location::of(text, span),
            message: message.trim_end().to_string(),
        }
    }

    /// A validation error, located in `text` when its message names something found there.
    pub(crate) fn invalid(text: &str, path: &Path, message: String) -> Self {
        ConfigError::Invalid {
            path: path.to_path_buf(),
            at: locate(text, &message).map(|span| Location::of(text, span)),
            message,
        }
    }
}

impl Location {
    /// The place of the byte range `span` of `text`, with an excerpt of its line.
    fn of(text: &str, span: Range<usize>) -> Self {
        let start = text.floor_char_boundary(span.start);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_text = text[line_start..line_end].trim_end_matches('\r');
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let end = text.floor_char_boundary(span.end.clamp(start, line_start + line_text.len()));
        let width = text[start..end].chars().count().max(1);
        let number = line.to_string();
        let excerpt = format!(
            "{number} | {line_text}\n{pad} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(width),
            pad = " ".repeat(number.len())
        );
        Location { line, column, excerpt }
    }
}

/// The byte range in `text` of what a validation message is about: its leading dotted key
/// (`section.key`, `section.sub.key`, found as `key` under `[section]` or `[section.sub]`), or
/// the table it names (`plugins.auth:` as `[plugins.auth]`), or else its first quoted name
/// (`'api'`, found as a quoted string or a table name).
fn locate(text: &str, message: &str) -> Option<Range<usize>> {
    let lead = message.trim_start_matches(['[', ']']).split([' ', ':', ',']).next()?;
    let lead = lead.trim_end_matches(']');
    if let Some((table, key)) = lead.rsplit_once('.')
        && !table.is_empty()
        && lead
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && let Some(found) = key_under_table(text, table, key)
    {
        return Some(found);
    }
    let table = format!("[{lead}]");
    if lead.contains('.')
        && let Some(i) = text.find(&table)
    {
        return Some(i..i + table.len());
    }
    let name = message.split('\'').nth(1).filter(|n| !n.is_empty())?;
    [format!("\"{name}\""), format!(".{name}]")]
        .iter()
        .find_map(|needle| text.find(needle.as_str()).map(|i| i..i + needle.len()))
}

/// The range of `key` on its line under the table header `[table]`, or of the header itself
/// when the key is not written (a default that is out of range together with another).
fn key_under_table(text: &str, table: &str, key: &str) -> Option<Range<usize>> {
    let header = format!("[{table}]");
    let mut offset = 0;
    let mut in_table = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('[') {
            if in_table.is_some() {
                break;
            }
            if trimmed.starts_with(&header) {
                in_table = Some(offset + indent..offset + indent + header.len());
            }
        } else if in_table.is_some()
            && let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(offset + indent..offset + indent + key.len());
        }
        offset += line.len();
    }
    in_table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_shows_its_line_with_carets_under_the_span() {
        let text = "[server]\nmax_headers = 0\n";
        let at = Location::of(text, 9..20);
        assert_eq!((at.line, at.column), (2, 1));
        assert_eq!(at.excerpt, "2 | max_headers = 0\n  | ^^^^^^^^^^^");
        let wide = Location::of("a = \"é\"\nb = 1", 4..8);
        assert_eq!((wide.line, wide.column), (1, 5));
        assert_eq!(wide.excerpt, "1 | a = \"é\"\n  |     ^^^");
    }

    #[test]
    fn validation_messages_are_located_by_their_key_or_name() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\nmax_headers = 0\n\n[[routes]]\nname = \"api\"\n";
        let key = locate(text, "server.max_headers must be 1..=1000").unwrap();
        assert_eq!(&text[key], "max_headers");
        let header = locate(text, "server.idle_timeout_ms must be at least 10").unwrap();
        assert_eq!(&text[header], "[server]", "an unwritten key points at its table");
        let name = locate(text, "route 'api': paths start with '/', got 'x'").unwrap();
        assert_eq!(&text[name], "\"api\"");
        assert_eq!(locate(text, "something without a place"), None);
        let plugin = "[plugins.auth]\nmodule = \"a.wasm\"\n";
        let table = locate(plugin, "plugins.auth: limits.memory_mb = 9999 is above 512").unwrap();
        assert_eq!(&plugin[table], "[plugins.auth]");
    }

    #[test]
    fn an_invalid_config_error_reads_path_line_column_message_and_excerpt() {
        let text = "[redis]\nurl = \"http://x\"\n";
        let err = ConfigError::invalid(text, Path::new("g.toml"), "redis.url must start with redis://".into());
        assert_eq!(
            err.to_string(),
            "g.toml:2:1: redis.url must start with redis://\n2 | url = \"http://x\"\n  | ^^^"
        );
        let unplaced = ConfigError::invalid(text, Path::new("g.toml"), "no place".into());
        assert_eq!(unplaced.to_string(), "g.toml: no place");
    }
}

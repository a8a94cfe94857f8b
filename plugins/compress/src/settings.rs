//! The plugin's config (the route's `config` table, as JSON), checked whole by `init`. Every
//! key is described in `plugins/compress/README.md`.

use serde::Deserialize;
use sluice_plugin_sdk::Encoding;

/// The content types compressed when the config names none.
const DEFAULT_TYPES: &[&str] = &[
    "text/*",
    "application/json",
    "application/*+json",
    "application/javascript",
    "application/xml",
    "application/*+xml",
    "application/x-ndjson",
    "application/wasm",
    "image/svg+xml",
];

/// Per-encoding levels as written in the config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevels {
    gzip: Option<i64>,
    br: Option<i64>,
    zstd: Option<i64>,
}

/// Request-body decompression bounds as written in the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecompress {
    #[serde(default = "default_max_bytes")]
    max_bytes: i64,
    #[serde(default = "default_max_ratio")]
    max_ratio: i64,
}

fn default_max_bytes() -> i64 {
    10 << 20
}

fn default_max_ratio() -> i64 {
    100
}

/// The config as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    encodings: Vec<String>,
    levels: RawLevels,
    min_size: i64,
    content_types: Option<Vec<String>>,
    decompress_requests: Option<RawDecompress>,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            encodings: vec!["br".into(), "zstd".into(), "gzip".into()],
            levels: RawLevels::default(),
            min_size: 1000,
            content_types: None,
            decompress_requests: None,
        }
    }
}

/// A content-type pattern: `type/subtype`, `type/*`, or `type/*+suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    /// Exactly this media type.
    Exact(String),
    /// Any subtype of this type.
    AnySubtype(String),
    /// This type with a structured-syntax suffix (`application/*+json`).
    Suffix(String, String),
}

impl TypePattern {
    fn parse(pattern: &str) -> Result<Self, String> {
        let lower = pattern.trim().to_ascii_lowercase();
        let bad = || format!("content_types: '{pattern}' is not type/subtype, type/* or type/*+suffix");
        let (ty, sub) = lower.split_once('/').ok_or_else(bad)?;
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        if !token(ty) {
            return Err(bad());
        }
        if sub == "*" {
            return Ok(TypePattern::AnySubtype(ty.to_string()));
        }
        if let Some(suffix) = sub.strip_prefix("*+") {
            return if token(suffix) {
                Ok(TypePattern::Suffix(ty.to_string(), format!("+{suffix}")))
            } else {
                Err(bad())
            };
        }
        if token(sub) {
            Ok(TypePattern::Exact(lower.clone()))
        } else {
            Err(bad())
        }
    }

    /// Whether the media type `essence` (lower case, no parameters) matches.
    pub fn matches(&self, essence: &str) -> bool {
        match self {
            TypePattern::Exact(t) => essence == t,
            TypePattern::AnySubtype(ty) => essence.split_once('/').is_some_and(|(t, _)| t == ty),
            TypePattern::Suffix(ty, suffix) => essence
                .split_once('/')
                .is_some_and(|(t, sub)| t == ty && sub.len() > suffix.len() && sub.ends_with(suffix.as_str())),
        }
    }
}

/// The checked config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The encodings offered, most preferred first.
    pub encodings: Vec<Encoding>,
    /// The level per encoding; None leaves the host's default.
    pub levels: [Option<i32>; 3],
    /// Bodies whose `Content-Length` is below this are sent as they are.
    pub min_size: u64,
    /// The content types compressed.
    pub content_types: Vec<TypePattern>,
    /// When set, compressed request bodies are decoded by the host within these bounds
    /// (most decoded bytes, most decoded bytes per compressed byte).
    pub decompress_requests: Option<(u64, u32)>,
}

/// Each encoding's name in the config and its level range (the host's clamp range).
fn describe(encoding: Encoding) -> (&'static str, i64, i64, usize) {
    match encoding {
        Encoding::Gzip => ("gzip", 1, 9, 0),
        Encoding::Br => ("br", 0, 11, 1),
        Encoding::Zstd => ("zstd", 1, 19, 2),
    }
}

fn encoding_named(name: &str) -> Option<Encoding> {
    match name {
        "gzip" => Some(Encoding::Gzip),
        "br" => Some(Encoding::Br),
        "zstd" => Some(Encoding::Zstd),
        _ => None,
    }
}

impl Settings {
    /// Parses and checks the config JSON; the error tells the operator what to fix.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: Raw = serde_json::from_str(json).map_err(|e| format!("invalid config: {e}"))?;
        if raw.encodings.is_empty() {
            return Err("encodings: list at least one of br, zstd, gzip".into());
        }
        let mut encodings = Vec::new();
        for name in &raw.encodings {
            let encoding = encoding_named(name)
                .ok_or_else(|| format!("encodings: unknown encoding '{name}' (known: br, zstd, gzip)"))?;
            if encodings.contains(&encoding) {
                return Err(format!("encodings: '{name}' is listed twice"));
            }
            encodings.push(encoding);
        }
        let mut levels = [None; 3];
        for (encoding, level) in [
            (Encoding::Gzip, raw.levels.gzip),
            (Encoding::Br, raw.levels.br),
            (Encoding::Zstd, raw.levels.zstd),
        ] {
            let (name, low, high, index) = describe(encoding);
            if let Some(level) = level {
                if !(low..=high).contains(&level) {
                    return Err(format!("levels.{name}: {level} is out of range ({low}..={high})"));
                }
                levels[index] = Some(level as i32);
            }
        }
        if raw.min_size < 0 {
            return Err(format!(
                "min_size: {} is negative; give a size in bytes (0 compresses every body)",
                raw.min_size
            ));
        }
        let patterns = match &raw.content_types {
            Some(list) if list.is_empty() => return Err("content_types: list at least one content type".into()),
            Some(list) => list.iter().map(|p| TypePattern::parse(p)).collect::<Result<_, _>>()?,
            None => DEFAULT_TYPES
                .iter()
                .map(|p| TypePattern::parse(p))
                .collect::<Result<_, _>>()?,
        };
        let decompress_requests = match raw.decompress_requests {
            None => None,
            Some(d) => {
                if d.max_bytes < 1 {
                    return Err(format!(
                        "decompress_requests.max_bytes: {} must be at least 1",
                        d.max_bytes
                    ));
                }
                let max_ratio = u32::try_from(d.max_ratio).ok().filter(|r| *r >= 1).ok_or_else(|| {
                    format!(
                        "decompress_requests.max_ratio: {} is out of range (1..=4294967295)",
                        d.max_ratio
                    )
                })?;
                Some((d.max_bytes as u64, max_ratio))
            }
        };
        Ok(Settings {
            encodings,
            levels,
            min_size: raw.min_size as u64,
            content_types: patterns,
            decompress_requests,
        })
    }

    /// The configured level for `encoding`, if any.
    pub fn level(&self, encoding: Encoding) -> Option<i32> {
        self.levels[describe(encoding).3]
    }

    /// Whether a response with this `Content-Type` value is compressed.
    pub fn allows_type(&self, content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        self.content_types.iter().any(|p| p.matches(&essence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = Settings::from_json("{}").unwrap();
        assert_eq!(s.encodings, [Encoding::Br, Encoding::Zstd, Encoding::Gzip]);
        assert_eq!(s.min_size, 1000);
        assert_eq!(s.level(Encoding::Gzip), None);
        assert_eq!(s.decompress_requests, None);
        let d = Settings::from_json(r#"{"decompress_requests":{}}"#).unwrap();
        assert_eq!(d.decompress_requests, Some((10 << 20, 100)));
        for yes in [
            "text/html",
            "text/plain; charset=utf-8",
            "Application/JSON",
            "application/problem+json",
            "application/atom+xml",
            "image/svg+xml",
            "text/event-stream",
        ] {
            assert!(s.allows_type(yes), "{yes}");
        }
        for no in [
            "image/png",
            "application/octet-stream",
            "application/+json",
            "video/mp4",
            "",
        ] {
            assert!(!s.allows_type(no), "{no}");
        }
    }

    #[test]
    fn a_full_config() {
        let s = Settings::from_json(
            r#"{"encodings":["gzip","zstd"],"levels":{"gzip":9,"zstd":19,"br":0},"min_size":0,"content_types":["application/*"]}"#,
        )
        .unwrap();
        assert_eq!(s.encodings, [Encoding::Gzip, Encoding::Zstd]);
        assert_eq!(s.level(Encoding::Gzip), Some(9));
        assert_eq!(s.level(Encoding::Br), Some(0));
        assert_eq!(s.min_size, 0);
        assert!(s.allows_type("application/octet-stream"));
        assert!(!s.allows_type("text/html"));
    }

    #[test]
    fn configs_that_make_no_sense_are_rejected_with_the_reason() {
        for (json, says) in [
            (r#"{"encodings":["deflate"]}"#, "unknown encoding 'deflate'"),
            (r#"{"encodings":[]}"#, "at least one"),
            (r#"{"encodings":["br","br"]}"#, "listed twice"),
            (r#"{"levels":{"gzip":10}}"#, "levels.gzip: 10 is out of range (1..=9)"),
            (r#"{"levels":{"br":-1}}"#, "levels.br: -1 is out of range"),
            (r#"{"levels":{"zstd":22}}"#, "levels.zstd: 22 is out of range (1..=19)"),
            (r#"{"levels":{"lz4":1}}"#, "unknown field `lz4`"),
            (r#"{"min_size":-1}"#, "min_size: -1 is negative"),
            (r#"{"min_size":"big"}"#, "invalid config"),
            (r#"{"content_types":["json"]}"#, "'json' is not type/subtype"),
            (r#"{"content_types":[]}"#, "at least one content type"),
            (r#"{"level":5}"#, "unknown field `level`"),
            (
                r#"{"decompress_requests":{"max_bytes":0}}"#,
                "max_bytes: 0 must be at least 1",
            ),
            (
                r#"{"decompress_requests":{"max_ratio":0}}"#,
                "max_ratio: 0 is out of range",
            ),
            (
                r#"{"decompress_requests":{"max_ratio":-5}}"#,
                "max_ratio: -5 is out of range",
            ),
            (r#"{"decompress_requests":{"ratio":5}}"#, "unknown field `ratio`"),
        ] {
            let error = Settings::from_json(json).unwrap_err();
            assert!(error.contains(says), "{json}: {error}");
        }
    }
}

//! The plugin's config (the route's `config` table, as JSON), checked when the plugin loads so
//! that `sluice check` rejects a config that makes no sense. Every key is described in
//! `plugins/gpu-router/README.md`.

use serde::Deserialize;

/// The most request-body bytes the plugin declares in `describe`, and so the largest
/// `max_body_bytes` a config may give (16 MiB).
pub const MAX_BODY_LIMIT: u32 = 16 << 20;
/// The largest `chars_per_token`.
const MAX_CHARS_PER_TOKEN: u32 = 64;
/// The largest `prefix_chars` (and `min_prefix_chars`).
const MAX_PREFIX_CHARS: u32 = 1 << 20;
/// The longest `tenant_header` name.
const MAX_HEADER_NAME: usize = 64;

/// The plugin's config, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The most body bytes asked for with `need-body`; a larger body gets 413 from the host.
    pub max_body_bytes: u32,
    /// The priority (1–10) of a request without `x-priority` or `x-workflow-priority`.
    pub default_priority: u8,
    /// The request header naming the tenant (lower case).
    pub tenant_header: String,
    /// Characters per token when estimating prompt tokens.
    pub chars_per_token: u32,
    /// The generation budget of a request that gives no `max_tokens`.
    pub default_max_tokens: u32,
    /// How many leading characters of the prompt the prefix hash covers.
    pub prefix_chars: u32,
    /// Prompts shorter than this many characters get no prefix hash.
    pub min_prefix_chars: u32,
    /// Whether requests the plugin does not serve go on down the chain (to the route's
    /// upstream, if it has one) instead of getting 404 in OpenAI's format.
    pub pass_unknown_paths: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body_bytes: 1 << 20,
            default_priority: 5,
            tenant_header: "x-tenant".to_string(),
            chars_per_token: 4,
            default_max_tokens: 256,
            prefix_chars: 512,
            min_prefix_chars: 64,
            pass_unknown_paths: false,
        }
    }
}

/// The config as written; every key optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    max_body_bytes: Option<u32>,
    #[serde(default)]
    default_priority: Option<u8>,
    #[serde(default)]
    tenant_header: Option<String>,
    #[serde(default)]
    chars_per_token: Option<u32>,
    #[serde(default)]
    default_max_tokens: Option<u32>,
    #[serde(default)]
    prefix_chars: Option<u32>,
    #[serde(default)]
    min_prefix_chars: Option<u32>,
    #[serde(default)]
    pass_unknown_paths: Option<bool>,
}

impl Settings {
    /// Parses and checks the JSON config; the error names the key and what it accepts.
    pub fn from_json(json: &str) -> Result<Settings, String> {
        let raw: RawSettings = serde_json::from_str(json).map_err(|e| format!("invalid config: {e}"))?;
        let d = Settings::default();
        let s = Settings {
            max_body_bytes: raw.max_body_bytes.unwrap_or(d.max_body_bytes),
            default_priority: raw.default_priority.unwrap_or(d.default_priority),
            tenant_header: raw.tenant_header.unwrap_or(d.tenant_header).to_ascii_lowercase(),
            chars_per_token: raw.chars_per_token.unwrap_or(d.chars_per_token),
            default_max_tokens: raw.default_max_tokens.unwrap_or(d.default_max_tokens),
            prefix_chars: raw.prefix_chars.unwrap_or(d.prefix_chars),
            min_prefix_chars: raw.min_prefix_chars.unwrap_or(d.min_prefix_chars),
            pass_unknown_paths: raw.pass_unknown_paths.unwrap_or(d.pass_unknown_paths),
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_BODY_LIMIT).contains(&self.max_body_bytes) {
            return Err(format!(
                "max_body_bytes must be 1 to {MAX_BODY_LIMIT}, not {}",
                self.max_body_bytes
            ));
        }
        if !(1..=10).contains(&self.default_priority) {
            return Err(format!(
                "default_priority must be 1 to 10, not {}",
                self.default_priority
            ));
        }
        let name_ok = !self.tenant_header.is_empty()
            && self.tenant_header.len() <= MAX_HEADER_NAME
            && self
                .tenant_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(format!(
                "tenant_header must be a header name of 1 to {MAX_HEADER_NAME} of a-z, 0-9, '-' and '_', not {:?}",
                self.tenant_header
            ));
        }
        if !(1..=MAX_CHARS_PER_TOKEN).contains(&self.chars_per_token) {
            return Err(format!(
                "chars_per_token must be 1 to {MAX_CHARS_PER_TOKEN}, not {}",
                self.chars_per_token
            ));
        }
        if self.default_max_tokens == 0 {
            return Err("default_max_tokens must be at least 1".to_string());
        }
        if !(1..=MAX_PREFIX_CHARS).contains(&self.prefix_chars) {
            return Err(format!(
                "prefix_chars must be 1 to {MAX_PREFIX_CHARS}, not {}",
                self.prefix_chars
            ));
        }
        if self.min_prefix_chars > self.prefix_chars {
            return Err(format!(
                "min_prefix_chars ({}) must not be above prefix_chars ({})",
                self.min_prefix_chars, self.prefix_chars
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_gives_the_defaults() {
        let s = Settings::from_json("{}").unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.max_body_bytes, 1_048_576);
        assert_eq!(s.default_priority, 5);
        assert_eq!(s.tenant_header, "x-tenant");
        assert_eq!((s.chars_per_token, s.default_max_tokens), (4, 256));
        assert_eq!((s.prefix_chars, s.min_prefix_chars), (512, 64));
    }

    #[test]
    fn every_key_is_read() {
        let s = Settings::from_json(
            r#"{"max_body_bytes": 4096, "default_priority": 2, "tenant_header": "X-Org",
                "chars_per_token": 3, "default_max_tokens": 100, "prefix_chars": 256,
                "min_prefix_chars": 0, "pass_unknown_paths": true}"#,
        )
        .unwrap();
        assert_eq!(s.max_body_bytes, 4096);
        assert_eq!(s.default_priority, 2);
        assert_eq!(s.tenant_header, "x-org");
        assert_eq!((s.chars_per_token, s.default_max_tokens), (3, 100));
        assert_eq!((s.prefix_chars, s.min_prefix_chars), (256, 0));
        assert!(s.pass_unknown_paths);
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        for (json, needle) in [
            ("not json", "invalid config"),
            (r#"{"max_tokens": 5}"#, "unknown field `max_tokens`"),
            (r#"{"max_body_bytes": "1MB"}"#, "invalid type"),
            (r#"{"max_body_bytes": 0}"#, "max_body_bytes must be"),
            (r#"{"max_body_bytes": 16777217}"#, "max_body_bytes must be"),
            (r#"{"max_body_bytes": -1}"#, "invalid value"),
            (r#"{"default_priority": 0}"#, "default_priority must be 1 to 10"),
            (r#"{"default_priority": 11}"#, "default_priority must be 1 to 10"),
            (r#"{"default_priority": 300}"#, "invalid value"),
            (r#"{"tenant_header": ""}"#, "tenant_header must be"),
            (r#"{"tenant_header": "x tenant"}"#, "tenant_header must be"),
            (r#"{"tenant_header": 5}"#, "invalid type"),
            (r#"{"chars_per_token": 0}"#, "chars_per_token must be"),
            (r#"{"chars_per_token": 65}"#, "chars_per_token must be"),
            (r#"{"chars_per_token": 2.5}"#, "invalid type"),
            (r#"{"default_max_tokens": 0}"#, "default_max_tokens"),
            (r#"{"prefix_chars": 0}"#, "prefix_chars must be"),
            (
                r#"{"prefix_chars": 100, "min_prefix_chars": 101}"#,
                "min_prefix_chars (101)",
            ),
        ] {
            let err = Settings::from_json(json).expect_err(json);
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}

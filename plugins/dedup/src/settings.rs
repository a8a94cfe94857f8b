//! The plugin's config (the route's `config` table, as JSON). Every key is described in
//! `plugins/dedup/README.md`.

use serde::Deserialize;

/// The longest replay time accepted: one day.
const MAX_REPLAY_TTL_MS: u32 = 86_400_000;
/// The most waiters one fetch may have.
const MAX_WAITERS: u32 = 100_000;
/// The most header names that may be part of the key.
const MAX_HEADERS: usize = 32;

/// What the operator configured, checked by [`Settings::validate`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// How long a successful response is replayed, in ms; 0 turns replay off.
    pub replay_ttl_ms: u32,
    /// The most requests that share one upstream fetch (the first one included).
    pub max_waiters: u32,
    /// Whether 5xx answers and upstream errors are shared with the waiters too.
    pub share_errors: bool,
    /// Request header names whose values are part of the key (lower-cased at load).
    pub headers: Vec<String>,
    /// The methods deduplicated (upper case); other requests pass untouched.
    pub methods: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            replay_ttl_ms: 30_000,
            max_waiters: 1024,
            share_errors: false,
            headers: vec!["accept".into(), "accept-encoding".into(), "range".into()],
            methods: vec!["GET".into(), "HEAD".into()],
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Settings {
    /// The settings with names normalized, or a message saying what is wrong.
    pub fn validate(mut self) -> Result<Self, String> {
        if self.replay_ttl_ms > MAX_REPLAY_TTL_MS {
            return Err(format!(
                "invalid config: replay_ttl_ms = {} is longer than a day ({MAX_REPLAY_TTL_MS}); use 0 to turn replay off",
                self.replay_ttl_ms
            ));
        }
        if !(1..=MAX_WAITERS).contains(&self.max_waiters) {
            return Err(format!(
                "invalid config: max_waiters = {} must be 1..={MAX_WAITERS} (1 shares nothing)",
                self.max_waiters
            ));
        }
        if self.headers.len() > MAX_HEADERS {
            return Err(format!(
                "invalid config: {} header names in `headers`; at most {MAX_HEADERS}",
                self.headers.len()
            ));
        }
        for name in &mut self.headers {
            if !is_token(name) {
                return Err(format!(
                    "invalid config: `headers` has {name:?}, which is not a header name"
                ));
            }
            name.make_ascii_lowercase();
        }
        if self.methods.is_empty() {
            return Err("invalid config: `methods` is empty; the plugin would do nothing".into());
        }
        for method in &self.methods {
            if !is_token(method) || method.bytes().any(|b| b.is_ascii_lowercase()) {
                return Err(format!(
                    "invalid config: `methods` has {method:?}; methods are upper-case tokens such as \"GET\""
                ));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Settings, String> {
        serde_json::from_str::<Settings>(json)
            .map_err(|e| format!("invalid config: {e}"))?
            .validate()
    }

    #[test]
    fn defaults_are_valid() {
        let s = parse("{}").unwrap();
        assert_eq!((s.replay_ttl_ms, s.max_waiters, s.share_errors), (30_000, 1024, false));
        assert_eq!(s.methods, ["GET", "HEAD"]);
    }

    #[test]
    fn bad_values_are_refused_with_the_key_named() {
        for (json, needle) in [
            (r#"{"max_waiters": 0}"#, "max_waiters"),
            (r#"{"replay_ttl_ms": 90000000}"#, "replay_ttl_ms"),
            (r#"{"headers": ["bad header"]}"#, "headers"),
            (r#"{"methods": []}"#, "methods"),
            (r#"{"methods": ["get"]}"#, "methods"),
            (r#"{"replay_ttl": 5}"#, "unknown field"),
            (r#"{"share_errors": "yes"}"#, "invalid type"),
        ] {
            let error = parse(json).unwrap_err();
            assert!(error.contains(needle), "{json}: {error}");
        }
    }

    #[test]
    fn header_names_are_lower_cased() {
        let s = parse(r#"{"headers": ["X-Tenant"]}"#).unwrap();
        assert_eq!(s.headers, ["x-tenant"]);
    }
}

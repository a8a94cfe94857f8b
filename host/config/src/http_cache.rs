//! `[http_cache]`: the storage behind the `http-cache` interface (the cache plugin's).

use serde::Deserialize;

/// How much the HTTP cache holds and how large one response may be.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCacheSettings {
    /// The in-memory level's size in bytes (bodies, headers and keys). Default 256 MiB.
    #[serde(default = "default_memory_bytes")]
    pub memory_bytes: u64,
    /// The largest response stored, in bytes; a larger one is served but not stored.
    /// Default 8 MiB.
    #[serde(default = "default_max_object_bytes")]
    pub max_object_bytes: u64,
    /// Responses larger than this share of `memory_bytes` skip the in-memory level (they
    /// would push out many small ones) and live only in Redis when it is configured.
    /// Default 0.125.
    #[serde(default = "default_memory_object_share")]
    pub memory_object_share: f64,
}

fn default_memory_bytes() -> u64 {
    256 << 20
}

fn default_max_object_bytes() -> u64 {
    8 << 20
}

fn default_memory_object_share() -> f64 {
    0.125
}

impl Default for HttpCacheSettings {
    fn default() -> Self {
        HttpCacheSettings {
            memory_bytes: default_memory_bytes(),
            max_object_bytes: default_max_object_bytes(),
            memory_object_share: default_memory_object_share(),
        }
    }
}

impl HttpCacheSettings {
    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_bytes < 1 << 20 {
            return Err(format!(
                "[http_cache] memory_bytes is {}; at least 1 MiB",
                self.memory_bytes
            ));
        }
        if self.max_object_bytes == 0 || self.max_object_bytes > 1 << 30 {
            return Err(format!(
                "[http_cache] max_object_bytes is {}; between 1 and 1 GiB",
                self.max_object_bytes
            ));
        }
        if !(self.memory_object_share > 0.0 && self.memory_object_share <= 1.0) {
            return Err(format!(
                "[http_cache] memory_object_share is {}; above 0 and at most 1",
                self.memory_object_share
            ));
        }
        Ok(())
    }

    /// The largest response the in-memory level takes.
    pub fn memory_object_limit(&self) -> u64 {
        ((self.memory_bytes as f64 * self.memory_object_share) as u64).min(self.max_object_bytes)
    }
}

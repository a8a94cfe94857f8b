//! `kv`: a key/value store private to each plugin, in memory (moka), bounded by bytes, with
//! per-key expiry; with `[redis]`, the memory store is the first level in front of Redis
//! (`kv_shared.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::ops::compute::Op;
use moka::sync::Cache;

use sluice_bindings::HostError;

/// The longest key a plugin may use, in bytes.
pub const MAX_KEY: usize = 1024;
/// The largest value a plugin may store, in bytes.
pub const MAX_VALUE: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Ttl {
    /// Expire after this long (or never, for `None`), replacing any earlier expiry.
    Set(Option<Duration>),
    /// Keep the expiry the key already has.
    Keep,
}

#[derive(Debug, Clone)]
struct Value {
    bytes: Arc<[u8]>,
    ttl: Ttl,
}

struct PerKeyExpiry;

impl Expiry<String, Value> for PerKeyExpiry {
    fn expire_after_create(&self, _key: &String, value: &Value, _at: Instant) -> Option<Duration> {
        match value.ttl {
            Ttl::Set(ttl) => ttl,
            Ttl::Keep => None,
        }
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Value,
        _at: Instant,
        remaining: Option<Duration>,
    ) -> Option<Duration> {
        match value.ttl {
            Ttl::Set(ttl) => ttl,
            Ttl::Keep => remaining,
        }
    }
}

/// The in-memory store behind `kv`. Keys are namespaced by plugin name so that no key a
/// plugin passes can reach another plugin's keys.
pub struct KvStore {
    entries: Cache<String, Value>,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

fn namespaced(plugin: &str, key: &str) -> String {
    // The length prefix makes the mapping injective whatever characters either part holds.
    // Not `format!`: that took more instructions than the cache lookup it keys.
    [itoa::Buffer::new().format(plugin.len()), ":", plugin, ":", key].concat()
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

impl KvStore {
    /// A store holding at most `max_bytes` of keys and values.
    pub fn new(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Value| (k.len() + v.bytes.len() + 32).min(u32::MAX as usize) as u32)
            .expire_after(PerKeyExpiry)
            .build();
        KvStore { entries }
    }

    fn check_key(plugin: &str, key: &str) -> Result<(), HostError> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(HostError::Invalid(format!(
                "kv: keys must be 1..={MAX_KEY} bytes, got {} (plugin '{plugin}')",
                key.len()
            )));
        }
        Ok(())
    }

    /// The value of `key` for `plugin`.
    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        Self::check_key(plugin, key)?;
        Ok(self.entries.get(&namespaced(plugin, key)).map(|v| v.bytes.to_vec()))
    }

    /// Stores `value` under `key` for `plugin`.
    pub fn set(&self, plugin: &str, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), HostError> {
        Self::check_key(plugin, key)?;
        if value.len() > MAX_VALUE {
            return Err(HostError::Invalid(format!(
                "kv: values are at most {MAX_VALUE} bytes, got {} (plugin '{plugin}')",
                value.len()
            )));
        }
        let value = Value {
            bytes: value.into(),
            ttl: Ttl::Set(ttl(ttl_ms)),
        };
        self.entries.insert(namespaced(plugin, key), value);
        Ok(())
    }

    /// Removes `key` for `plugin`; whether it existed.
    pub fn delete(&self, plugin: &str, key: &str) -> Result<bool, HostError> {
        Self::check_key(plugin, key)?;
        Ok(self.entries.remove(&namespaced(plugin, key)).is_some())
    }

    /// Adds `delta` to the decimal integer under `key` atomically; the new value.
    pub fn increment(&self, plugin: &str, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, HostError> {
        Self::check_key(plugin, key)?;
        let mut outcome = Ok(0);
        self.entries.entry(namespaced(plugin, key)).and_compute_with(|current| {
            let (old, ttl) = match &current {
                None => (Ok(0), Ttl::Set(ttl(ttl_ms))),
                Some(entry) => (parse_int(entry.value()), Ttl::Keep),
            };
            let new = old.and_then(|old| {
                old.checked_add(delta)
                    .ok_or("the result overflows a signed 64-bit integer")
            });
            match new {
                Ok(new) => {
                    outcome = Ok(new);
                    Op::Put(Value {
                        bytes: new.to_string().into_bytes().into(),
                        ttl,
                    })
                }
                Err(why) => {
                    outcome = Err(HostError::Invalid(format!(
                        "kv: cannot increment '{key}': {why} (plugin '{plugin}')"
                    )));
                    Op::Nop
                }
            }
        });
        outcome
    }
}

fn parse_int(value: &Value) -> Result<i64, &'static str> {
    std::str::from_utf8(&value.bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("its value is not a decimal integer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_with_the_plugin_and_its_length() {
        assert_eq!(namespaced("auth", "revoked:ab"), "4:auth:revoked:ab");
        assert_eq!(namespaced("a-plugin-name", ""), "13:a-plugin-name:");
    }

    #[test]
    fn plugins_never_see_each_others_keys() {
        let kv = KvStore::new(1 << 20);
        kv.set("a", "k", b"1".to_vec(), None).unwrap();
        kv.set("a:k", "", b"x".to_vec(), None).unwrap_err();
        assert_eq!(kv.get("b", "k").unwrap(), None);
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"1".to_vec()));
        // "1:a:" + "b:k" must not alias plugin "a:b" key "k".
        kv.set("a", "b:k", b"2".to_vec(), None).unwrap();
        assert_eq!(kv.get("a:b", "k").unwrap(), None);
    }

    #[test]
    fn increment_counts_and_rejects_non_integers() {
        let kv = KvStore::new(1 << 20);
        assert_eq!(kv.increment("p", "n", 2, None).unwrap(), 2);
        assert_eq!(kv.increment("p", "n", -5, None).unwrap(), -3);
        kv.set("p", "s", b"text".to_vec(), None).unwrap();
        assert!(matches!(kv.increment("p", "s", 1, None), Err(HostError::Invalid(_))));
        kv.set("p", "max", i64::MAX.to_string().into_bytes(), None).unwrap();
        assert!(matches!(kv.increment("p", "max", 1, None), Err(HostError::Invalid(_))));
    }

    #[test]
    fn values_expire_after_their_ttl() {
        let kv = KvStore::new(1 << 20);
        kv.set("p", "short", b"v".to_vec(), Some(30)).unwrap();
        kv.set("p", "long", b"v".to_vec(), None).unwrap();
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(kv.get("p", "short").unwrap(), None);
        assert!(kv.get("p", "long").unwrap().is_some());
    }

    #[test]
    fn oversized_keys_and_values_are_invalid() {
        let kv = KvStore::new(1 << 20);
        assert!(matches!(
            kv.get("p", &"k".repeat(MAX_KEY + 1)),
            Err(HostError::Invalid(_))
        ));
        assert!(matches!(
            kv.set("p", "k", vec![0; MAX_VALUE + 1], None),
            Err(HostError::Invalid(_))
        ));
    }
}

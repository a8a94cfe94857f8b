//! The HTTP cache's data: the memory level (moka, expiring each entry at its keep-until
//! time), the variant, tag-hint and direct indexes, fill claims, recent invalidations and the
//! Redis level. Its behaviour is in the sibling modules: storing and lookups in
//! `http_cache.rs`, direct hits in `direct.rs`, fills in `fill.rs`, invalidation in
//! `invalidate.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;
use parking_lot::Mutex;

use super::entry::StoredEntry;
use super::index::Index;
use super::shared::Shared;
use sluice_config::HttpCacheSettings;
use sluice_core::telemetry::metrics::Registry;
use sluice_core::time::unix_ms;

pub(super) struct UntilKeepUntil;

impl Expiry<String, Arc<StoredEntry>> for UntilKeepUntil {
    fn expire_after_create(&self, _k: &String, v: &Arc<StoredEntry>, _at: Instant) -> Option<Duration> {
        Some(Duration::from_millis(v.keep_until_ms.saturating_sub(unix_ms())))
    }

    fn expire_after_update(
        &self,
        k: &String,
        v: &Arc<StoredEntry>,
        at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, v, at)
    }
}

/// The hasher of the indexes a hit goes through: foldhash, seeded per process (SipHash, moka's
/// default, cost about 400 instructions per hit).
pub(super) type Fast = foldhash::fast::RandomState;

/// The `hit` lookup counter of each route, by route name.
pub(super) type HitCounters = std::collections::HashMap<String, Arc<sluice_core::telemetry::metrics::Counter>, Fast>;

/// The gateway's HTTP response cache.
pub struct HttpCache {
    pub(super) entries: Cache<String, Arc<StoredEntry>, Fast>,
    /// The `Vary` names last stored under each base key.
    pub(super) variants: Cache<String, Arc<[String]>>,
    /// The tags last seen on each key read from Redis: their generations are read in the
    /// same round trip as the entry.
    pub(super) tag_hints: Cache<String, Arc<[String]>>,
    /// Direct hits: base keys by route, plugin, authority and path-and-query.
    pub(super) direct: Cache<u64, Arc<Slot>, Fast>,
    /// Hashes the parts a direct-index slot is found by.
    pub(super) slot_hasher: Fast,
    /// The `hit` lookup counter of each route (direct hits count without a label lookup).
    /// (Routes come from the config, so the map stays small; read-locked on every direct hit.)
    pub(super) hit_counters: parking_lot::RwLock<HitCounters>,
    pub(super) index: Arc<Mutex<Index>>,
    /// Keys whose background refresh (stale-while-revalidate) is running.
    pub(super) refreshing: Mutex<std::collections::HashSet<String>>,
    /// Fill claims in this instance (without Redis, or while it fails), by key.
    pub(super) claims: Mutex<std::collections::HashMap<String, Claim>>,
    /// The Redis level, when configured.
    pub(super) shared: Option<Shared>,
    /// Bumped by every invalidation: a Redis read that overlapped one does not fill memory,
    /// and a fill that overlapped one of its target is not stored.
    pub(super) generation: AtomicU64,
    /// The latest invalidations, with the generation each one made.
    pub(super) recent: Mutex<std::collections::VecDeque<(u64, Dropped)>>,
    pub(super) settings: HttpCacheSettings,
    pub(super) metrics: Arc<Registry>,
}

impl std::fmt::Debug for HttpCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCache")
            .field("entries", &self.entries.entry_count())
            .field("bytes", &self.entries.weighted_size())
            .finish()
    }
}

/// A direct-index entry: where a URL's promised response is stored.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) route: String,
    pub(super) plugin: String,
    pub(super) authority: String,
    pub(super) path: String,
    /// The base key.
    pub(super) base: Arc<str>,
    /// The entry key, when the response has no `Vary` (no variant to pick).
    pub(super) key: Option<String>,
}

impl Slot {
    pub(super) fn matches(&self, route: &str, plugin: &str, authority: &str, path: &str) -> bool {
        self.path == path && self.authority == authority && self.route == route && self.plugin == plugin
    }
}

/// The state of a key's fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    /// A request is filling it.
    Held,
    /// The last fill stored nothing.
    NotStored,
    /// The last fill stored its answer.
    Stored,
}

impl Mark {
    pub(super) fn redis(self) -> &'static str {
        match self {
            Mark::Held => "1",
            Mark::NotStored => "0",
            Mark::Stored => "s",
        }
    }

    pub(super) fn from_redis(value: &str) -> Self {
        match value {
            "0" => Mark::NotStored,
            "s" => Mark::Stored,
            _ => Mark::Held,
        }
    }
}

/// A claim in this instance's table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    /// Until when it holds (ms since the epoch).
    pub(super) until: u64,
    pub(super) mark: Mark,
}

/// What an invalidation dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Dropped {
    /// Responses to this request target.
    Target(String),
    /// Responses to targets with this prefix.
    Prefix(String),
    /// Responses with this tag.
    Tag(String),
    /// Everything in memory (the shared level's messages may have been missed).
    All,
}

impl Dropped {
    pub(super) fn parse(message: &str) -> Option<Self> {
        match message.split_once('\n')? {
            ("target", t) => Some(Dropped::Target(t.to_string())),
            ("prefix", p) => Some(Dropped::Prefix(p.to_string())),
            ("tag", t) => Some(Dropped::Tag(t.to_string())),
            _ => None,
        }
    }

    pub(super) fn covers(&self, target: &str, tags: &[String]) -> bool {
        match self {
            Dropped::Target(t) => t == target,
            Dropped::Prefix(p) => target.starts_with(p.as_str()),
            Dropped::Tag(t) => tags.contains(t),
            Dropped::All => true,
        }
    }
}

//! The rate limiter behind the `rate-limit` capability: GCRA buckets in Redis (one atomic
//! script per request, on the Redis server's clock) with an in-memory fallback that enforces a
//! share of each limit while Redis cannot be reached, and in-memory buckets when no Redis is
//! configured. See [`super::gcra`] for the arithmetic.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fred::types::Value;
use parking_lot::Mutex;
use serde_json::json;

use super::gcra::{self, Params, State};
use super::redis::{RedisBackend, RedisError};
use sluice_core::telemetry::metrics::{Counter, Registry};

/// The script run for every decision in Redis.
const SCRIPT: &str = include_str!("gcra.lua");
/// The name the script is cached under.
const SCRIPT_NAME: &str = "sluice:gcra";
/// In-memory buckets kept before full ones are dropped.
const MAX_LOCAL_BUCKETS: usize = 1 << 20;

/// One limit to charge, with its full bucket key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSpec {
    /// The bucket's key within the plugin's namespace.
    pub key: String,
    /// Cost units per period.
    pub quota: u64,
    /// The period in milliseconds.
    pub period_ms: u64,
    /// Units an idle caller may spend at once.
    pub burst: u64,
}

/// Where a decision was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// In Redis, shared by every instance.
    Global,
    /// In memory with a share of each limit, because Redis could not be reached.
    Local,
    /// In memory: no Redis is configured.
    Memory,
}

impl Mode {
    /// The mode's name in metrics and readiness.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Global => "global",
            Mode::Local => "local",
            Mode::Memory => "memory",
        }
    }
}

/// The answer to one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Whether every limit had room (then all were charged).
    pub allowed: bool,
    /// When denied: milliseconds until the request would be admitted.
    pub retry_after_ms: u64,
    /// The limit that denied (the longest wait), or the one with the least left.
    pub tightest: usize,
    /// Each limit's state; `reset` in milliseconds.
    pub states: Vec<State>,
    /// Where the decision was made.
    pub mode: Mode,
}

/// One `sluice_ratelimit_decisions_total` series.
#[derive(Debug)]
struct DecisionCounter {
    plugin: Box<str>,
    mode: Mode,
    allowed: bool,
    counter: Arc<Counter>,
}

/// The gateway's rate limiter, shared by every plugin granted `ratelimit`.
#[derive(Debug)]
pub struct RateLimiter {
    redis: Option<Arc<RedisBackend>>,
    local: Mutex<HashMap<String, f64>>,
    /// The most buckets `local` holds ([`MAX_LOCAL_BUCKETS`]; smaller in tests).
    local_capacity: usize,
    origin: Instant,
    /// Set while Redis is configured but the last attempt failed.
    degraded: AtomicBool,
    degraded_since_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    metrics: Arc<Registry>,
    counters: Mutex<Vec<DecisionCounter>>,
}

impl RateLimiter {
    /// A limiter on `redis` (global mode) or, without it, in memory.
    pub fn new(redis: Option<Arc<RedisBackend>>, metrics: Arc<Registry>) -> Self {
        let gauge = metrics.gauge("sluice_ratelimit_local_mode", &[]);
        gauge.set(0.0);
        RateLimiter {
            redis,
            local: Mutex::new(HashMap::new()),
            local_capacity: MAX_LOCAL_BUCKETS,
            origin: Instant::now(),
            degraded: AtomicBool::new(false),
            degraded_since_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            metrics,
            counters: Mutex::new(Vec::new()),
        }
    }

    /// The mode the next decision is expected in: `local` from a failed Redis call until the
    /// next one succeeds.
    pub fn mode(&self) -> Mode {
        match (&self.redis, self.degraded.load(Ordering::Relaxed)) {
            (None, _) => Mode::Memory,
            (Some(_), true) => Mode::Local,
            (Some(_), false) => Mode::Global,
        }
    }

    /// The limiter's state for `/admin/ready`, and whether it is degraded.
    pub fn readiness(&self) -> (serde_json::Value, bool) {
        let mode = self.mode();
        let value = match mode {
            Mode::Local => json!({
                "state": "local",
                "backend": "memory (redis unavailable)",
                "since_unix_ms": self.degraded_since_ms.load(Ordering::Relaxed),
                "error": self.last_error.lock().clone(),
            }),
            Mode::Global => json!({ "state": "global", "backend": "redis" }),
            Mode::Memory => json!({ "state": "embedded", "backend": "memory" }),
        };
        (value, mode == Mode::Local)
    }

    /// Charges `cost` against every limit of `plugin` at once, or none. `local_share` is the
    /// fraction of each limit enforced in memory when Redis is down. The specs are checked by
    /// the capability before they get here.
    pub async fn check(&self, plugin: &str, limits: &[LimitSpec], cost: u64, local_share: f64) -> Decision {
        let decision = match &self.redis {
            None => self.check_local(plugin, limits, cost, 1.0, Mode::Memory),
            // Boxed: the Redis call's future is large, and the memory path should not carry it.
            Some(redis) => match Box::pin(self.check_redis(redis, plugin, limits, cost)).await {
                Ok(decision) => {
                    if self.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!("rate limits: redis answers again; back to global limits");
                        self.metrics.gauge("sluice_ratelimit_local_mode", &[]).set(0.0);
                    }
                    decision
                }
                Err(error) => {
                    self.note_failure(&error);
                    self.check_local(plugin, limits, cost, local_share, Mode::Local)
                }
            },
        };
        self.count(plugin, decision.mode, decision.allowed);
        decision
    }

    /// The decision now, without waiting, when the limits are kept in memory (no `[redis]`);
    /// `None` when they are in Redis (then [`check`](Self::check) asks it).
    pub fn check_in_memory(&self, plugin: &str, limits: &[LimitSpec], cost: u64) -> Option<Decision> {
        if self.redis.is_some() {
            return None;
        }
        let decision = self.check_local(plugin, limits, cost, 1.0, Mode::Memory);
        self.count(plugin, decision.mode, decision.allowed);
        Some(decision)
    }

    fn note_failure(&self, error: &RedisError) {
        *self.last_error.lock() = Some(error.to_string());
        if !self.degraded.swap(true, Ordering::Relaxed) {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.degraded_since_ms.store(now_ms, Ordering::Relaxed);
            self.metrics.gauge("sluice_ratelimit_local_mode", &[]).set(1.0);
            tracing::warn!(%error, "rate limits: redis unavailable; limiting locally with each plugin's local_share");
        }
    }

    /// Counts a decision in `sluice_ratelimit_decisions_total{plugin, mode, result}`. Runs on
    /// every limited request: the few series are searched in order, without allocating.
    fn count(&self, plugin: &str, mode: Mode, allowed: bool) {
        let mut counters = self.counters.lock();
        let found = counters
            .iter()
            .find(|c| c.mode == mode && c.allowed == allowed && &*c.plugin == plugin);
        if let Some(c) = found {
            c.counter.add(1);
            return;
        }
        let result = if allowed { "allowed" } else { "denied" };
        let counter = self.metrics.counter(
            "sluice_ratelimit_decisions_total",
            &[("plugin", plugin), ("mode", mode.as_str()), ("result", result)],
        );
        counter.add(1);
        counters.push(DecisionCounter {
            plugin: plugin.into(),
            mode,
            allowed,
            counter,
        });
    }

    async fn check_redis(
        &self,
        redis: &RedisBackend,
        plugin: &str,
        limits: &[LimitSpec],
        cost: u64,
    ) -> Result<Decision, RedisError> {
        let keys: Vec<String> = limits
            .iter()
            .map(|l| redis.key(plugin, &format!("rl:{}", l.key)))
            .collect();
        let mut args = Vec::with_capacity(1 + 2 * limits.len());
        args.push(Value::from(cost as i64));
        for l in limits {
            let p = Params::new(l.quota, l.period_ms as f64 * 1000.0, l.burst);
            args.push(Value::from(format!("{:.6}", p.interval)));
            args.push(Value::from(format!("{:.6}", p.tolerance)));
        }
        let reply = redis.eval_cached(SCRIPT_NAME, SCRIPT, keys, args).await?;
        parse_reply(reply, limits.len())
    }

    fn check_local(&self, plugin: &str, limits: &[LimitSpec], cost: u64, share: f64, mode: Mode) -> Decision {
        let params: Vec<Params> = limits
            .iter()
            .map(|l| {
                let quota = ((l.quota as f64 * share).floor() as u64).max(1);
                let burst = ((l.burst as f64 * share).floor() as u64).max(1);
                Params::new(quota, l.period_ms as f64 * 1e6, burst)
            })
            .collect();
        let keys: Vec<String> = limits.iter().map(|l| local_key(plugin, &l.key)).collect();
        let mut table = self.local.lock();
        let now = self.origin.elapsed().as_nanos() as f64;
        if table.len() >= self.local_capacity {
            table.retain(|_, tat| *tat > now);
        }
        let tats: Vec<Option<f64>> = keys.iter().map(|k| table.get(k).copied()).collect();
        let out = gcra::charge(&params, &tats, cost, now);
        if out.allowed {
            for (key, tat) in keys.into_iter().zip(&out.tats) {
                // A bucket the table holds is always charged; a new one only while there is
                // room (past it, that caller is not limited locally until buckets expire).
                if let Some(slot) = table.get_mut(&key) {
                    *slot = *tat;
                } else if table.len() < self.local_capacity {
                    table.insert(key, *tat);
                }
            }
        }
        drop(table);
        let ns_to_ms = |ns: u64| ns.div_ceil(1_000_000);
        let states: Vec<State> = out
            .states
            .iter()
            .map(|s| State {
                remaining: s.remaining,
                reset: ns_to_ms(s.reset),
            })
            .collect();
        Decision {
            allowed: out.allowed,
            retry_after_ms: ns_to_ms(out.retry_after),
            tightest: if out.allowed {
                gcra::tightest(&states)
            } else {
                longest_wait(&params, &out.tats, cost, now)
            },
            states,
            mode,
        }
    }
}

/// The local table's key of bucket `key` of `plugin` (a NUL cannot occur in a plugin name).
fn local_key(plugin: &str, key: &str) -> String {
    [plugin, "\0", key].concat()
}

/// The index of the limit that makes the request wait longest.
fn longest_wait(params: &[Params], tats: &[f64], cost: u64, now: f64) -> usize {
    params
        .iter()
        .zip(tats)
        .map(|(p, t)| t + cost as f64 * p.interval - p.tolerance - now)
        .enumerate()
        .fold((0, f64::MIN), |best, (i, w)| if w > best.1 { (i, w) } else { best })
        .0
}

/// Reads the script's reply: `{allowed, retry_us, remaining_1, reset_us_1, ...}`.
fn parse_reply(reply: Value, n: usize) -> Result<Decision, RedisError> {
    let bad = || RedisError::Server("the rate-limit script gave an unexpected reply".into());
    let Value::Array(items) = reply else { return Err(bad()) };
    let numbers: Vec<i64> = items
        .iter()
        .map(|v| v.as_i64())
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    if numbers.len() != 2 + 2 * n {
        return Err(bad());
    }
    let us_to_ms = |us: i64| (us.max(0) as u64).div_ceil(1000);
    let states: Vec<State> = numbers[2..]
        .chunks(2)
        .map(|c| State {
            remaining: c[0].max(0) as u64,
            reset: us_to_ms(c[1]),
        })
        .collect();
    let allowed = numbers[0] == 1;
    let tightest = if allowed {
        gcra::tightest(&states)
    } else {
        // The denying limit is the one furthest from room: the least remaining, longest reset.
        states
            .iter()
            .enumerate()
            .max_by_key(|(i, s)| (std::cmp::Reverse(s.remaining), s.reset, std::cmp::Reverse(*i)))
            .map_or(0, |(i, _)| i)
    };
    Ok(Decision {
        allowed,
        retry_after_ms: if allowed { 0 } else { us_to_ms(numbers[1]).max(1) },
        tightest,
        states,
        mode: Mode::Global,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str, quota: u64, burst: u64) -> LimitSpec {
        LimitSpec {
            key: key.into(),
            quota,
            period_ms: 60_000,
            burst,
        }
    }

    #[tokio::test]
    async fn memory_mode_admits_exactly_the_burst() {
        let limiter = RateLimiter::new(None, Arc::new(Registry::new()));
        let limits = [spec("a", 10, 10)];
        let mut admitted = 0;
        for _ in 0..50 {
            let d = limiter.check("p", &limits, 1, 0.5).await;
            assert_eq!(d.mode, Mode::Memory);
            admitted += usize::from(d.allowed);
        }
        assert_eq!(admitted, 10, "no Redis configured: the whole limit, not a share");
        let denied = limiter.check("p", &limits, 1, 1.0).await;
        assert!(!denied.allowed);
        assert!(denied.retry_after_ms > 0 && denied.retry_after_ms <= 6000);
    }

    #[tokio::test]
    async fn plugins_never_share_buckets() {
        let limiter = RateLimiter::new(None, Arc::new(Registry::new()));
        let limits = [spec("k", 1, 1)];
        assert!(limiter.check("one", &limits, 1, 1.0).await.allowed);
        assert!(limiter.check("two", &limits, 1, 1.0).await.allowed);
        assert!(!limiter.check("one", &limits, 1, 1.0).await.allowed);
    }

    #[tokio::test]
    async fn a_full_local_table_still_charges_the_buckets_it_holds() {
        let mut limiter = RateLimiter::new(None, Arc::new(Registry::new()));
        limiter.local_capacity = 2;
        let limits = |key| [spec(key, 2, 2)];
        assert!(limiter.check("p", &limits("a"), 1, 1.0).await.allowed);
        assert!(limiter.check("p", &limits("b"), 1, 1.0).await.allowed);
        assert!(
            limiter.check("p", &limits("a"), 1, 1.0).await.allowed,
            "the second of a's two"
        );
        assert!(
            !limiter.check("p", &limits("a"), 1, 1.0).await.allowed,
            "a held bucket is charged when full"
        );
        for _ in 0..3 {
            assert!(
                limiter.check("p", &limits("c"), 1, 1.0).await.allowed,
                "no room for c: not limited"
            );
        }
    }

    #[test]
    fn the_script_reply_is_read_and_checked() {
        let reply = Value::Array(vec![0.into(), 1500.into(), 0.into(), 6000.into(), 5.into(), 100.into()]);
        let d = parse_reply(reply, 2).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 2);
        assert_eq!(d.tightest, 0);
        assert_eq!(d.states[1], State { remaining: 5, reset: 1 });
        assert!(parse_reply(Value::Array(vec![1.into()]), 1).is_err());
        assert!(parse_reply(Value::from("x"), 1).is_err());
    }
}

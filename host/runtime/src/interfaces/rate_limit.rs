//! `rate-limit`: GCRA limits charged by the host, in Redis when configured (one atomic script
//! per call, shared by every instance), else in memory; checked against the grant and the
//! bounds in the WIT first.

use std::time::Duration;

use crate::capability::Capability;
use crate::memo::Asked;
use crate::state::HostState;
use sluice_backends::rate_limit::{LimitSpec, Mode as BackendMode};
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::head::MemoKey;
use sluice_bindings::sluice::plugin::rate_limit::{Decision, Host, Limit, LimitState, Mode};

/// The most limits one call may charge.
const MAX_LIMITS: usize = 16;
/// The longest bucket key, in bytes.
const MAX_KEY: usize = 256;
/// The longest period: a year, in ms.
const MAX_PERIOD_MS: u64 = 365 * 24 * 3600 * 1000;
/// The largest quota or burst (keeps the arithmetic exact in doubles).
const MAX_UNITS: u64 = 1 << 40;

/// The backend's spec for `limit`, or why it is out of range.
fn spec(limit: Limit, cost: u64) -> Result<LimitSpec, String> {
    if limit.key.is_empty() || limit.key.len() > MAX_KEY {
        return Err(format!(
            "a limit key must be 1 to {MAX_KEY} bytes, not {}",
            limit.key.len()
        ));
    }
    if !(1..=MAX_UNITS).contains(&limit.quota) || !(1..=MAX_UNITS).contains(&limit.burst) {
        return Err(format!(
            "limit '{}': quota and burst must be 1..={MAX_UNITS} (quota {}, burst {})",
            limit.key, limit.quota, limit.burst
        ));
    }
    if !(1..=MAX_PERIOD_MS).contains(&limit.period_ms) {
        return Err(format!(
            "limit '{}': period-ms must be 1..={MAX_PERIOD_MS}, not {}",
            limit.key, limit.period_ms
        ));
    }
    if cost > limit.burst {
        return Err(format!(
            "limit '{}': a cost of {cost} is above its burst of {}, so it could never be admitted",
            limit.key, limit.burst
        ));
    }
    Ok(LimitSpec {
        key: limit.key,
        quota: limit.quota,
        period_ms: limit.period_ms,
        burst: limit.burst,
    })
}

impl Host for HostState {
    async fn check(&mut self, limits: Vec<Limit>, cost: u64, local_share: f64) -> Result<Decision, HostError> {
        let p = &self.plugin;
        p.require(Capability::RateLimit)?;
        if limits.is_empty() || limits.len() > MAX_LIMITS {
            return Err(p.invalid(
                Capability::RateLimit,
                format!("a check takes 1 to {MAX_LIMITS} limits, not {}", limits.len()),
            ));
        }
        if cost == 0 || cost > MAX_UNITS {
            return Err(p.invalid(
                Capability::RateLimit,
                format!("the cost must be 1..={MAX_UNITS}, not {cost}"),
            ));
        }
        if !(local_share > 0.0 && local_share <= 1.0) {
            return Err(p.invalid(
                Capability::RateLimit,
                format!("local-share must be above 0 and at most 1, not {local_share}"),
            ));
        }
        let specs = limits
            .into_iter()
            .map(|l| spec(l, cost))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| p.invalid(Capability::RateLimit, why))?;
        let limiter = &p.backends.rate_limit;
        let d = match limiter.check_in_memory(&p.name, &specs, cost) {
            Some(decided) => decided,
            None => {
                self.cpu
                    .waiting_on(limiter.check(&p.name, &specs, cost, local_share))
                    .await
            }
        };
        self.memo.checked(&specs, cost, local_share, d.allowed);
        Ok(Decision {
            allowed: d.allowed,
            retry_after_ms: d.retry_after_ms,
            tightest: d.tightest as u32,
            limits: d
                .states
                .iter()
                .map(|s| LimitState {
                    remaining: s.remaining,
                    reset_ms: s.reset,
                })
                .collect(),
            mode: match d.mode {
                BackendMode::Global => Mode::Global,
                BackendMode::Local => Mode::Local,
                BackendMode::Memory => Mode::Memory,
            },
        })
    }

    async fn memo(&mut self, ttl_ms: u32, key: MemoKey, fields: Option<Vec<String>>) -> Result<(), HostError> {
        self.rate_limit_memo(ttl_ms, key, fields)
    }
}

impl HostState {
    /// `rate-limit.memo`: checked against the call, the grant and the check it repeats, then
    /// left in the call's memo bookkeeping for when it ends.
    pub(crate) fn rate_limit_memo(
        &mut self,
        ttl_ms: u32,
        key: MemoKey,
        fields: Option<Vec<String>>,
    ) -> Result<(), HostError> {
        let p = &self.plugin;
        p.require(Capability::RateLimit)?;
        if !self.in_request_headers || !self.memo.eligible {
            return Err(p.invalid(
                Capability::RateLimit,
                "memo can only be called from on-request-headers of an instance that declared its reads",
            ));
        }
        // Kept only by a first check that admitted: a second check drops it.
        let Some(charge) = self.memo.charge.as_ref() else {
            return Err(p.invalid(
                Capability::RateLimit,
                "memo must follow exactly one check, which admitted the request",
            ));
        };
        if let Some(names) = &fields {
            if names.len() != charge.specs.len() {
                return Err(p.invalid(
                    Capability::RateLimit,
                    format!(
                        "fields names {} limits; the check had {}",
                        names.len(),
                        charge.specs.len()
                    ),
                ));
            }
            if let Some(bad) = names.iter().find(|n| !is_field_string(n)) {
                return Err(p.invalid(
                    Capability::RateLimit,
                    format!(
                        "{bad:?} cannot be a policy name (printable ASCII, no '\"' or '\\', at most {MAX_KEY} bytes)"
                    ),
                ));
            }
        }
        self.memo.asked = Some(Asked {
            ttl: Duration::from_millis(ttl_ms.into()),
            key,
            charged: true,
            fields,
        });
        Ok(())
    }
}

/// Whether `name` can be written inside a Structured Field string without escapes.
fn is_field_string(name: &str) -> bool {
    name.len() <= MAX_KEY
        && name
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(key: &str, quota: u64, period_ms: u64, burst: u64) -> Limit {
        Limit {
            key: key.into(),
            quota,
            period_ms,
            burst,
        }
    }

    #[test]
    fn policy_names_must_be_plain_structured_field_strings() {
        assert!(is_field_string("per-key"));
        assert!(is_field_string("tokens per day"));
        assert!(!is_field_string("a\"b"));
        assert!(!is_field_string("a\\b"));
        assert!(!is_field_string("tab\there"));
        assert!(!is_field_string("caf\u{e9}"));
        assert!(!is_field_string(&"k".repeat(MAX_KEY + 1)));
    }

    #[test]
    fn out_of_range_limits_are_refused_with_the_reason() {
        assert!(spec(limit("k", 10, 1000, 10), 1).is_ok());
        assert!(spec(limit("", 10, 1000, 10), 1).unwrap_err().contains("1 to 256"));
        assert!(spec(limit(&"k".repeat(300), 10, 1000, 10), 1).is_err());
        assert!(spec(limit("k", 0, 1000, 10), 1).unwrap_err().contains("quota"));
        assert!(spec(limit("k", 10, 0, 10), 1).unwrap_err().contains("period"));
        assert!(spec(limit("k", 10, 1000, 0), 1).is_err());
        assert!(
            spec(limit("k", 10, 1000, 5), 6)
                .unwrap_err()
                .contains("never be admitted")
        );
    }
}

//! The plugin's config: its limits, the cost of a request and what to do when the host cannot
//! decide. Everything is checked in `init`, so `sluice check` rejects a config that makes no
//! sense before it serves a request. The reference is `plugins/ratelimit/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The longest policy name (it appears in response headers).
const MAX_NAME: usize = 32;
/// The most limits one route may apply.
const MAX_LIMITS: usize = 16;
/// The largest quota, burst or cost.
const MAX_UNITS: u64 = 1 << 40;
/// The longest period: a year.
const MAX_PERIOD_MS: u64 = 365 * 24 * 3600 * 1000;

/// What a limit's bucket is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyBy {
    /// The API key: the auth plugin's `key_id`, else the credential header's value (hashed).
    ApiKey,
    /// The authenticated subject (the auth plugin's `subject`).
    Subject,
    /// The client's IP address.
    Ip,
    /// The value of a request header (lower-case name).
    Header(String),
    /// The route: one bucket for every caller.
    Route,
}

/// What a request costs, in units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cost {
    /// The same for every request.
    Fixed(u64),
    /// From a request header; `default` when absent or not a number, at most `max`.
    Header { name: String, default: u64, max: u64 },
    /// One unit per `per` bytes of the declared body size (at least one), at most `max`.
    BodyBytes { per: u64, max: u64 },
}

/// Quota and burst for one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Units per period.
    pub limit: u64,
    /// Units an idle caller may spend at once.
    pub burst: u64,
}

/// One limit, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Limit {
    /// The policy name, in headers and errors.
    pub name: String,
    /// What the bucket is keyed by.
    pub key: KeyBy,
    /// The period in milliseconds.
    pub period_ms: u64,
    /// The quota for callers without a listed tier.
    pub base: Quota,
    /// Quotas by tier (the auth plugin's `tier`).
    pub tiers: BTreeMap<String, Quota>,
    /// Whether a request without the key's value shares one bucket (true) or skips this
    /// limit (false, the default).
    pub shared_when_missing: bool,
}

impl Limit {
    /// The quota for a caller of `tier`.
    pub fn quota(&self, tier: Option<&str>) -> Quota {
        tier.and_then(|t| self.tiers.get(t)).copied().unwrap_or(self.base)
    }
}

/// The plugin's whole config, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The limits, in order.
    pub limits: Vec<Limit>,
    /// What a request costs.
    pub cost: Cost,
    /// The share of each limit one instance enforces while Redis is down.
    pub local_share: f64,
    /// Whether requests pass (true) or get 503 (false) when the host cannot decide.
    pub fail_open: bool,
    /// Whether admitted responses carry `RateLimit` and `RateLimit-Policy`.
    pub headers: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    limits: Vec<RawLimit>,
    #[serde(default)]
    cost: Option<Value>,
    #[serde(default)]
    local_share: Option<f64>,
    #[serde(default)]
    on_error: Option<String>,
    #[serde(default)]
    headers: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    name: String,
    key: String,
    limit: u64,
    period: Value,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default)]
    tiers: BTreeMap<String, RawTier>,
    #[serde(default)]
    when_missing: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTier {
    limit: u64,
    #[serde(default)]
    burst: Option<u64>,
}

/// Parses and checks the JSON config.
pub fn parse(json: &str) -> Result<Settings, String> {
    let raw: RawSettings = serde_json::from_str(json).map_err(|e| format!("invalid config: {e}"))?;
    if raw.limits.is_empty() || raw.limits.len() > MAX_LIMITS {
        return Err(format!(
            "limits: give 1 to {MAX_LIMITS} limits, not {}",
            raw.limits.len()
        ));
    }
    let mut limits = Vec::with_capacity(raw.limits.len());
    for l in raw.limits {
        let limit = limit(l)?;
        if limits.iter().any(|o: &Limit| o.name == limit.name) {
            return Err(format!("limits: the name '{}' is used twice", limit.name));
        }
        limits.push(limit);
    }
    let cost = cost(raw.cost.as_ref())?;
    let local_share = raw.local_share.unwrap_or(1.0);
    if !(local_share > 0.0 && local_share <= 1.0) {
        return Err(format!("local_share must be above 0 and at most 1, not {local_share}"));
    }
    let fail_open = match raw.on_error.as_deref().unwrap_or("allow") {
        "allow" => true,
        "deny" => false,
        other => return Err(format!("on_error must be \"allow\" or \"deny\", not {other:?}")),
    };
    if let Cost::Fixed(units) = cost
        && let Some(l) = limits
            .iter()
            .find(|l| l.tiers.values().chain([&l.base]).any(|q| q.burst < units))
    {
        return Err(format!(
            "cost {units} is above a burst of limit '{}', so no request could ever pass",
            l.name
        ));
    }
    Ok(Settings {
        limits,
        cost,
        local_share,
        fail_open,
        headers: raw.headers.unwrap_or(true),
    })
}

fn limit(l: RawLimit) -> Result<Limit, String> {
    let name_ok = !l.name.is_empty()
        && l.name.len() <= MAX_NAME
        && l.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(format!(
            "limit name {:?}: use 1 to {MAX_NAME} of A-Z, a-z, 0-9, '-' and '_'",
            l.name
        ));
    }
    let at = |what: &str| format!("limit '{}': {what}", l.name);
    let key = key_by(&l.key).map_err(|e| at(&e))?;
    let period_ms = period(&l.period).map_err(|e| at(&e))?;
    let base = quota(l.limit, l.burst).map_err(|e| at(&e))?;
    let mut tiers = BTreeMap::new();
    for (tier, t) in l.tiers {
        if tier.is_empty() || tier.len() > 64 {
            return Err(at("tier names must be 1 to 64 bytes"));
        }
        let q = quota(t.limit, t.burst).map_err(|e| at(&format!("tier '{tier}': {e}")))?;
        tiers.insert(tier, q);
    }
    let shared_when_missing = match l.when_missing.as_deref().unwrap_or("skip") {
        "skip" => false,
        "shared" => true,
        other => {
            return Err(at(&format!(
                "when_missing must be \"skip\" or \"shared\", not {other:?}"
            )));
        }
    };
    Ok(Limit {
        name: l.name,
        key,
        period_ms,
        base,
        tiers,
        shared_when_missing,
    })
}

fn quota(limit: u64, burst: Option<u64>) -> Result<Quota, String> {
    if !(1..=MAX_UNITS).contains(&limit) {
        return Err(format!("limit must be 1..={MAX_UNITS}, not {limit}"));
    }
    let burst = burst.unwrap_or(limit);
    if !(1..=MAX_UNITS).contains(&burst) {
        return Err(format!("burst must be 1..={MAX_UNITS}, not {burst}"));
    }
    Ok(Quota { limit, burst })
}

fn key_by(text: &str) -> Result<KeyBy, String> {
    Ok(match text {
        "api_key" => KeyBy::ApiKey,
        "subject" => KeyBy::Subject,
        "ip" => KeyBy::Ip,
        "route" => KeyBy::Route,
        other => match other.strip_prefix("header:") {
            Some(name) if is_header_name(name) => KeyBy::Header(name.to_ascii_lowercase()),
            _ => {
                return Err(format!(
                    "key must be \"api_key\", \"subject\", \"ip\", \"route\" or \"header:NAME\", not {other:?}"
                ));
            }
        },
    })
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A period: milliseconds as a number, or text such as `500ms`, `1s`, `10m`, `1h`, `1d`.
fn period(value: &Value) -> Result<u64, String> {
    let ms = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => {
            let s = s.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let (digits, unit) = s.split_at(split);
            let n: Option<u64> = digits.parse().ok();
            let scale = match unit.trim() {
                "ms" => Some(1),
                "s" => Some(1_000),
                "m" | "min" => Some(60_000),
                "h" => Some(3_600_000),
                "d" => Some(86_400_000),
                _ => None,
            };
            n.zip(scale).and_then(|(n, scale)| n.checked_mul(scale))
        }
        _ => None,
    };
    match ms {
        Some(ms) if (1..=MAX_PERIOD_MS).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "period must be milliseconds (1 to {MAX_PERIOD_MS}) or text like \"500ms\", \"1s\", \"1m\", \"1h\", \"1d\"; got {value}"
        )),
    }
}

fn cost(value: Option<&Value>) -> Result<Cost, String> {
    let Some(value) = value else { return Ok(Cost::Fixed(1)) };
    let units = |v: Option<&Value>, what: &str, default: u64| -> Result<u64, String> {
        match v {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_UNITS).contains(&n) => Ok(n),
                _ => Err(format!("cost.{what} must be 1..={MAX_UNITS}, not {v}")),
            },
        }
    };
    match value {
        Value::Number(_) => Ok(Cost::Fixed(units(Some(value), "fixed", 1)?)),
        Value::Object(map) => {
            let known = ["header", "default", "max", "body_bytes_per_unit"];
            if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!(
                    "cost: unknown field '{k}' (expected one of {})",
                    known.join(", ")
                ));
            }
            let max = units(map.get("max"), "max", 1_000)?;
            match (map.get("header"), map.get("body_bytes_per_unit")) {
                (Some(Value::String(name)), None) if is_header_name(name) => Ok(Cost::Header {
                    name: name.to_ascii_lowercase(),
                    default: units(map.get("default"), "default", 1)?,
                    max,
                }),
                (None, Some(per)) => Ok(Cost::BodyBytes {
                    per: units(Some(per), "body_bytes_per_unit", 1)?,
                    max,
                }),
                _ => Err(
                    "cost must be a number, { header = \"NAME\", default, max } or { body_bytes_per_unit, max }".into(),
                ),
            }
        }
        other => Err(format!("cost must be a number or a table, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_config_parses() {
        let s = parse(
            r#"{"limits":[{"name":"per-key","key":"api_key","limit":60,"period":"1m",
                "tiers":{"pro":{"limit":600,"burst":100}}},
               {"name":"ip","key":"ip","limit":5,"period":1000,"burst":10,"when_missing":"shared"},
               {"name":"tenant","key":"header:X-Tenant","limit":100,"period":"1h"}],
               "cost":{"header":"x-cost","max":50},"local_share":0.34,"on_error":"deny"}"#,
        )
        .unwrap();
        assert_eq!(s.limits.len(), 3);
        assert_eq!(s.limits[0].period_ms, 60_000);
        assert_eq!(s.limits[0].quota(Some("pro")), Quota { limit: 600, burst: 100 });
        assert_eq!(s.limits[0].quota(Some("free")), Quota { limit: 60, burst: 60 });
        assert_eq!(s.limits[2].key, KeyBy::Header("x-tenant".into()));
        assert_eq!(
            s.cost,
            Cost::Header {
                name: "x-cost".into(),
                default: 1,
                max: 50
            }
        );
        assert!(!s.fail_open);
        assert!(s.limits[1].shared_when_missing);
    }

    #[test]
    fn configs_that_make_no_sense_are_refused() {
        let bad = [
            (r#"{"limits":[]}"#, "1 to 16"),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":0,"period":"1s"}]}"#,
                "limit must be",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":1,"period":"0s"}]}"#,
                "period",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":1,"period":"1 fortnight"}]}"#,
                "period",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":1,"period":-5}]}"#,
                "period",
            ),
            (
                r#"{"limits":[{"name":"a","key":"cookie","limit":1,"period":"1s"}]}"#,
                "key must be",
            ),
            (
                r#"{"limits":[{"name":"a","key":"header:","limit":1,"period":"1s"}]}"#,
                "key must be",
            ),
            (
                r#"{"limits":[{"name":"a b","key":"ip","limit":1,"period":"1s"}]}"#,
                "limit name",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":1,"period":"1s"},{"name":"a","key":"route","limit":1,"period":"1s"}]}"#,
                "used twice",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":1,"period":"1s","burst":0}]}"#,
                "burst",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":10,"period":"1s"}],"local_share":0}"#,
                "local_share",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":10,"period":"1s"}],"local_share":1.5}"#,
                "local_share",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":10,"period":"1s"}],"cost":20}"#,
                "no request could ever pass",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":10,"period":"1s"}],"cost":{"weight":2}}"#,
                "unknown field",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":10,"period":"1s"}],"on_error":"maybe"}"#,
                "on_error",
            ),
            (
                r#"{"limits":[{"name":"a","key":"ip","limit":10,"period":"1s","extra":1}]}"#,
                "unknown field",
            ),
        ];
        for (json, expected) in bad {
            let err = parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn periods_read_as_text_or_milliseconds() {
        for (text, ms) in [
            ("\"500ms\"", 500),
            ("\"1s\"", 1000),
            ("\"10m\"", 600_000),
            ("\"1d\"", 86_400_000),
            ("250", 250),
        ] {
            assert_eq!(period(&serde_json::from_str(text).unwrap()), Ok(ms), "{text}");
        }
    }
}

//! What a request brings to its limits: the bucket key of each limit (hashed, so a huge or
//! odd identifier never reaches Redis as it is) and the request's cost.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use sluice_plugin_sdk::{Reads, RequestExt, RequestHead};

use crate::settings::{Cost, KeyBy, Limit, Settings};

/// The headers an API key may come in when the auth plugin has not named it.
const CREDENTIAL_HEADERS: [&str; 2] = ["x-api-key", "authorization"];

/// The caller's value for `key`, when the request has one.
fn identity<'r>(key: &KeyBy, req: &'r RequestHead) -> Option<&'r str> {
    let value = match key {
        KeyBy::ApiKey => req
            .context("key_id")
            .or_else(|| CREDENTIAL_HEADERS.iter().find_map(|h| req.header(h))),
        KeyBy::Subject => req.context("subject"),
        KeyBy::Ip => Some(req.client_ip.as_str()),
        KeyBy::Header(name) => req.header(name),
        KeyBy::Route => Some(req.route.as_str()),
    };
    value.filter(|v| !v.trim().is_empty())
}

/// The identity `limit` counts `req` under: the caller's value, `""` when it has none and the
/// limit shares one bucket among such requests, or none when the limit skips them.
fn who<'r>(limit: &Limit, req: &'r RequestHead) -> Option<&'r str> {
    match identity(&limit.key, req) {
        Some(who) => Some(who),
        None if limit.shared_when_missing => Some(""),
        None => None,
    }
}

/// The bucket key of `limit` for `req`, or none when the limit does not apply to it (the
/// identity is missing and the limit skips such requests). The route is part of every key,
/// so the same limit name on two routes keeps two buckets. What [`Buckets::key`] computes and
/// remembers; the tests compare the two.
#[cfg(test)]
fn bucket(limit: &Limit, req: &RequestHead) -> Option<String> {
    who(limit, req).map(|who| hashed_key(&limit.name, &req.route, who))
}

/// `NAME:` and the first 16 bytes of SHA-256(route, 0, identity) in hex.
fn hashed_key(name: &str, route: &str, who: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(route.as_bytes());
    hash.update([0]);
    hash.update(who.as_bytes());
    let digest = hash.finalize();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(name.len() + 33);
    key.push_str(name);
    key.push(':');
    for b in &digest[..16] {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 15)]));
    }
    key
}

/// The bucket keys one instance has computed. A key is a pure function of the limit, the route
/// and the identity, so a caller's key is hashed once per instance instead of on every request
/// (the SHA-256 was the largest part of the plugin's own work). Bounded, emptied when full.
#[derive(Default)]
pub struct Buckets {
    keys: HashMap<String, String>,
    /// The lookup key being built: the limit's index, the route's length and the route, then
    /// the identity (lengths first, so no two inputs give the same text).
    scratch: String,
}

/// The most keys [`Buckets`] holds.
const MAX_BUCKETS: usize = 1024;

impl Buckets {
    /// The bucket key of the limit at `index` of the settings for `req` (see [`bucket`]), from
    /// this instance's keys when it has computed it before; none when the limit skips `req`.
    pub fn key(&mut self, index: usize, limit: &Limit, req: &RequestHead) -> Option<String> {
        let who = who(limit, req)?;
        let scratch = &mut self.scratch;
        scratch.clear();
        for n in [index, req.route.len()] {
            scratch.push_str(itoa::Buffer::new().format(n));
            scratch.push(':');
        }
        scratch.push_str(&req.route);
        scratch.push_str(who);
        if let Some(key) = self.keys.get(scratch.as_str()) {
            return Some(key.clone());
        }
        let key = hashed_key(&limit.name, &req.route, who);
        if self.keys.len() >= MAX_BUCKETS {
            self.keys.clear();
        }
        self.keys.insert(scratch.clone(), key.clone());
        Some(key)
    }
}

/// What the limits and the cost read of a request, and nothing more: the credential headers
/// and the auth plugin's `key_id` for limits by API key, `subject` for limits by subject,
/// `tier` when a limit has tier quotas, and the headers an identity or a cost comes in.
/// Everything else of the head is never passed to the plugin (each string passed costs a
/// call into the plugin's allocator on every request).
pub fn reads(settings: &Settings) -> Reads {
    let mut headers: Vec<String> = Vec::new();
    let mut context: Vec<&str> = Vec::new();
    for limit in &settings.limits {
        match &limit.key {
            KeyBy::ApiKey => {
                headers.extend(CREDENTIAL_HEADERS.iter().map(|h| h.to_string()));
                context.push("key_id");
            }
            KeyBy::Subject => context.push("subject"),
            KeyBy::Header(name) => headers.push(name.clone()),
            KeyBy::Ip | KeyBy::Route => {}
        }
        if !limit.tiers.is_empty() {
            context.push("tier");
        }
    }
    match &settings.cost {
        Cost::Fixed(_) => {}
        Cost::Header { name, .. } => headers.push(name.clone()),
        Cost::BodyBytes { .. } => headers.push("content-length".into()),
    }
    headers.sort_by_key(|h| h.to_ascii_lowercase());
    headers.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    context.sort_unstable();
    context.dedup();
    Reads::new(headers, context)
}

/// The cost of `req` under `cost`, in units (at least 1).
pub fn cost_of(cost: &Cost, req: &RequestHead) -> u64 {
    match cost {
        Cost::Fixed(units) => *units,
        Cost::Header { name, default, max } => req
            .header(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(*default)
            .clamp(1, *max),
        Cost::BodyBytes { per, max } => {
            let bytes = req
                .header("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            bytes.div_ceil(*per).clamp(1, *max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::parse;

    fn req(headers: &[(&str, &str)], context: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "x".into(),
            path: "/".into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            client_ip: "10.0.0.1".into(),
            request_id: "r".into(),
            route: "api".into(),
            context: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn limits(json: &str) -> Vec<Limit> {
        parse(json).unwrap().limits
    }

    #[test]
    fn keys_are_bounded_and_differ_by_identity() {
        let l = &limits(r#"{"limits":[{"name":"t","key":"header:x-tenant","limit":1,"period":"1s"}]}"#)[0];
        let huge = "a".repeat(100_000);
        let a = bucket(l, &req(&[("x-tenant", &huge)], &[])).unwrap();
        let b = bucket(l, &req(&[("x-tenant", "b\u{0}\u{7f}")], &[])).unwrap();
        assert_eq!(a.len(), 2 + 32);
        assert_ne!(a, b);
        assert_eq!(bucket(l, &req(&[], &[])), None, "no tenant: the limit is skipped");
    }

    #[test]
    fn remembered_keys_are_the_computed_ones() {
        let all = limits(
            r#"{"limits":[{"name":"t","key":"header:x-tenant","limit":1,"period":"1s"},
                          {"name":"s","key":"subject","limit":1,"period":"1s","when_missing":"shared"}]}"#,
        );
        let mut buckets = Buckets::default();
        let requests = [
            req(&[("x-tenant", "a")], &[]),
            req(&[("x-tenant", "b")], &[("subject", "ann")]),
            req(&[], &[]),
        ];
        for _ in 0..2 {
            for r in &requests {
                for (i, l) in all.iter().enumerate() {
                    assert_eq!(buckets.key(i, l, r), bucket(l, r));
                }
            }
        }
        let mut other_route = req(&[("x-tenant", "a")], &[]);
        other_route.route = "api2".into();
        assert_eq!(buckets.key(0, &all[0], &other_route), bucket(&all[0], &other_route));
        assert_ne!(bucket(&all[0], &other_route), bucket(&all[0], &requests[0]));
        // Tenants a, b, and a on the other route; subjects ann and the shared missing one.
        assert_eq!(buckets.keys.len(), 5, "one entry per limit, route and identity seen");
    }

    #[test]
    fn api_keys_prefer_the_auth_plugins_key_id() {
        let l = &limits(r#"{"limits":[{"name":"k","key":"api_key","limit":1,"period":"1s"}]}"#)[0];
        let by_id = bucket(l, &req(&[("x-api-key", "sk_one")], &[("key_id", "7")]));
        let same_id = bucket(l, &req(&[("x-api-key", "sk_two")], &[("key_id", "7")]));
        assert_eq!(by_id, same_id);
        let raw = bucket(l, &req(&[("x-api-key", "sk_one")], &[]));
        assert!(raw.is_some());
        assert_ne!(raw, by_id);
    }

    #[test]
    fn missing_identities_can_share_one_bucket() {
        let l =
            &limits(r#"{"limits":[{"name":"s","key":"subject","limit":1,"period":"1s","when_missing":"shared"}]}"#)[0];
        assert_eq!(bucket(l, &req(&[], &[])), bucket(l, &req(&[("x", "y")], &[])));
        assert_ne!(bucket(l, &req(&[], &[])), bucket(l, &req(&[], &[("subject", "ann")])));
    }

    #[test]
    fn reads_name_every_header_and_entry_the_limits_and_cost_use() {
        let settings = parse(
            r#"{"limits":[{"name":"t","key":"header:x-tenant","limit":1,"period":"1s"},
                          {"name":"k","key":"api_key","limit":1,"period":"1s"}],
                "cost":{"header":"x-cost"}}"#,
        )
        .unwrap();
        let reads = reads(&settings);
        for h in ["x-api-key", "authorization", "x-tenant", "x-cost"] {
            assert!(reads.headers.iter().any(|r| r == h), "{h} in {:?}", reads.headers);
        }
        assert_eq!(reads.context, ["key_id"]);

        let by_subject_with_tiers = parse(
            r#"{"limits":[{"name":"s","key":"subject","limit":1,"period":"1s",
                           "tiers":{"pro":{"limit":5}}},
                          {"name":"i","key":"ip","limit":1,"period":"1s"}]}"#,
        )
        .unwrap();
        let reads = super::reads(&by_subject_with_tiers);
        assert!(reads.headers.is_empty(), "{:?}", reads.headers);
        assert_eq!(reads.context, ["subject", "tier"]);

        let same_header_twice = parse(
            r#"{"limits":[{"name":"h","key":"header:X-Api-Key","limit":1,"period":"1s"},
                          {"name":"k","key":"api_key","limit":1,"period":"1s"}]}"#,
        )
        .unwrap();
        let reads = super::reads(&same_header_twice);
        let api_keys = reads
            .headers
            .iter()
            .filter(|h| h.eq_ignore_ascii_case("x-api-key"))
            .count();
        assert_eq!(api_keys, 1, "{:?}", reads.headers);
    }

    #[test]
    fn costs_from_headers_and_body_sizes_are_clamped() {
        let header = Cost::Header {
            name: "x-cost".into(),
            default: 2,
            max: 10,
        };
        assert_eq!(cost_of(&header, &req(&[("x-cost", "5")], &[])), 5);
        assert_eq!(cost_of(&header, &req(&[("x-cost", "500")], &[])), 10);
        assert_eq!(cost_of(&header, &req(&[("x-cost", "0")], &[])), 1);
        assert_eq!(cost_of(&header, &req(&[("x-cost", "-3")], &[])), 2);
        assert_eq!(cost_of(&header, &req(&[], &[])), 2);
        let body = Cost::BodyBytes { per: 1024, max: 100 };
        assert_eq!(cost_of(&body, &req(&[("content-length", "3000")], &[])), 3);
        assert_eq!(cost_of(&body, &req(&[], &[])), 1);
        assert_eq!(cost_of(&body, &req(&[("content-length", "999999999")], &[])), 100);
    }
}

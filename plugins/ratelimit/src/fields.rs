//! The IETF rate-limit header fields (draft-ietf-httpapi-ratelimit-headers, revision 10/11):
//! `RateLimit-Policy` lists each policy's quota `q` per window `w` (seconds), and `RateLimit`
//! each policy's remaining units `r` and the seconds `t` until its bucket is full again. Both
//! are Structured Field lists whose items are the policy names as strings. And the 429 answer.

use serde_json::json;
use sluice_plugin_sdk::{RequestHead, RequestVerdict, Response};

/// One policy as applied to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<'s> {
    /// The policy name (the config's).
    pub name: &'s str,
    /// The quota for this caller.
    pub quota: u64,
    /// The window in milliseconds.
    pub period_ms: u64,
    /// Units left now.
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

fn seconds_up(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The `RateLimit-Policy` value for `applied`.
pub fn policy(applied: &[Applied<'_>]) -> String {
    list(applied, |a| [(b'q', a.quota), (b'w', seconds_up(a.period_ms).max(1))])
}

/// The `RateLimit` value for `applied`.
pub fn state(applied: &[Applied<'_>]) -> String {
    list(applied, |a| [(b'r', a.remaining), (b't', seconds_up(a.reset_ms))])
}

/// A Structured Field list of the policies' names with two integer parameters each, written
/// straight into one string (this runs on every admitted request).
fn list(applied: &[Applied<'_>], params: impl Fn(&Applied<'_>) -> [(u8, u64); 2]) -> String {
    let mut out = String::with_capacity(applied.iter().map(|a| a.name.len() + 32).sum());
    for (i, a) in applied.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('"');
        out.push_str(a.name);
        out.push('"');
        for (key, value) in params(a) {
            out.push(';');
            out.push(char::from(key));
            out.push('=');
            out.push_str(itoa::Buffer::new().format(value));
        }
    }
    out
}

/// The 429 answer: a JSON body naming the policy that denied, both fields and `Retry-After`
/// (whole seconds, at least 1). `retry_after_ms` of none: the request can never pass.
pub fn too_many(
    req: &RequestHead,
    applied: &[Applied<'_>],
    denied_by: &str,
    retry_after_ms: Option<u64>,
) -> RequestVerdict {
    let (message, retry) = match retry_after_ms {
        Some(ms) => {
            let secs = seconds_up(ms).max(1);
            (
                format!("rate limit '{denied_by}' exceeded; retry in {secs} s"),
                Some(secs),
            )
        }
        None => (
            format!("the request costs more than rate limit '{denied_by}' allows at once"),
            None,
        ),
    };
    let body = json!({
        "error": "rate_limited",
        "message": message,
        "policy": denied_by,
        "retry_after_s": retry,
        "request_id": req.request_id,
    });
    let mut response = Response::json(429, body.to_string())
        .header("cache-control", "no-store")
        .header("ratelimit-policy", policy(applied))
        .header("ratelimit", state(applied));
    if let Some(secs) = retry {
        response = response.header("retry-after", secs.to_string());
    }
    response.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_draft_syntax() {
        let applied = [
            Applied {
                name: "per-key",
                quota: 60,
                period_ms: 60_000,
                remaining: 59,
                reset_ms: 1001,
            },
            Applied {
                name: "burst",
                quota: 5,
                period_ms: 500,
                remaining: 0,
                reset_ms: 0,
            },
        ];
        assert_eq!(policy(&applied), "\"per-key\";q=60;w=60, \"burst\";q=5;w=1");
        assert_eq!(state(&applied), "\"per-key\";r=59;t=2, \"burst\";r=0;t=0");
    }
}

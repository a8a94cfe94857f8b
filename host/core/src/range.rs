//! Byte ranges (RFC 9110 §14) answered from a complete stored response: the HTTP cache serves
//! `Range` requests from what it holds instead of sending them upstream.
//!
//! One range is served as `206 Partial Content` with `Content-Range`; a range that starts past
//! the end is `416 Range Not Satisfiable` with `Content-Range: bytes */LENGTH`. Everything
//! else gets the whole response, as §14.2 allows a server to ignore `Range`: a method other
//! than GET, a status other than 200, a unit other than `bytes`, a malformed specifier, several
//! ranges (multipart answers are not produced), or an `If-Range` that does not match (§13.1.5:
//! a strong entity tag equal to the stored `ETag`, or a date equal to the stored
//! `Last-Modified` when that is a strong validator, at least a second before `Date`).

use std::ops::Range;

use bytes::Bytes;

/// How a request's `Range` is answered from a stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// The whole response (no usable `Range`, or `If-Range` did not match).
    Whole,
    /// `206` with these bytes of the body.
    Part(Range<u64>),
    /// `416`: the range starts at or past the end of the body.
    Unsatisfiable,
}

/// The longest `Range` value read; longer ones are ignored.
const MAX_RANGE: usize = 1024;

fn first<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses a `Range` value for a body of `len` bytes: `None` to ignore it.
fn parse(value: &[u8], len: u64) -> Option<Ranged> {
    if value.len() > MAX_RANGE {
        return None;
    }
    let (unit, set) = value.split_at(value.iter().position(|&b| b == b'=')?);
    if !unit.trim_ascii().eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let spec = set[1..].trim_ascii();
    if spec.contains(&b',') {
        return None;
    }
    let dash = spec.iter().position(|&b| b == b'-')?;
    let (start, end) = (spec[..dash].trim_ascii(), spec[dash + 1..].trim_ascii());
    if start.is_empty() {
        // Suffix: the last N bytes.
        let n = number(end)?;
        return Some(if n == 0 || len == 0 {
            Ranged::Unsatisfiable
        } else {
            Ranged::Part(len.saturating_sub(n)..len)
        });
    }
    let start = number(start)?;
    let last = if end.is_empty() { None } else { Some(number(end)?) };
    if last.is_some_and(|l| l < start) {
        return None;
    }
    if start >= len {
        return Some(Ranged::Unsatisfiable);
    }
    let end = last.map_or(len, |l| l.saturating_add(1).min(len));
    Some(Ranged::Part(start..end))
}

/// Whether `If-Range` (when present) lets the range apply to the stored response.
fn if_range_holds(request: &[(String, Vec<u8>)], stored: &[(String, Vec<u8>)]) -> bool {
    let Some(condition) = first(request, "if-range").map(<[u8]>::trim_ascii) else {
        return true;
    };
    if condition.starts_with(b"\"") || condition.starts_with(b"W/") {
        // Strong comparison: a weak tag on either side never matches.
        let stored_tag = first(stored, "etag").map(<[u8]>::trim_ascii);
        return condition.starts_with(b"\"") && stored_tag == Some(condition);
    }
    let (Some(modified), Some(date)) = (first(stored, "last-modified"), first(stored, "date")) else {
        return false;
    };
    let time = |v: &[u8]| httpdate::parse_http_date(std::str::from_utf8(v).ok()?).ok();
    let strong = matches!((time(modified), time(date)), (Some(m), Some(d)) if d.duration_since(m).is_ok_and(|gap| gap.as_secs() >= 1));
    strong && modified.trim_ascii() == condition
}

/// How `method` with `request` headers is answered from a stored `status` response with
/// `stored` headers and a body of `len` bytes.
pub fn select(
    method: &str,
    request: &[(String, Vec<u8>)],
    status: u16,
    stored: &[(String, Vec<u8>)],
    len: u64,
) -> Ranged {
    let Some(value) = first(request, "range") else {
        return Ranged::Whole;
    };
    if method != "GET" || status != 200 || !if_range_holds(request, stored) {
        return Ranged::Whole;
    }
    parse(value, len).unwrap_or(Ranged::Whole)
}

/// Applies [`select`] to a stored response about to answer `method` + `request`: on a range,
/// the status becomes 206 or 416, `Content-Range` and `Content-Length` are set and the body is
/// cut. The response is left whole otherwise.
pub fn apply(
    method: &str,
    request: &[(String, Vec<u8>)],
    status: &mut u16,
    headers: &mut Vec<(String, Vec<u8>)>,
    body: &mut Bytes,
) {
    let len = body.len() as u64;
    let (new_status, content_range, part) = match select(method, request, *status, headers, len) {
        Ranged::Whole => return,
        Ranged::Part(r) => (
            206,
            format!("bytes {}-{}/{len}", r.start, r.end - 1),
            body.slice(r.start as usize..r.end as usize),
        ),
        Ranged::Unsatisfiable => (416, format!("bytes */{len}"), Bytes::new()),
    };
    headers.retain(|(n, _)| !(n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("content-range")));
    if new_status == 416 {
        // The 416 describes the range, not the stored content.
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type") && !n.eq_ignore_ascii_case("content-encoding"));
    }
    headers.push(("content-range".into(), content_range.into_bytes()));
    headers.push(("content-length".into(), part.len().to_string().into_bytes()));
    *status = new_status;
    *body = part;
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;

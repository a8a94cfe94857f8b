//! The guest's side of the packed hooks (`plugin-packed` world, layout in `sluice-wire`): the
//! heads the host passes read into the types every hook takes, and verdicts written back, so a
//! hook call crosses the component boundary once each way. [`crate::export_plugin!`] uses it;
//! plugins never see it.

use sluice_wire::{Reader, WireError, Writer};

use crate::{
    CacheSpec, Encoding, HeaderEdits, LocalResponse, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict,
};

/// The smallest packed pair of strings or of a string and bytes: two lengths.
const MIN_PAIR: usize = 8;

/// A string of a head: the host writes heads from Rust strings, so they are UTF-8 and not
/// checked again (as the canonical ABI's strings are not).
#[allow(unsafe_code)]
fn text(r: &mut Reader<'_>) -> Result<String, WireError> {
    // SAFETY: the host writes every string of a head with `put_str` from a `&str`.
    unsafe { r.str_unchecked() }.map(str::to_owned)
}

fn headers(r: &mut Reader<'_>) -> Result<Vec<(String, Vec<u8>)>, WireError> {
    (0..r.count(MIN_PAIR)?)
        .map(|_| Ok((text(r)?, r.bytes()?.to_vec())))
        .collect()
}

/// Reads a packed `request-head`, as the host writes it (its strings are not checked for UTF-8).
pub fn read_request_head(buf: &[u8]) -> Result<RequestHead, WireError> {
    let mut r = Reader::new(buf);
    let head = RequestHead {
        method: text(&mut r)?,
        scheme: text(&mut r)?,
        authority: text(&mut r)?,
        path: text(&mut r)?,
        headers: headers(&mut r)?,
        client_ip: text(&mut r)?,
        request_id: text(&mut r)?,
        route: text(&mut r)?,
        context: (0..r.count(MIN_PAIR)?)
            .map(|_| Ok((text(&mut r)?, text(&mut r)?)))
            .collect::<Result<_, WireError>>()?,
    };
    r.finish()?;
    Ok(head)
}

/// Reads a packed `response-head`.
pub fn read_response_head(buf: &[u8]) -> Result<ResponseHead, WireError> {
    let mut r = Reader::new(buf);
    let head = ResponseHead {
        status: r.u16()?,
        headers: headers(&mut r)?,
    };
    r.finish()?;
    Ok(head)
}

fn put_headers(buf: &mut Vec<u8>, headers: &[(String, Vec<u8>)]) {
    buf.put_len(headers.len());
    for (name, value) in headers {
        buf.put_str(name);
        buf.put_bytes(value);
    }
}

fn put_strings(buf: &mut Vec<u8>, items: &[String]) {
    buf.put_len(items.len());
    for item in items {
        buf.put_str(item);
    }
}

fn put_edits(buf: &mut Vec<u8>, edits: &HeaderEdits) {
    put_headers(buf, &edits.set);
    put_headers(buf, &edits.append);
    put_strings(buf, &edits.remove);
    buf.put_len(edits.context.len());
    for (key, value) in &edits.context {
        buf.put_str(key);
        buf.put_str(value);
    }
}

fn put_local(buf: &mut Vec<u8>, resp: &LocalResponse) {
    buf.put_u16(resp.status);
    put_headers(buf, &resp.headers);
    buf.put_bytes(&resp.body);
}

/// Writes `verdict` as a packed `request-verdict`.
pub fn write_request_verdict(verdict: &RequestVerdict) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    match verdict {
        RequestVerdict::Continue => buf.put_u8(0),
        RequestVerdict::Edit(edits) => {
            buf.put_u8(1);
            put_edits(&mut buf, edits);
        }
        RequestVerdict::Respond(resp) => {
            buf.put_u8(2);
            put_local(&mut buf, resp);
        }
        RequestVerdict::Coalesce(spec) => {
            buf.put_u8(3);
            buf.put_str(&spec.key);
            buf.put_u32(spec.replay_ttl_ms);
            buf.put_u32(spec.max_waiters);
            buf.put_bool(spec.share_errors);
        }
        RequestVerdict::RouteTo(choice) => {
            buf.put_u8(4);
            buf.put_str(&choice.url);
            buf.put_bool(choice.lease.is_some());
            if let Some(lease) = choice.lease {
                buf.put_u64(lease);
            }
            put_edits(&mut buf, &choice.edits);
        }
        RequestVerdict::NeedBody(n) => {
            buf.put_u8(5);
            buf.put_u32(*n);
        }
    }
    buf
}

/// Writes `verdict` as a packed `response-verdict`.
pub fn write_response_verdict(verdict: &ResponseVerdict) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    match verdict {
        ResponseVerdict::Continue => buf.put_u8(0),
        ResponseVerdict::Edit(edits) => {
            buf.put_u8(1);
            put_edits(&mut buf, edits);
        }
        ResponseVerdict::Replace(resp) => {
            buf.put_u8(2);
            put_local(&mut buf, resp);
        }
        ResponseVerdict::Compress(spec) => {
            buf.put_u8(3);
            buf.put_u8(match spec.encoding {
                Encoding::Gzip => 0,
                Encoding::Br => 1,
                Encoding::Zstd => 2,
            });
            buf.put_bool(spec.level.is_some());
            if let Some(level) = spec.level {
                buf.put_i32(level);
            }
        }
        ResponseVerdict::Store(CacheSpec {
            key,
            ttl_ms,
            stale_ms,
            tags,
            vary,
        }) => {
            buf.put_u8(4);
            buf.put_str(key);
            buf.put_u64(*ttl_ms);
            buf.put_u64(*stale_ms);
            put_strings(&mut buf, tags);
            put_strings(&mut buf, vary);
        }
    }
    buf
}

#[cfg(test)]
mod tests;

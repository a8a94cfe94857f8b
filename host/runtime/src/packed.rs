//! The host's side of the packed hooks (`plugin-packed` world, layout in `sluice-wire`): the
//! request and response heads written into one buffer, and the verdicts read back into the same
//! types a plugin-world hook returns, so every check and every use after the call is shared.

use sluice_bindings::{
    CacheSpec, CoalesceSpec, Encoding, EncodingSpec, HeaderEdits, LocalResponse, RequestHead, RequestVerdict,
    ResponseHead, ResponseVerdict, UpstreamChoice,
};
use sluice_wire::{Reader, WireError, Writer};

use crate::reads::Reads;

/// Writes `req` as a `request-head` into `buf` (cleared first): with `reads`, only the
/// headers and context entries it names, as the instance declared.
pub(crate) fn write_request_head(buf: &mut Vec<u8>, req: &RequestHead, reads: Option<&Reads>) {
    buf.clear();
    for field in [&req.method, &req.scheme, &req.authority, &req.path] {
        buf.put_str(field);
    }
    let wanted = |name: &str| reads.is_none_or(|r| r.reads_header(name));
    write_counted(buf, req.headers.iter().filter(|(n, _)| wanted(n)), put_header);
    for field in [&req.client_ip, &req.request_id, &req.route] {
        buf.put_str(field);
    }
    let wanted = |key: &str| reads.is_none_or(|r| r.reads_context(key));
    write_counted(
        buf,
        req.context.iter().filter(|(k, _)| wanted(k)),
        |buf, (key, value)| {
            buf.put_str(key);
            buf.put_str(value);
        },
    );
}

/// Writes `resp` as a `response-head` into `buf` (cleared first).
pub(crate) fn write_response_head(buf: &mut Vec<u8>, resp: &ResponseHead) {
    buf.clear();
    buf.put_u16(resp.status);
    write_counted(buf, resp.headers.iter(), put_header);
}

/// One header field: the name, then the value's bytes.
fn put_header(buf: &mut Vec<u8>, (name, value): &(String, Vec<u8>)) {
    buf.put_str(name);
    buf.put_bytes(value);
}

/// Writes the items of a filtered list: a count slot first, filled in after the items.
fn write_counted<T>(buf: &mut Vec<u8>, items: impl Iterator<Item = T>, mut put: impl FnMut(&mut Vec<u8>, T)) {
    let slot = buf.len();
    buf.put_u32(0);
    let mut count = 0u32;
    for item in items {
        put(buf, item);
        count += 1;
    }
    buf[slot..slot + 4].copy_from_slice(&count.to_le_bytes());
}

/// Reads a packed `request-verdict`.
pub(crate) fn read_request_verdict(buf: &[u8]) -> Result<RequestVerdict, WireError> {
    let mut r = Reader::new(buf);
    let verdict = match r.tag(6)? {
        0 => RequestVerdict::Continue,
        1 => RequestVerdict::Edit(edits(&mut r)?),
        2 => RequestVerdict::Respond(local_response(&mut r)?),
        3 => RequestVerdict::Coalesce(CoalesceSpec {
            key: r.str()?.to_owned(),
            replay_ttl_ms: r.u32()?,
            max_waiters: r.u32()?,
            share_errors: r.bool()?,
        }),
        4 => RequestVerdict::RouteTo(UpstreamChoice {
            url: r.str()?.to_owned(),
            lease: if r.bool()? { Some(r.u64()?) } else { None },
            edits: edits(&mut r)?,
        }),
        _ => RequestVerdict::NeedBody(r.u32()?),
    };
    r.finish()?;
    Ok(verdict)
}

/// Reads a packed `response-verdict`.
pub(crate) fn read_response_verdict(buf: &[u8]) -> Result<ResponseVerdict, WireError> {
    let mut r = Reader::new(buf);
    let verdict = match r.tag(5)? {
        0 => ResponseVerdict::Continue,
        1 => ResponseVerdict::Edit(edits(&mut r)?),
        2 => ResponseVerdict::Replace(local_response(&mut r)?),
        3 => ResponseVerdict::Compress(EncodingSpec {
            encoding: match r.tag(3)? {
                0 => Encoding::Gzip,
                1 => Encoding::Br,
                _ => Encoding::Zstd,
            },
            level: if r.bool()? { Some(r.i32()?) } else { None },
        }),
        _ => ResponseVerdict::Store(CacheSpec {
            key: r.str()?.to_owned(),
            ttl_ms: r.u64()?,
            stale_ms: r.u64()?,
            tags: strings(&mut r)?,
            vary: strings(&mut r)?,
        }),
    };
    r.finish()?;
    Ok(verdict)
}

/// The smallest packed `tuple<string, list<u8>>` or `tuple<string, string>`: two lengths.
const MIN_PAIR: usize = 8;

fn headers(r: &mut Reader<'_>) -> Result<Vec<(String, Vec<u8>)>, WireError> {
    (0..r.count(MIN_PAIR)?)
        .map(|_| Ok((r.str()?.to_owned(), r.bytes()?.to_vec())))
        .collect()
}

fn strings(r: &mut Reader<'_>) -> Result<Vec<String>, WireError> {
    (0..r.count(4)?).map(|_| Ok(r.str()?.to_owned())).collect()
}

fn edits(r: &mut Reader<'_>) -> Result<HeaderEdits, WireError> {
    Ok(HeaderEdits {
        set: headers(r)?,
        append: headers(r)?,
        remove: strings(r)?,
        context: (0..r.count(MIN_PAIR)?)
            .map(|_| Ok((r.str()?.to_owned(), r.str()?.to_owned())))
            .collect::<Result<_, WireError>>()?,
    })
}

fn local_response(r: &mut Reader<'_>) -> Result<LocalResponse, WireError> {
    Ok(LocalResponse {
        status: r.u16()?,
        headers: headers(r)?,
        body: r.bytes()?.to_vec(),
    })
}

#[cfg(test)]
mod tests;

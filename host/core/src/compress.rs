//! Response compression, as a response hook's `compress(encoding-spec)` verdict asks: the
//! header hygiene the new encoding implies, and a body wrapper that compresses frame by frame
//! as the body streams (never buffering it whole). Event streams are flushed after every
//! upstream frame, so each event reaches the client as soon as the upstream sent it.

use std::io::Write;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{
    ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, VARY,
};
use hyper::{Method, Response, StatusCode};

use crate::body::{BoxError, ProxyBody, Recoded, Recoder};
use sluice_bindings::{Encoding, EncodingSpec};

/// The level each encoding gets when the verdict names none.
pub fn default_level(encoding: Encoding) -> i32 {
    match encoding {
        Encoding::Gzip => 6,
        Encoding::Br => 4,
        Encoding::Zstd => 3,
    }
}

/// The levels the host accepts for each encoding; a level outside is clamped into it. zstd's
/// "ultra" levels 20-22 are left out: their windows cost up to 128 MiB per response.
pub fn level_range(encoding: Encoding) -> (i32, i32) {
    match encoding {
        Encoding::Gzip => (1, 9),
        Encoding::Br => (0, 11),
        Encoding::Zstd => (1, 19),
    }
}

/// The `Content-Encoding` token of `encoding`.
pub fn token(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Gzip => "gzip",
        Encoding::Br => "br",
        Encoding::Zstd => "zstd",
    }
}

/// The level the host uses for `spec`: the verdict's, clamped into the encoding's range, or
/// the default.
pub fn effective_level(spec: &EncodingSpec) -> i32 {
    let (low, high) = level_range(spec.encoding);
    spec.level
        .map_or_else(|| default_level(spec.encoding), |l| l.clamp(low, high))
}

/// Applies a `compress` verdict to a response about to be sent: when `spec` is set and the
/// response may be compressed, sets `Content-Encoding`, removes `Content-Length` and
/// `Accept-Ranges`, merges `Accept-Encoding` into `Vary`, weakens a strong `ETag`, and wraps
/// the body. A response that must not be compressed (already encoded, no body by its status
/// or method, a partial response, a gRPC response: gRPC compresses per message) passes
/// through unchanged.
pub fn apply(spec: Option<&EncodingSpec>, method: &str, resp: Response<ProxyBody>) -> Response<ProxyBody> {
    let Some(spec) = spec else {
        return resp;
    };
    if !compressible(method, resp.status(), resp.headers()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let flush_each_frame = is_event_stream(&parts.headers);
    let encoder = match Encoder::new(spec.encoding, effective_level(spec)) {
        Ok(encoder) => encoder,
        Err(error) => {
            tracing::warn!(%error, encoding = token(spec.encoding), "the compressor could not start; sending the body as it is");
            return Response::from_parts(parts, body);
        }
    };
    rewrite_headers(&mut parts.headers, spec.encoding);
    let recoder = Compressing {
        encoder,
        flush_each_frame,
    };
    Response::from_parts(parts, Recoded::new(body, recoder).boxed())
}

/// Whether the host may compress this response at all (the plugin decides the rest).
fn compressible(method: &str, status: StatusCode, headers: &HeaderMap) -> bool {
    let already_encoded = headers.get_all(CONTENT_ENCODING).iter().any(|v| {
        v.to_str().map_or(true, |s| {
            s.split(',').any(|t| !t.trim().eq_ignore_ascii_case("identity"))
        })
    });
    let bodyless = method == Method::HEAD.as_str()
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    !already_encoded && !bodyless && status != StatusCode::PARTIAL_CONTENT && !crate::grpc::is_grpc(headers)
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
}

/// The header changes compression implies.
fn rewrite_headers(headers: &mut HeaderMap, encoding: Encoding) {
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(token(encoding)));
    headers.remove(CONTENT_LENGTH);
    headers.remove(ACCEPT_RANGES);
    let vary: Vec<String> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    let listed = vary
        .iter()
        .any(|t| t == "*" || t.eq_ignore_ascii_case("accept-encoding"));
    if !listed {
        let mut merged = vary;
        merged.push("Accept-Encoding".to_string());
        if let Ok(v) = HeaderValue::from_str(&merged.join(", ")) {
            headers.insert(VARY, v);
        }
    }
    if let Some(etag) = headers.get(ETAG)
        && etag.as_bytes().first() == Some(&b'"')
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&weak) {
            headers.insert(ETAG, v);
        }
    }
}

/// A streaming compressor writing into a buffer the body drains after every frame.
pub enum Encoder {
    /// gzip (flate2).
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    /// Brotli.
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    /// Zstandard.
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// A compressor for `encoding` at `level` (already in the encoding's range).
    pub fn new(encoding: Encoding, level: i32) -> std::io::Result<Self> {
        Ok(match encoding {
            Encoding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.clamp(0, 9) as u32),
            )),
            Encoding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                level.clamp(0, 11) as u32,
                22,
            ))),
            Encoding::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), level)?),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Encoder::Gzip(e) => e,
            Encoder::Br(e) => e.as_mut(),
            Encoder::Zstd(e) => e,
        }
    }

    /// Compresses `data`; the output so far is taken with [`Encoder::take`].
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(data)
    }

    /// Flushes everything written so far into the output, so a decoder can read it all now.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }

    /// Takes the compressed output produced so far.
    pub fn take(&mut self) -> Bytes {
        let out = match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Br(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        };
        Bytes::from(std::mem::take(out))
    }

    /// Ends the stream and returns the rest of the output.
    pub fn finish(self) -> std::io::Result<Bytes> {
        let out = match self {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Br(e) => e.into_inner(),
            Encoder::Zstd(e) => e.finish()?,
        };
        Ok(Bytes::from(out))
    }
}

/// Compresses all of `data` with the content coding named by `token` (`gzip`, `deflate`, `br`
/// or `zstd`) at that coding's default level, for callers that hold a whole body (tools, tests).
/// None for a token it does not know.
pub fn encode_all(token: &str, data: &[u8]) -> Option<Vec<u8>> {
    let encoding = match token {
        "gzip" => Encoding::Gzip,
        "br" => Encoding::Br,
        "zstd" => Encoding::Zstd,
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).ok()?;
            return e.finish().ok();
        }
        _ => return None,
    };
    let mut encoder = Encoder::new(encoding, default_level(encoding)).ok()?;
    encoder.write(data).ok()?;
    let mut out = encoder.take().to_vec();
    out.extend_from_slice(&encoder.finish().ok()?);
    Some(out)
}

/// The recoder of a compressed body.
struct Compressing {
    encoder: Encoder,
    flush_each_frame: bool,
}

impl Recoder for Compressing {
    const KEEPS_TRAILERS: bool = true;

    fn chunk(&mut self, data: &Bytes) -> Result<Bytes, BoxError> {
        self.encoder.write(data)?;
        if self.flush_each_frame {
            self.encoder.flush()?;
        }
        Ok(self.encoder.take())
    }

    fn finish(self) -> Result<Bytes, BoxError> {
        Ok(self.encoder.finish()?)
    }
}

#[cfg(test)]
#[path = "compress_tests.rs"]
mod tests;

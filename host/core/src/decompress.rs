//! Request-body decompression, as a request hook's `body.decompress-request` asks: the body
//! is decoded by its `Content-Encoding` as it streams upstream, under a bound on the decoded
//! size and on the ratio of decoded to compressed bytes, so a decompression bomb is stopped
//! after at most `max-bytes` of output (answered 413) instead of filling memory or the
//! upstream.

use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap};
use hyper::{Response, StatusCode};

use super::errors::json_error;
use crate::body::{BoxError, ProxyBody, Recoded, Recoder};

/// A request hook's `body.decompress-request` directive: decode the request body on its way
/// upstream within these bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecompressRequest {
    /// The most decoded bytes accepted.
    pub max_bytes: u64,
    /// The most decoded bytes accepted per compressed byte read.
    pub max_ratio: u32,
}

/// Why a request body was refused while it was decoded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    /// The decoded body passed `max-bytes`.
    #[error("the decompressed request body is larger than {0} bytes")]
    TooLarge(u64),
    /// The decoded body passed `max-ratio` times the compressed bytes read.
    #[error("the request body decompresses to more than {0} times its compressed size")]
    Ratio(u32),
    /// The body is not valid in its encoding.
    #[error("the request body is not valid {encoding}: {reason}")]
    Undecodable {
        /// The `Content-Encoding` token.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

impl Refusal {
    /// The JSON error the client gets.
    pub fn response(&self, request_id: &str) -> Response<ProxyBody> {
        let (status, code) = match self {
            Refusal::TooLarge(_) | Refusal::Ratio(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Refusal::Undecodable { .. } => (StatusCode::BAD_REQUEST, "body_undecodable"),
        };
        json_error(status, code, &self.to_string(), request_id)
    }
}

/// Tells the handler, after a failed upstream call, whether decoding refused the body.
#[derive(Debug, Clone, Default)]
pub struct Decoding {
    refusal: Arc<OnceLock<Refusal>>,
}

impl Decoding {
    /// The refusal, if decoding stopped the body.
    pub fn refusal(&self) -> Option<&Refusal> {
        self.refusal.get()
    }
}

/// Applies a `decompress-request` directive to a request about to go upstream: with no
/// directive, or a body without `Content-Encoding` (or `identity`), the body goes as it is.
/// Otherwise `Content-Encoding` and `Content-Length` are removed and the body is decoded as
/// it streams, bounded by the directive and by `max_body` (the server's body limit). An
/// encoding the host cannot decode is answered with 415.
pub fn request(
    directive: Option<DecompressRequest>,
    headers: &mut HeaderMap,
    body: ProxyBody,
    max_body: u64,
    request_id: &str,
) -> Result<(ProxyBody, Decoding), Box<Response<ProxyBody>>> {
    let decoding = Decoding::default();
    let Some(directive) = directive else {
        return Ok((body, decoding));
    };
    let codings: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .flat_map(|v| v.split(',').map(|t| t.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .filter(|t| !t.is_empty() && t != "identity")
        .collect();
    let encoding = match codings.as_slice() {
        [] => return Ok((body, decoding)),
        [one] => one.as_str(),
        _ => "",
    };
    let limits = Limits {
        max_bytes: directive.max_bytes.min(max_body),
        max_ratio: directive.max_ratio,
    };
    let Some(decoder) = Decoder::new(encoding, limits) else {
        let message = format!(
            "the request body's Content-Encoding '{}' is not supported (gzip, deflate, br, zstd)",
            codings.join(", ")
        );
        return Err(Box::new(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            &message,
            request_id,
        )));
    };
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    let decode = Decode {
        decoder,
        refusal: decoding.refusal.clone(),
    };
    Ok((Recoded::new(body, decode).boxed(), decoding))
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    max_bytes: u64,
    max_ratio: u32,
}

/// Where a decoder writes: checks both bounds before it keeps a byte.
struct Sink {
    out: Vec<u8>,
    read: u64,
    written: u64,
    limits: Limits,
    refused: Option<Refusal>,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written > self.limits.max_bytes {
            self.refused = Some(Refusal::TooLarge(self.limits.max_bytes));
        } else if self.written > self.read.saturating_mul(self.limits.max_ratio.into()) {
            self.refused = Some(Refusal::Ratio(self.limits.max_ratio));
        }
        if self.refused.is_some() {
            return Err(std::io::Error::other("decoding bound passed"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A streaming decoder writing into a bounded [`Sink`].
enum Decoder {
    Gzip(flate2::write::GzDecoder<Sink>),
    Deflate(flate2::write::ZlibDecoder<Sink>),
    Br(Box<brotli::DecompressorWriter<Sink>>),
    Zstd(Box<zstd::stream::zio::Writer<Sink, zstd::stream::raw::Decoder<'static>>>),
}

impl Decoder {
    fn new(encoding: &str, limits: Limits) -> Option<Self> {
        let sink = Sink {
            out: Vec::new(),
            read: 0,
            written: 0,
            limits,
            refused: None,
        };
        Some(match encoding {
            "gzip" | "x-gzip" => Decoder::Gzip(flate2::write::GzDecoder::new(sink)),
            "deflate" => Decoder::Deflate(flate2::write::ZlibDecoder::new(sink)),
            "br" => Decoder::Br(Box::new(brotli::DecompressorWriter::new(sink, 4096))),
            "zstd" => Decoder::Zstd(Box::new(zstd::stream::zio::Writer::new(
                sink,
                zstd::stream::raw::Decoder::new().ok()?,
            ))),
            _ => return None,
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Decoder::Gzip(_) => "gzip",
            Decoder::Deflate(_) => "deflate",
            Decoder::Br(_) => "br",
            Decoder::Zstd(_) => "zstd",
        }
    }

    fn sink(&mut self) -> &mut Sink {
        match self {
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Deflate(d) => d.get_mut(),
            Decoder::Br(d) => d.get_mut(),
            Decoder::Zstd(d) => d.writer_mut(),
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Decoder::Gzip(d) => d,
            Decoder::Deflate(d) => d,
            Decoder::Br(d) => d.as_mut(),
            Decoder::Zstd(d) => d.as_mut(),
        }
    }

    /// Decodes `data` and returns the output so far.
    fn decode(&mut self, data: &[u8]) -> Result<Bytes, Refusal> {
        self.sink().read += data.len() as u64;
        let written = self.writer().write_all(data).and_then(|()| self.writer().flush());
        let name = self.name();
        settle(self.sink(), name, written)
    }

    /// Ends the stream: the rest of the output, or why the stream is not complete.
    fn finish(self) -> Result<Bytes, Refusal> {
        let name = self.name();
        match self {
            Decoder::Gzip(mut d) => {
                let finished = d.try_finish();
                settle(d.get_mut(), name, finished)
            }
            Decoder::Deflate(mut d) => {
                let finished = d.try_finish();
                settle(d.get_mut(), name, finished)
            }
            Decoder::Zstd(mut d) => {
                // `finish` fails on a frame that did not end: a truncated body.
                let finished = d.finish();
                settle(d.writer_mut(), name, finished)
            }
            Decoder::Br(d) => match (*d).into_inner() {
                Ok(mut sink) => settle(&mut sink, name, Ok(())),
                Err(mut sink) => settle(&mut sink, name, Err(std::io::Error::other("the stream ended early"))),
            },
        }
    }
}

/// The output so far, or why decoding stopped: a bound (checked first, since the decoder
/// reports the sink's refusal as its own error) or invalid input.
fn settle(sink: &mut Sink, encoding: &'static str, result: std::io::Result<()>) -> Result<Bytes, Refusal> {
    if let Some(refusal) = sink.refused.take() {
        return Err(refusal);
    }
    result.map_err(|e| Refusal::Undecodable {
        encoding,
        reason: e.to_string(),
    })?;
    Ok(Bytes::from(std::mem::take(&mut sink.out)))
}

/// The recoder of a decoded request body: a refusal is kept for the answer too.
struct Decode {
    decoder: Decoder,
    refusal: Arc<OnceLock<Refusal>>,
}

impl Decode {
    fn refuse(&self, refusal: Refusal) -> BoxError {
        Decode::refuse_into(&self.refusal, refusal)
    }

    /// Keeps `refusal` for the answer; the body's error.
    fn refuse_into(kept: &OnceLock<Refusal>, refusal: Refusal) -> BoxError {
        let error: BoxError = Box::new(refusal.clone());
        let _ = kept.set(refusal);
        error
    }
}

impl Recoder for Decode {
    /// Request trailers are not passed on.
    const KEEPS_TRAILERS: bool = false;

    fn chunk(&mut self, data: &Bytes) -> Result<Bytes, BoxError> {
        self.decoder.decode(data).map_err(|refusal| self.refuse(refusal))
    }

    fn finish(self) -> Result<Bytes, BoxError> {
        let Decode { decoder, refusal } = self;
        decoder.finish().map_err(|r| Decode::refuse_into(&refusal, r))
    }
}

#[cfg(test)]
#[path = "decompress_tests.rs"]
mod tests;

//! Request ids: taken from the client's headers when usable, generated otherwise, and the
//! header names they travel under (`server.request_id_header` and `request_id_sources`).

use hyper::HeaderMap;
use hyper::header::{HeaderName, InvalidHeaderName};

/// The longest client-supplied request id that is kept.
const MAX_REQUEST_ID: usize = 128;

/// Whether a client's id is kept: 1 to 128 characters of `[A-Za-z0-9._:-]` (nothing that could
/// split a log line or a header).
fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A new random request id: 32 hex characters.
pub fn generate_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u128(..);
    let mut id = [0u8; 32];
    for (i, digit) in id.iter_mut().enumerate() {
        *digit = HEX[((n >> (124 - 4 * i)) & 0xf) as usize];
    }
    // Hex digits only: one allocation of the exact size, no per-character pushes.
    String::from_utf8(id.to_vec()).unwrap_or_default()
}

/// `text` as a header name; the two usual names as static ones, which every request clones
/// without touching a reference count (one parsed from the config would be shared memory).
fn name(text: &str) -> Result<HeaderName, InvalidHeaderName> {
    if text.eq_ignore_ascii_case("x-request-id") {
        Ok(HeaderName::from_static("x-request-id"))
    } else if text.eq_ignore_ascii_case("x-correlation-id") {
        Ok(HeaderName::from_static("x-correlation-id"))
    } else {
        HeaderName::from_bytes(text.as_bytes())
    }
}

/// A request's id and the header the client sent it in.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestId {
    /// The id.
    pub id: String,
    /// The client's header when it is not [`RequestIdHeaders::header`]: the response carries
    /// the id under this name too. `None` for a generated id or one sent under the main name.
    pub echo: Option<HeaderName>,
}

/// Where request ids come from and go to.
#[derive(Debug, Clone)]
pub struct RequestIdHeaders {
    header: HeaderName,
    sources: Vec<HeaderName>,
}

impl Default for RequestIdHeaders {
    /// `X-Request-ID` out; `X-Correlation-ID`, then `X-Request-ID`, in.
    fn default() -> Self {
        RequestIdHeaders {
            header: HeaderName::from_static("x-request-id"),
            sources: vec![
                HeaderName::from_static("x-correlation-id"),
                HeaderName::from_static("x-request-id"),
            ],
        }
    }
}

impl RequestIdHeaders {
    /// The id goes to the upstream and back to the client as `header`; a client's own id is
    /// read from `sources`, the first with a usable value winning. Errs on a name that is not
    /// a valid header name.
    pub fn new(header: &str, sources: &[String]) -> Result<Self, InvalidHeaderName> {
        Ok(RequestIdHeaders {
            header: name(header)?,
            sources: sources.iter().map(|s| name(s)).collect::<Result<_, _>>()?,
        })
    }

    /// The header the id travels under to the upstream and in every response.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The request's id: the first usable client id among the source headers, otherwise a new
    /// one.
    pub fn read(&self, headers: &HeaderMap) -> RequestId {
        for name in &self.sources {
            let Some(id) = headers.get(name).and_then(|v| v.to_str().ok()) else {
                continue;
            };
            if valid_request_id(id) {
                let echo = (*name != self.header).then(|| name.clone());
                return RequestId {
                    id: id.to_string(),
                    echo,
                };
            }
        }
        RequestId {
            id: generate_id(),
            echo: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn generated_ids_are_32_lowercase_hex_digits_and_differ() {
        let (a, b) = (generate_id(), generate_id());
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)),
            "{a}"
        );
        assert!(valid_request_id(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn client_request_ids_are_kept_only_when_safe() {
        let ids = RequestIdHeaders::default();
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123.x:y_z"));
        assert_eq!(ids.read(&h).id, "abc-123.x:y_z");
        assert_eq!(ids.read(&h).echo, None, "sent under the main name");
        h.insert("x-correlation-id", HeaderValue::from_static("corr-1"));
        let corr = ids.read(&h);
        assert_eq!(corr.id, "corr-1", "X-Correlation-ID wins");
        assert_eq!(corr.echo.as_ref().map(HeaderName::as_str), Some("x-correlation-id"));
        h.insert("x-correlation-id", HeaderValue::from_static("has space"));
        assert_eq!(ids.read(&h).id, "abc-123.x:y_z");
        h.insert("x-request-id", HeaderValue::from_str(&"a".repeat(129)).unwrap());
        h.remove("x-correlation-id");
        let generated = ids.read(&h);
        assert_eq!(generated.id.len(), 32);
        assert!(generated.id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(generated.echo, None);
    }

    #[test]
    fn configured_names_replace_the_defaults() {
        let ids = RequestIdHeaders::new("x-trace-id", &["Request-Id".into(), "x-trace-id".into()]).unwrap();
        assert_eq!(ids.header().as_str(), "x-trace-id");
        let mut h = HeaderMap::new();
        h.insert("x-correlation-id", HeaderValue::from_static("ignored"));
        assert_eq!(ids.read(&h).id.len(), 32, "x-correlation-id is no longer a source");
        h.insert("request-id", HeaderValue::from_static("r-1"));
        let read = ids.read(&h);
        assert_eq!(read.id, "r-1");
        assert_eq!(read.echo.as_ref().map(HeaderName::as_str), Some("request-id"));
        assert!(RequestIdHeaders::new("bad name", &[]).is_err());
        assert!(RequestIdHeaders::new("x-id", &["a:b".into()]).is_err());
    }
}

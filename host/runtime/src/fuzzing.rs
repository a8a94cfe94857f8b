//! The body of the `verdict` fuzz target (`fuzz/`, replayed over `fuzz/corpus/verdict` by
//! `sluice-fuzz-targets`' tests): a plugin's packed return buffer, arbitrary bytes, through
//! the reader and the checks every verdict goes through, and what passes applied.

use sluice_bindings::{HeaderEdits, LocalResponse, RequestVerdict, ResponseVerdict};

use crate::packed;
use crate::verdict::{self, BodyNeeds};

/// The body limit the target's plugin declares when its selector says it declared one.
const DECLARED_BODY: u32 = 1 << 16;

/// The first byte selects the hook (bit 0: response, else request) and what the plugin
/// declared (bit 1: a body hook, bit 2: a body limit); the rest is the packed verdict. Must
/// never panic, and a verdict that passes the checks must apply as valid HTTP: every header
/// name and value one `http` accepts, the framing fields the host set untouched, a final
/// status.
pub fn packed_verdict(data: &[u8]) {
    let Some((&selector, buf)) = data.split_first() else {
        return;
    };
    let body = BodyNeeds {
        has_body_hook: selector & 2 != 0,
        max_body_bytes: (selector & 4 != 0).then_some(DECLARED_BODY),
    };
    if selector & 1 == 0 {
        let Ok(v) = packed::read_request_verdict(buf) else {
            return;
        };
        if verdict::check_request_verdict(&v, body).is_err() {
            return;
        }
        match v {
            RequestVerdict::Edit(edits) => applies(edits),
            RequestVerdict::RouteTo(choice) => applies(choice.edits),
            RequestVerdict::Respond(local) => is_http(&local),
            RequestVerdict::NeedBody(n) => assert!(body.has_body_hook && n <= DECLARED_BODY),
            RequestVerdict::Continue | RequestVerdict::Coalesce(_) => {}
        }
    } else {
        let Ok(v) = packed::read_response_verdict(buf) else {
            return;
        };
        if verdict::check_response_verdict(&v).is_err() {
            return;
        }
        match v {
            ResponseVerdict::Edit(edits) => applies(edits),
            ResponseVerdict::Replace(local) => is_http(&local),
            _ => {}
        }
    }
}

/// Checked edits applied to a head the host framed: the result is valid HTTP and the framing
/// is the host's.
fn applies(mut edits: HeaderEdits) {
    let mut headers = vec![
        ("host".to_string(), b"gateway.test".to_vec()),
        ("content-length".to_string(), b"5".to_vec()),
        ("transfer-encoding".to_string(), b"chunked".to_vec()),
    ];
    let context = std::mem::take(&mut edits.context);
    verdict::apply_edits(&mut headers, edits);
    for (name, value) in &headers {
        valid_field(name, value);
    }
    for framing in ["content-length", "transfer-encoding"] {
        assert_eq!(
            headers.iter().filter(|(n, _)| n == framing).count(),
            1,
            "edits never touch {framing}"
        );
    }
    let mut merged = vec![("earlier".to_string(), "1".to_string())];
    verdict::apply_context(&mut merged, context);
    assert!(merged.len() <= verdict::MAX_CONTEXT + 1);
}

/// A checked local response is a valid HTTP response without framing fields.
fn is_http(local: &LocalResponse) {
    let status = http::StatusCode::from_u16(local.status).expect("a checked status is an HTTP status");
    assert!(!status.is_informational(), "a local response is final");
    for (name, value) in &local.headers {
        valid_field(name, value);
        assert!(!verdict::is_framing(name), "{name} frames the message");
    }
    assert!(local.body.len() <= verdict::MAX_BODY);
}

fn valid_field(name: &str, value: &[u8]) {
    http::HeaderName::from_bytes(name.as_bytes()).expect("a checked name is a header name");
    http::HeaderValue::from_bytes(value).expect("a checked value is a header value");
}

#[cfg(test)]
mod tests {
    use sluice_wire::Writer;

    use super::*;

    /// An `edit` request verdict setting `name: value`.
    fn edit(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut buf = vec![0, 1];
        buf.put_len(1);
        buf.put_bytes(name);
        buf.put_bytes(value);
        buf.extend([0u8; 12]);
        buf
    }

    #[test]
    fn checked_edits_apply_and_refused_ones_stop_at_the_check() {
        packed_verdict(&edit(b"x-ok", b"yes"));
        for refused in [
            edit(b"content-length", b"0"),
            edit(b"Transfer-Encoding", b"identity"),
            edit(b"bad name", b"v"),
            edit(b"x-crlf", b"a\r\nb"),
            edit(b"", b"v"),
        ] {
            let v = packed::read_request_verdict(&refused[1..]).unwrap();
            let body = BodyNeeds {
                has_body_hook: false,
                max_body_bytes: None,
            };
            assert!(verdict::check_request_verdict(&v, body).is_err());
            packed_verdict(&refused);
        }
        packed_verdict(&[]);
        packed_verdict(&[7, 5, 0, 0, 1, 0]);
    }
}

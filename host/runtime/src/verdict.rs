//! Checks of what plugins return, and applying header edits. A verdict that fails a check
//! fails the plugin (its failure policy applies); nothing of it is applied.

use sluice_bindings::{HeaderEdits, LocalResponse, RequestVerdict, ResponseVerdict};

/// Header fields one edit may name, over set, append and remove together.
pub const MAX_EDITS: usize = 100;
/// The longest header name.
pub const MAX_NAME: usize = 256;
/// The longest header value.
pub const MAX_VALUE: usize = 16 << 10;
/// The most header bytes (names and values) one verdict may carry.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// The largest local response body.
pub const MAX_BODY: usize = 8 << 20;
/// Context entries one edit may attach, and the longest key and value.
pub const MAX_CONTEXT: usize = 64;
const MAX_CONTEXT_KEY: usize = 128;
const MAX_CONTEXT_VALUE: usize = 4096;

/// Whether `name` (any case) frames the message (`content-length`, `transfer-encoding`,
/// `connection`, `keep-alive`, `proxy-connection`, `te`, `trailer`, `upgrade`): the host owns
/// those, so plugins may not edit them. Only the names of its length are compared.
pub(crate) fn is_framing(name: &str) -> bool {
    let candidates: &[&str] = match name.len() {
        2 => &["te"],
        7 => &["trailer", "upgrade"],
        10 => &["connection", "keep-alive"],
        14 => &["content-length"],
        16 => &["proxy-connection"],
        17 => &["transfer-encoding"],
        _ => return false,
    };
    candidates.iter().any(|f| f.eq_ignore_ascii_case(name))
}

/// The bytes a token may hold (RFC 9110 §5.6.2: letters, digits and ``!#$%&'*+-.^_`|~``).
const TOKEN_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    table
};

/// Whether `name` is a token (RFC 9110 §5.6.2), exactly what `http::HeaderName` accepts,
/// checked without building one (that allocates for every name it does not know).
pub(crate) fn is_token(name: &[u8]) -> bool {
    name.iter().all(|&b| TOKEN_BYTES[usize::from(b)])
}

/// Whether `value` is what `http::HeaderValue` accepts (no control bytes but tab, no DEL),
/// checked without copying it into one.
fn is_field_value(value: &[u8]) -> bool {
    value.iter().all(|&b| (b >= 32 && b != 127) || b == b'\t')
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("header name of {} bytes (1..={MAX_NAME} allowed)", name.len()));
    }
    if !is_token(name.as_bytes()) {
        return Err(format!("{:?} is not a valid header name", truncate(name)));
    }
    if is_framing(name) {
        return Err(format!("header '{name}' frames the message and is managed by the host"));
    }
    Ok(())
}

fn check_headers(headers: &[(String, Vec<u8>)], total: &mut usize) -> Result<(), String> {
    for (name, value) in headers {
        check_name(name)?;
        if value.len() > MAX_VALUE {
            return Err(format!(
                "header '{name}' has a {}-byte value ({MAX_VALUE} allowed)",
                value.len()
            ));
        }
        if !is_field_value(value) {
            return Err(format!(
                "header '{name}' has a value with forbidden bytes (CR, LF or NUL)"
            ));
        }
        *total += name.len() + value.len();
    }
    if *total > MAX_HEADER_BYTES {
        return Err(format!("{total} bytes of headers ({MAX_HEADER_BYTES} allowed)"));
    }
    Ok(())
}

/// Checks header edits: count, names, values, sizes and context entries.
pub fn check_edits(edits: &HeaderEdits) -> Result<(), String> {
    let count = edits.set.len() + edits.append.len() + edits.remove.len();
    if count > MAX_EDITS {
        return Err(format!("{count} header edits ({MAX_EDITS} allowed)"));
    }
    let mut total = 0;
    check_headers(&edits.set, &mut total)?;
    check_headers(&edits.append, &mut total)?;
    for name in &edits.remove {
        check_name(name)?;
    }
    if edits.context.len() > MAX_CONTEXT {
        return Err(format!(
            "{} context entries ({MAX_CONTEXT} allowed)",
            edits.context.len()
        ));
    }
    for (k, v) in &edits.context {
        if k.is_empty() || k.len() > MAX_CONTEXT_KEY || v.len() > MAX_CONTEXT_VALUE {
            return Err(format!(
                "context entry {:?} is out of bounds (key 1..={MAX_CONTEXT_KEY} bytes, value ≤ {MAX_CONTEXT_VALUE})",
                truncate(k)
            ));
        }
    }
    Ok(())
}

/// Drops the fields that frame a message (the host sets them for what it sends).
pub fn without_framing(headers: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    headers.into_iter().filter(|(n, _)| !is_framing(n)).collect()
}

/// Checks a whole header section a plugin gives (names, values, count and size); framing
/// fields are not allowed.
pub fn check_header_list(headers: &[(String, Vec<u8>)]) -> Result<(), String> {
    if headers.len() > MAX_EDITS {
        return Err(format!("{} headers ({MAX_EDITS} allowed)", headers.len()));
    }
    check_headers(headers, &mut 0)
}

/// Checks a local response: status, headers and body size.
pub fn check_local(resp: &LocalResponse) -> Result<(), String> {
    if !(200..=599).contains(&resp.status) {
        return Err(format!("status {} is not a final HTTP status (200..=599)", resp.status));
    }
    if resp.headers.len() > MAX_EDITS {
        return Err(format!("{} headers ({MAX_EDITS} allowed)", resp.headers.len()));
    }
    check_headers(&resp.headers, &mut 0)?;
    if resp.body.len() > MAX_BODY {
        return Err(format!("a {}-byte body ({MAX_BODY} allowed)", resp.body.len()));
    }
    Ok(())
}

/// What a plugin declared about request bodies, which decides whether `need-body` is allowed.
#[derive(Debug, Clone, Copy)]
pub struct BodyNeeds {
    /// Whether it exports `on-request-body`.
    pub has_body_hook: bool,
    /// The most body bytes it declared in `describe`, if any.
    pub max_body_bytes: Option<u32>,
}

/// Checks a request hook's verdict before anything of it is applied: edits and local
/// responses as [`check_edits`] and [`check_local`], `need-body` only from a plugin with a
/// body hook and within what it declared. `Err` says why the verdict is invalid.
pub fn check_request_verdict(verdict: &RequestVerdict, body: BodyNeeds) -> Result<(), String> {
    match verdict {
        RequestVerdict::Continue | RequestVerdict::Coalesce(_) => Ok(()),
        RequestVerdict::Edit(e) => check_edits(e),
        RequestVerdict::Respond(r) => check_local(r),
        RequestVerdict::RouteTo(c) => check_edits(&c.edits),
        RequestVerdict::NeedBody(n) if !body.has_body_hook => Err(format!(
            "need-body({n}) from a plugin that does not implement on-request-body"
        )),
        RequestVerdict::NeedBody(n) => match body.max_body_bytes {
            Some(max) if *n <= max => Ok(()),
            Some(max) => Err(format!(
                "need-body({n}) is above the {max} bytes it declared in describe"
            )),
            None => Err(format!(
                "need-body({n}) from a plugin that declared no body needs in describe"
            )),
        },
    }
}

/// Checks a response hook's verdict: edits and replacements as [`check_edits`] and
/// [`check_local`]; compress and store are judged where they are performed.
pub fn check_response_verdict(verdict: &ResponseVerdict) -> Result<(), String> {
    match verdict {
        ResponseVerdict::Edit(e) => check_edits(e),
        ResponseVerdict::Replace(r) => check_local(r),
        _ => Ok(()),
    }
}

/// Edits that change nothing.
pub fn no_edits() -> HeaderEdits {
    HeaderEdits {
        set: Vec::new(),
        append: Vec::new(),
        remove: Vec::new(),
        context: Vec::new(),
    }
}

/// Applies checked edits to `headers`: remove, then set (replacing), then append. Names
/// are stored lower case.
pub fn apply_edits(headers: &mut Vec<(String, Vec<u8>)>, edits: HeaderEdits) {
    let HeaderEdits {
        set, append, remove, ..
    } = edits;
    if !remove.is_empty() || !set.is_empty() {
        headers.retain(|(n, _)| {
            !remove.iter().any(|r| r.eq_ignore_ascii_case(n)) && !set.iter().any(|(s, _)| s.eq_ignore_ascii_case(n))
        });
    }
    for (name, value) in set.into_iter().chain(append) {
        headers.push((name.to_ascii_lowercase(), value));
    }
}

/// Adds to `names` (lower case, each once) the header names `edits` sets, appends or removes.
pub fn note_edited_names(edits: &HeaderEdits, names: &mut Vec<String>) {
    let touched = edits
        .set
        .iter()
        .chain(&edits.append)
        .map(|(n, _)| n)
        .chain(&edits.remove);
    for name in touched {
        if !names.iter().any(|known| known.eq_ignore_ascii_case(name)) {
            names.push(name.to_ascii_lowercase());
        }
    }
}

/// Merges context entries into `context`; a key given again replaces the earlier value.
pub fn apply_context(context: &mut Vec<(String, String)>, entries: Vec<(String, String)>) {
    for (k, v) in entries {
        match context.iter_mut().find(|(existing, _)| *existing == k) {
            Some(slot) => slot.1 = v,
            None => context.push((k, v)),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(set: &[(&str, &str)], append: &[(&str, &str)], remove: &[&str]) -> HeaderEdits {
        let h = |l: &[(&str, &str)]| l.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect();
        HeaderEdits {
            set: h(set),
            append: h(append),
            remove: remove.iter().map(|s| s.to_string()).collect(),
            context: vec![],
        }
    }

    #[test]
    fn edits_remove_then_set_then_append() {
        let mut headers = vec![
            ("x-a".to_string(), b"1".to_vec()),
            ("x-b".to_string(), b"2".to_vec()),
            ("X-C".to_string(), b"3".to_vec()),
        ];
        apply_edits(&mut headers, edits(&[("X-A", "new")], &[("x-b", "more")], &["x-c"]));
        assert_eq!(
            headers,
            vec![
                ("x-b".to_string(), b"2".to_vec()),
                ("x-a".to_string(), b"new".to_vec()),
                ("x-b".to_string(), b"more".to_vec()),
            ]
        );
    }

    #[test]
    fn bad_names_values_framing_and_sizes_are_refused() {
        assert!(
            check_edits(&edits(&[("bad name", "v")], &[], &[]))
                .unwrap_err()
                .contains("not a valid header name")
        );
        assert!(
            check_edits(&edits(&[("x", "a\r\nb: c")], &[], &[]))
                .unwrap_err()
                .contains("forbidden bytes")
        );
        assert!(
            check_edits(&edits(&[], &[], &["content-length"]))
                .unwrap_err()
                .contains("managed by the host")
        );
        let huge = "v".repeat(MAX_VALUE + 1);
        assert!(check_edits(&edits(&[("x", &huge)], &[], &[])).is_err());
        let many: Vec<(String, String)> = (0..=MAX_EDITS).map(|i| (format!("x-{i}"), "v".to_string())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert!(
            check_edits(&edits(&[], &many, &[]))
                .unwrap_err()
                .contains("header edits")
        );
        assert!(check_edits(&edits(&[("x-ok", "fine")], &[("x-ok", "too")], &["x-gone"])).is_ok());
    }

    #[test]
    fn local_responses_need_a_real_status() {
        let resp = |status| LocalResponse {
            status,
            headers: vec![],
            body: vec![],
        };
        assert!(check_local(&resp(42)).is_err());
        assert!(
            check_local(&resp(101)).is_err(),
            "no upgrades or interim answers from plugins"
        );
        assert!(check_local(&resp(600)).is_err());
        assert!(check_local(&resp(204)).is_ok());
    }

    #[test]
    fn edited_names_are_noted_once_in_lower_case() {
        let mut names = vec!["x-old".to_string()];
        note_edited_names(
            &edits(&[("X-A", "1")], &[("x-b", "2"), ("X-OLD", "3")], &["x-a", "X-C"]),
            &mut names,
        );
        assert_eq!(names, ["x-old", "x-a", "x-b", "x-c"]);
    }

    #[test]
    fn framing_names_are_found_in_any_case_and_nothing_else_is() {
        for name in [
            "content-length",
            "Transfer-Encoding",
            "CONNECTION",
            "keep-alive",
            "proxy-connection",
            "TE",
            "trailer",
            "Upgrade",
        ] {
            assert!(is_framing(name), "{name}");
        }
        for name in ["content-type", "tea", "t", "", "upgrades", "x-connection", "trailers"] {
            assert!(!is_framing(name), "{name}");
        }
    }

    #[test]
    fn names_and_values_are_checked_as_http_checks_them() {
        for b in 0..=255u8 {
            let one = [b];
            assert_eq!(
                is_token(&one),
                http::HeaderName::from_bytes(&one).is_ok(),
                "name byte {b}"
            );
            assert_eq!(
                is_field_value(&one),
                http::HeaderValue::from_bytes(&one).is_ok(),
                "value byte {b}"
            );
        }
        assert!(is_token(b"X-Custom-Name"));
        assert!(!is_token(b"bad name"));
        assert!(is_field_value("caf\u{e9}\tok".as_bytes()));
    }

    #[test]
    fn context_entries_replace_by_key() {
        let mut ctx = vec![("tier".to_string(), "free".to_string())];
        apply_context(
            &mut ctx,
            vec![("tier".into(), "pro".into()), ("sub".into(), "u1".into())],
        );
        assert_eq!(
            ctx,
            vec![
                ("tier".to_string(), "pro".to_string()),
                ("sub".to_string(), "u1".to_string())
            ]
        );
    }
}

//! The signature scheme, pure and testable natively.
//!
//! The client sends `x-signature: t=<unix seconds>,k=<key id>,v1=<hex HMAC-SHA256>` where the
//! MAC, keyed with the secret of key `k`, covers `<t>.<METHOD>.<path and query>.<hex SHA-256 of
//! the body>`. The timestamp bounds replays to the allowed clock skew.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// A parsed signature header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// When the client signed, in Unix seconds.
    pub timestamp: u64,
    /// The key id.
    pub key_id: String,
    /// The MAC bytes.
    pub mac: Vec<u8>,
}

/// Why a request's signature is not accepted; each has a stable code for the 401 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No signature header.
    Missing,
    /// The header does not parse.
    Malformed(&'static str),
    /// The timestamp is outside the allowed skew.
    Expired,
    /// The key id is not configured.
    UnknownKey,
    /// The MAC does not match.
    Mismatch,
}

impl Rejection {
    /// The error code in the response body.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Missing => "signature_missing",
            Rejection::Malformed(_) => "signature_malformed",
            Rejection::Expired => "signature_expired",
            Rejection::UnknownKey => "signature_unknown_key",
            Rejection::Mismatch => "signature_mismatch",
        }
    }

    /// A sentence for the caller.
    pub fn message(&self) -> String {
        match self {
            Rejection::Missing => "the request has no signature header".into(),
            Rejection::Malformed(why) => format!("the signature header is malformed: {why}"),
            Rejection::Expired => "the signature's timestamp is outside the allowed clock skew".into(),
            Rejection::UnknownKey => "the signature names a key this gateway does not know".into(),
            Rejection::Mismatch => "the signature does not match the request".into(),
        }
    }
}

/// Parses `t=…,k=…,v1=…` (any order, each once).
pub fn parse(header: &str) -> Result<Signature, Rejection> {
    let (mut t, mut k, mut v) = (None, None, None);
    for part in header.split(',') {
        let (name, value) = part
            .trim()
            .split_once('=')
            .ok_or(Rejection::Malformed("expected name=value pairs"))?;
        let slot = match name {
            "t" => &mut t,
            "k" => &mut k,
            "v1" => &mut v,
            _ => return Err(Rejection::Malformed("unknown field (expected t, k and v1)")),
        };
        if slot.replace(value).is_some() {
            return Err(Rejection::Malformed("a field is repeated"));
        }
    }
    let timestamp = t
        .ok_or(Rejection::Malformed("t is missing"))?
        .parse()
        .map_err(|_| Rejection::Malformed("t is not a number of seconds"))?;
    let key_id = k
        .filter(|k| !k.is_empty())
        .ok_or(Rejection::Malformed("k is missing"))?
        .to_string();
    let mac =
        hex_decode(v.ok_or(Rejection::Malformed("v1 is missing"))?).ok_or(Rejection::Malformed("v1 is not hex"))?;
    Ok(Signature { timestamp, key_id, mac })
}

/// The bytes the MAC covers.
pub fn signed_string(timestamp: u64, method: &str, path: &str, body: &[u8]) -> String {
    format!("{timestamp}.{method}.{path}.{}", hex_encode(&Sha256::digest(body)))
}

/// The MAC of `message` with `secret`.
pub fn mac(secret: &[u8], message: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(message.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Checks `sig` for a request at `now_s` with `secret`, allowing `max_skew_s` either way; the
/// comparison is constant-time.
pub fn verify(
    sig: &Signature,
    secret: &[u8],
    now_s: u64,
    max_skew_s: u64,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(), Rejection> {
    if sig.timestamp.abs_diff(now_s) > max_skew_s {
        return Err(Rejection::Expired);
    }
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(signed_string(sig.timestamp, method, path, body).as_bytes());
    m.verify_slice(&sig.mac).map_err(|_| Rejection::Mismatch)
}

/// Lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(secret: &[u8], t: u64, body: &[u8]) -> String {
        let mac = mac(secret, &signed_string(t, "POST", "/orders?x=1", body));
        format!("t={t},k=partner-a,v1={}", hex_encode(&mac))
    }

    #[test]
    fn a_good_signature_verifies_and_any_change_breaks_it() {
        let sig = parse(&header(b"s3cret", 1_700_000_000, b"{\"n\":1}")).unwrap();
        assert_eq!(sig.key_id, "partner-a");
        let ok = |secret: &[u8], now, method, path, body: &[u8]| verify(&sig, secret, now, 300, method, path, body);
        assert_eq!(
            ok(b"s3cret", 1_700_000_100, "POST", "/orders?x=1", b"{\"n\":1}"),
            Ok(())
        );
        assert_eq!(
            ok(b"s3cret", 1_700_000_100, "POST", "/orders?x=1", b"{\"n\":2}"),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            ok(b"s3cret", 1_700_000_100, "PUT", "/orders?x=1", b"{\"n\":1}"),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            ok(b"other", 1_700_000_100, "POST", "/orders?x=1", b"{\"n\":1}"),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            ok(b"s3cret", 1_700_000_301, "POST", "/orders?x=1", b"{\"n\":1}"),
            Err(Rejection::Expired)
        );
    }

    #[test]
    fn malformed_headers_say_what_is_wrong() {
        for (bad, want) in [
            ("t=1,k=a", "v1 is missing"),
            ("t=x,k=a,v1=00", "t is not a number of seconds"),
            ("t=1,k=a,v1=zz", "v1 is not hex"),
            ("t=1,t=2,k=a,v1=00", "a field is repeated"),
            ("garbage", "expected name=value pairs"),
            ("t=1,k=a,v2=00", "unknown field (expected t, k and v1)"),
        ] {
            assert_eq!(parse(bad), Err(Rejection::Malformed(want)), "{bad}");
        }
    }
}

//! Sluice API keys.
//!
//! A key is `sk_<env>_` + 32 base62 characters of randomness (about 190 bits) + 6 base62
//! characters encoding the CRC32 of everything before them, for example
//! `sk_live_4fZ0…Qx9a0Kc3`. The recognisable prefix lets secret scanners find leaked keys; the
//! check characters let the gateway reject a mistyped key without a database lookup.
//!
//! Keys are never stored: `api_keys.key_hash` holds HMAC-SHA256(server secret, key), so a
//! leaked table cannot be used to authenticate, and `api_keys.prefix` holds the first
//! [`DISPLAY_PREFIX`] characters so people can tell keys apart.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The base62 alphabet, in order of value.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters in a key.
pub const BODY_LEN: usize = 32;
/// Check characters at the end of a key (CRC32 in base62, fixed width).
pub const CHECK_LEN: usize = 6;
/// The longest environment name (`live`, `test`, …).
pub const MAX_ENV_LEN: usize = 16;
/// Characters of a key shown in listings and stored in `api_keys.prefix`.
pub const DISPLAY_PREFIX: usize = 12;
/// The longest key string accepted at all (longer input is refused before any work).
pub const MAX_KEY_LEN: usize = 3 + MAX_ENV_LEN + 1 + BODY_LEN + CHECK_LEN;

/// Why a string is not a well-formed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// It does not start with `sk_<env>_`.
    Prefix,
    /// It is too short or too long.
    Length,
    /// It has a character outside base62.
    Charset,
    /// The check characters do not match: a typo, or not a key at all.
    Checksum,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyError::Prefix => "not an sk_<env>_ key",
            KeyError::Length => "wrong length",
            KeyError::Charset => "a character outside base62",
            KeyError::Checksum => "the check characters do not match",
        })
    }
}

impl std::error::Error for KeyError {}

fn check_chars(text: &str) -> [u8; CHECK_LEN] {
    let mut n = crc32fast::hash(text.as_bytes());
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// Whether `env` can name a key environment: 1 to [`MAX_ENV_LEN`] lower-case letters or digits.
pub fn valid_env(env: &str) -> bool {
    (1..=MAX_ENV_LEN).contains(&env.len()) && env.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A new key for environment `env` (see [`valid_env`]), its randomness drawn from
/// `random_byte` (a cryptographic source; bytes are rejection-sampled so every character is
/// uniform). Panics when `env` is not valid.
pub fn generate(env: &str, mut random_byte: impl FnMut() -> u8) -> String {
    assert!(valid_env(env), "invalid key environment '{env}'");
    let mut key = format!("sk_{env}_");
    let mut body = 0;
    while body < BODY_LEN {
        let b = random_byte();
        // 248 = 4 × 62: bytes at or above it would favour the first characters.
        if b < 248 {
            key.push(ALPHABET[(b % 62) as usize] as char);
            body += 1;
        }
    }
    let check = check_chars(&key);
    key.push_str(std::str::from_utf8(&check).expect("base62 is ASCII"));
    key
}

/// Checks that `key` is well formed and its check characters match, without any lookup.
/// Returns the key's environment.
pub fn parse(key: &str) -> Result<&str, KeyError> {
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::Length);
    }
    let rest = key.strip_prefix("sk_").ok_or(KeyError::Prefix)?;
    let (env, tail) = rest.split_once('_').ok_or(KeyError::Prefix)?;
    if !valid_env(env) {
        return Err(KeyError::Prefix);
    }
    if tail.len() != BODY_LEN + CHECK_LEN {
        return Err(KeyError::Length);
    }
    if !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyError::Charset);
    }
    let (signed, check) = key.split_at(key.len() - CHECK_LEN);
    if !constant_time_eq(&check_chars(signed), check.as_bytes()) {
        return Err(KeyError::Checksum);
    }
    Ok(env)
}

/// The keyed hash stored for `key`: HMAC-SHA256 with the server `secret`.
pub fn hash(secret: &[u8], key: &str) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The part of `key` shown to people and stored in `api_keys.prefix`.
pub fn display_prefix(key: &str) -> &str {
    &key[..key.len().min(DISPLAY_PREFIX)]
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Lower-case hex of bytes (the form a key hash travels in on revocation messages and cache
/// keys).
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> u8 {
        let mut n: u32 = 7;
        move || {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (n >> 16) as u8
        }
    }

    #[test]
    fn generated_keys_parse_and_typos_do_not() {
        let key = generate("live", counter());
        assert!(key.starts_with("sk_live_"));
        assert_eq!(key.len(), 8 + BODY_LEN + CHECK_LEN);
        assert_eq!(parse(&key), Ok("live"));
        // Every single-character substitution is caught by the check characters.
        for i in 8..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(parse(&typo), Err(KeyError::Checksum), "{typo}");
        }
        // Two characters swapped are caught too.
        let mut bytes = key.clone().into_bytes();
        let (a, b) = (10, 11);
        if bytes[a] != bytes[b] {
            bytes.swap(a, b);
            assert_eq!(parse(std::str::from_utf8(&bytes).unwrap()), Err(KeyError::Checksum));
        }
    }

    #[test]
    fn malformed_keys_are_refused_before_any_work() {
        let key = generate("test", counter());
        assert_eq!(parse("pk_live_abc"), Err(KeyError::Prefix));
        assert_eq!(parse("sk_LIVE_abc"), Err(KeyError::Prefix));
        assert_eq!(parse("sk_live_short"), Err(KeyError::Length));
        assert_eq!(parse(&key[..key.len() - 1]), Err(KeyError::Length));
        assert_eq!(parse(&format!("{key}x")), Err(KeyError::Length));
        assert_eq!(parse(&"x".repeat(10_000)), Err(KeyError::Length));
        let mut bytes = key.into_bytes();
        bytes[20] = b'-';
        assert_eq!(parse(std::str::from_utf8(&bytes).unwrap()), Err(KeyError::Charset));
    }

    #[test]
    fn the_hash_is_keyed_and_stable() {
        let key = generate("live", counter());
        assert_eq!(hash(b"secret", &key), hash(b"secret", &key));
        assert_ne!(hash(b"secret", &key), hash(b"other", &key));
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hash(b"Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(display_prefix(&key).len(), DISPLAY_PREFIX);
    }
}

//! The body of the fuzz target `auth_jwt` (`fuzz/fuzz_targets/auth_jwt.rs`): JWT and JWK
//! parsing on arbitrary input, which must never panic (and never accept a token the key did
//! not sign). The unit test runs it over the corpus kept in `fuzz/corpus/auth_jwt/`.

use crate::jwt;
use crate::jwt_keys::{Alg, VerifyKey};
use crate::settings::JwtSettings;

/// The HMAC secret the target's key verifies with.
const SECRET: &[u8] = b"sluice-fuzz-secret-of-32-bytes!!";

/// Reads `data` as a compact JWT (checked, verified with an HS256 key, its claims read) and
/// as a JWK (turned into a verifying key as from a JWKS and as from the config).
pub fn auth_jwt(data: &[u8]) {
    let settings: JwtSettings = serde_json::from_str("{}").expect("the defaults parse");
    let keys = [VerifyKey::hmac(None, Alg::Hs256, SECRET).expect("a 32-byte HMAC key")];
    if let Ok(token) = std::str::from_utf8(data)
        && let Ok(parsed) = jwt::parse(token, 16 * 1024)
    {
        let candidates = parsed.candidates(&keys);
        let _ = parsed.signed_by(&candidates);
        let _ = parsed.claims(&settings, 1_767_225_600);
    }
    if let Ok(jwk) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = VerifyKey::from_jwk(&jwk, None);
        let _ = VerifyKey::from_configured_jwk(&jwk);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kept_input_runs_through_the_target() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/auth_jwt");
        let mut ran = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            super::auth_jwt(&std::fs::read(entry.unwrap().path()).unwrap());
            ran += 1;
        }
        assert!(ran > 0, "the corpus is there");
    }
}

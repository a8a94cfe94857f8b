//! Verification keys for JWTs, each bound to one algorithm: the algorithm a token names must
//! be its key's, so `alg: none`, an HMAC token checked with an RSA public key (algorithm
//! confusion) or a downgrade cannot pass. Keys come from the config (HMAC secrets and JWKs)
//! and from JWKS documents.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};
use sluice_plugin_sdk::crypto::{self, PublicKey};

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// A JWS algorithm this plugin verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// HMAC with SHA-256, -384, -512.
    Hs256,
    /// See [`Alg::Hs256`].
    Hs384,
    /// See [`Alg::Hs256`].
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256, -384, -512.
    Rs256,
    /// See [`Alg::Rs256`].
    Rs384,
    /// See [`Alg::Rs256`].
    Rs512,
    /// RSASSA-PSS with SHA-256, -384, -512.
    Ps256,
    /// See [`Alg::Ps256`].
    Ps384,
    /// See [`Alg::Ps256`].
    Ps512,
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// ECDSA P-384 with SHA-384.
    Es384,
    /// ECDSA P-521 with SHA-512.
    Es512,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// Every algorithm, in the order of the enum.
    const ALL: [Alg; 13] = [
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
    ];

    /// The algorithm named `name` in a JOSE header or JWK (`none` and unknown names: none).
    pub fn from_name(name: &str) -> Option<Alg> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The algorithm's JOSE name, as the host's `crypto.verify-jws` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
        }
    }
}

/// The key material: HMAC secrets are checked in the plugin; public keys, once parsed and
/// validated here, are checked by the host (`crypto`), natively.
#[derive(Clone)]
enum Material {
    Hmac(Vec<u8>),
    Public(PublicKey),
}

/// A verification key bound to one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    /// The key id tokens name it by (`kid`), if it has one.
    pub kid: Option<String>,
    /// The one algorithm it verifies.
    pub alg: Alg,
    material: Material,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

/// Refuses a JWK that may not verify signatures: a `use` other than `sig` (RFC 7517 §4.2), or a
/// `key_ops` (§4.3) that does not allow `verify`, is not an array of strings, or names an
/// operation twice. The two both restrict a key: `"use": "sig"` with `key_ops` lacking
/// `verify` is refused too.
fn check_restrictions(jwk: &Value) -> Result<(), String> {
    if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
        return Err("the JWK is not for signatures ('use' is not 'sig')".into());
    }
    let Some(ops) = jwk.get("key_ops") else {
        return Ok(());
    };
    let ops = ops
        .as_array()
        .ok_or("the JWK's 'key_ops' is not an array")?
        .iter()
        .map(|op| {
            op.as_str()
                .ok_or("the JWK's 'key_ops' holds something other than a string")
        })
        .collect::<Result<Vec<&str>, _>>()?;
    if ops.iter().enumerate().any(|(i, op)| ops[..i].contains(op)) {
        return Err("the JWK's 'key_ops' names an operation twice".into());
    }
    if !ops.contains(&"verify") {
        return Err("the JWK may not verify signatures ('key_ops' does not include 'verify')".into());
    }
    Ok(())
}

fn b64(value: Option<&Value>, what: &str) -> Result<Vec<u8>, String> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the JWK has no '{what}'"))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| format!("the JWK's '{what}' is not base64url"))
}

impl VerifyKey {
    /// An HMAC key for `alg` (HS256/384/512) with `secret` (at least 32 bytes).
    pub fn hmac(kid: Option<String>, alg: Alg, secret: &[u8]) -> Result<Self, String> {
        if !matches!(alg, Alg::Hs256 | Alg::Hs384 | Alg::Hs512) {
            return Err("an HMAC secret can only verify HS256, HS384 or HS512".into());
        }
        if secret.len() < 32 {
            return Err("an HMAC secret must be at least 32 bytes".into());
        }
        Ok(VerifyKey {
            kid,
            alg,
            material: Material::Hmac(secret.to_vec()),
        })
    }

    /// A key from a JWK in the route's config: a symmetric (`oct`) JWK is an HMAC secret (its
    /// `k`, base64url), which must name its `alg` (HS256, HS384 or HS512) and may not verify
    /// anything else; any other JWK is read as [`from_jwk`](Self::from_jwk) reads it.
    pub fn from_configured_jwk(jwk: &Value) -> Result<Self, String> {
        if jwk.get("kty").and_then(Value::as_str) != Some("oct") {
            return Self::from_jwk(jwk, None);
        }
        check_restrictions(jwk)?;
        let alg = jwk
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::from_name)
            .filter(|a| matches!(a, Alg::Hs256 | Alg::Hs384 | Alg::Hs512))
            .ok_or("an oct JWK must name its alg: HS256, HS384 or HS512")?;
        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
        Self::hmac(kid, alg, &b64(jwk.get("k"), "k")?)
    }

    /// A public key from a JWK object. Its algorithm is the JWK's `alg` or, when absent,
    /// `default_alg`; it must fit the key type. Symmetric (`oct`) JWKs and private parts are
    /// refused: public key sets carry public keys only.
    pub fn from_jwk(jwk: &Value, default_alg: Option<Alg>) -> Result<Self, String> {
        let kty = jwk.get("kty").and_then(Value::as_str).ok_or("the JWK has no 'kty'")?;
        if jwk.get("d").is_some() {
            return Err("the JWK holds a private key; publish public keys only".into());
        }
        check_restrictions(jwk)?;
        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_string);
        let named = match jwk.get("alg").and_then(Value::as_str) {
            Some(name) => Some(Alg::from_name(name).ok_or_else(|| format!("unsupported JWK alg '{name}'"))?),
            None => None,
        };
        let (alg, material) = match kty {
            "RSA" => {
                let alg = named.or(default_alg).unwrap_or(Alg::Rs256);
                if !matches!(
                    alg,
                    Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
                ) {
                    return Err("an RSA key can only verify RS256, RS384, RS512, PS256, PS384 or PS512".into());
                }
                let (n, e) = (b64(jwk.get("n"), "n")?, b64(jwk.get("e"), "e")?);
                let key = rsa::RsaPublicKey::new(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from_bytes_be(&e))
                    .map_err(|e| format!("bad RSA key: {e}"))?;
                if rsa::traits::PublicKeyParts::size(&key) * 8 < MIN_RSA_BITS {
                    return Err(format!("RSA keys must have at least {MIN_RSA_BITS} bits"));
                }
                (alg, Material::Public(PublicKey::Rsa((n, e))))
            }
            "EC" => {
                let crv = jwk
                    .get("crv")
                    .and_then(Value::as_str)
                    .ok_or("the EC JWK has no 'crv'")?;
                let (x, y) = (b64(jwk.get("x"), "x")?, b64(jwk.get("y"), "y")?);
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                match crv {
                    "P-256" if x.len() == 32 && y.len() == 32 => {
                        if named.is_some_and(|a| a != Alg::Es256) {
                            return Err("a P-256 key can only verify ES256".into());
                        }
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                            .map_err(|_| "bad P-256 point".to_string())?;
                        (Alg::Es256, Material::Public(PublicKey::Ec(point)))
                    }
                    "P-384" if x.len() == 48 && y.len() == 48 => {
                        if named.is_some_and(|a| a != Alg::Es384) {
                            return Err("a P-384 key can only verify ES384".into());
                        }
                        p384::ecdsa::VerifyingKey::from_sec1_bytes(&point)
                            .map_err(|_| "bad P-384 point".to_string())?;
                        (Alg::Es384, Material::Public(PublicKey::Ec(point)))
                    }
                    "P-521" if x.len() == 66 && y.len() == 66 => {
                        if named.is_some_and(|a| a != Alg::Es512) {
                            return Err("a P-521 key can only verify ES512".into());
                        }
                        p521::PublicKey::from_sec1_bytes(&point).map_err(|_| "bad P-521 point".to_string())?;
                        (Alg::Es512, Material::Public(PublicKey::Ec(point)))
                    }
                    other => return Err(format!("unsupported or malformed EC curve '{other}'")),
                }
            }
            "OKP" => {
                if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
                    return Err("only Ed25519 OKP keys are supported".into());
                }
                if named.is_some_and(|a| a != Alg::EdDsa) {
                    return Err("an Ed25519 key can only verify EdDSA".into());
                }
                let x: [u8; 32] = b64(jwk.get("x"), "x")?
                    .try_into()
                    .map_err(|_| "an Ed25519 key is 32 bytes".to_string())?;
                ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "bad Ed25519 key".to_string())?;
                (Alg::EdDsa, Material::Public(PublicKey::Ed25519(x.to_vec())))
            }
            "oct" => {
                return Err("symmetric keys are not accepted from a key set; configure them in jwt.keys".into());
            }
            other => return Err(format!("unsupported key type '{other}'")),
        };
        Ok(VerifyKey { kid, alg, material })
    }

    /// Whether `signature` is this key's signature of `signed` (the token's
    /// `header.payload`). ECDSA signatures must be the JWS form (raw `r || s`), never DER.
    pub fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
        match (&self.material, self.alg) {
            (Material::Hmac(secret), Alg::Hs256) => hmac_ok::<Hmac<Sha256>>(secret, signed, signature),
            (Material::Hmac(secret), Alg::Hs384) => hmac_ok::<Hmac<Sha384>>(secret, signed, signature),
            (Material::Hmac(secret), Alg::Hs512) => hmac_ok::<Hmac<Sha512>>(secret, signed, signature),
            (Material::Public(key), alg) => crypto::verify_jws(alg.name(), key, signed, signature),
            _ => false,
        }
    }
}

fn hmac_ok<M: Mac + hmac::digest::KeyInit>(secret: &[u8], signed: &[u8], signature: &[u8]) -> bool {
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(signed);
    // verify_slice compares in constant time.
    mac.verify_slice(signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The Ed25519 public key of RFC 8037, Appendix A.2.
    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn jwk(extra: Value) -> Value {
        let mut key = json!({"kty": "OKP", "crv": "Ed25519", "x": X});
        key.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        key
    }

    /// RFC 7515, Appendix A.1: the HMAC key (binary, as a JWK) and the signed example.
    const RFC7515_K: &str = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    const RFC7515_SIGNED: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    const RFC7515_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    #[test]
    fn a_configured_oct_jwk_is_an_hmac_key_bound_to_its_alg() {
        let key = VerifyKey::from_configured_jwk(&json!({"kty": "oct", "alg": "HS256", "k": RFC7515_K})).unwrap();
        assert_eq!(key.alg, Alg::Hs256);
        let mut sig = URL_SAFE_NO_PAD.decode(RFC7515_SIG).unwrap();
        assert!(key.verify(RFC7515_SIGNED.as_bytes(), &sig));
        sig[0] ^= 1;
        assert!(!key.verify(RFC7515_SIGNED.as_bytes(), &sig));

        for refused in [
            json!({"kty": "oct", "k": RFC7515_K}),
            json!({"kty": "oct", "alg": "RS256", "k": RFC7515_K}),
            json!({"kty": "oct", "alg": "HS256", "k": "c2hvcnQ"}),
            json!({"kty": "oct", "alg": "HS256", "k": RFC7515_K, "key_ops": ["sign"]}),
            json!({"kty": "oct", "alg": "HS256"}),
        ] {
            assert!(VerifyKey::from_configured_jwk(&refused).is_err(), "{refused}");
        }
        let fetched = VerifyKey::from_jwk(&json!({"kty": "oct", "alg": "HS256", "k": RFC7515_K}), None);
        assert!(fetched.is_err(), "symmetric keys never come from a fetched key set");
    }

    #[test]
    fn use_and_key_ops_both_restrict_a_key() {
        let cases = [
            (json!({}), true),
            (json!({"use": "sig"}), true),
            (json!({"key_ops": ["verify"]}), true),
            (json!({"key_ops": ["sign", "verify"]}), true),
            (json!({"use": "sig", "key_ops": ["verify"]}), true),
            (json!({"use": "enc"}), false),
            (json!({"key_ops": ["encrypt"]}), false),
            (json!({"key_ops": []}), false),
            (json!({"use": "sig", "key_ops": ["sign"]}), false),
            (json!({"use": "enc", "key_ops": ["verify"]}), false),
            (json!({"key_ops": ["verify", "verify"]}), false),
            (json!({"key_ops": "verify"}), false),
            (json!({"key_ops": [1]}), false),
        ];
        for (extra, usable) in cases {
            let result = VerifyKey::from_jwk(&jwk(extra.clone()), None);
            assert_eq!(result.is_ok(), usable, "{extra}: {:?}", result.err());
        }
    }
    /// RFC 7515 Appendix A and RFC 7520 §4 (keys of §3), shared with the host's tests.
    const VECTORS: &str = include_str!("../../../tests/vectors/jose-rfc.json");

    #[test]
    fn the_rfc_keys_bind_to_their_algorithms() {
        let all: Value = serde_json::from_str(VECTORS).unwrap();
        for v in all["public"].as_array().unwrap() {
            let named = Alg::from_name(v["alg"].as_str().unwrap()).unwrap();
            let key = VerifyKey::from_jwk(&v["key"], Some(named)).unwrap();
            assert_eq!(key.alg, named, "{}", v["name"]);
            assert_eq!(key.alg.name(), v["alg"], "{}", v["name"]);
        }
        let public = |jwk: &Value| {
            let mut jwk = jwk.clone();
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                jwk.as_object_mut().unwrap().remove(private);
            }
            jwk
        };
        let (rsa, ec) = (public(&all["keys"]["rsa"]), public(&all["keys"]["ec"]));
        assert!(
            VerifyKey::from_jwk(&all["keys"]["rsa"], None).is_err(),
            "a private JWK is refused"
        );
        for (extra, alg) in [
            (json!({}), Some(Alg::Rs256)),
            (json!({"alg": "PS384"}), Some(Alg::Ps384)),
        ] {
            let mut jwk = rsa.clone();
            jwk.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            assert_eq!(VerifyKey::from_jwk(&jwk, None).ok().map(|k| k.alg), alg, "{extra}");
        }
        for (extra, alg) in [
            (json!({}), Some(Alg::Es512)),
            (json!({"alg": "ES512"}), Some(Alg::Es512)),
            (json!({"alg": "ES256"}), None),
            (json!({"alg": "PS512"}), None),
            (json!({"crv": "P-384"}), None),
            (json!({"x": "AHKZ"}), None),
        ] {
            let mut jwk = ec.clone();
            jwk.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            assert_eq!(VerifyKey::from_jwk(&jwk, None).ok().map(|k| k.alg), alg, "{extra}");
        }
        let mut off_curve = ec.clone();
        let mut y = URL_SAFE_NO_PAD.decode(ec["y"].as_str().unwrap()).unwrap();
        y[60] ^= 1;
        off_curve["y"] = json!(URL_SAFE_NO_PAD.encode(&y));
        assert!(
            VerifyKey::from_jwk(&off_curve, None).is_err(),
            "a point off P-521 is refused"
        );
    }

    #[test]
    fn the_rfc_7520_hmac_examples_verify_with_its_binary_key() {
        let all: Value = serde_json::from_str(VECTORS).unwrap();
        let key = VerifyKey::from_configured_jwk(&all["keys"]["oct"]).unwrap();
        assert_eq!(
            (key.alg, key.kid.as_deref()),
            (Alg::Hs256, Some("018c0ae5-4d9b-471b-bfd6-eef314bc7037"))
        );
        for v in all["hmac"].as_array().unwrap() {
            let input = v["signing_input"].as_str().unwrap().as_bytes();
            let sig = URL_SAFE_NO_PAD.decode(v["signature"].as_str().unwrap()).unwrap();
            assert!(key.verify(input, &sig), "{}", v["name"]);
            assert!(!key.verify(&input[1..], &sig), "{}", v["name"]);
        }
    }
}

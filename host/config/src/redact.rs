//! The config in force as an operator may see it: the TOML text it was parsed from with every
//! secret replaced, for the admin API and the dashboard.
//!
//! What counts as a secret: the value of any key whose name contains `secret`, `password`,
//! `passwd`, `token`, `credential` or `private`; the private members of a JWK (a table with
//! `kty`: `d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`); and the password of any URL written
//! `scheme://user:password@host`. A `${env:NAME}` reference is kept: it names a variable,
//! not its value.

use toml::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Key names that mark their value as a secret.
const SECRET_WORDS: [&str; 6] = ["secret", "password", "passwd", "token", "credential", "private"];

/// The private members of a JWK.
const JWK_PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// `text` (a gateway config) with its secrets replaced, re-rendered as TOML; an error when
/// it is not TOML.
pub fn redacted_toml(text: &str) -> Result<String, toml::de::Error> {
    let mut value: Value = toml::from_str(text)?;
    redact(&mut value);
    Ok(toml::to_string_pretty(&value).unwrap_or_default())
}

/// Replaces the secrets in `value`, recursively.
fn redact(value: &mut Value) {
    match value {
        Value::Table(table) => {
            let jwk = table.contains_key("kty");
            for (key, member) in table.iter_mut() {
                let lower = key.to_ascii_lowercase();
                let secret_name = SECRET_WORDS.iter().any(|w| lower.contains(w));
                if secret_name || (jwk && JWK_PRIVATE.contains(&lower.as_str())) {
                    hide(member);
                } else {
                    redact(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) => {
            if let Some(clean) = without_url_password(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// Replaces a secret value (every string inside it) unless it is an environment reference.
fn hide(value: &mut Value) {
    match value {
        Value::String(s) if is_env_reference(s) => {}
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Table(table) => table.iter_mut().for_each(|(_, v)| hide(v)),
        other => *other = Value::String(REDACTED.into()),
    }
}

fn is_env_reference(s: &str) -> bool {
    s.starts_with("${env:") && s.ends_with('}') && !s[6..s.len() - 1].contains(['$', '{', '}'])
}

/// `url` with the password of its user info replaced; none when it has none.
fn without_url_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    if password.is_empty() || is_env_reference(password) {
        return None;
    }
    Some(format!("{scheme}://{user}:{REDACTED}@{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_replaced_and_the_rest_is_kept() {
        let text = r#"
[admin]
listen = "127.0.0.1:9901"
token = "admin-token-123"

[postgres]
url = "postgres://sluice:hunter2@db:5432/gw?sslmode=require"

[redis]
url = "redis://127.0.0.1:6379"

[[routes]]
name = "r"
plugins = [{ plugin = "auth", config = { secret = "s3cr3t", lookup_statement = "", hmac_keys = [{ kid = "a", secret_b64 = "AAAA" }], keys = [{ kty = "oct", alg = "HS256", k = "c2VjcmV0" }, { kty = "EC", crv = "P-256", x = "pub", d = "priv" }], other_secret = "${env:OTHER}" } }]
"#;
        let out = redacted_toml(text).unwrap();
        for secret in ["admin-token-123", "hunter2", "s3cr3t", "AAAA", "c2VjcmV0", "priv"] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        for kept in [
            "127.0.0.1:9901",
            "postgres://sluice:[redacted]@db:5432/gw?sslmode=require",
            "redis://127.0.0.1:6379",
            "${env:OTHER}",
            "\"pub\"",
            "lookup_statement",
        ] {
            assert!(out.contains(kept), "{kept} missing from:\n{out}");
        }
    }

    #[test]
    fn text_that_is_not_toml_is_an_error() {
        assert!(redacted_toml("[unclosed").is_err());
    }
}

//! The config in force as an operator may see it: the TOML text it was parsed from with every
//! secret replaced, for the admin API and the dashboard.
//!
//! What counts as a secret: the text of any key one of whose words (split at `_`, `-` and
//! lower-to-upper case changes) is `secret`, `password`, `passwd`, `pass`, `token`,
//! `credential(s)`, `private` or `apikey` (numbers and booleans, such as `max_token_bytes`, are
//! kept); the private members of a JWK (a table with `kty`: `d`, `p`, `q`, `dp`, `dq`, `qi`,
//! `oth`, `k`); the values of a route's `match.headers` (they may hold a credential); and in any
//! URL, the password of `scheme://user:password@host` and the values of query parameters named
//! like a secret. A `${env:NAME}` reference is kept: it names a variable, not its value.

use toml::Value;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Words of a key's name that mark its value as a secret.
const SECRET_WORDS: [&str; 9] = [
    "secret",
    "password",
    "passwd",
    "pass",
    "token",
    "credential",
    "credentials",
    "private",
    "apikey",
];

/// The private members of a JWK.
const JWK_PRIVATE: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// `text` (a gateway config) with its secrets replaced, re-rendered as TOML; an error when
/// it is not TOML.
pub fn redacted_toml(text: &str) -> Result<String, toml::de::Error> {
    let mut value: Value = toml::from_str(text)?;
    redact(&mut value);
    Ok(toml::to_string_pretty(&value).unwrap_or_default())
}

/// The words of a key's name, lower-cased: split at `_`, `-`, `.` and before an upper-case
/// letter that follows a lower-case one (`sentinelPassword` is `sentinel`, `password`).
fn words(name: &str) -> Vec<String> {
    let mut words = vec![String::new()];
    let mut previous_lower = false;
    for c in name.chars() {
        if matches!(c, '_' | '-' | '.') || (c.is_ascii_uppercase() && previous_lower) {
            words.push(String::new());
        }
        if c.is_ascii_alphanumeric() {
            words.last_mut().expect("never empty").push(c.to_ascii_lowercase());
        }
        previous_lower = c.is_ascii_lowercase();
    }
    words.retain(|w| !w.is_empty());
    words
}

/// Whether a key named `name` holds a secret.
fn secret_name(name: &str) -> bool {
    words(name).iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// Replaces the secrets in `value`, recursively.
fn redact(value: &mut Value) {
    match value {
        Value::Table(table) => {
            let jwk = table.contains_key("kty");
            let is_match = table.contains_key("path_prefix") || table.contains_key("path");
            for (key, member) in table.iter_mut() {
                let lower = key.to_ascii_lowercase();
                let match_headers = lower == "headers" && is_match && member.is_table();
                if secret_name(key) || match_headers || (jwk && JWK_PRIVATE.contains(&lower.as_str())) {
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

/// Replaces every string inside a secret value unless it is an environment reference
/// (numbers and booleans say nothing secret: `max_token_bytes`, `forward_credential`).
fn hide(value: &mut Value) {
    match value {
        Value::String(s) if !is_env_reference(s) => *s = REDACTED.into(),
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Table(table) => table.iter_mut().for_each(|(_, v)| hide(v)),
        _ => {}
    }
}

fn is_env_reference(s: &str) -> bool {
    s.starts_with("${env:") && s.ends_with('}') && !s[6..s.len() - 1].contains(['$', '{', '}'])
}

/// `url` with the password of its user info and the values of its secret-named query
/// parameters replaced; none when it has neither. The user info ends at the last `@` (a
/// password may hold an unencoded `/`, `?` or `#`).
fn without_url_password(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((userinfo, after)) if userinfo.contains(':') => (Some(userinfo), after),
        _ => (None, rest),
    };
    let mut changed = false;
    let mut out = format!("{scheme}://");
    if let Some((user, password)) = userinfo.and_then(|u| u.split_once(':')) {
        changed |= !password.is_empty() && !is_env_reference(password);
        let shown = if changed { REDACTED } else { password };
        out.push_str(&format!("{user}:{shown}@"));
    }
    match after.split_once('?') {
        Some((head, query)) => {
            let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, value)) if secret_name(name) && !value.is_empty() => {
                        changed = true;
                        format!("{name}={REDACTED}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push_str(&format!("{head}?{}", params.join("&")));
            if let Some(fragment) = fragment {
                out.push_str(&format!("#{fragment}"));
            }
        }
        None => out.push_str(after),
    }
    changed.then_some(out)
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

sentinel_url = "redis://:p/ss?w0rd@127.0.0.1:6379/0?sentinelPassword=sentinel-pw&db=2"

[[routes]]
name = "r"
match = { path_prefix = "/x", headers = { authorization = "Bearer match-credential" } }
plugins = [{ plugin = "auth", config = { secret = "s3cr3t", lookup_statement = "", max_token_bytes = 8192, forward_credential = true, headers = ["x-api-key"], hmac_keys = [{ kid = "a", secret_b64 = "AAAA" }], keys = [{ kty = "oct", alg = "HS256", k = "c2VjcmV0" }, { kty = "EC", crv = "P-256", x = "pub", d = "priv" }], other_secret = "${env:OTHER}" } }]
"#;
        let out = redacted_toml(text).unwrap();
        for secret in [
            "admin-token-123",
            "hunter2",
            "s3cr3t",
            "AAAA",
            "c2VjcmV0",
            "priv",
            "match-credential",
            "w0rd",
            "sentinel-pw",
        ] {
            assert!(!out.contains(secret), "{secret} left in:\n{out}");
        }
        for kept in [
            "127.0.0.1:9901",
            "postgres://sluice:[redacted]@db:5432/gw?sslmode=require",
            "redis://127.0.0.1:6379",
            "${env:OTHER}",
            "\"pub\"",
            "lookup_statement",
            "max_token_bytes = 8192",
            "forward_credential = true",
            "\"x-api-key\"",
            "db=2",
        ] {
            assert!(out.contains(kept), "{kept} missing from:\n{out}");
        }
    }

    #[test]
    fn names_are_split_into_words() {
        assert_eq!(words("sentinelPassword"), ["sentinel", "password"]);
        assert!(secret_name("secret_b64") && secret_name("api-token") && secret_name("sentinelPassword"));
        assert!(!secret_name("tokens_per_minute") && !secret_name("passthrough") && !secret_name("keys"));
    }

    #[test]
    fn text_that_is_not_toml_is_an_error() {
        assert!(redacted_toml("[unclosed").is_err());
    }
}

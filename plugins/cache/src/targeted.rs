//! Targeted cache-control fields (RFC 9213): `CDN-Cache-Control` and the gateway's own field
//! (`target_field`, for example `Sluice-Cache-Control`).
//!
//! A targeted field is a Structured Fields Dictionary (RFC 8941 §3.2) of cache directives.
//! The first of the cache's targets (its own field, then `CDN-Cache-Control`) that the
//! response carries with a valid, non-empty value replaces `Cache-Control` and `Expires` for
//! this cache (§2.2); an empty field, or one that does not parse as a Dictionary, is ignored
//! as if absent (§2.1) and the next target, then `Cache-Control`, applies.
//!
//! The Dictionary's members map onto the directives [`CacheControl`] knows: `?1` (a bare key)
//! is the directive without argument, `?0` is its absence, an Integer or a String is its
//! argument (`no-cache="set-cookie"`), a Token is taken as written. Any other value (Decimal,
//! Byte Sequence, Inner List, a negative Integer) is an invalid argument and gets the reading
//! `Cache-Control` gives invalid arguments (for `max-age` / `s-maxage`: stale). Parameters
//! are ignored. Unknown directives are ignored.

use sfv::{BareItem, Dictionary, ListEntry, Parser};
use sluice_plugin_sdk::Headers;

use crate::directives::CacheControl;
use crate::policy::Targets;

/// The field RFC 9213 defines for CDN caches.
pub const CDN_CACHE_CONTROL: &str = "cdn-cache-control";

/// The longest targeted field read (all lines together); a longer one is ignored as invalid.
const MAX_FIELD: usize = 8192;

/// The response directives this cache follows: the first valid targeted field of `targets`,
/// else `Cache-Control`.
pub fn response_directives(targets: Targets<'_>, headers: &[(String, Vec<u8>)]) -> CacheControl {
    let cdn = targets.cdn.then_some(CDN_CACHE_CONTROL);
    targets
        .own
        .into_iter()
        .chain(cdn)
        .find_map(|name| parse(headers, name))
        .unwrap_or_else(|| CacheControl::parse(headers))
}

/// The directives of the targeted field `name` in `headers`, or `None` when the field is
/// absent, empty or not a valid Dictionary.
pub fn parse(headers: &[(String, Vec<u8>)], name: &str) -> Option<CacheControl> {
    let mut joined = String::new();
    for line in headers.get_all(name) {
        if !joined.is_empty() {
            joined.push_str(", ");
        }
        joined.push_str(std::str::from_utf8(line).ok()?);
    }
    if joined.trim().is_empty() || joined.len() > MAX_FIELD {
        return None;
    }
    let dictionary: Dictionary = Parser::new(&joined).parse().ok()?;
    let mut cc = CacheControl {
        targeted: true,
        ..CacheControl::default()
    };
    for (key, entry) in &dictionary {
        let argument = match entry {
            ListEntry::Item(item) => argument(&item.bare_item),
            ListEntry::InnerList(_) => Some(Argument::Invalid),
        };
        let directive = match argument {
            None => continue,
            Some(Argument::Bare) => key.as_str().to_string(),
            Some(Argument::Value(value)) => format!("{}={value}", key.as_str()),
            // A NUL never parses as an argument: the directive's invalid reading.
            Some(Argument::Invalid) => format!("{}=\u{0}", key.as_str()),
        };
        cc.add(&directive);
    }
    Some(cc)
}

/// A member's value as a `Cache-Control` directive argument.
enum Argument {
    /// `?1`: the directive without argument.
    Bare,
    /// An argument in `Cache-Control` syntax (a number, a token or a quoted string).
    Value(String),
    /// A value no directive takes.
    Invalid,
}

/// `None` for `?0` (the directive is absent).
fn argument(item: &BareItem) -> Option<Argument> {
    Some(match item {
        BareItem::Boolean(true) => Argument::Bare,
        BareItem::Boolean(false) => return None,
        BareItem::Integer(n) if i64::from(*n) >= 0 => Argument::Value(i64::from(*n).to_string()),
        BareItem::Token(token) => Argument::Value(token.as_str().to_string()),
        BareItem::String(text) => {
            let escaped = text.as_str().replace('\\', "\\\\").replace('"', "\\\"");
            Argument::Value(format!("\"{escaped}\""))
        }
        _ => Argument::Invalid,
    })
}

#[cfg(test)]
#[path = "targeted_tests.rs"]
mod tests;

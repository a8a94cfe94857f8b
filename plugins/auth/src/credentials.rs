//! Taking the credential from the request: the first configured header that carries one.
//! `authorization` must use the Bearer scheme (case-insensitive); any other header carries the
//! credential as its whole value. Values longer than any valid credential are refused before
//! any work is done on them.

use sluice_plugin_sdk::{RequestExt, RequestHead};

/// The longest credential looked at; longer values are refused unread.
pub const MAX_CREDENTIAL: usize = 8192;

/// What the request presented.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential<'r, 'h> {
    /// Nothing in any configured header.
    None,
    /// Something too long or in the wrong form to be a credential.
    Garbage,
    /// A credential to verify, and the header it came from.
    Token(&'r str, &'h str),
}

/// The credential in `req`, from the first of `headers` present.
pub fn extract<'r, 'h>(req: &'r RequestHead, headers: &'h [String]) -> Credential<'r, 'h> {
    for name in headers {
        let Some(value) = req.header(name) else {
            continue;
        };
        let value = value.trim();
        if value.len() > MAX_CREDENTIAL {
            return Credential::Garbage;
        }
        let token = if name == "authorization" {
            match value.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => return Credential::Garbage,
            }
        } else {
            value
        };
        if token.is_empty() {
            return Credential::Garbage;
        }
        return Credential::Token(token, name);
    }
    Credential::None
}

//! `head`: what an instance's hooks read of the request head, and which verdicts the host may
//! reuse. Always granted. `reads` is callable only from `init`: the declaration is checked and
//! left in the instance's [`HostState`]; when `init` returns the instance takes it, and passes
//! its request hooks and response hook a [`Reads::view`] for the rest of its life. `memo` is
//! callable only from `on-request-headers` of such an instance: the request is left in the
//! call's [`MemoCall`](crate::memo::MemoCall), and kept when the call ends
//! ([`VerdictMemo`](crate::memo::VerdictMemo)).

use crate::capability::Capability;
use crate::memo::Asked;
use crate::reads::{MAX_READS, Reads};
use crate::state::HostState;
use crate::verdict::{MAX_NAME, is_token};
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::head::{Host, MemoKey};
use std::time::Duration;

/// Why `headers` and `context` cannot be a declaration, if they cannot.
fn refusal(headers: &[String], context: &[String]) -> Option<String> {
    if headers.len() > MAX_READS || context.len() > MAX_READS {
        return Some(format!(
            "reads takes at most {MAX_READS} header names and {MAX_READS} context keys, not {} and {}",
            headers.len(),
            context.len()
        ));
    }
    if let Some(bad) = headers
        .iter()
        .find(|h| h.is_empty() || h.len() > MAX_NAME || !is_token(h.as_bytes()))
    {
        return Some(format!("{bad:?} is not a header name"));
    }
    if context.iter().any(|k| k.is_empty() || k.len() > MAX_NAME) {
        return Some(format!("context keys must be 1 to {MAX_NAME} bytes"));
    }
    None
}

impl Host for HostState {
    fn reads(&mut self, headers: Vec<String>, context: Vec<String>) -> Result<(), HostError> {
        let p = &self.plugin;
        if !self.in_init {
            return Err(p.invalid(Capability::Head, "reads can only be called from init"));
        }
        if let Some(why) = refusal(&headers, &context) {
            return Err(p.invalid(Capability::Head, why));
        }
        self.reads = Some(Reads::new(headers, context));
        Ok(())
    }

    fn memo(&mut self, ttl_ms: u32, key: MemoKey) -> Result<(), HostError> {
        let p = &self.plugin;
        if !self.in_request_headers {
            return Err(p.invalid(Capability::Head, "memo can only be called from on-request-headers"));
        }
        if !self.memo.eligible {
            return Err(p.invalid(
                Capability::Head,
                "memo needs the instance's reads declared from init (head.reads)",
            ));
        }
        self.memo.asked = Some(Asked {
            ttl: Duration::from_millis(ttl_ms.into()),
            key,
            charged: false,
            fields: None,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn declarations_are_checked() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            refusal(&names(&["x-api-key", "Authorization"]), &names(&["tier"])),
            None
        );
        assert!(
            refusal(&names(&["bad name"]), &[])
                .unwrap()
                .contains("not a header name")
        );
        assert!(refusal(&names(&[""]), &[]).is_some());
        assert!(refusal(&[], &names(&[""])).is_some());
        let many = vec!["x".to_string(); 65];
        assert!(refusal(&many, &[]).unwrap().contains("at most 64"));
    }
}

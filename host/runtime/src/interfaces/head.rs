//! `head`: what an instance's hooks read of the request head. Always granted; callable only
//! from `init`. The declaration is checked and left in the instance's [`HostState`]; when
//! `init` returns the instance takes it, and passes its request hooks and response hook a
//! [`Reads::view`] for the rest of its life.

use crate::capability::Capability;
use crate::reads::{MAX_READS, Reads};
use crate::state::HostState;
use crate::verdict::{MAX_NAME, is_token};
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::head::Host;

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

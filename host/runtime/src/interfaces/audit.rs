//! `audit`: plugin decisions into the `audit_log` table through the batched sink, stamped by
//! the host with the time, the plugin and the request (client IP, request id, route), so a
//! plugin cannot forge where a decision came from and never waits on Postgres. Each event is
//! also counted in `sluice_audit_events_total` by action, outcome and the details' `reason`.

use serde_json::{Map, Value};

use crate::capability::Capability;
use crate::context::PluginContext;
use crate::memo::AuditReplay;
use crate::state::HostState;
use sluice_backends::sink::{SinkRow, Sinks};
use sluice_bindings::sluice::plugin::audit::{Event, Host};
use sluice_bindings::{HostError, RequestHead};

/// The longest `action`.
const MAX_ACTION: usize = 64;
/// The longest `outcome`.
const MAX_OUTCOME: usize = 32;
/// The longest `actor` or `subject`, in bytes.
const MAX_NAME: usize = 256;
/// The longest `details`, in bytes.
const MAX_DETAILS: usize = 4096;

/// Whether `word` is 1..=`max` of lower-case ASCII letters, digits, `.`, `_` and `-`.
fn is_code(word: &str, max: usize) -> bool {
    (1..=max).contains(&word.len())
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

/// The event's `details` as a JSON object with the plugin's name added, or why not.
fn details(text: &str, plugin: &str) -> Result<Map<String, Value>, String> {
    if text.len() > MAX_DETAILS {
        return Err(format!("details are {} bytes; at most {MAX_DETAILS}", text.len()));
    }
    let mut map = if text.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("details must be a JSON object".into()),
            Err(e) => return Err(format!("details are not JSON: {e}")),
        }
    };
    map.insert("plugin".into(), Value::String(plugin.to_string()));
    Ok(map)
}

/// `event` checked, with its details parsed and the plugin named in them (`plugin`), or why
/// the event is invalid.
fn checked(plugin: &str, event: Event) -> Result<AuditReplay, String> {
    if !is_code(&event.action, MAX_ACTION) {
        return Err(format!(
            "action '{}' must be 1 to {MAX_ACTION} of a-z, 0-9, '.', '_' and '-'",
            event.action
        ));
    }
    if !is_code(&event.outcome, MAX_OUTCOME) {
        return Err(format!(
            "outcome '{}' must be 1 to {MAX_OUTCOME} of a-z, 0-9, '.', '_' and '-'",
            event.outcome
        ));
    }
    for (what, value) in [("actor", &event.actor), ("subject", &event.subject)] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_NAME) {
            return Err(format!("{what} is longer than {MAX_NAME} bytes"));
        }
    }
    let details = details(&event.details, plugin)?;
    Ok(AuditReplay {
        action: event.action,
        outcome: event.outcome,
        actor: event.actor,
        subject: event.subject,
        details: Value::Object(details),
    })
}

/// The audit row of `event`, stamped by the host with the time and the request's client IP,
/// request id and route (each left out when empty or `-`, outside a request).
fn stamped(event: AuditReplay, client_ip: &str, request_id: &str, route: &str) -> SinkRow {
    let present = |s: &str| (!s.is_empty() && s != "-").then(|| s.to_string());
    SinkRow::AuditLog {
        occurred_at_us: sluice_backends::sink::now_us(),
        actor: event.actor,
        action: event.action,
        subject: event.subject,
        outcome: event.outcome,
        client_ip: present(client_ip),
        correlation_id: present(request_id),
        route: present(route),
        details: event.details,
    }
}

/// Counts `row`'s decision and queues it; the error when the writer's queue is full.
fn send(plugin: &PluginContext, sinks: &Sinks, row: SinkRow) -> Result<(), HostError> {
    if let SinkRow::AuditLog {
        action,
        outcome,
        details,
        ..
    } = &row
    {
        let reason = details.get("reason").and_then(Value::as_str);
        let reason = reason.filter(|r| is_code(r, MAX_OUTCOME)).unwrap_or("-");
        plugin.metrics.count_decision(action, outcome, reason);
    }
    if sinks.emit(row) {
        Ok(())
    } else {
        Err(HostError::Limit(
            "audit: the writer's queue is full; the event was dropped (counted and logged)".into(),
        ))
    }
}

/// Emits `events` again for `req`, a request a kept verdict answered: each row stamped with
/// this request's time, client IP, request id and route, and counted as `emit` counts it. A
/// full queue drops the row as `emit` does (the sink counts and logs it).
pub(crate) fn replay(plugin: &PluginContext, events: &[AuditReplay], req: &RequestHead) {
    let Some(sinks) = plugin.backends.sinks.as_ref() else {
        return;
    };
    for event in events {
        let row = stamped(event.clone(), &req.client_ip, &req.request_id, &req.route);
        let _ = send(plugin, sinks, row);
    }
}

impl Host for HostState {
    fn emit(&mut self, event: Event) -> Result<(), HostError> {
        let p = &self.plugin;
        p.require(Capability::Audit)?;
        let Some(sinks) = p.backends.sinks.clone() else {
            return Err(p.not_configured(Capability::Audit));
        };
        let event = checked(&p.name, event).map_err(|why| p.invalid(Capability::Audit, why))?;
        if self.memo.recording {
            self.memo.audit.push(event.clone());
        }
        let row = stamped(event, &self.client_ip, &self.request_id, &self.route);
        send(&self.plugin, &sinks, row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_details_are_checked() {
        assert!(is_code("auth.allow", MAX_ACTION));
        assert!(!is_code("Auth.Allow", MAX_ACTION));
        assert!(!is_code("", MAX_ACTION));
        assert!(!is_code("a b", MAX_ACTION));
        assert!(!is_code(&"a".repeat(MAX_OUTCOME + 1), MAX_OUTCOME));
        assert_eq!(details("", "auth").unwrap()["plugin"], "auth");
        let map = details(r#"{"reason":"expired","plugin":"forged"}"#, "auth").unwrap();
        assert_eq!(map["plugin"], "auth", "the host's name wins");
        assert_eq!(map["reason"], "expired");
        assert!(details("[1]", "auth").is_err());
        assert!(details("{", "auth").is_err());
        assert!(details(&format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_DETAILS)), "auth").is_err());
    }
}

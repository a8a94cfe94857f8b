//! What went wrong when a plugin failed, and the response a fail-closed route sends.

use std::sync::Arc;

use sluice_bindings::LocalResponse;

/// The kind of a plugin failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The plugin trapped (a panic, an `unreachable`, an out-of-bounds access, ...).
    Trap,
    /// The hook ran past its CPU budget.
    Timeout,
    /// The plugin needed more memory than its limit.
    Memory,
    /// The hook returned a verdict the host refuses (bad header, status or size).
    InvalidVerdict,
    /// A new instance could not be created (pool exhausted, instantiation trapped).
    Instantiate,
    /// `init` rejected the route's config.
    Init,
    /// Every instance the plugin may have (`pool.max_instances`) stayed busy for longer
    /// than `pool.acquire_timeout_ms`.
    Busy,
}

impl FailureKind {
    /// A stable, machine-readable name, used in metrics and response bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::InvalidVerdict => "invalid_verdict",
            FailureKind::Instantiate => "instantiate",
            FailureKind::Init => "init",
            FailureKind::Busy => "busy",
        }
    }

    /// The status a fail-closed route answers with: 503 for resource exhaustion (the client
    /// may retry), 500 otherwise.
    pub fn status(self) -> u16 {
        match self {
            FailureKind::Timeout | FailureKind::Memory | FailureKind::Instantiate | FailureKind::Busy => 503,
            _ => 500,
        }
    }
}

/// A failure of one plugin on one hook call.
#[derive(Debug, Clone)]
pub struct PluginFailure {
    /// The plugin's name.
    pub plugin: Arc<str>,
    /// The hook that failed (`on-request-headers`, ...).
    pub hook: &'static str,
    /// What kind of failure.
    pub kind: FailureKind,
    /// The detail, for the log (never sent to clients).
    pub message: String,
    /// Bytes of linear memory the instance held when it failed (0 when no instance existed).
    pub memory_bytes: usize,
}

impl std::fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin '{}' failed in {} ({}): {}",
            self.plugin,
            self.hook,
            self.kind.as_str(),
            self.message
        )
    }
}

impl PluginFailure {
    /// The failure in words for the operator: a rejected config says so plainly.
    pub fn message_for_operator(&self) -> String {
        match self.kind {
            FailureKind::Init => format!("the plugin rejected its config: {}", self.message),
            _ => format!("{} failed ({}): {}", self.hook, self.kind.as_str(), self.message),
        }
    }

    /// The JSON response a fail-closed route sends: it names the plugin and the kind of
    /// failure and carries the request id, never the internal detail.
    pub fn to_response(&self, request_id: &str) -> LocalResponse {
        let body = serde_json::json!({
            "error": "plugin_failed",
            "plugin": &*self.plugin,
            "kind": self.kind.as_str(),
            "request_id": request_id,
        });
        LocalResponse {
            status: self.kind.status(),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body: body.to_string().into_bytes(),
        }
    }
}

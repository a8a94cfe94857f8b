//! Helpers on [`HostError`], the error every host call can return.

use crate::HostError;

impl HostError {
    /// The error's kind as the WIT names it: `denied`, `not-configured`, `unavailable`,
    /// `timeout`, `invalid`, `limit`, `not-found` or `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            HostError::Denied(_) => "denied",
            HostError::NotConfigured(_) => "not-configured",
            HostError::Unavailable(_) => "unavailable",
            HostError::Timeout(_) => "timeout",
            HostError::Invalid(_) => "invalid",
            HostError::Limit(_) => "limit",
            HostError::NotFound(_) => "not-found",
            HostError::Other(_) => "other",
        }
    }

    /// The host's message, which names the plugin and the capability.
    pub fn message(&self) -> &str {
        match self {
            HostError::Denied(m)
            | HostError::NotConfigured(m)
            | HostError::Unavailable(m)
            | HostError::Timeout(m)
            | HostError::Invalid(m)
            | HostError::Limit(m)
            | HostError::NotFound(m)
            | HostError::Other(m) => m,
        }
    }

    /// Whether the same call may succeed later (`unavailable`, `timeout`): a backend is down
    /// or slow, not the call wrong. Answer 503 rather than 4xx or 500 for these.
    pub fn is_transient(&self) -> bool {
        matches!(self, HostError::Unavailable(_) | HostError::Timeout(_))
    }
}

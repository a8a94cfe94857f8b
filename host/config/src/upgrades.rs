//! A route's `upgrades`: which protocols an HTTP/1.1 `Upgrade` request (or an HTTP/2 extended
//! CONNECT, RFC 8441) may switch to through the gateway, and how long the joined tunnel may
//! stay idle or open.

use serde::Deserialize;

/// The protocol upgrades a route tunnels. A request asking for a protocol not listed is
/// served as an ordinary request (its `Upgrade` field is dropped, as a server may do).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpgradeSettings {
    /// Upgrade protocol names (the token before any `/version`), compared without case.
    /// Default `["websocket"]`; an empty list tunnels nothing.
    #[serde(default = "default_protocols")]
    pub protocols: Vec<String>,
    /// A tunnel that moves no byte either way for this long is closed. Default 300 s (1 ms to
    /// a year).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// A tunnel is closed this long after it opened, whatever it carries. Default 24 h (1 ms
    /// to a year).
    #[serde(default = "default_max_duration_ms")]
    pub max_duration_ms: u64,
}

fn default_protocols() -> Vec<String> {
    vec!["websocket".to_string()]
}
fn default_idle_timeout_ms() -> u64 {
    300_000
}
fn default_max_duration_ms() -> u64 {
    86_400_000
}

impl Default for UpgradeSettings {
    fn default() -> Self {
        UpgradeSettings {
            protocols: default_protocols(),
            idle_timeout_ms: default_idle_timeout_ms(),
            max_duration_ms: default_max_duration_ms(),
        }
    }
}

impl UpgradeSettings {
    /// Whether `protocol` (an `Upgrade` field's first entry, with or without its version) is
    /// one this route tunnels.
    pub fn allows(&self, protocol: &str) -> bool {
        let name = protocol.split('/').next().unwrap_or_default().trim();
        self.protocols.iter().any(|p| p.eq_ignore_ascii_case(name))
    }

    /// Checks the protocol names and the timeouts.
    pub fn validate(&self) -> Result<(), String> {
        for p in &self.protocols {
            let token = !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(format!(
                    "upgrades.protocols: {p:?} is not a protocol name (an HTTP token)"
                ));
            }
            if p.eq_ignore_ascii_case("h2c") {
                return Err(
                    "upgrades.protocols: h2c cannot be tunnelled (clients speak HTTP/2 to the gateway by prior knowledge)"
                        .to_string(),
                );
            }
        }
        let year_ms = 365 * 86_400_000;
        if !(1..=year_ms).contains(&self.idle_timeout_ms) || !(1..=year_ms).contains(&self.max_duration_ms) {
            return Err(format!(
                "upgrades: idle_timeout_ms and max_duration_ms must be 1 to {year_ms} (a year)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_is_tunnelled_by_default_whatever_its_case_or_version() {
        let settings = UpgradeSettings::default();
        assert!(settings.allows("websocket"));
        assert!(settings.allows("WebSocket"));
        assert!(settings.allows("websocket/13"));
        assert!(!settings.allows("h2c"));
        assert!(!settings.allows(""));
        assert!(settings.validate().is_ok());
    }

    #[test]
    fn bad_names_h2c_and_zero_timeouts_are_refused() {
        let with = |protocols: &[&str], idle, max| UpgradeSettings {
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            idle_timeout_ms: idle,
            max_duration_ms: max,
        };
        assert!(
            with(&["web socket"], 1, 1)
                .validate()
                .unwrap_err()
                .contains("not a protocol name")
        );
        assert!(with(&["H2C"], 1, 1).validate().unwrap_err().contains("h2c"));
        assert!(with(&[], 0, 1).validate().unwrap_err().contains("1 to"));
        assert!(with(&[], 1, u64::MAX).validate().unwrap_err().contains("a year"));
        assert!(with(&[], 1, 1).validate().is_ok());
        assert!(!with(&[], 1, 1).allows("websocket"), "an empty list tunnels nothing");
    }
}

//! `[demo]`: the demo upstream the binary serves itself, so the embedded default config has
//! something to proxy to.

use serde::Deserialize;

/// `[demo]`: where the demo upstream listens.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    /// Address of the demo upstream.
    pub listen: std::net::SocketAddr,
}

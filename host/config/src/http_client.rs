//! `[http_client]`: the pooled outbound HTTP client plugins use through `http-client`.

use std::path::PathBuf;

use serde::Deserialize;

/// Outbound HTTP for plugins. Which hosts a plugin may call is its grant (`grants.http_client`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpClientSettings {
    /// A call's budget in ms when the plugin gives none (and the most it may ask for).
    /// Default 5000.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// How long connecting (TCP and TLS) may take, in ms. Default 2000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The largest response body handed to a plugin; a larger one fails the call with
    /// `limit`. Default 1 MiB.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Idle connections kept per host. Default 8.
    #[serde(default = "default_max_idle_per_host")]
    pub max_idle_per_host: usize,
    /// A PEM file of extra CA certificates trusted for https, beside the system's (relative to
    /// the config file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout_ms() -> u64 {
    5_000
}
fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_max_response_bytes() -> usize {
    1 << 20
}
fn default_max_idle_per_host() -> usize {
    8
}

impl Default for HttpClientSettings {
    fn default() -> Self {
        HttpClientSettings {
            timeout_ms: default_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            max_response_bytes: default_max_response_bytes(),
            max_idle_per_host: default_max_idle_per_host(),
            ca_file: None,
        }
    }
}

//! The config a command works on: a file, or the embedded default (`config/sluice.toml`).

use std::path::{Path, PathBuf};

use sluice_config::GatewayConfig;

/// The config `sluice` uses when no file is given.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/sluice.toml");

/// Loads the config at `path`, or the embedded default when `None`.
pub fn load(path: Option<&Path>) -> anyhow::Result<GatewayConfig> {
    Ok(match path {
        Some(path) => GatewayConfig::load(path)?,
        None => GatewayConfig::parse(DEFAULT_CONFIG, Path::new("<embedded sluice.toml>"), PathBuf::from("."))?,
    })
}

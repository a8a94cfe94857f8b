//! `sluice run [--config FILE]`: serves until SIGTERM or SIGINT (which drain the requests in
//! flight), reloading on file change, SIGHUP and `POST /admin/reload`.

use std::path::PathBuf;

use sluice_config::TelemetrySettings;
use sluice_gateway::app::RunningGateway;
use sluice_gateway::state::ConfigSource;

use crate::config::{self, DEFAULT_CONFIG};

/// Serves the config at `path` (the embedded default when `None`).
pub async fn run(path: Option<PathBuf>) -> anyhow::Result<()> {
    let source = match path {
        Some(path) => ConfigSource::File(path),
        None => ConfigSource::Embedded(DEFAULT_CONFIG),
    };
    let gateway = RunningGateway::start(source).await.map_err(anyhow::Error::msg)?;
    println!(
        "sluice {} listening on http://{} (admin http://{})",
        env!("CARGO_PKG_VERSION"),
        gateway.addr,
        gateway.admin_addr
    );
    gateway.run_until_signalled().await?;
    Ok(())
}

/// The `[telemetry]` settings `sluice run` starts with (span export is set up once, before
/// serving); the defaults when the config does not load (`run` then reports the error).
pub fn telemetry_settings(path: Option<&std::path::Path>) -> TelemetrySettings {
    config::load(path).map(|c| c.telemetry).unwrap_or_default()
}

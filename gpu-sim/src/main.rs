//! The `sluice-gpu-sim` binary: a simulated OpenAI-compatible GPU inference server.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use sluice_gpu_sim::SimConfig;

/// Simulated GPU inference backend speaking the OpenAI-compatible API.
#[derive(Parser)]
#[command(name = "sluice-gpu-sim", version)]
struct Args {
    /// TOML configuration file; built-in defaults when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => SimConfig::from_file(path)?,
        None => SimConfig::default(),
    };
    config.validate()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "sluice-gpu-sim listening");
    sluice_gpu_sim::serve(config, listener).await?;
    Ok(())
}

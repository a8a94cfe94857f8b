//! The process's tracing subscriber: log lines (human or JSON) filtered by `RUST_LOG`, and,
//! when `[telemetry]` names an OTLP endpoint, the same spans exported to it.

use opentelemetry_sdk::trace::SdkTracerProvider;
use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::otlp::{self, OtlpError};
use super::progress::{AroundProgress, OpenLine, ProgressLayer, is_progress};
use sluice_config::TelemetrySettings;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line, with the current span's fields (the request id).
    Json,
}

/// Why the subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Span export could not be set up.
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}

/// Flushes exported spans when dropped; keep it for the life of the process.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every finished span now (used before exit and by tests).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(e) = provider.force_flush()
        {
            tracing::warn!(error = %e, "flushing spans to the OTLP collector failed");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: the last spans could not be sent to the OTLP collector: {e}");
        }
    }
}

/// Installs the global subscriber: `RUST_LOG` (default `sluice=info`) filters both the log
/// lines and the exported spans. With `settings.otlp_endpoint` set, spans go to the collector
/// from `runtime` (which must outlive the guard).
pub fn init(
    format: LogFormat,
    settings: &TelemetrySettings,
    runtime: tokio::runtime::Handle,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "sluice=info".into());
    let provider = match settings.otlp_endpoint {
        Some(_) => Some(otlp::provider(settings, runtime)?),
        None => None,
    };
    let spans = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(otlp::tracer(p)));
    // On a terminal, long steps' progress is one line redrawn in place, not a line each.
    let terminal = format == LogFormat::Human && std::io::stderr().is_terminal();
    let open_line = OpenLine::default();
    let progress = terminal.then(|| ProgressLayer::new(std::io::stderr, open_line.clone()));
    // On a terminal: colours, and log lines written around the progress line.
    let on_terminal = terminal.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(AroundProgress::new(std::io::stderr, open_line))
            .with_filter(filter_fn(|meta| !is_progress(meta)))
    });
    // Elsewhere (a service manager, a pipe, a file): plain lines, progress reports among them.
    let plain = (format == LogFormat::Human && !terminal).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
    });
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(spans)
        .with(on_terminal)
        .with(plain)
        .with(progress)
        .with(json)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInstalled(e.to_string()))?;
    if let Some(url) = settings.traces_url() {
        tracing::info!(%url, service = %settings.service_name, "exporting spans over OTLP");
    }
    Ok(TelemetryGuard { provider })
}

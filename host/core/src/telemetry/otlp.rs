//! OpenTelemetry: request spans exported over OTLP/HTTP (protobuf) in batches, and W3C trace
//! context (`traceparent`, `tracestate`) taken from the client and passed to the upstream.
//!
//! The batch processor sends from a thread of its own; the HTTP client it uses hands each
//! export to the gateway's tokio runtime, so exports share the process's reactor and never
//! block a request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use sluice_config::TelemetrySettings;

/// Whether spans are exported (set once, at start-up): trace context is handled only then.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Why span export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The config has no `telemetry.otlp_endpoint`.
    #[error("telemetry.otlp_endpoint is not set")]
    NoEndpoint,
    /// The exporter could not be built.
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(String),
}

/// Sends export requests on the gateway's runtime.
#[derive(Debug)]
struct RuntimeClient {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    started: std::time::Instant,
    /// When the last failure was logged, in seconds after `started`, plus 60 (0: never).
    last_warning: AtomicU64,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, HttpError> {
        let (client, timeout) = (self.client.clone(), self.timeout);
        let export = self.runtime.spawn(async move {
            let resp = tokio::time::timeout(timeout, client.request(request.map(Full::new)))
                .await
                .map_err(|_| format!("the collector did not answer within {timeout:?}"))??;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, 1 << 20).collect().await?.to_bytes();
            Ok::<_, HttpError>(http::Response::from_parts(parts, body))
        });
        let result = export.await.map_err(HttpError::from).and_then(|r| r);
        match &result {
            Err(e) => self.warn_export_failed(&e.to_string()),
            Ok(resp) if !resp.status().is_success() => self.warn_export_failed(&format!("HTTP {}", resp.status())),
            Ok(_) => {}
        }
        result
    }
}

impl RuntimeClient {
    /// Logs a failed export at most once a minute: a collector that is down costs spans,
    /// not a flood of log lines.
    fn warn_export_failed(&self, why: &str) {
        let now = self.started.elapsed().as_secs() + 60;
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %why, "spans could not be sent to the OTLP collector; they are dropped");
        }
    }
}

/// The tracer provider exporting to `settings.otlp_endpoint` from `runtime`; installs the
/// W3C trace-context propagator. Keep the provider and call `shutdown` on exit to flush.
pub fn provider(settings: &TelemetrySettings, runtime: tokio::runtime::Handle) -> Result<SdkTracerProvider, OtlpError> {
    let url = settings.traces_url().ok_or(OtlpError::NoEndpoint)?;
    let timeout = Duration::from_millis(settings.export_timeout_ms);
    let client = RuntimeClient {
        client: Client::builder(TokioExecutor::new()).build_http(),
        runtime,
        timeout,
        started: std::time::Instant::now(),
        last_warning: AtomicU64::new(0),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(timeout)
        .build()
        .map_err(|e| OtlpError::Exporter(e.to_string()))?;
    let batches = BatchConfigBuilder::default()
        .with_scheduled_delay(Duration::from_millis(settings.export_interval_ms))
        .build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(batches).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(provider)
}

/// The tracer request spans are recorded with.
pub fn tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("sluice")
}

/// Makes `span` a child of the trace the client's `traceparent` names, when export is on.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !ENABLED.load(Ordering::Relaxed) || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Writes the current span's trace context into the upstream request's headers (replacing
/// the client's), so the upstream's spans are children of the gateway's. Without export the
/// client's headers pass through untouched.
pub fn inject_context(headers: &mut http::HeaderMap) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

//! Telemetry: the metrics registry rendered in the Prometheus text format, the tracing
//! subscriber (human or JSON log lines), and OpenTelemetry span export over OTLP with W3C
//! trace-context propagation.

pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod progress;

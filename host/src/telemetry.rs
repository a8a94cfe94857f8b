//! Telemetry shared by the host and plugins: a metrics registry rendered in the Prometheus
//! text format.

pub mod metrics;

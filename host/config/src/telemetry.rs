//! `[telemetry]`: OpenTelemetry span export over OTLP.

use serde::Deserialize;

/// Where and how request spans are exported. Export is off without `otlp_endpoint`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`; spans are POSTed as protobuf to
    /// `{endpoint}/v1/traces`. No export when absent.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute. Default `sluice`.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// The share of new traces sampled, 0.0 to 1.0; a request that arrives with a sampled
    /// `traceparent` follows its parent's decision. Default 1.0.
    #[serde(default = "default_sample_ratio")]
    pub sample_ratio: f64,
    /// How often finished spans are sent in a batch, in ms. Default 5000.
    #[serde(default = "default_export_interval_ms")]
    pub export_interval_ms: u64,
    /// How long one export may take before it is abandoned, in ms. Default 10000.
    #[serde(default = "default_export_timeout_ms")]
    pub export_timeout_ms: u64,
}

fn default_service_name() -> String {
    "sluice".into()
}
fn default_sample_ratio() -> f64 {
    1.0
}
fn default_export_interval_ms() -> u64 {
    5_000
}
fn default_export_timeout_ms() -> u64 {
    10_000
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            otlp_endpoint: None,
            service_name: default_service_name(),
            sample_ratio: default_sample_ratio(),
            export_interval_ms: default_export_interval_ms(),
            export_timeout_ms: default_export_timeout_ms(),
        }
    }
}

impl TelemetrySettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        if let Some(endpoint) = &self.otlp_endpoint {
            let uri: http::Uri = endpoint
                .parse()
                .map_err(|e| format!("telemetry.otlp_endpoint '{endpoint}' is not a URL: {e}"))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(format!(
                    "telemetry.otlp_endpoint '{endpoint}' must be an http:// URL with a host \
                     (export goes to a local collector or sidecar; https is not supported)"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(format!(
                "telemetry.sample_ratio must be between 0.0 and 1.0, got {}",
                self.sample_ratio
            ));
        }
        if self.export_interval_ms == 0 || self.export_timeout_ms == 0 {
            return Err("telemetry.export_interval_ms and export_timeout_ms must be at least 1".into());
        }
        if self.service_name.trim().is_empty() {
            return Err("telemetry.service_name must not be empty".into());
        }
        Ok(())
    }

    /// The URL spans are sent to.
    pub fn traces_url(&self) -> Option<String> {
        self.otlp_endpoint
            .as_ref()
            .map(|e| format!("{}/v1/traces", e.trim_end_matches('/')))
    }
}

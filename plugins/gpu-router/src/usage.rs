//! The metrics recorded from the inference usage the host reports in `on-log`.
//!
//! The `metrics` interface has no labels of its own (the host adds only the plugin's name), so
//! these series are totals across models and backends, and their number stays fixed.

use sluice_plugin_sdk::bindings::sluice::plugin::types::InferenceUsage;

/// Prompt tokens served (the backend's count when it gave one, else the estimate).
pub const PROMPT_TOKENS: &str = "gpu_router_prompt_tokens_total";
/// Tokens generated.
pub const COMPLETION_TOKENS: &str = "gpu_router_completion_tokens_total";
/// Backends tried and failed before the one that served.
pub const RETRIES: &str = "gpu_router_retries_total";
/// Inference requests that finished.
pub const REQUESTS: &str = "gpu_router_requests_total";
/// Time in the gateway's queue, in milliseconds.
pub const WAITED_MS: &str = "gpu_router_waited_ms";
/// Time to the first token (or the whole response), in milliseconds.
pub const FIRST_TOKEN_MS: &str = "gpu_router_first_token_ms";

/// What one finished inference request adds to the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Counter increments: (name, value).
    pub counters: [(&'static str, u64); 4],
    /// Histogram observations: (name, value).
    pub histograms: [(&'static str, f64); 2],
}

/// The samples for one request's usage.
pub fn samples(used: &InferenceUsage) -> Samples {
    Samples {
        counters: [
            (REQUESTS, 1),
            (PROMPT_TOKENS, u64::from(used.prompt_tokens)),
            (COMPLETION_TOKENS, u64::from(used.completion_tokens)),
            (RETRIES, u64::from(used.retries)),
        ],
        histograms: [
            (WAITED_MS, f64::from(used.waited_ms)),
            (FIRST_TOKEN_MS, f64::from(used.first_token_ms)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_becomes_counters_and_histograms() {
        let s = samples(&InferenceUsage {
            model: "llama".into(),
            backend: "gpu-a".into(),
            prompt_tokens: 120,
            completion_tokens: 30,
            waited_ms: 15,
            first_token_ms: 240,
            retries: 1,
        });
        assert_eq!(
            s.counters,
            [
                (REQUESTS, 1),
                (PROMPT_TOKENS, 120),
                (COMPLETION_TOKENS, 30),
                (RETRIES, 1)
            ]
        );
        assert_eq!(s.histograms, [(WAITED_MS, 15.0), (FIRST_TOKEN_MS, 240.0)]);
    }

    #[test]
    fn names_are_valid_metric_names() {
        for name in [
            PROMPT_TOKENS,
            COMPLETION_TOKENS,
            RETRIES,
            REQUESTS,
            WAITED_MS,
            FIRST_TOKEN_MS,
        ] {
            assert!(name.len() <= 64);
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
        }
    }
}

//! A backend's live load, read from its own Prometheus metrics: vLLM's
//! `vllm:num_requests_waiting`, `vllm:num_requests_running` and `vllm:kv_cache_usage_perc`
//! (summed over every label set, e.g. one per `model_name`; the KV usage is the largest), and
//! llama.cpp server's `llamacpp:requests_deferred` and `llamacpp:requests_processing`. A
//! reading older than the configured bound is stale: the scheduler then relies on the gateway's
//! own count of requests in flight.

/// What a backend's metrics say about its load.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BackendLoad {
    /// Requests waiting for a slot.
    pub waiting: f64,
    /// Requests being served.
    pub running: f64,
    /// KV-cache usage, 0–1.
    pub kv_usage: f64,
    /// When it was read (ms, the scheduler's clock).
    pub read_at_ms: u64,
}

impl BackendLoad {
    /// Whether the reading is older than `bound_ms` at `now_ms`.
    pub fn is_stale(&self, now_ms: u64, bound_ms: u64) -> bool {
        now_ms.saturating_sub(self.read_at_ms) > bound_ms
    }
}

/// The value of a sample line (`name{labels} value [timestamp]`), if it is one of `name`.
fn sample(line: &str, name: &str) -> Option<f64> {
    let rest = line.strip_prefix(name)?;
    let rest = match rest.as_bytes().first()? {
        b'{' => &rest[rest.find('}')? + 1..],
        b' ' | b'\t' => rest,
        _ => return None,
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// The load in `text` (Prometheus text exposition), read at `now_ms`; None when it carries
/// none of the known series (not a vLLM or llama.cpp server, or an error page).
pub fn parse(text: &str, now_ms: u64) -> Option<BackendLoad> {
    let mut load = BackendLoad {
        read_at_ms: now_ms,
        ..BackendLoad::default()
    };
    let mut seen = false;
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let mut add = |field: &mut f64, name: &str| {
            if let Some(v) = sample(line, name) {
                *field += v.max(0.0);
                seen = true;
            }
        };
        add(&mut load.waiting, "vllm:num_requests_waiting");
        add(&mut load.running, "vllm:num_requests_running");
        add(&mut load.waiting, "llamacpp:requests_deferred");
        add(&mut load.running, "llamacpp:requests_processing");
        if let Some(v) = sample(line, "vllm:kv_cache_usage_perc").or_else(|| sample(line, "vllm:gpu_cache_usage_perc"))
        {
            load.kv_usage = load.kv_usage.max(v.clamp(0.0, 1.0));
            seen = true;
        }
    }
    seen.then_some(load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vllm_series_summed_over_models() {
        let text = "\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name=\"llama-8b\"} 3.0
vllm:num_requests_running{model_name=\"qwen-7b\"} 1.0
vllm:num_requests_waiting{model_name=\"llama-8b\"} 7.0
vllm:kv_cache_usage_perc{model_name=\"llama-8b\"} 0.42
vllm:kv_cache_usage_perc{model_name=\"qwen-7b\"} 0.61
vllm:num_requests_waiting_by_reason{reason=\"x\"} 99
vllm:prompt_tokens_total{model_name=\"llama-8b\"} 1234
";
        let load = parse(text, 5).unwrap();
        assert_eq!(
            load,
            BackendLoad {
                waiting: 7.0,
                running: 4.0,
                kv_usage: 0.61,
                read_at_ms: 5
            }
        );
        assert!(!load.is_stale(1_005, 1_000));
        assert!(load.is_stale(1_006, 1_000));
    }

    #[test]
    fn reads_llamacpp_and_refuses_what_is_not_metrics() {
        let text = "llamacpp:requests_processing 2\nllamacpp:requests_deferred 5\n";
        let load = parse(text, 0).unwrap();
        assert_eq!((load.running, load.waiting), (2.0, 5.0));
        assert_eq!(parse("<html>502 Bad Gateway</html>", 0), None);
        assert_eq!(parse("vllm:num_requests_running NaN\nother 1\n", 0), None);
        assert_eq!(parse("vllm:num_requests_running -3\n", 0).unwrap().running, 0.0);
    }
}

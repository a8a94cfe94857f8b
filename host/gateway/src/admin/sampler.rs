//! The sampler behind the dashboard's history: once a second it reads the metrics registry,
//! takes the difference from the previous reading (requests, latency, hooks, cache, limits,
//! audited decisions) and reads the figures of the moment from their owners (in flight,
//! cache size, GPU queue, sinks), and pushes one [`Sample`] into the state's [`crate::history::History`]. It runs on
//! the small runtime of the admin listener, never on a request worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::history::{HookSample, MAX_HOOKS, MAX_ROUTES, Percentiles, RouteSample, Sample, as_ms};
use crate::state::GatewayState;
use sluice_core::telemetry::metrics::{self, HistogramSnapshot, Labels, Registry};

/// Takes a sample every second into `state`'s history until shutdown.
pub async fn sample_every_second(state: Arc<GatewayState>, mut shutdown: watch::Receiver<bool>) {
    let mut counters = Counters::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let sample = counters.sample(&state);
        state.history().push(sample);
    }
}

/// The cumulative figures of the previous sample, to take differences from.
#[derive(Default)]
struct Counters {
    counts: HashMap<(&'static str, Labels), u64>,
    histograms: HashMap<(&'static str, Labels), HistogramSnapshot>,
}

/// The value of label `name` in `labels`, or "".
fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    metrics::label(labels, name).unwrap_or("")
}

impl Counters {
    /// Each series of counter `family` with what it counted since the last sample.
    fn deltas(&mut self, registry: &Registry, family: &'static str) -> Vec<(Labels, u64)> {
        let series = registry.counters_named(family);
        series
            .into_iter()
            .map(|(labels, now)| {
                let before = self.counts.insert((family, labels.clone()), now).unwrap_or(0);
                (labels, now.saturating_sub(before))
            })
            .collect()
    }

    /// What counter `family` counted since the last sample, summed over the series whose
    /// labels `yes` accepts and over the rest. Each family is read once per sample: a second
    /// read would see only what happened in between.
    fn split(&mut self, registry: &Registry, family: &'static str, yes: impl Fn(&Labels) -> bool) -> (u64, u64) {
        let deltas = self.deltas(registry, family);
        let (chosen, rest): (Vec<_>, Vec<_>) = deltas.iter().partition(|(l, _)| yes(l));
        let total = |part: Vec<&(Labels, u64)>| part.iter().map(|(_, n)| n).sum();
        (total(chosen), total(rest))
    }

    /// Each series of histogram `family` with what it recorded since the last sample.
    fn histogram_deltas(&mut self, registry: &Registry, family: &'static str) -> Vec<(Labels, HistogramSnapshot)> {
        let series = registry.histograms_named(family);
        series
            .into_iter()
            .map(|(labels, h)| {
                let now = h.snapshot();
                let before = self.histograms.insert((family, labels.clone()), now.clone());
                let delta = before.map_or(now.clone(), |b| now.since(&b));
                (labels, delta)
            })
            .collect()
    }

    fn sample(&mut self, state: &GatewayState) -> Sample {
        let backends = state.runtime().backends();
        let registry = &*backends.metrics;
        let (status, routes, latency_ms) = self.requests(registry);
        let hooks = self.hooks(registry);
        let (cache_bytes, cache_entries) = backends.http_cache.memory_usage();
        let gpu_waiting = backends
            .gpu
            .as_ref()
            .map_or(0, |fleet| fleet.scheduler.waiting() as u64);
        let (cache_hits, cache_misses) = self.split(registry, "sluice_http_cache_lookups_total", |l| {
            matches!(label(l, "result"), "hit" | "stale")
        });
        let (limits_allowed, limits_denied) = self.split(registry, "sluice_ratelimit_decisions_total", |l| {
            label(l, "result") == "allowed"
        });
        let (auth_allowed, auth_denied) = self.split(registry, "sluice_audit_events_total", |l| {
            label(l, "outcome") == "allow"
        });
        let (plugin_failures, _) = self.split(registry, "sluice_plugin_failures_total", |_| true);
        let (cache_evictions, _) = self.split(registry, "sluice_http_cache_evictions_total", |_| true);
        let sinks = backends.sinks.as_ref();
        Sample {
            t: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            status,
            latency_ms,
            in_flight: state.in_flight(),
            routes,
            hooks,
            plugin_failures,
            cache_hits,
            cache_misses,
            cache_evictions,
            cache_bytes,
            cache_entries,
            limits_allowed,
            limits_denied,
            auth_allowed,
            auth_denied,
            gpu_waiting,
            sink_queued: sinks.map_or(0, |s| s.queued() as u64),
            sink_spilled_bytes: sinks.map_or(0, |s| s.spilled_bytes()),
        }
    }

    /// Requests by status class, the busiest routes, and the latency of all of them.
    fn requests(&mut self, registry: &Registry) -> ([u64; 5], Vec<RouteSample>, Option<Percentiles>) {
        let mut status = [0u64; 5];
        let mut per_route: HashMap<String, u64> = HashMap::new();
        for (labels, n) in self.deltas(registry, "sluice_requests_total") {
            let class = label(&labels, "status").bytes().next().unwrap_or(b'0');
            if let Some(slot) = class.checked_sub(b'1').and_then(|i| status.get_mut(usize::from(i))) {
                *slot += n;
            }
            *per_route.entry(label(&labels, "route").to_string()).or_default() += n;
        }
        let mut all = HistogramSnapshot::default();
        let mut routes = Vec::new();
        for (labels, h) in self.histogram_deltas(registry, "sluice_request_duration_seconds") {
            all.merge(&h);
            let route = label(&labels, "route").to_string();
            let requests = per_route.get(&route).copied().unwrap_or(0);
            routes.push(RouteSample {
                route,
                requests,
                latency_ms: Percentiles::of(&h),
            });
        }
        routes.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.route.cmp(&b.route)));
        routes.truncate(MAX_ROUTES);
        (status, routes, Percentiles::of(&all))
    }

    /// The busiest plugin hooks of the second, with their p99.
    fn hooks(&mut self, registry: &Registry) -> Vec<HookSample> {
        let mut hooks: Vec<HookSample> = self
            .histogram_deltas(registry, "sluice_plugin_hook_seconds")
            .into_iter()
            .filter(|(_, h)| h.count() > 0)
            .map(|(labels, h)| HookSample {
                plugin: label(&labels, "plugin").to_string(),
                hook: label(&labels, "hook").to_string(),
                calls: h.count(),
                p99_ms: h.quantile(0.99).map(as_ms),
            })
            .collect();
        hooks.sort_by_key(|h| std::cmp::Reverse(h.calls));
        hooks.truncate(MAX_HOOKS);
        hooks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_of_a_family_are_counted_from_one_reading() {
        let registry = Registry::new();
        let mut counters = Counters::default();
        let allowed = registry.counter("sluice_ratelimit_decisions_total", &[("result", "allowed")]);
        let denied = registry.counter("sluice_ratelimit_decisions_total", &[("result", "denied")]);
        allowed.add(7);
        denied.add(3);
        let family = "sluice_ratelimit_decisions_total";
        let is_allowed = |l: &Labels| label(l, "result") == "allowed";
        assert_eq!(counters.split(&registry, family, is_allowed), (7, 3));
        denied.add(2);
        assert_eq!(counters.split(&registry, family, is_allowed), (0, 2));
    }

    #[test]
    fn counters_give_what_happened_since_the_last_sample() {
        let registry = Registry::new();
        let mut counters = Counters::default();
        registry
            .counter("sluice_requests_total", &[("route", "a"), ("status", "2xx")])
            .add(5);
        registry
            .counter("sluice_requests_total", &[("route", "a"), ("status", "5xx")])
            .add(1);
        registry
            .histogram("sluice_request_duration_seconds", &[("route", "a")])
            .record(0.002);
        let (status, routes, latency) = counters.requests(&registry);
        assert_eq!(status, [0, 5, 0, 0, 1]);
        assert_eq!(routes[0].requests, 6);
        let p50 = latency.unwrap().p50;
        assert!((1.6..=2.4).contains(&p50), "{p50}");
        registry
            .counter("sluice_requests_total", &[("route", "a"), ("status", "2xx")])
            .add(2);
        let (status, routes, latency) = counters.requests(&registry);
        assert_eq!(status, [0, 2, 0, 0, 0]);
        assert_eq!(routes[0].requests, 2);
        assert_eq!(latency, None, "no request finished in this second");
    }
}

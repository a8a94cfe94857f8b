//! `metrics`: per-plugin counters, gauges and histograms, exported with a `plugin` label.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use sluice_bindings::HostError;
use sluice_core::telemetry::metrics::{Counter, Gauge, Histogram, Registry};

/// The most series one plugin may create.
pub const MAX_SERIES: usize = 64;
/// The longest metric name.
const MAX_NAME: usize = 64;

#[derive(Debug, Clone)]
enum Series {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
}

/// One `sluice_audit_events_total` series of a plugin.
#[derive(Debug)]
struct Decision {
    action: Box<str>,
    outcome: Box<str>,
    reason: Box<str>,
    counter: Arc<Counter>,
}

/// One plugin's metric series, exported as `sluice_plugin_<name>{plugin="..."}`.
#[derive(Debug)]
pub struct PluginMetrics {
    plugin: Arc<str>,
    registry: Arc<Registry>,
    series: Mutex<HashMap<String, Series>>,
    /// `sluice_audit_events_total` series of this plugin by (action, outcome, reason): a few
    /// entries, searched in order without allocating (this runs on every audited request).
    decisions: Mutex<Vec<Decision>>,
}

impl PluginMetrics {
    /// The series of `plugin` in `registry`.
    pub fn new(plugin: Arc<str>, registry: Arc<Registry>) -> Self {
        PluginMetrics {
            plugin,
            registry,
            series: Mutex::new(HashMap::new()),
            decisions: Mutex::new(Vec::new()),
        }
    }

    fn series(&self, name: &str, make: impl FnOnce(&Registry, &str, &str) -> Series) -> Result<Series, HostError> {
        let mut map = self.series.lock();
        if let Some(s) = map.get(name) {
            return Ok(s.clone());
        }
        if !valid_name(name) {
            return Err(HostError::Invalid(format!(
                "metrics: '{name}' is not a valid metric name ([a-z_][a-z0-9_]*, at most {MAX_NAME} characters; plugin '{}')",
                self.plugin
            )));
        }
        if map.len() >= MAX_SERIES {
            return Err(HostError::Limit(format!(
                "metrics: plugin '{}' already has {MAX_SERIES} series; '{name}' was not created",
                self.plugin
            )));
        }
        let full = format!("sluice_plugin_{name}");
        let s = make(&self.registry, &full, &self.plugin);
        map.insert(name.to_string(), s.clone());
        Ok(s)
    }

    /// Adds to counter `name`.
    pub fn counter_add(&self, name: &str, value: u64) -> Result<(), HostError> {
        match self.series(name, |r, n, p| Series::Counter(r.counter(n, &[("plugin", p)])))? {
            Series::Counter(c) => {
                c.add(value);
                Ok(())
            }
            _ => Err(self.kind_clash(name, "counter")),
        }
    }

    /// Sets gauge `name`.
    pub fn gauge_set(&self, name: &str, value: f64) -> Result<(), HostError> {
        match self.series(name, |r, n, p| Series::Gauge(r.gauge(n, &[("plugin", p)])))? {
            Series::Gauge(g) => {
                g.set(value);
                Ok(())
            }
            _ => Err(self.kind_clash(name, "gauge")),
        }
    }

    /// Records into histogram `name`.
    pub fn histogram_record(&self, name: &str, value: f64) -> Result<(), HostError> {
        match self.series(name, |r, n, p| Series::Histogram(r.histogram(n, &[("plugin", p)])))? {
            Series::Histogram(h) => {
                h.record(value);
                Ok(())
            }
            _ => Err(self.kind_clash(name, "histogram")),
        }
    }

    /// Counts one audited decision in `sluice_audit_events_total{plugin, action, outcome,
    /// reason}` (the dashboard's auth panel reads it). Called by the host for every audit
    /// event; the codes were checked by then. Past [`MAX_SERIES`] distinct triples, a new one
    /// is counted as action, outcome and reason `other`, so a plugin adds at most
    /// [`MAX_SERIES`] + 1 series.
    pub fn count_decision(&self, action: &str, outcome: &str, reason: &str) {
        let mut known = self.decisions.lock();
        let found = known
            .iter()
            .find(|d| &*d.action == action && &*d.outcome == outcome && &*d.reason == reason);
        if let Some(decision) = found {
            decision.counter.add(1);
            return;
        }
        let full = known.len() >= MAX_SERIES;
        let (action, outcome, reason) = if full {
            ("other", "other", "other")
        } else {
            (action, outcome, reason)
        };
        let labels = [
            ("plugin", &*self.plugin),
            ("action", action),
            ("outcome", outcome),
            ("reason", reason),
        ];
        let counter = self.registry.counter("sluice_audit_events_total", &labels);
        counter.add(1);
        if !full {
            known.push(Decision {
                action: action.into(),
                outcome: outcome.into(),
                reason: reason.into(),
                counter,
            });
        }
    }

    fn kind_clash(&self, name: &str, wanted: &str) -> HostError {
        HostError::Invalid(format!(
            "metrics: '{name}' already exists with another type than {wanted} (plugin '{}')",
            self.plugin
        ))
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && name.len() <= MAX_NAME
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_series_are_capped() {
        let registry = Arc::new(Registry::new());
        let m = PluginMetrics::new("p".into(), registry.clone());
        m.counter_add("hits", 2).unwrap();
        assert!(matches!(m.counter_add("Bad-Name", 1), Err(HostError::Invalid(_))));
        assert!(matches!(m.gauge_set("hits", 1.0), Err(HostError::Invalid(_))));
        for i in 1..MAX_SERIES {
            m.counter_add(&format!("c{i}"), 1).unwrap();
        }
        assert!(matches!(m.counter_add("one_too_many", 1), Err(HostError::Limit(_))));
        assert_eq!(registry.counter("sluice_plugin_hits", &[("plugin", "p")]).get(), 2);
    }

    #[test]
    fn decisions_are_counted_by_reason_and_capped() {
        let registry = Arc::new(Registry::new());
        let m = PluginMetrics::new("auth".into(), registry.clone());
        m.count_decision("auth.deny", "deny", "expired");
        m.count_decision("auth.deny", "deny", "expired");
        for i in 0..MAX_SERIES + 5 {
            m.count_decision(&format!("a{i}"), "deny", &format!("r{i}"));
        }
        let count = |action, outcome, reason| {
            let labels = [
                ("plugin", "auth"),
                ("action", action),
                ("outcome", outcome),
                ("reason", reason),
            ];
            registry.counter("sluice_audit_events_total", &labels).get()
        };
        assert_eq!(count("auth.deny", "deny", "expired"), 2);
        assert_eq!(
            count("other", "other", "other"),
            6,
            "past the cap, every label is other"
        );
    }
}

//! A small lock-light metrics registry: counters, gauges and histograms keyed by name and
//! labels. Handles are looked up once and updated with atomics on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// Labels of one series, as sorted (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (stored as f64 bits).
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Number of histogram buckets: upper bounds 2^-10 .. 2^(BUCKETS-11), then +Inf.
const BUCKETS: usize = 48;

/// A distribution in power-of-two buckets.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_bits: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl Histogram {
    /// Records one observation. NaN is ignored.
    pub fn record(&self, v: f64) {
        if v.is_nan() {
            return;
        }
        let idx = bucket_index(v);
        self.buckets[idx].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
    /// The sum of observations.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }
}

fn bucket_upper(i: usize) -> f64 {
    2f64.powi(i as i32 - 10)
}

fn bucket_index(v: f64) -> usize {
    if v <= bucket_upper(0) {
        return 0;
    }
    let idx = (v.log2().ceil() as i64 + 10).clamp(0, BUCKETS as i64 - 1);
    idx as usize
}

#[derive(Default)]
struct Families<T> {
    series: RwLock<BTreeMap<String, BTreeMap<Labels, Arc<T>>>>,
}

impl<T: Default> Families<T> {
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Arc<T> {
        let mut key: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        key.sort();
        if let Some(found) = self.series.read().get(name).and_then(|f| f.get(&key)) {
            return found.clone();
        }
        self.series
            .write()
            .entry(name.to_string())
            .or_default()
            .entry(key)
            .or_default()
            .clone()
    }
}

/// The registry of every series the gateway exports.
#[derive(Default)]
pub struct Registry {
    counters: Families<Counter>,
    gauges: Families<Gauge>,
    histograms: Families<Histogram>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl Registry {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter `name` with `labels`, created at zero when new.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Arc<Counter> {
        self.counters.get(name, labels)
    }

    /// The gauge `name` with `labels`, created at zero when new.
    pub fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Arc<Gauge> {
        self.gauges.get(name, labels)
    }

    /// The histogram `name` with `labels`, created empty when new.
    pub fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Arc<Histogram> {
        self.histograms.get(name, labels)
    }

    /// Every series in the Prometheus text exposition format.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        for (name, family) in self.counters.series.read().iter() {
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, c) in family {
                let _ = writeln!(out, "{name}{} {}", render_labels(labels, None), c.get());
            }
        }
        for (name, family) in self.gauges.series.read().iter() {
            let _ = writeln!(out, "# TYPE {name} gauge");
            for (labels, g) in family {
                let _ = writeln!(out, "{name}{} {}", render_labels(labels, None), g.get());
            }
        }
        for (name, family) in self.histograms.series.read().iter() {
            let _ = writeln!(out, "# TYPE {name} histogram");
            for (labels, h) in family {
                let mut cumulative = 0;
                for (i, b) in h.buckets.iter().enumerate() {
                    let n = b.load(Ordering::Relaxed);
                    cumulative += n;
                    if n == 0 && i + 1 < BUCKETS {
                        continue;
                    }
                    let le = if i + 1 == BUCKETS {
                        "+Inf".to_string()
                    } else {
                        bucket_upper(i).to_string()
                    };
                    let _ = writeln!(out, "{name}_bucket{} {cumulative}", render_labels(labels, Some(&le)));
                }
                let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), h.sum());
                let _ = writeln!(out, "{name}_count{} {}", render_labels(labels, None), h.count());
            }
        }
        out
    }
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_with_the_same_labels_in_any_order_are_one_series() {
        let r = Registry::new();
        r.counter("hits", &[("a", "1"), ("b", "2")]).add(2);
        r.counter("hits", &[("b", "2"), ("a", "1")]).add(3);
        assert_eq!(r.counter("hits", &[("a", "1"), ("b", "2")]).get(), 5);
        assert!(r.render_prometheus().contains("hits{a=\"1\",b=\"2\"} 5"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_in_inf() {
        let r = Registry::new();
        let h = r.histogram("lat", &[]);
        for v in [0.5, 3.0, 3.5, 1e30] {
            h.record(v);
        }
        assert_eq!(h.count(), 4);
        let text = r.render_prometheus();
        assert!(text.contains("lat_bucket{le=\"0.5\"} 1"), "{text}");
        assert!(text.contains("lat_bucket{le=\"4\"} 3"), "{text}");
        assert!(text.contains("lat_bucket{le=\"+Inf\"} 4"), "{text}");
    }
}

//! A small lock-light metrics registry: counters, gauges and histograms keyed by name and
//! labels. Handles are looked up once and updated with atomics on the hot path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// Labels of one series, as sorted (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// The value of label `name` in `labels`, when it has one.
pub fn label<'a>(labels: &'a Labels, name: &str) -> Option<&'a str> {
    labels.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

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

/// Buckets per doubling: bounds 2^(1/4) ≈ 1.19× apart, so a quantile read from the buckets
/// is within one bucket (about 19%) of the true value.
const PER_OCTAVE: i32 = 4;
/// The smallest finite upper bound is 2^-LOWEST_EXPONENT (about 1 µs for seconds: a
/// gateway's hooks and many of its requests take less than a millisecond).
const LOWEST_EXPONENT: i32 = 20;
/// The largest finite upper bound is 2^HIGHEST_EXPONENT.
const HIGHEST_EXPONENT: i32 = 37;
/// Number of histogram buckets: upper bounds 2^-20 .. 2^37 in quarter octaves, then +Inf.
const BUCKETS: usize = ((HIGHEST_EXPONENT + LOWEST_EXPONENT) * PER_OCTAVE + 2) as usize;

/// A distribution in buckets a quarter of a doubling wide.
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
    /// A copy of the counts as they are now (for quantiles over an interval).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            sum: self.sum(),
        }
    }
}

/// The bucket counts of a histogram at one moment, or the difference of two moments.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    buckets: Vec<u64>,
    sum: f64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: vec![0; BUCKETS],
            sum: 0.0,
        }
    }
}

impl HistogramSnapshot {
    /// What was recorded between `earlier` and this snapshot.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            sum: (self.sum - earlier.sum).max(0.0),
        }
    }

    /// Adds `other`'s observations to these (several series as one distribution).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.sum += other.sum;
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum of the observations.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The `q` quantile (0..=1), interpolated geometrically inside its bucket; none without
    /// observations. A quantile in the overflow bucket is its lower bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * count as f64).max(1.0);
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 || ((below + n) as f64) < rank {
                below += n;
                continue;
            }
            let upper = bucket_upper(i);
            if i == 0 {
                return Some(upper * (rank - below as f64) / n as f64);
            }
            let lower = bucket_upper(i - 1);
            if i + 1 == BUCKETS {
                return Some(lower);
            }
            let fraction = (rank - below as f64) / n as f64;
            return Some(lower * (upper / lower).powf(fraction));
        }
        None
    }
}

fn bucket_upper(i: usize) -> f64 {
    2f64.powf((i as i32 - LOWEST_EXPONENT * PER_OCTAVE) as f64 / PER_OCTAVE as f64)
}

/// The mantissas (the 52 fraction bits) at or below which a value is at or below 2^(1/4),
/// 2^(1/2) and 2^(3/4) times its power of two: floor((2^(q/4) - 1) * 2^52).
const QUARTER_MANTISSAS: [u64; 3] = [852_113_092_622_101, 1_865_452_045_155_276, 3_070_521_937_417_133];

/// The bucket of `v`: the first whose upper bound is at or above it. Read from the bits of
/// `v` (its exponent and how far its mantissa is into the octave), so recording costs no
/// logarithm; the bounds are irrational except the powers of two, which are exact.
fn bucket_index(v: f64) -> usize {
    if v.is_nan() || v <= 0.0 || v.is_subnormal() {
        return 0;
    }
    let bits = v.to_bits();
    let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mantissa = bits & ((1 << 52) - 1);
    let octave = (exponent + i64::from(LOWEST_EXPONENT)) * i64::from(PER_OCTAVE);
    let within = if mantissa == 0 {
        0
    } else {
        1 + QUARTER_MANTISSAS.iter().filter(|&&t| mantissa > t).count() as i64
    };
    (octave + within).clamp(0, BUCKETS as i64 - 1) as usize
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

    /// Every counter named `name`, with its labels and count.
    pub fn counters_named(&self, name: &str) -> Vec<(Labels, u64)> {
        let series = self.counters.series.read();
        let family = series.get(name).into_iter().flatten();
        family.map(|(labels, c)| (labels.clone(), c.get())).collect()
    }

    /// Every histogram named `name`, with its labels.
    pub fn histograms_named(&self, name: &str) -> Vec<(Labels, Arc<Histogram>)> {
        let series = self.histograms.series.read();
        let family = series.get(name).into_iter().flatten();
        family.map(|(labels, h)| (labels.clone(), h.clone())).collect()
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
    fn quantiles_of_an_interval_are_within_a_bucket_of_the_truth() {
        let h = Histogram::default();
        for _ in 0..1000 {
            h.record(0.5);
        }
        let before = h.snapshot();
        for i in 1..=1000 {
            h.record(f64::from(i) / 1000.0);
        }
        let interval = h.snapshot().since(&before);
        assert_eq!(interval.count(), 1000);
        for (q, truth) in [(0.5, 0.5), (0.95, 0.95), (0.99, 0.99)] {
            let got = interval.quantile(q).unwrap();
            assert!((got / truth - 1.0).abs() < 0.2, "q{q}: {got} for {truth}");
        }
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
        let mut both = interval.clone();
        both.merge(&interval);
        assert_eq!(both.count(), 2000);
    }

    #[test]
    fn buckets_from_the_bits_match_the_bounds() {
        // The slow definition: the first bucket whose bound is at or above the value.
        let slow = |v: f64| (0..BUCKETS - 1).find(|&i| v <= bucket_upper(i)).unwrap_or(BUCKETS - 1);
        let mut v = 1e-9;
        while v < 1e13 {
            for probe in [v, v * 1.000_001, v * 0.999_999] {
                assert_eq!(bucket_index(probe), slow(probe), "{probe}");
            }
            v *= 1.0173;
        }
        for i in 0..BUCKETS - 1 {
            let bound = bucket_upper(i);
            assert_eq!(
                bucket_index(bound * (1.0 + 1e-12)),
                (i + 1).min(BUCKETS - 1),
                "just above bound {i}"
            );
            assert_eq!(bucket_index(bound * (1.0 - 1e-12)), i, "just below bound {i}");
        }
        assert_eq!(bucket_index(0.0), 0);
        assert_eq!(bucket_index(-1.0), 0);
        assert_eq!(bucket_index(f64::INFINITY), BUCKETS - 1);
    }

    #[test]
    fn sub_millisecond_values_keep_their_resolution() {
        let h = Histogram::default();
        for _ in 0..100 {
            h.record(0.000_120);
        }
        let p50 = h.snapshot().quantile(0.5).unwrap();
        assert!((0.000_100..0.000_145).contains(&p50), "{p50}");
        assert_eq!(bucket_upper(BUCKETS - 2), 2f64.powi(HIGHEST_EXPONENT));
        assert_eq!(bucket_index(1e30), BUCKETS - 1);
    }

    #[test]
    fn families_are_read_with_their_labels() {
        let r = Registry::new();
        r.counter("req", &[("route", "a")]).add(3);
        r.counter("req", &[("route", "b")]).add(4);
        r.histogram("h", &[("x", "y")]).record(1.0);
        let counts: u64 = r.counters_named("req").iter().map(|(_, n)| n).sum();
        assert_eq!(counts, 7);
        assert_eq!(r.histograms_named("h")[0].1.count(), 1);
        assert!(r.counters_named("absent").is_empty());
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

//! `[sinks]`: the background writer of telemetry, audit and inference rows.

use std::path::PathBuf;

use serde::Deserialize;

/// How rows reach Postgres (or, without `[postgres]`, the in-memory ring).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    /// Rows waiting for the writer; when full, new rows are dropped and counted, except rows
    /// of `overflow_tables`, which go on into the overflow. Default 10000.
    #[serde(default = "default_queue_rows")]
    pub queue_rows: usize,
    /// A batch is written when it has this many rows (at most 4000)... Default 100.
    #[serde(default = "default_batch_rows")]
    pub batch_rows: usize,
    /// ...or when its first row has waited this long, in ms. Default 1000.
    #[serde(default = "default_flush_ms")]
    pub flush_ms: u64,
    /// Where batches go while Postgres is down (JSON lines, replayed when it is back);
    /// relative to the config file. Default `.sluice-spill/rows.jsonl`.
    #[serde(default = "default_spill_path")]
    pub spill_path: PathBuf,
    /// The spill file's limit in bytes; rows past it are dropped and counted. Default 64 MiB.
    #[serde(default = "default_spill_max_bytes")]
    pub spill_max_bytes: u64,
    /// Rows kept in memory when no Postgres is configured (the newest win). Default 10000.
    #[serde(default = "default_ring_rows")]
    pub ring_rows: usize,
    /// Without Postgres, also append every row to this JSON-lines file.
    #[serde(default)]
    pub jsonl_path: Option<PathBuf>,
    /// Whether the gateway writes a `service_telemetry` row for every request. Default false.
    #[serde(default)]
    pub request_telemetry: bool,
    /// How long one batch may take to reach Postgres, in ms, before Postgres counts as
    /// unavailable and the batch goes to the spill. Default 1000.
    #[serde(default = "default_write_timeout_ms")]
    pub write_timeout_ms: u64,
    /// Rows of `overflow_tables` accepted beyond `queue_rows` while the writer moves rows to
    /// the spill (in memory until then). Default 100000.
    #[serde(default = "default_overflow_rows")]
    pub overflow_rows: usize,
    /// The tables whose rows are never dropped at the queue while the overflow has room:
    /// `audit_log` (default), `inference_logs`, `service_telemetry`.
    #[serde(default = "default_overflow_tables")]
    pub overflow_tables: Vec<String>,
    /// What happens when audit rows cannot be kept (the spill is at `spill_max_bytes` or
    /// cannot be written, or the overflow is full; needs `audit_log` in `overflow_tables`): `closed` (default) answers 503
    /// `audit_unavailable` on routes with a plugin granted `audit` until there is room again;
    /// `open` serves them and drops the rows, counted and logged.
    #[serde(default)]
    pub audit_when_full: AuditWhenFull,
}

/// What happens to audited routes when audit rows cannot be kept.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuditWhenFull {
    /// Answer 503 on routes whose plugins audit.
    #[default]
    Closed,
    /// Serve them; the rows are dropped and counted.
    Open,
}

fn default_queue_rows() -> usize {
    10_000
}
fn default_batch_rows() -> usize {
    100
}
fn default_flush_ms() -> u64 {
    1_000
}
fn default_spill_path() -> PathBuf {
    PathBuf::from(".sluice-spill/rows.jsonl")
}
fn default_spill_max_bytes() -> u64 {
    64 << 20
}
fn default_ring_rows() -> usize {
    10_000
}
fn default_write_timeout_ms() -> u64 {
    1_000
}
fn default_overflow_rows() -> usize {
    100_000
}
fn default_overflow_tables() -> Vec<String> {
    vec!["audit_log".into()]
}

/// The tables rows are written to.
pub const SINK_TABLES: [&str; 3] = ["service_telemetry", "audit_log", "inference_logs"];

impl Default for SinkSettings {
    fn default() -> Self {
        SinkSettings {
            queue_rows: default_queue_rows(),
            batch_rows: default_batch_rows(),
            flush_ms: default_flush_ms(),
            spill_path: default_spill_path(),
            spill_max_bytes: default_spill_max_bytes(),
            ring_rows: default_ring_rows(),
            jsonl_path: None,
            request_telemetry: false,
            write_timeout_ms: default_write_timeout_ms(),
            overflow_rows: default_overflow_rows(),
            overflow_tables: default_overflow_tables(),
            audit_when_full: AuditWhenFull::Closed,
        }
    }
}

impl SinkSettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.queue_rows == 0
            || self.batch_rows == 0
            || self.flush_ms == 0
            || self.ring_rows == 0
            || self.write_timeout_ms == 0
        {
            return Err(
                "sinks: queue_rows, batch_rows, flush_ms, ring_rows and write_timeout_ms must be at least 1".into(),
            );
        }
        if let Some(bad) = self.overflow_tables.iter().find(|t| !SINK_TABLES.contains(&t.as_str())) {
            return Err(format!(
                "sinks.overflow_tables: unknown table {bad:?} (the tables are {})",
                SINK_TABLES.join(", ")
            ));
        }
        if self.batch_rows > 4_000 {
            return Err("sinks.batch_rows must be at most 4000 (one INSERT binds every value, at most 65535)".into());
        }
        Ok(())
    }
}

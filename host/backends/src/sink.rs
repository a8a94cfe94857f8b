//! The background writer of telemetry, audit and inference rows. `emit` puts a row on a
//! bounded queue and returns at once: the request path never waits on Postgres. The writer
//! collects batches (a size or an age, whichever first) and writes each in one transaction of
//! multi-row INSERTs. A write that fails or takes longer than `write_timeout_ms` marks
//! Postgres down: batches then go straight to a bounded append-only spill file (JSON lines,
//! fsynced after each append), and one write per flush interval probes Postgres. Once a
//! write succeeds, the spill is replayed oldest first, and while it holds rows new batches
//! are appended behind them, so rows reach Postgres in the order they came (also after a
//! restart). Without Postgres, rows go to an in-memory ring and optionally a JSON-lines file.
//!
//! Audit rows (the rows of `overflow_tables`) are never dropped while there is room: past
//! `queue_rows` they still queue (up to `overflow_rows` more) for the writer to spill. When they cannot be kept (overflow
//! full, spill full or unwritable), `audit_when_full` decides: `closed` makes
//! [`Sinks::audit_refused`] true, and the gateway answers 503 on audited routes; `open`
//! drops them, counted and logged. A row that cannot be kept anywhere is counted.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::postgres::PostgresBackend;
use super::sink_queue::{SinkQueue, Work};
pub use super::sink_rows::SinkRow;
pub use super::sink_rows::now_us;
use super::sink_rows::{Queued, inserts};
use super::sink_spill::Spill;
use sluice_config::{AuditWhenFull, SinkSettings};
use sluice_core::telemetry::metrics::{Counter, Gauge, Registry};

/// Where rows end up.
enum Destination {
    Postgres(Arc<PostgresBackend>),
    Memory { jsonl: Option<PathBuf> },
}

/// Counters by table and outcome.
#[derive(Debug)]
struct SinkMetrics {
    registry: Arc<Registry>,
    spill_bytes: Arc<Gauge>,
}

impl SinkMetrics {
    fn rows(&self, table: &str, outcome: &str) -> Arc<Counter> {
        self.registry
            .counter("sluice_sink_rows_total", &[("table", table), ("outcome", outcome)])
    }

    /// Counts `rows` under `outcome`: one registry lookup per table in the batch, not per row.
    fn count(&self, rows: &[Queued], outcome: &str) {
        let mut per_table: Vec<(&str, u64)> = Vec::new();
        for q in rows {
            let table = q.row.table();
            match per_table.iter_mut().find(|(t, _)| *t == table) {
                Some(entry) => entry.1 += 1,
                None => per_table.push((table, 1)),
            }
        }
        for (table, n) in per_table {
            self.rows(table, outcome).add(n);
        }
    }
}

/// Reads one line of the spill file as the replay does: the row, or why the line cannot be
/// read (the replay skips and logs such a line).
pub fn parse_spill_line(line: &str) -> Result<SinkRow, String> {
    super::sink_spill::parse_line(line)
        .map(|q| q.row)
        .map_err(|e| e.to_string())
}

/// The handle rows are emitted through.
pub struct Sinks {
    queue: Arc<SinkQueue>,
    metrics: Arc<SinkMetrics>,
    ring: Arc<Mutex<VecDeque<SinkRow>>>,
    /// The spill is full or cannot be written: rows the writer has to spill are lost.
    spill_stuck: Arc<AtomicBool>,
    when_full: AuditWhenFull,
    /// Audit rows dropped at the queue since the last log line about it.
    audit_dropped: Mutex<(u64, Option<std::time::Instant>)>,
}

impl std::fmt::Debug for Sinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sinks").finish_non_exhaustive()
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        // The writer writes what is left and stops.
        self.queue.close();
    }
}

impl Sinks {
    /// Starts the writer on the current tokio runtime: to `postgres` when given, otherwise to
    /// the in-memory ring (and `settings.jsonl_path`). `spill` is the spill file's resolved
    /// path; a spill left by an earlier run is replayed.
    pub fn start(
        settings: &SinkSettings,
        spill: PathBuf,
        jsonl: Option<PathBuf>,
        postgres: Option<Arc<PostgresBackend>>,
        registry: Arc<Registry>,
    ) -> Arc<Self> {
        let queue = Arc::new(SinkQueue::new(
            settings.queue_rows,
            settings.overflow_rows,
            &settings.overflow_tables,
            settings.batch_rows,
        ));
        let spill_stuck = Arc::new(AtomicBool::new(false));
        let metrics = Arc::new(SinkMetrics {
            spill_bytes: registry.gauge("sluice_sink_spill_bytes", &[]),
            registry,
        });
        let ring = Arc::new(Mutex::new(VecDeque::new()));
        let destination = match postgres {
            Some(pg) => Destination::Postgres(pg),
            None => Destination::Memory { jsonl },
        };
        let writer = Writer {
            settings: settings.clone(),
            destination,
            spill: Spill::new(spill, settings.spill_max_bytes),
            metrics: metrics.clone(),
            ring: ring.clone(),
            last_failure_log: None,
            down_since: None,
            spill_stuck: spill_stuck.clone(),
        };
        tokio::spawn(writer.run(queue.clone()));
        Arc::new(Sinks {
            queue,
            metrics,
            ring,
            spill_stuck,
            when_full: settings.audit_when_full,
            audit_dropped: Mutex::new((0, None)),
        })
    }

    /// Whether routes whose plugins audit must be refused now (`audit_when_full = "closed"`
    /// and audit rows could not be kept: the queue and its audit overflow are full, or the
    /// spill is full or cannot be written). Cleared once there is room again.
    pub fn audit_refused(&self) -> bool {
        self.when_full == AuditWhenFull::Closed && (self.spill_stuck.load(Ordering::Relaxed) || self.queue.audit_full())
    }

    /// Queues `row` without waiting. Returns false when the queue was full (the row is
    /// dropped and counted; an audit row is also logged, at most once a second).
    pub fn emit(&self, row: SinkRow) -> bool {
        let (table, audit) = (row.table(), row.is_audit());
        if self.queue.push(Queued::new(row)) {
            return true;
        }
        self.metrics.rows(table, "dropped").add(1);
        if audit {
            let mut dropped = self.audit_dropped.lock();
            dropped.0 += 1;
            let due = dropped.1.is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
            if due {
                tracing::error!(
                    dropped = dropped.0,
                    "audit rows dropped: the sink queue and its audit overflow are full"
                );
                *dropped = (0, Some(std::time::Instant::now()));
            }
        }
        false
    }

    /// Writes everything queued so far (and retries the spill) and waits for it.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        self.queue.request_flush(ack);
        let _ = done.await;
    }

    /// The newest rows kept in memory (without Postgres), oldest first.
    pub fn recent(&self) -> Vec<SinkRow> {
        self.ring.lock().iter().cloned().collect()
    }

    /// Rows waiting in the queue now.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Bytes waiting in the spill file.
    pub fn spilled_bytes(&self) -> u64 {
        self.metrics.spill_bytes.get() as u64
    }
}

struct Writer {
    settings: SinkSettings,
    destination: Destination,
    spill: Spill,
    metrics: Arc<SinkMetrics>,
    ring: Arc<Mutex<VecDeque<SinkRow>>>,
    last_failure_log: Option<Instant>,
    /// When a write last found Postgres unreachable (None while it answers).
    down_since: Option<Instant>,
    /// Set while the spill refuses rows (full or unwritable); cleared when it has room.
    spill_stuck: Arc<AtomicBool>,
}

impl Writer {
    /// Writes batches until the handle is dropped: a batch when it is full or `flush_ms`
    /// after its first row, whichever first; everything at once for a flush request; the
    /// spill retried every `flush_ms` while it holds rows.
    async fn run(mut self, queue: Arc<SinkQueue>) {
        let _running = queue.writer_guard();
        let interval = Duration::from_millis(self.settings.flush_ms);
        self.metrics.spill_bytes.set(self.spill.bytes() as f64);
        // When the current batch is due, or when to retry the spill.
        let mut due: Option<Instant> = (self.spill.bytes() > 0).then(Instant::now);
        loop {
            let batch_due = due.is_some_and(|at| at <= Instant::now());
            match queue.next(batch_due) {
                Work::Write(mut rows) => due = self.write(&mut rows, interval).await,
                Work::Flushed(acks) => {
                    // An empty write still retries the spill, as a flush promises.
                    due = self.write(&mut Vec::new(), interval).await;
                    for ack in acks {
                        let _ = ack.send(());
                    }
                }
                Work::Closed => return,
                Work::Idle { pending } => {
                    if batch_due {
                        // Only the spill was due: retry it.
                        due = self.write(&mut Vec::new(), interval).await;
                        continue;
                    }
                    if pending && due.is_none() {
                        due = Some(Instant::now() + interval);
                    }
                    match due {
                        Some(at) => tokio::select! {
                            _ = queue.woken() => {}
                            _ = tokio::time::sleep_until(at) => {}
                        },
                        None => queue.woken().await,
                    }
                }
            }
        }
    }

    /// Flushes `rows` and returns when the spill is to be retried next (none while it is
    /// empty).
    async fn write(&mut self, rows: &mut Vec<Queued>, interval: Duration) -> Option<Instant> {
        self.flush(rows).await;
        (self.spill.bytes() > 0).then(|| Instant::now() + interval)
    }

    /// Writes `batch` (emptying it); on success also replays the spill.
    async fn flush(&mut self, batch: &mut Vec<Queued>) {
        let rows = std::mem::take(batch);
        match &self.destination {
            Destination::Memory { jsonl } => {
                if let Some(path) = jsonl
                    && let Err(e) = Spill::append_to(path, &rows).await
                {
                    tracing::warn!(error = %e, path = %path.display(), "cannot append rows to the JSON-lines file");
                }
                self.metrics.count(&rows, "written");
                let mut ring = self.ring.lock();
                for q in rows {
                    if ring.len() == self.settings.ring_rows {
                        ring.pop_front();
                    }
                    ring.push_back(q.row);
                }
            }
            Destination::Postgres(pg) => {
                let pg = pg.clone();
                // While Postgres is known to be down, batches go straight to the spill and
                // only one attempt per flush interval probes it.
                let interval = Duration::from_millis(self.settings.flush_ms);
                let probing = self.down_since.is_some_and(|at| at.elapsed() < interval);
                if probing {
                    if !rows.is_empty() {
                        self.keep(rows).await;
                    }
                    return;
                }
                // Older rows first: the spill, then this batch (behind the spill when the
                // replay could not finish).
                if self.spill.bytes() > 0 {
                    self.replay(&pg).await;
                }
                if rows.is_empty() {
                    return;
                }
                if self.spill.bytes() > 0 {
                    self.keep(rows).await;
                } else {
                    self.store(&pg, rows).await;
                }
            }
        }
    }

    /// Writes `rows`; rows Postgres refuses as data (bad values, broken constraints) go to the
    /// rejected file one by one, the rest are written. Returns false (after spilling what was
    /// not written) when Postgres could not be reached.
    async fn store(&mut self, pg: &PostgresBackend, rows: Vec<Queued>) -> bool {
        let attempts = if self.down_since.is_some() { 1 } else { 2 };
        match write(pg, &rows, attempts, self.timeout()).await {
            Ok(()) => {
                self.up();
                self.metrics.count(&rows, "written");
                true
            }
            Err(WriteError::Data(_)) => {
                self.up();
                for (i, q) in rows.iter().enumerate() {
                    match write(pg, std::slice::from_ref(q), 1, self.timeout()).await {
                        Ok(()) => self.metrics.count(std::slice::from_ref(q), "written"),
                        Err(WriteError::Data(why)) => self.reject(q, &why).await,
                        Err(WriteError::Unavailable(why)) => {
                            self.went_down(&why);
                            self.keep(rows[i..].to_vec()).await;
                            return false;
                        }
                    }
                }
                true
            }
            Err(WriteError::Unavailable(why)) => {
                self.went_down(&why);
                self.keep(rows).await;
                false
            }
        }
    }

    /// Keeps a row Postgres refuses as data in the rejected file (never retried), counted
    /// and logged.
    async fn reject(&mut self, q: &Queued, why: &str) {
        self.metrics.count(std::slice::from_ref(q), "rejected");
        tracing::error!(table = q.row.table(), event_id = %q.event_id, error = %why, "a row Postgres refuses was set aside in the rejected file");
        if let Err(e) = Spill::append_to(&self.spill.rejected_path(), std::slice::from_ref(q)).await {
            tracing::error!(error = %e, "cannot write the rejected-rows file");
        }
    }

    /// Clears `spill_stuck` once the spill is below 90% of its limit again.
    fn note_spill_room(&self) {
        if self.spill.bytes() < self.settings.spill_max_bytes / 10 * 9 {
            self.spill_stuck.store(false, Ordering::Relaxed);
        }
    }

    /// How long one write may take before Postgres counts as unavailable.
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.write_timeout_ms)
    }

    fn up(&mut self) {
        if self.down_since.take().is_some() {
            tracing::info!("Postgres is back: writing rows again");
        }
    }

    fn went_down(&mut self, why: &str) {
        self.down_since = Some(Instant::now());
        self.log_failure(why);
    }

    /// Puts rows that could not be written into the spill, counting those that do not fit.
    async fn keep(&mut self, rows: Vec<Queued>) {
        let refused = self.spill.append(&rows).await;
        let kept = rows.len() - refused.len();
        self.metrics.count(&rows[..kept], "spilled");
        if refused.is_empty() {
            self.note_spill_room();
        } else {
            self.spill_stuck.store(true, Ordering::Relaxed);
        }
        if !refused.is_empty() {
            self.metrics.count(&refused, "dropped");
            let audit = refused.iter().filter(|q| q.row.is_audit()).count();
            tracing::error!(
                dropped = refused.len(),
                audit,
                limit = self.settings.spill_max_bytes,
                "rows dropped: Postgres is unreachable and the spill file is full"
            );
        }
        self.metrics.spill_bytes.set(self.spill.bytes() as f64);
    }

    /// Writes the spilled rows back, a batch at a time; stops at the first failure and keeps
    /// what is left.
    async fn replay(&mut self, pg: &PostgresBackend) {
        // While Postgres was down, ask it first rather than reading the whole spill for nothing.
        if self.down_since.is_some()
            && let Err(e) = pg.ping(Duration::from_secs(1)).await
        {
            self.went_down(&e.to_string());
            return;
        }
        let rows = match self.spill.read_all().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the spill file");
                return;
            }
        };
        let mut done = 0;
        let mut reported = Instant::now();
        for chunk in rows.chunks(self.settings.batch_rows) {
            if reported.elapsed() >= Duration::from_secs(1) {
                // A progress report (one line redrawn in place on a terminal).
                tracing::info!(step = done as u64, of = rows.len() as u64, "replaying spilled rows");
                reported = Instant::now();
            }
            match write(pg, chunk, 1, self.timeout()).await {
                Ok(()) => self.metrics.count(chunk, "replayed"),
                Err(WriteError::Data(_)) => {
                    // One bad row must not block the rest: row by row, the bad ones aside.
                    let mut reached = true;
                    for q in chunk {
                        match write(pg, std::slice::from_ref(q), 1, self.timeout()).await {
                            Ok(()) => self.metrics.count(std::slice::from_ref(q), "replayed"),
                            Err(WriteError::Data(why)) => self.reject(q, &why).await,
                            Err(WriteError::Unavailable(why)) => {
                                self.went_down(&why);
                                reached = false;
                                break;
                            }
                        }
                        done += 1;
                    }
                    if !reached {
                        break;
                    }
                    continue;
                }
                Err(WriteError::Unavailable(why)) => {
                    self.went_down(&why);
                    break;
                }
            }
            done += chunk.len();
        }
        if done == 0 {
            return;
        }
        self.up();
        if let Err(e) = self.spill.replace(&rows[done..]).await {
            tracing::error!(error = %e, "cannot rewrite the spill file");
        }
        // The last progress report (it ends the line on a terminal), also when a failure
        // stopped the replay short (`left` rows stay in the spill).
        tracing::info!(
            step = done as u64,
            of = done as u64,
            left = (rows.len() - done) as u64,
            "replayed spilled rows into Postgres"
        );
        self.metrics.spill_bytes.set(self.spill.bytes() as f64);
        self.note_spill_room();
    }

    fn log_failure(&mut self, error: &str) {
        self.metrics
            .registry
            .counter("sluice_sink_write_failures_total", &[])
            .add(1);
        if self
            .last_failure_log
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(%error, "cannot write rows to Postgres; spilling them to disk until it is back");
            self.last_failure_log = Some(Instant::now());
        }
    }
}

/// Why a write failed.
enum WriteError {
    /// Postgres refused the rows themselves (SQLSTATE class 22, data exception, or 23,
    /// integrity): writing them again will not help.
    Data(String),
    /// Postgres could not be reached or did not answer.
    Unavailable(String),
}

impl From<sqlx::Error> for WriteError {
    fn from(e: sqlx::Error) -> Self {
        let data = matches!(&e, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22") || c.starts_with("23")))
            || matches!(e, sqlx::Error::Encode(_));
        if data {
            WriteError::Data(e.to_string())
        } else {
            WriteError::Unavailable(e.to_string())
        }
    }
}

/// Writes `rows` in one transaction within `timeout`, up to `attempts` times: after Postgres
/// restarts, the pool's first connection is a dead one, and a second attempt gets a fresh one
/// (only when the first failed fast: a Postgres that does not answer is not waited on twice).
/// Each row carries its event id and inserts skip ids already there, so a batch written again
/// (after a commit whose answer was lost) adds nothing twice.
async fn write(pg: &PostgresBackend, rows: &[Queued], attempts: u32, timeout: Duration) -> Result<(), WriteError> {
    let started = Instant::now();
    let mut result = write_once(pg, rows, timeout).await;
    for _ in 1..attempts {
        match result {
            Err(WriteError::Unavailable(_)) if started.elapsed() < timeout / 2 => {
                result = write_once(pg, rows, timeout).await;
            }
            _ => break,
        }
    }
    result
}

async fn write_once(pg: &PostgresBackend, rows: &[Queued], timeout: Duration) -> Result<(), WriteError> {
    let limit = pg.call_limit().min(timeout);
    let work = async {
        let mut tx = pg.pool().begin().await?;
        for mut insert in inserts(rows) {
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    };
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| Err(WriteError::Unavailable(format!("no answer within {limit:?}"))))
}

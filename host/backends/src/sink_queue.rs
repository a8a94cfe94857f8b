//! The sink's queue between the request path and the writer. Emitting a row takes a short
//! lock and wakes the writer only when it has something new to do: the first row of a batch
//! (so it can arm the batch's deadline), a full batch, a flush request or the close. Every
//! other row is only queued: the writer runs on another thread, and waking it for every row
//! cost a futex wake, two context switches and a cross-thread free per request.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};

use super::sink_rows::Queued;
use sluice_config::SINK_TABLES;

/// What the writer finds when it looks.
#[derive(Default)]
struct State {
    rows: VecDeque<Queued>,
    flushes: Vec<oneshot::Sender<()>>,
    closed: bool,
    /// The writer has stopped (returned, or its task was dropped with its runtime): rows and
    /// flush requests are refused at once instead of waiting for nobody.
    gone: bool,
}

/// A bounded queue of rows with a writer that is woken sparingly. Rows of the overflow tables
/// (audit rows by default) may go `overflow` rows past the capacity: they must reach the
/// spill, not be dropped, while the writer catches up.
pub(crate) struct SinkQueue {
    state: Mutex<State>,
    wake: Notify,
    capacity: usize,
    overflow: usize,
    /// Which tables overflow, in the order of [`SINK_TABLES`].
    overflows: [bool; 3],
    batch_rows: usize,
    /// An audit row was refused; cleared once the writer took the queue below its capacity.
    audit_refused: AtomicBool,
}

/// What the writer is to do next.
pub(crate) enum Work {
    /// Write these rows (at most a batch), then look again.
    Write(Vec<Queued>),
    /// Everything queued before these flush requests has been taken: answer them.
    Flushed(Vec<oneshot::Sender<()>>),
    /// The handle was dropped and the queue is empty: stop.
    Closed,
    /// Nothing is due; `pending` says whether rows are waiting for their batch deadline.
    Idle { pending: bool },
}

impl SinkQueue {
    /// A queue of at most `capacity` rows (rows of the `overflow_tables`: `overflow` more)
    /// whose writer writes batches of `batch_rows`.
    pub(crate) fn new(capacity: usize, overflow: usize, overflow_tables: &[String], batch_rows: usize) -> Self {
        let overflows = SINK_TABLES.map(|t| overflow_tables.iter().any(|o| o == t));
        SinkQueue {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            capacity: capacity.max(1),
            overflow,
            overflows,
            batch_rows: batch_rows.max(1),
            audit_refused: AtomicBool::new(false),
        }
    }

    /// Queues `row`; returns false (and drops it) when the queue is full for its kind.
    pub(crate) fn push(&self, row: Queued) -> bool {
        let mut state = self.state.lock();
        let table = SINK_TABLES.iter().position(|t| *t == row.row.table()).unwrap_or(0);
        let limit = if self.overflows[table] {
            self.capacity + self.overflow
        } else {
            self.capacity
        };
        if state.gone || state.rows.len() >= limit {
            if row.row.is_audit() {
                self.audit_refused.store(true, Ordering::Relaxed);
            }
            return false;
        }
        state.rows.push_back(row);
        let wake = state.rows.len() == 1 || state.rows.len() == self.batch_rows;
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        true
    }

    /// Rows waiting now.
    pub(crate) fn len(&self) -> usize {
        self.state.lock().rows.len()
    }

    /// Whether an audit row was refused since the writer last took the queue below its
    /// capacity (one atomic load: the request path asks).
    pub(crate) fn audit_full(&self) -> bool {
        self.audit_refused.load(Ordering::Relaxed)
    }

    /// Asks the writer to write everything queued so far; `ack` is answered once it has.
    /// Without a writer, `ack` is dropped at once (the flush has nothing to wait for).
    pub(crate) fn request_flush(&self, ack: oneshot::Sender<()>) {
        let mut state = self.state.lock();
        if state.gone {
            return;
        }
        state.flushes.push(ack);
        drop(state);
        self.wake.notify_one();
    }

    /// Tells the writer to write what is left and stop.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.wake.notify_one();
    }

    /// The writer's next piece of work. `batch_due` says the current batch's deadline has
    /// passed, so whatever is queued is written even if the batch is not full.
    pub(crate) fn next(&self, batch_due: bool) -> Work {
        let mut state = self.state.lock();
        let urgent = batch_due || state.closed || !state.flushes.is_empty();
        if state.rows.len() >= self.batch_rows || (urgent && !state.rows.is_empty()) {
            let n = state.rows.len().min(self.batch_rows);
            let rows = state.rows.drain(..n).collect();
            if state.rows.len() < self.capacity {
                self.audit_refused.store(false, Ordering::Relaxed);
            }
            return Work::Write(rows);
        }
        if !state.flushes.is_empty() {
            return Work::Flushed(std::mem::take(&mut state.flushes));
        }
        if state.closed {
            return Work::Closed;
        }
        Work::Idle {
            pending: !state.rows.is_empty(),
        }
    }

    /// A guard the writer holds while it runs: when it is dropped (the writer returned, or its
    /// task went away with its runtime), pending flush requests are answered by dropping them
    /// and later rows are refused.
    pub(crate) fn writer_guard(self: &Arc<Self>) -> WriterGuard {
        WriterGuard(self.clone())
    }

    /// Waits until a push, flush request or close may have given the writer work.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// See [`SinkQueue::writer_guard`].
pub(crate) struct WriterGuard(Arc<SinkQueue>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.gone = true;
        state.flushes.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SinkRow;

    fn row(n: u16) -> Queued {
        Queued::new(SinkRow::ServiceTelemetry {
            service_name: "sluice".into(),
            operation: format!("op-{n}"),
            latency_ms: 1.0,
            success: true,
            error_message: None,
            correlation_id: None,
            workflow_id: None,
            metadata: serde_json::Value::Null,
            created_at_us: i64::from(n),
        })
    }

    fn audit_only() -> Vec<String> {
        vec!["audit_log".into()]
    }

    fn written(work: Work) -> usize {
        match work {
            Work::Write(rows) => rows.len(),
            _ => panic!("expected rows to write"),
        }
    }

    #[test]
    fn full_batches_are_written_at_once_and_the_rest_when_due() {
        let q = SinkQueue::new(10, 0, &audit_only(), 3);
        for n in 0..7 {
            assert!(q.push(row(n)));
        }
        assert_eq!(written(q.next(false)), 3);
        assert_eq!(written(q.next(false)), 3);
        assert!(matches!(q.next(false), Work::Idle { pending: true }));
        assert_eq!(written(q.next(true)), 1);
        assert!(matches!(q.next(true), Work::Idle { pending: false }));
    }

    #[test]
    fn a_full_queue_refuses_the_row() {
        let q = SinkQueue::new(2, 0, &audit_only(), 5);
        assert!(q.push(row(1)));
        assert!(q.push(row(2)));
        assert!(!q.push(row(3)));
        assert_eq!(q.len(), 2);
    }

    fn audit_row(n: u16) -> Queued {
        Queued::new(SinkRow::AuditLog {
            occurred_at_us: i64::from(n),
            actor: Some("k".into()),
            action: "authenticate".into(),
            subject: None,
            outcome: "allowed".into(),
            client_ip: None,
            correlation_id: None,
            route: None,
            details: serde_json::Value::Null,
        })
    }

    #[test]
    fn audit_rows_go_past_the_capacity_up_to_the_overflow() {
        let q = SinkQueue::new(2, 3, &audit_only(), 5);
        assert!(q.push(row(1)));
        assert!(q.push(audit_row(2)));
        assert!(!q.push(row(3)), "telemetry is dropped at the capacity");
        for n in 3..6 {
            assert!(q.push(audit_row(n)), "audit row {n}");
        }
        assert!(!q.audit_full(), "nothing refused yet");
        assert!(!q.push(audit_row(6)));
        assert!(q.audit_full());
        assert_eq!(q.len(), 5);
        assert_eq!(written(q.next(false)), 5, "in the order they came");
        assert!(!q.audit_full());
    }

    #[test]
    fn flush_and_close_drain_first() {
        let q = SinkQueue::new(10, 0, &audit_only(), 5);
        assert!(q.push(row(1)));
        let (ack, _done) = oneshot::channel();
        q.request_flush(ack);
        assert_eq!(written(q.next(false)), 1);
        assert!(matches!(q.next(false), Work::Flushed(acks) if acks.len() == 1));
        assert!(q.push(row(2)));
        q.close();
        assert_eq!(written(q.next(false)), 1);
        assert!(matches!(q.next(false), Work::Closed));
    }

    #[tokio::test]
    async fn without_a_writer_flushes_end_at_once_and_rows_are_refused() {
        let q = Arc::new(SinkQueue::new(10, 0, &audit_only(), 5));
        let guard = q.writer_guard();
        let (ack, waiting) = oneshot::channel();
        q.request_flush(ack);
        drop(guard);
        assert!(waiting.await.is_err(), "a pending flush ends when the writer goes");
        let (ack, late) = oneshot::channel();
        q.request_flush(ack);
        assert!(late.await.is_err(), "a flush after the writer went ends at once");
        assert!(!q.push(row(1)));
    }

    #[tokio::test]
    async fn only_the_first_row_of_a_batch_wakes_the_writer() {
        let q = SinkQueue::new(100, 0, &audit_only(), 50);
        assert!(q.push(row(1)));
        assert!(q.push(row(2)));
        // One stored wake for both rows: it is taken at once, and then nothing is pending.
        tokio::time::timeout(std::time::Duration::from_millis(100), q.woken())
            .await
            .expect("the first row wakes the writer");
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), q.woken()).await;
        assert!(again.is_err(), "the second row must not wake the writer again");
    }
}

//! Thread-per-core request workers: each worker is a thread running a single-threaded tokio
//! runtime. The accept loop hands every public connection to one worker, where the
//! connection, its requests, their plugin calls and the upstream connections they use all
//! run on the same thread: a request never wakes another thread, which is what a gateway on
//! few cores spends most of its time on otherwise.

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::oneshot;

/// How often a worker's timer fires for nothing (see [`keep_timer_armed`]).
const TIMER_HEARTBEAT: Duration = Duration::from_secs(1);

thread_local! {
    /// The index of the worker running on this thread, if it is one.
    static WORKER: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Keeps a timer due within [`TIMER_HEARTBEAT`] on the worker, for as long as it runs.
///
/// tokio's timer wakes its driver (a write to the runtime's eventfd, then one more
/// `epoll_wait`) whenever a deadline is armed that is earlier than the driver's next planned
/// wake-up, or when none is planned. On a worker whose only timers are its requests' own (the
/// request head's read timeout, the upstream's response timeout), none is planned while it
/// waits for the next request, so every request paid those two system calls. With this
/// heartbeat the next wake-up is always at most a second away, and arming a deadline seconds
/// ahead wakes nothing. A deadline shorter than the heartbeat still wakes the driver, as
/// before.
async fn keep_timer_armed() {
    let mut heartbeat = tokio::time::interval(TIMER_HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        heartbeat.tick().await;
    }
}

/// The index of the worker the calling thread belongs to (`None` off the workers).
pub fn current() -> Option<usize> {
    WORKER.with(Cell::get)
}

/// Why the workers could not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A thread or its runtime could not be created.
    #[error("cannot start request worker {index}: {source}")]
    Start {
        /// The worker.
        index: usize,
        /// The error.
        source: std::io::Error,
    },
}

struct Worker {
    handle: tokio::runtime::Handle,
    /// Dropped to let the worker's thread end.
    _stop: oneshot::Sender<()>,
}

/// A fixed set of request workers, running until dropped.
pub struct Workers {
    workers: Vec<Worker>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("count", &self.workers.len()).finish()
    }
}

impl Workers {
    /// Starts `count` workers (at least one), each a thread named `sluice-worker-N`.
    pub fn start(count: usize) -> Result<Arc<Self>, WorkerError> {
        let mut workers = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| WorkerError::Start { index, source })?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("sluice-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(Some(index)));
                    runtime.spawn(keep_timer_armed());
                    // Runs the tasks handed to this worker until the pool is dropped.
                    let _ = runtime.block_on(stopped);
                })
                .map_err(|source| WorkerError::Start { index, source })?;
            workers.push(Worker { handle, _stop: stop });
        }
        Ok(Arc::new(Workers {
            workers,
            next: AtomicUsize::new(0),
        }))
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Always false: there is at least one worker.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Runs `task` on the next worker, round robin.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.workers[i].handle.spawn(task);
    }
}

/// The number of workers `configured` asks for: itself, or one per CPU when 0.
pub fn resolve_count(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism().map_or(1, usize::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_workers_in_turn() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(current(), None, "the test's own thread is not a worker");
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = oneshot::channel();
            workers.spawn(async move {
                let _ = tx.send((current(), std::thread::current().name().map(str::to_owned)));
            });
            seen.push(rx.await.unwrap());
        }
        let indexes: Vec<Option<usize>> = seen.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [Some(0), Some(1), Some(0), Some(1)]);
        assert_eq!(seen[1].1.as_deref(), Some("sluice-worker-1"));
    }
}

//! A lease held by a request: released when the guard is finished with what the request used,
//! or — whatever path the request takes (a plugin answered, the client went away, the wait
//! timed out) — when the guard is dropped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::scheduler::{AcquireError, Grant, Outcome, Released, Scheduler};

/// The receiver of a lease's grant.
pub type GrantReceiver = oneshot::Receiver<Result<Grant, AcquireError>>;

/// Holds lease `id` until finished or dropped.
pub struct LeaseGuard {
    scheduler: Arc<Scheduler>,
    id: u64,
    pending: Option<GrantReceiver>,
    released: bool,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard").field("id", &self.id).finish()
    }
}

impl LeaseGuard {
    /// Guards lease `id`, whose grant arrives on `pending`.
    pub fn new(scheduler: Arc<Scheduler>, id: u64, pending: GrantReceiver) -> Self {
        LeaseGuard {
            scheduler,
            id,
            pending: Some(pending),
            released: false,
        }
    }

    /// The lease id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The scheduler it belongs to.
    pub fn scheduler(&self) -> &Arc<Scheduler> {
        &self.scheduler
    }

    /// Waits for the grant, at most `bound` in all since the request was queued. A request
    /// that waited too long leaves the queue with `WaitedTooLong` and its estimated further
    /// wait.
    pub async fn granted(&mut self, bound: Duration) -> Result<Grant, AcquireError> {
        let Some(pending) = self.pending.take() else {
            return Err(AcquireError::UnknownLease(self.id));
        };
        match tokio::time::timeout(bound, pending).await {
            Ok(Ok(result)) => {
                if result.is_err() {
                    self.released = true;
                }
                result
            }
            Ok(Err(_)) => {
                self.released = true;
                Err(AcquireError::UnknownLease(self.id))
            }
            Err(_) => {
                self.released = true;
                let released = self.scheduler.release(self.id, Outcome::default());
                let spec = released.map(|r| r.spec);
                let retry_after_ms = spec.map_or(1000, |s| self.scheduler.estimated_wait_ms(&s));
                Err(AcquireError::WaitedTooLong {
                    retry_after_ms,
                    waited_ms: bound.as_millis() as u64,
                })
            }
        }
    }

    /// Gives up the granted backend (it failed before the first token) and queues the
    /// request again for another; `granted` then waits for the new grant.
    pub fn retry(&mut self) -> Result<(), AcquireError> {
        match self.scheduler.retry(self.id) {
            Ok(rx) => {
                self.pending = Some(rx);
                Ok(())
            }
            Err(e) => {
                self.released = true;
                Err(e)
            }
        }
    }

    /// Releases the lease with what the request used.
    pub fn finish(mut self, outcome: Outcome) -> Option<Released> {
        self.released = true;
        self.scheduler.release(self.id, outcome)
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.released {
            self.scheduler.release(self.id, Outcome::default());
        }
    }
}

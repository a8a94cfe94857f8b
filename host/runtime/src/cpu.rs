//! CPU-time accounting for hook deadlines. A hook's budget is CPU time, not wall time: a
//! worker thread that the kernel preempts (a busy machine, a noisy neighbour) must not make a
//! well-behaved plugin time out.
//!
//! Reading a thread's CPU clock is a system call (about half a microsecond), too dear for
//! every hook call, so the meter reads it only from the epoch-deadline callback, which runs
//! only for calls that last past an epoch tick. The first callback comes at the first tick
//! after the call started, so the CPU used before it is at most one tick; from then on the
//! thread's CPU clock is read at each callback.

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use rustix::time::{ClockId, clock_gettime};

use crate::engine::{EpochTicker, LongCall};

/// The calling thread's CPU time.
fn thread_cpu() -> Duration {
    let ts = clock_gettime(ClockId::ThreadCPUTime);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The CPU a hook call has used, as far as the deadline callbacks have seen it.
#[derive(Debug)]
pub struct CpuMeter {
    started: Instant,
    /// When the call last resumed after waiting on the host (or started).
    resumed: Instant,
    used: Duration,
    /// The thread and its CPU clock at the last callback.
    mark: Option<Mark>,
    /// Where the call resumed after its last yield (set by the yield's future, which runs
    /// outside the store); made at the first yield only.
    after_yield: Option<Arc<Mutex<Option<Mark>>>>,
    /// Held from the call's first deadline callback to its end: the ticker slices finer
    /// while a call runs long.
    long: Option<LongCall>,
}

/// A thread and its CPU clock at one moment.
type Mark = (ThreadId, Duration);

/// What a deadline callback hands wasmtime to yield with.
pub type YieldFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

impl CpuMeter {
    /// A meter for a call starting now.
    pub fn start() -> Self {
        let now = Instant::now();
        CpuMeter {
            started: now,
            resumed: now,
            used: Duration::ZERO,
            mark: None,
            after_yield: None,
            long: None,
        }
    }

    /// When the call started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Awaits `call`, a host call that may wait (on Redis, Postgres, the network, the GPU
    /// queue), then [`waited`](Self::waited): every host call that waits goes through here, so
    /// none is charged the CPU of the tasks the thread ran meanwhile.
    ///
    /// The call is boxed here, before the returned future exists: a backend's future (Redis,
    /// Postgres, HTTP) is large, and held inline it would make every host function's future
    /// that large, on its memory path too, and wasmtime moves that future when it runs it.
    /// Only calls that may wait come here; a memory path answers without it.
    pub fn waiting_on<'a, F>(&'a mut self, call: F) -> impl std::future::Future<Output = F::Output> + Send + 'a
    where
        F: std::future::Future + Send + 'a,
    {
        let call = Box::pin(call);
        async move {
            let output = call.await;
            self.waited();
            output
        }
    }

    /// Called when a host call the plugin awaited returns. While it waited, the thread ran
    /// other tasks (other requests, their plugins), whose CPU is not this call's: the next
    /// look starts afresh, charging at most one tick for the time since.
    pub fn waited(&mut self) {
        self.mark = None;
        self.resumed = Instant::now();
        // A mark left by an earlier yield predates the wait: it must not be taken either.
        if let Some(Ok(mut resumed)) = self.after_yield.as_ref().map(|m| m.lock()) {
            *resumed = None;
        }
    }

    /// Called from the deadline callback: adds the CPU used since the last look and returns
    /// the total. `tick` bounds what the call can have used before the first callback, and is
    /// what a call is charged if it moved to another thread between callbacks.
    pub fn observe(&mut self, tick: Duration) -> Duration {
        if let Some(resumed) = self.after_yield.as_ref().and_then(|m| m.lock().ok()?.take()) {
            self.mark = Some(resumed);
        }
        let now = thread_cpu();
        let thread = std::thread::current().id();
        self.used += match self.mark {
            None => self.resumed.elapsed().min(tick),
            Some((t, before)) if t == thread => now.saturating_sub(before),
            Some(_) => tick,
        };
        self.mark = Some((thread, now));
        self.used
    }

    /// Called from the deadline callback: from the first callback on, the call counts as
    /// long and `ticker` advances the epoch every slice until [`end`](Self::end).
    pub fn running_long(&mut self, ticker: &EpochTicker) {
        if self.long.is_none() {
            self.long = Some(ticker.long_call());
        }
    }

    /// Called when the call returns (or traps): it no longer runs long.
    pub fn end(&mut self) {
        self.long = None;
    }

    /// A future that gives the thread to the executor's other tasks (a long hook must not
    /// hold its worker, and every connection on it, for its whole budget), then notes the
    /// thread's CPU clock where the call resumes: what the other tasks used meanwhile is not
    /// charged to it.
    pub fn yield_point(&mut self) -> YieldFuture {
        let slot = self.after_yield.get_or_insert_with(Arc::default).clone();
        Box::pin(async move {
            tokio::task::yield_now().await;
            if let Ok(mut resumed) = slot.lock() {
                *resumed = Some((std::thread::current().id(), thread_cpu()));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spins until the thread's own CPU clock moved `cpu` (however long that takes in wall
    /// time on a busy machine).
    fn spin_cpu(cpu: Duration) {
        let before = thread_cpu();
        while thread_cpu() - before < cpu {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_sleeping_thread_uses_no_cpu_and_a_spinning_one_does() {
        let tick = Duration::from_millis(1);
        let mut meter = CpuMeter::start();
        assert!(meter.observe(tick) <= tick);
        let first = meter.observe(tick);
        std::thread::sleep(Duration::from_millis(30));
        let slept = meter.observe(tick) - first;
        assert!(slept < Duration::from_millis(10), "sleeping counted as CPU: {slept:?}");
        spin_cpu(Duration::from_millis(20));
        let spun = meter.observe(tick) - first - slept;
        assert!(spun >= Duration::from_millis(20), "spinning not counted: {spun:?}");
    }

    #[test]
    fn cpu_used_by_other_tasks_while_the_call_waited_is_not_charged() {
        let tick = Duration::from_millis(1);
        let mut meter = CpuMeter::start();
        let first = meter.observe(tick);
        // Another task runs on this thread while the call awaits a host call (Redis, say).
        spin_cpu(Duration::from_millis(20));
        meter.waited();
        let charged = meter.observe(tick) - first;
        assert!(charged <= tick, "the other task's CPU was charged: {charged:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn cpu_used_by_other_tasks_during_a_yield_is_not_charged() {
        let tick = Duration::from_millis(1);
        let mut meter = CpuMeter::start();
        let first = meter.observe(tick);
        // While the call yields, another task on this thread spins 20 ms.
        let other = tokio::spawn(async { spin_cpu(Duration::from_millis(20)) });
        meter.yield_point().await;
        assert!(other.is_finished(), "the other task ran during the yield");
        let charged = meter.observe(tick) - first;
        assert!(
            charged < Duration::from_millis(5),
            "the other task's CPU was charged: {charged:?}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_wait_after_a_yield_is_not_charged_either() {
        let tick = Duration::from_millis(1);
        let mut meter = CpuMeter::start();
        let first = meter.observe(tick);
        meter.yield_point().await;
        // The call then waits on a host call while another task spins 20 ms on this thread.
        spin_cpu(Duration::from_millis(20));
        meter.waited();
        let charged = meter.observe(tick) - first;
        assert!(
            charged <= tick,
            "the wait was charged from the yield's mark: {charged:?}"
        );
    }
}

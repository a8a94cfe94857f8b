//! A circuit breaker per upstream target: after `threshold` consecutive failures the target is
//! skipped for `open_for`; then one probe request is let through (half-open), and its outcome
//! closes the breaker or opens it again.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// A probe went out at `since`; a probe whose outcome never came (its request was
    /// dropped) is replaced by another after `open_for`.
    HalfOpen {
        since: Instant,
    },
}

/// Whether a request may go to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Yes.
    Yes,
    /// Yes, as the one probe of a half-open breaker.
    Probe,
    /// No; the breaker may let requests through again after this long.
    No(Duration),
}

/// One target's breaker.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
    threshold: u32,
    open_for: Duration,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures (0: never) for
    /// `open_for`.
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Breaker {
            state: Mutex::new(State::Closed { failures: 0 }),
            threshold,
            open_for,
        }
    }

    /// Asks to send a request now.
    pub fn admit(&self) -> Admit {
        let mut state = self.state.lock();
        match *state {
            State::Closed { .. } => Admit::Yes,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    Admit::No(until - now)
                } else {
                    *state = State::HalfOpen { since: now };
                    Admit::Probe
                }
            }
            State::HalfOpen { since } => {
                let waited = since.elapsed();
                if waited >= self.open_for {
                    // The last probe never reported back (its client went away): try again.
                    *state = State::HalfOpen { since: Instant::now() };
                    Admit::Probe
                } else {
                    // A probe is in flight: wait for its outcome.
                    Admit::No((self.open_for - waited).min(Duration::from_secs(1)))
                }
            }
        }
    }

    /// Whether the breaker is open (or waiting on a probe) now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.state.lock(), State::Closed { .. })
    }

    /// Records a success: the breaker closes.
    pub fn success(&self) {
        *self.state.lock() = State::Closed { failures: 0 };
    }

    /// Records a failure: a probe's failure or the threshold-th consecutive one opens it.
    pub fn failure(&self) {
        if self.threshold == 0 {
            return;
        }
        let mut state = self.state.lock();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed { failures: failures + 1 },
            _ => State::Open {
                until: Instant::now() + self.open_for,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_probes_once() {
        let b = Breaker::new(2, Duration::from_millis(40));
        b.failure();
        assert_eq!(b.admit(), Admit::Yes);
        b.failure();
        assert!(matches!(b.admit(), Admit::No(_)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.admit(), Admit::Probe);
        assert!(matches!(b.admit(), Admit::No(_)), "only one probe at a time");
        b.failure();
        assert!(matches!(b.admit(), Admit::No(_)), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.admit(), Admit::Probe);
        b.success();
        assert_eq!(b.admit(), Admit::Yes);
    }

    #[test]
    fn a_probe_that_never_reports_is_replaced() {
        let b = Breaker::new(1, Duration::from_millis(30));
        b.failure();
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.admit(), Admit::Probe);
        // The probe's request is dropped: neither success nor failure is recorded.
        assert!(matches!(b.admit(), Admit::No(_)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.admit(), Admit::Probe, "a new probe after open_for");
    }

    #[test]
    fn a_success_resets_the_count_and_zero_never_opens() {
        let b = Breaker::new(2, Duration::from_secs(10));
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.admit(), Admit::Yes);
        let never = Breaker::new(0, Duration::from_secs(10));
        for _ in 0..100 {
            never.failure();
        }
        assert_eq!(never.admit(), Admit::Yes);
    }
}

//! `clock`: wall-clock and monotonic time.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::runtime::bindings::sluice::plugin::clock::Host;
use crate::runtime::state::HostState;

/// The origin of the monotonic clock plugins see.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Host for HostState {
    async fn now_ms(&mut self) -> u64 {
        unix_ms()
    }

    async fn monotonic_ns(&mut self) -> u64 {
        origin().elapsed().as_nanos() as u64
    }
}

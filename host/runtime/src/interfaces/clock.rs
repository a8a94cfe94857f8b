//! `clock`: wall-clock and monotonic time. Always granted; no backend (the host's clocks in
//! `sluice_core::time`).

use sluice_bindings::sluice::plugin::clock::Host;
use sluice_core::time::{monotonic_ns, unix_ms};

use crate::state::HostState;

impl Host for HostState {
    fn now_ms(&mut self) -> u64 {
        unix_ms()
    }

    fn monotonic_ns(&mut self) -> u64 {
        monotonic_ns()
    }
}

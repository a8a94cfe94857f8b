//! The GPU scheduler: pure logic, no wasmtime types, usable and benchmarked on its own. It
//! admits inference requests by priority with aging (nothing starves) and fairness between
//! tenants within a priority (`queue.rs`). Backend registry, scoring and leases follow in the
//! GPU-routing work (issue 8); `capability/gpu.rs` answers `not-configured` until then.

pub mod queue;

pub use queue::{AdmissionQueue, QueueFull, Waiting};

//! The GPU scheduler: pure logic, no wasmtime types, usable and benchmarked on its own. It
//! admits inference requests by priority with aging (nothing starves) and fairness between
//! tenants within a priority (`queue.rs`), scores backends by model residency (with learned
//! cold-load costs), queue, KV-cache pressure and prefix affinity (`score.rs`,
//! `affinity.rs`), from load read off each backend's own metrics (`load.rs`) and the
//! gateway's own count (`backends.rs`), and hands out leases released with what the request
//! used (`scheduler.rs`, `admit.rs`, `lease.rs`). `fleet.rs` runs it against real backends:
//! scraping, discovery and the Postgres records (`persist.rs`); `embed_batch.rs` merges
//! concurrent embeddings requests into one backend call.

mod admit;
pub mod affinity;
pub mod backends;
pub mod embed_batch;
pub mod embed_batcher;
pub mod fleet;
mod gauges;
pub mod lease;
pub mod load;
pub mod persist;
pub mod queue;
mod reload;
pub mod scheduler;
pub mod score;
pub mod snapshot;

pub use affinity::PrefixIndex;
pub use embed_batcher::{BatchError, BatchKey, EmbedBatcher};
pub use fleet::GpuFleet;
pub use lease::{GrantReceiver, LeaseGuard};
pub use load::BackendLoad;
pub use queue::{AdmissionQueue, QueueFull, Waiting};
pub use scheduler::{AcquireError, Grant, Outcome, Released, Scheduler, Spec};
pub use score::{BackendView, ColdCosts, Need, choose, cost};
pub use sluice_config::Weights;

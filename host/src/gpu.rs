//! The GPU scheduler: pure logic, no wasmtime types, usable and benchmarked on its own. It
//! admits inference requests by priority with aging (nothing starves) and fairness between
//! tenants within a priority (`queue.rs`), scores backends by model residency (with learned
//! cold-load costs), queue, KV-cache pressure and prefix affinity (`score.rs`,
//! `affinity.rs`), from load read off each backend's own metrics (`load.rs`), and merges
//! concurrent embeddings requests into one backend call (`embed_batch.rs`). The backend registry and leases follow in the GPU-routing work (issue 8);
//! `capability/gpu.rs` answers `not-configured` until then.

pub mod affinity;
pub mod embed_batch;
pub mod load;
pub mod queue;
pub mod score;

pub use affinity::PrefixIndex;
pub use embed_batch::{BatchKey, EmbedBatcher};
pub use load::BackendLoad;
pub use queue::{AdmissionQueue, QueueFull, Waiting};
pub use score::{BackendView, ColdCosts, Need, Weights, choose, cost};

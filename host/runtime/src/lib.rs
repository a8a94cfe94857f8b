//! The wasmtime host (floor 4, over `sluice-backends`): one engine with a tuned pooling
//! allocator and epoch interruption, an on-disk cache of compiled components, plugins loaded
//! and checked against the world, instance pools per configured plugin, and chains that run a
//! route's plugins. [`capability`] is the table of what plugins may be granted;
//! [`interfaces`] holds one `Host` impl per WIT interface.
//!
//! [`Runtime::build_routes`] turns a [`GatewayConfig`](sluice_config::GatewayConfig) into a [`RouteTable`] or an error: it
//! never returns a partial table, so a bad config can't replace a good one.

mod aot_cache;
pub mod capability;
mod chain;
pub mod context;
mod cpu;
mod dispatch;
mod engine;
mod failure;
pub mod fuzzing;
mod instance;
pub mod interfaces;
mod limiter;
mod linker;
mod loader;
mod memo;
mod packed;
mod reads;
mod response_edits;
mod routes;
mod runtime;
pub mod state;
pub mod verdict;

pub use aot_cache::{CacheOutcome, ComponentCache};
pub use chain::{BodyError, BodySource, Chain, CoalesceRequest, Forward, NoBody, RequestOutcome, ResponseOutcome};
pub use engine::EpochTicker;
pub use failure::{FailureKind, PluginFailure};
pub(crate) use instance::wall_limit;
pub use instance::{InstanceSettings, PluginInstance, hook_name};
pub use limiter::MemoryLimiter;
pub use loader::{LoadError, LoadedPlugin, WIT_PACKAGE, WIT_VERSION};
pub use reads::Reads;
pub use response_edits::ResponseEdits;
pub use routes::RouteTable;
pub use runtime::{Runtime, RuntimeError};
pub use verdict::{MAX_BODY, MAX_EDITS, MAX_HEADER_BYTES, MAX_VALUE};

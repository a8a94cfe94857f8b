//! The one `bindgen!` of the `sluice:plugin` world (floor 1, a leaf: no other host crate), so
//! every crate above shares its types and the runtime implements its `Host` traits. Every host import is async (so Redis,
//! Postgres and HTTP calls can await without blocking a worker) and every export is called
//! asynchronously. The world's `use` brings the request and response types into this module;
//! the rest of the shared types are re-exported here too.

#![allow(missing_docs, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use sluice::plugin::types::{
    CacheSpec, CoalesceSpec, Encoding, EncodingSpec, HeaderEdits, Hook, HostError, InferenceUsage, LocalResponse,
    UpstreamChoice,
};

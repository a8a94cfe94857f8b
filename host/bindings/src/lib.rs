//! The one `bindgen!` of the `sluice:plugin` world (floor 1, a leaf: no other host crate), so
//! every crate above shares its types and the runtime implements its `Host` traits. The host
//! imports that can wait on a backend (Redis, Postgres, HTTP, the GPU fleet, and kv, cache,
//! rate-limit and http-cache, which may be in Redis) are async, so they await without blocking a
//! worker; the ones that never wait (log, metrics, clock, audit, crypto, body, response) are
//! plain functions, which spares each call a boxed future and its poll. Every export is called
//! asynchronously. The world's `use` brings the request and response types into this module;
//! the rest of the shared types are re-exported here too.

#![allow(missing_docs, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../../wit",
    imports: {
        "sluice:plugin/kv": async,
        "sluice:plugin/cache": async,
        "sluice:plugin/redis": async,
        "sluice:plugin/postgres": async,
        "sluice:plugin/http-client": async,
        "sluice:plugin/gpu": async,
        "sluice:plugin/rate-limit": async,
        "sluice:plugin/http-cache": async,
    },
    exports: { default: async },
});

pub use sluice::plugin::types::{
    CacheSpec, CoalesceSpec, Encoding, EncodingSpec, HeaderEdits, Hook, HostError, InferenceUsage, LocalResponse,
    UpstreamChoice,
};

//! Sluice: an API gateway whose policy runs as WebAssembly plugins.
//!
//! - [`config`]: the configuration schema and its validation.
//! - [`runtime`]: the wasmtime host: engine, component cache, instance pools, limits, chains.
//! - [`capability`]: the host side of each WIT interface plugins import, with grant checks.
//! - [`telemetry`]: metrics shared by the host and plugins.

pub mod capability;
pub mod config;
pub mod runtime;
pub mod telemetry;

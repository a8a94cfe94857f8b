//! Sluice: an API gateway whose policy runs as WebAssembly plugins.
//!
//! - [`config`]: the configuration schema and its validation.
//! - [`runtime`]: the wasmtime host: engine, component cache, instance pools, limits, chains.
//! - [`capability`]: the host side of each WIT interface plugins import, with grant checks.
//! - [`backend`]: the pooled backends (Postgres, Redis, sinks) the capabilities and the
//!   gateway use; [`messages`]: plugin channel messages delivered to `on-message`;
//!   [`ticks`]: the once-a-second `on-tick` calls.
//! - [`telemetry`]: metrics shared by the host and plugins.
//! - [`gateway`]: the live routing state and hot reload; [`keys`]: API key administration.
//! - [`proxy`]: the request path: routing, chain, upstream, response.
//! - [`server`]: listeners, limits, graceful shutdown; [`workers`]: thread-per-core request
//!   workers; [`admin`]: the admin API.

pub mod admin;
pub mod app;
pub mod backend;
pub mod capability;
pub mod config;
pub mod demo;
pub mod gateway;
pub mod gpu;
pub mod httpcache;
pub mod keys;
pub mod messages;
pub mod proxy;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod ticks;
pub mod tls;
pub mod workers;

//! Backends the host connects to on behalf of plugins and of the gateway itself: one pooled
//! client per gateway, shared by every plugin, with metrics and a state for readiness.
//!
//! - [`postgres`]: the sqlx pool, the embedded migrations, typed statements with a timeout
//!   and a row cap.
//! - [`redis`]: the fred pool, namespaced keys, the command allow-list, scripts, a time budget
//!   and a breaker per call.
//! - [`http_out`]: the pooled outbound HTTP client (rustls), with a budget and a body cap.
//! - [`ratelimit`]: GCRA rate limits in one Redis script per request, with an in-memory
//!   fallback while Redis is down.
//! - [`sink`]: the background writer of telemetry, audit and inference rows, with a spill
//!   file while Postgres is down.

pub mod gcra;
pub mod http_out;
pub mod postgres;
mod postgres_types;
pub mod ratelimit;
pub mod redis;
mod redis_commands;
pub mod sink;
mod sink_rows;
mod sink_spill;

//! The building blocks every upper layer of the host shares (floor 2, over `sluice-config`
//! and `sluice-bindings`):
//!
//! - [`body`]: the body type the gateway sends both ways and the one observer body that taps
//!   a stream (bytes, end, drop) for whoever needs to watch it;
//! - [`headers`]: hop-by-hop removal, forwarding headers, request ids, conversions to and from
//!   the plugins' header lists; [`errors`]: the JSON answers the gateway gives itself;
//! - [`compress`] and [`decompress`]: response compression and request-body decompression;
//! - [`upstream`] and [`pool`]: upstream targets behind one pooled client, with balancing,
//!   health checks, retries, and connection accounting; [`breaker`]: the circuit breaker per
//!   target (also used for Redis);
//! - [`telemetry`]: the metrics registry, the log subscriber, OTLP span export;
//! - [`tls`]: the public listener's rustls config; [`workers`]: thread-per-core request
//!   workers; [`time`]: the clocks.

pub mod body;
pub mod breaker;
pub mod compress;
pub mod decompress;
pub mod errors;
pub mod headers;
pub mod pool;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod upstream;
pub mod workers;

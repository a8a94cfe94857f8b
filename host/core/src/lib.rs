//! The building blocks every upper layer of the host shares (floor 2, over `sluice-config`
//! and `sluice-bindings`):
//!
//! - [`body`]: the body type the gateway sends both ways, [`Tap`](body::Tap) (the one body
//!   wrapper that watches a stream: each chunk, then how it ended) and
//!   [`Recoded`](body::Recoded) (the one that rewrites it: compression, decoding);
//! - [`headers`]: hop-by-hop removal, forwarding headers, Host checks, conversions to and from
//!   the plugins' header lists; [`request_id`]: request ids and the headers they travel
//!   under; [`errors`]: the JSON answers the gateway gives itself;
//! - [`compress`] and [`decompress`]: response compression and request-body decompression;
//! - [`upstream`] and [`pool`]: upstream targets behind one pooled client, with balancing,
//!   health checks, retries, and connection accounting; [`breaker`]: the circuit breaker per
//!   target (also used for Redis);
//! - [`telemetry`]: the metrics registry, the log subscriber (with progress lines on a
//!   terminal), OTLP span export; [`in_flight`]: the count of requests in flight, sharded so
//!   cores do not share its cache line;
//! - [`tls`]: the public listener's rustls config; [`workers`]: thread-per-core request
//!   workers; [`time`]: the clocks;
//! - [`range`]: byte ranges (`Range`, `If-Range`) answered from a stored response;
//! - [`grpc`]: gRPC calls: their timeout, the gateway's errors as gRPC statuses, deadlines.

pub mod body;
pub mod breaker;
pub mod compress;
pub mod decompress;
pub mod errors;
pub mod grpc;
pub mod headers;
pub mod in_flight;
pub mod pool;
pub mod range;
pub mod request_id;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod upstream;
pub mod workers;

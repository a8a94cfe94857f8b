//! The request path: route matching, the plugin chain, the upstream call and the response.

pub mod body;
pub mod breaker;
pub mod cache_serve;
pub mod coalesce;
mod coalesce_body;
mod coalesce_flight;
mod coalesce_replay;
pub mod compress;
pub mod decompress;
pub mod errors;
pub mod gpu_route;
pub mod handler;
pub mod headers;
pub mod inference;
pub mod pool;
pub mod router;
pub mod upstream;

pub use body::ProxyBody;
pub use coalesce::Coalescer;
pub use router::{Route, Router};
pub use upstream::Upstream;

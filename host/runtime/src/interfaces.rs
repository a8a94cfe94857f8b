//! The host side of every WIT interface a plugin imports, one file per interface, each of the
//! same shape: the generated `Host` trait implemented for [`HostState`](crate::state::HostState),
//! a grant check at the top of every call, then the call into the interface's backend
//! (`sluice_backends`).

pub(crate) mod audit;
mod body;
mod cache;
mod clock;
mod crypto;
mod gpu;
mod head;
mod http_cache;
mod http_client;
mod kv;
mod log;
mod metrics;
mod postgres;
mod rate_limit;
mod redis;
mod response;
mod types;

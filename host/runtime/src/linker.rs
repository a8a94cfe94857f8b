//! The linker every plugin is instantiated with: WASI, then each capability of the table
//! linked to [`HostState`].

use wasmtime::component::{HasSelf, Linker};

use sluice_bindings::sluice::plugin as wit;

use crate::capability::{CAPABILITIES, Capability};
use crate::state::HostState;

/// Links every capability's interface, and the world's shared types, to [`HostState`].
pub fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    for descriptor in CAPABILITIES {
        link_one(linker, descriptor.capability)?;
    }
    Ok(())
}

/// The store data each interface is implemented on: the state itself.
fn get(state: &mut HostState) -> &mut HostState {
    state
}

/// Links the interface of `capability`.
fn link_one(linker: &mut Linker<HostState>, capability: Capability) -> wasmtime::Result<()> {
    match capability {
        Capability::Log => wit::log::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Metrics => wit::metrics::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Clock => wit::clock::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Kv => wit::kv::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Cache => wit::cache::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Redis => wit::redis::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Postgres => wit::postgres::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::HttpClient => wit::http_client::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Audit => wit::audit::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Crypto => wit::crypto::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Gpu => wit::gpu::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::RateLimit => wit::rate_limit::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Body => wit::body::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Response => wit::response::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::Head => wit::head::add_to_linker::<_, HasSelf<HostState>>(linker, get),
        Capability::HttpCache => wit::http_cache::add_to_linker::<_, HasSelf<HostState>>(linker, get),
    }
}

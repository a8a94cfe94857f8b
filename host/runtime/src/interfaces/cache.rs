//! `cache`: the gateway's response store (`sluice_backends::cache`, with Redis behind it when
//! `[redis] shared_cache`). Granted by `grants.cache`.

use crate::capability::Capability;
use crate::state::HostState;
use sluice_backends::cache::RESERVED_PREFIX;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::cache::{CachedResponse, Host};

impl Host for HostState {
    async fn lookup(&mut self, key: String) -> Result<Option<CachedResponse>, HostError> {
        let p = &self.plugin;
        p.require(Capability::Cache)?;
        match &p.backends.shared_cache {
            Some(shared) => self.cpu.waiting_on(shared.lookup(&key)).await,
            None => Ok(p.backends.cache.lookup(&key).map(|r| (*r).clone())),
        }
    }

    async fn insert(&mut self, key: String, response: CachedResponse) -> Result<(), HostError> {
        let p = &self.plugin;
        p.require(Capability::Cache)?;
        if key.starts_with(RESERVED_PREFIX) {
            return Err(p.invalid(
                Capability::Cache,
                format_args!("keys starting with '{RESERVED_PREFIX}' are reserved for the gateway"),
            ));
        }
        if !(100..=599).contains(&response.status) {
            return Err(p.invalid(
                Capability::Cache,
                format_args!("status {} is not an HTTP status", response.status),
            ));
        }
        match &p.backends.shared_cache {
            Some(shared) => self.cpu.waiting_on(shared.insert(key, response)).await,
            None => p
                .backends
                .cache
                .insert(key, response)
                .map_err(|why| p.invalid(Capability::Cache, why)),
        }
    }

    async fn invalidate(&mut self, key: String) -> Result<bool, HostError> {
        let p = &self.plugin;
        p.require(Capability::Cache)?;
        match &p.backends.shared_cache {
            Some(shared) => self.cpu.waiting_on(shared.invalidate(&key)).await,
            None => Ok(p.backends.cache.invalidate(&key)),
        }
    }

    async fn invalidate_prefix(&mut self, prefix: String) -> Result<u64, HostError> {
        let p = &self.plugin;
        p.require(Capability::Cache)?;
        match &p.backends.shared_cache {
            Some(shared) => self.cpu.waiting_on(shared.invalidate_prefix(&prefix)).await,
            None => Ok(p.backends.cache.invalidate_where(|k, _| k.starts_with(&prefix))),
        }
    }

    async fn invalidate_tag(&mut self, tag: String) -> Result<u64, HostError> {
        let p = &self.plugin;
        p.require(Capability::Cache)?;
        match &p.backends.shared_cache {
            Some(shared) => self.cpu.waiting_on(shared.invalidate_tag(&tag)).await,
            None => Ok(p.backends.cache.invalidate_where(|_, r| r.tags.contains(&tag))),
        }
    }
}

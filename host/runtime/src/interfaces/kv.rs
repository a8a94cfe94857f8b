//! `kv`: the plugin's private key/value store (`sluice_backends::kv`, with Redis behind it
//! when `[redis] shared_kv`). Granted by `grants.kv`.

use crate::capability::Capability;
use crate::state::HostState;
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::kv::Host;

impl Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        let p = &self.plugin;
        p.require(Capability::Kv)?;
        match &p.backends.shared_kv {
            Some(shared) => self.cpu.waiting_on(shared.get(&p.backends.kv, &p.name, &key)).await,
            None => p.backends.kv.get(&p.name, &key),
        }
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), HostError> {
        let p = &self.plugin;
        p.require(Capability::Kv)?;
        match &p.backends.shared_kv {
            Some(shared) => {
                self.cpu
                    .waiting_on(shared.set(&p.backends.kv, &p.name, &key, value, ttl_ms))
                    .await
            }
            None => p.backends.kv.set(&p.name, &key, value, ttl_ms),
        }
    }

    async fn delete(&mut self, key: String) -> Result<bool, HostError> {
        let p = &self.plugin;
        p.require(Capability::Kv)?;
        match &p.backends.shared_kv {
            Some(shared) => self.cpu.waiting_on(shared.delete(&p.backends.kv, &p.name, &key)).await,
            None => p.backends.kv.delete(&p.name, &key),
        }
    }

    async fn increment(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> Result<i64, HostError> {
        self.per_request("kv.increment");
        let p = &self.plugin;
        p.require(Capability::Kv)?;
        match &p.backends.shared_kv {
            Some(shared) => {
                self.cpu
                    .waiting_on(shared.increment(&p.backends.kv, &p.name, &key, delta, ttl_ms))
                    .await
            }
            None => p.backends.kv.increment(&p.name, &key, delta, ttl_ms),
        }
    }
}

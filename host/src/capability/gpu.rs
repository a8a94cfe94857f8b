//! `gpu`: grant checks now; the scheduler comes with the GPU-routing work. Until then every
//! granted call answers `not-configured`.

use crate::runtime::bindings::HostError;
use crate::runtime::bindings::sluice::plugin::gpu::{Host, InferenceSpec, Lease, ModelEntry, Usage};
use crate::runtime::state::HostState;

impl Host for HostState {
    async fn acquire(&mut self, _spec: InferenceSpec) -> Result<Lease, HostError> {
        let p = &self.plugin;
        p.require(p.grants.gpu, "gpu")?;
        Err(p.not_configured("gpu"))
    }

    async fn reserve(&mut self, _spec: InferenceSpec) -> Result<u64, HostError> {
        let p = &self.plugin;
        p.require(p.grants.gpu, "gpu")?;
        Err(p.not_configured("gpu"))
    }

    async fn models(&mut self) -> Vec<ModelEntry> {
        Vec::new()
    }

    async fn release(&mut self, _id: u64, _usage: Usage) -> Result<(), HostError> {
        let p = &self.plugin;
        p.require(p.grants.gpu, "gpu")?;
        Err(p.not_configured("gpu"))
    }
}

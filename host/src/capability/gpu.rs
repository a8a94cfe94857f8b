//! `gpu`: grant checks now; the scheduler comes with the GPU-routing work. Until then every
//! granted call answers `not-configured`.

use crate::runtime::bindings::HostError;
use crate::runtime::bindings::sluice::plugin::gpu::{Host, InferenceSpec, Lease, Usage};
use crate::runtime::state::HostState;

impl Host for HostState {
    async fn acquire(&mut self, _spec: InferenceSpec) -> Result<Lease, HostError> {
        let p = &self.plugin;
        p.require(p.grants.gpu, "gpu")?;
        Err(p.not_configured("gpu"))
    }

    async fn release(&mut self, _id: u64, _usage: Usage) -> Result<(), HostError> {
        let p = &self.plugin;
        p.require(p.grants.gpu, "gpu")?;
        Err(p.not_configured("gpu"))
    }
}

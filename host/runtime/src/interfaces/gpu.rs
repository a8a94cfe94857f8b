//! `gpu`: leases from the host's GPU scheduler (`[gpu]`). Taken only in request hooks; each
//! lease joins the request's directives, so it is released when the response ends — or as
//! soon as the request ends without using it.

use crate::capability::Capability;
use crate::state::HostState;
use sluice_backends::gpu::{AcquireError, LeaseGuard, Need, Outcome, Spec};
use sluice_bindings::HostError;
use sluice_bindings::sluice::plugin::gpu::{Host, InferenceSpec, Lease, ModelEntry, Usage};

impl HostState {
    fn spec(&self, s: InferenceSpec) -> Spec {
        Spec {
            model: s.model,
            priority: s.priority,
            tenant: s.tenant.as_str().into(),
            workflow_id: s.workflow_id,
            depends_on: s.depends_on,
            need: Need {
                gpus: s.required_gpus,
                memory_mb: s.min_memory_mb,
            },
            prompt_tokens: s.prompt_tokens,
            max_tokens: s.max_tokens,
            prefix: s.prefix_hash,
            route: self.route.clone(),
            request_id: self.request_id.clone(),
        }
    }

    /// Checks the grant and the hook; the fleet.
    fn fleet(&self) -> Result<std::sync::Arc<sluice_backends::gpu::GpuFleet>, HostError> {
        let p = &self.plugin;
        p.require(Capability::Gpu)?;
        let fleet = p
            .backends
            .gpu
            .clone()
            .ok_or_else(|| p.not_configured(Capability::Gpu))?;
        if !(self.in_request_headers || self.in_request_body) {
            return Err(p.invalid(
                Capability::Gpu,
                "leases are taken in on-request-headers or on-request-body",
            ));
        }
        Ok(fleet)
    }

    /// Reserves a lease for `spec` and keeps its guard with the call's directives.
    fn reserve_guarded(&mut self, spec: InferenceSpec) -> Result<&mut LeaseGuard, HostError> {
        let fleet = self.fleet()?;
        let spec = self.spec(spec);
        let (id, rx) = fleet.scheduler.reserve(spec).map_err(|e| self.refusal(&e))?;
        self.directives
            .leases
            .push(LeaseGuard::new(fleet.scheduler.clone(), id, rx));
        Ok(self.directives.leases.last_mut().expect("just pushed"))
    }

    /// The guest-visible error for a refusal.
    fn refusal(&self, e: &AcquireError) -> HostError {
        let text = format!("gpu: {e} (plugin '{}')", self.plugin.name);
        match e {
            AcquireError::UnknownModel(_) => HostError::NotFound(text),
            AcquireError::Invalid(_) => HostError::Invalid(text),
            AcquireError::QueueFull { .. } => HostError::Limit(e.to_string()),
            AcquireError::WaitedTooLong { .. } | AcquireError::NoBackend { .. } => {
                HostError::Unavailable(e.to_string())
            }
            AcquireError::UnknownLease(_) => HostError::Other(text),
        }
    }
}

impl Host for HostState {
    async fn acquire(&mut self, spec: InferenceSpec) -> Result<Lease, HostError> {
        self.per_request("gpu.acquire");
        self.reserve_guarded(spec)?;
        let guard = self.directives.leases.last_mut().expect("reserve_guarded pushed it");
        let bound = guard.scheduler().max_wait();
        // The wait in the queue is not the plugin's CPU.
        let result = self.cpu.waiting_on(guard.granted(bound)).await;
        match result {
            Ok(grant) => Ok(Lease {
                id: grant.lease,
                backend: grant.name.to_string(),
                url: grant.url.to_string(),
                waited_ms: grant.waited_ms,
            }),
            Err(e) => {
                self.directives.leases.pop();
                Err(self.refusal(&e))
            }
        }
    }

    async fn reserve(&mut self, spec: InferenceSpec) -> Result<u64, HostError> {
        self.per_request("gpu.reserve");
        Ok(self.reserve_guarded(spec)?.id())
    }

    async fn release(&mut self, id: u64, usage: Usage) -> Result<(), HostError> {
        self.per_request("gpu.release");
        let p = &self.plugin;
        p.require(Capability::Gpu)?;
        if p.backends.gpu.is_none() {
            return Err(p.not_configured(Capability::Gpu));
        }
        let outcome = Outcome {
            success: usage.success,
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            first_token_ms: None,
        };
        // Only this call's own leases: another request's lease is not this plugin's to end.
        if let Some(i) = self.directives.leases.iter().position(|g| g.id() == id) {
            self.directives.leases.swap_remove(i).finish(outcome);
        }
        Ok(())
    }

    async fn models(&mut self) -> Vec<ModelEntry> {
        let p = &self.plugin;
        if !p.grants.gpu {
            return Vec::new();
        }
        let Some(fleet) = &p.backends.gpu else {
            return Vec::new();
        };
        fleet
            .scheduler
            .models()
            .into_iter()
            .map(|m| ModelEntry {
                id: m.id,
                backends: m.backends,
                resident_on: m.resident_on,
            })
            .collect()
    }
}

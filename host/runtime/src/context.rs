//! The context each configured plugin runs with: its name, its grants (checked through the
//! capability table) and handles to the backends.

use std::sync::Arc;

use sluice_backends::Backends;
use sluice_backends::metrics::PluginMetrics;
use sluice_bindings::HostError;
use sluice_config::Grants;

use crate::capability::Capability;

/// What one configured plugin may use: its name, grants and handles to the backends.
#[derive(Debug)]
pub struct PluginContext {
    /// The plugin's name (the `[plugins.NAME]` key).
    pub name: Arc<str>,
    /// What the config grants it.
    pub grants: Grants,
    /// The shared backends.
    pub backends: Backends,
    /// The plugin's own metric series.
    pub metrics: PluginMetrics,
}

impl PluginContext {
    /// A context for plugin `name` with `grants` over `backends`.
    pub fn new(name: &str, grants: Grants, backends: Backends) -> Self {
        let name: Arc<str> = Arc::from(name);
        let metrics = PluginMetrics::new(name.clone(), backends.metrics.clone());
        PluginContext {
            name,
            grants,
            backends,
            metrics,
        }
    }

    /// `Ok` when the plugin is granted `capability`, otherwise the `denied` error naming the
    /// plugin and the capability.
    pub fn require(&self, capability: Capability) -> Result<(), HostError> {
        if capability.granted(&self.grants) {
            return Ok(());
        }
        let name = capability.name();
        Err(HostError::Denied(format!(
            "{name}: plugin '{}' is not granted {name} (add it to the plugin's grants)",
            self.name
        )))
    }

    /// The `not-configured` error for `capability`, naming the plugin.
    pub fn not_configured(&self, capability: Capability) -> HostError {
        let name = capability.name();
        HostError::NotConfigured(format!(
            "{name}: no {name} backend is configured on this gateway (plugin '{}')",
            self.name
        ))
    }

    /// The `invalid` error for `capability`, naming the plugin.
    pub fn invalid(&self, capability: Capability, why: impl std::fmt::Display) -> HostError {
        HostError::Invalid(format!("{}: {why} (plugin '{}')", capability.name(), self.name))
    }
}

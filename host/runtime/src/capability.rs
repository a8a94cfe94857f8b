//! What a plugin may use: its grants and the backends behind them, checked at the top of every
//! host call.

use std::sync::Arc;

use sluice_backends::Backends;
use sluice_backends::metrics::PluginMetrics;
use sluice_bindings::HostError;
use sluice_config::Grants;

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

    /// `Ok` when `granted`, otherwise the `denied` error naming the plugin and `capability`.
    pub(crate) fn require(&self, granted: bool, capability: &str) -> Result<(), HostError> {
        if granted {
            Ok(())
        } else {
            Err(HostError::Denied(format!(
                "{capability}: plugin '{}' is not granted {capability} (add it to the plugin's grants)",
                self.name
            )))
        }
    }

    /// The `not-configured` error for `capability`, naming the plugin.
    pub(crate) fn not_configured(&self, capability: &str) -> HostError {
        HostError::NotConfigured(format!(
            "{capability}: no {capability} backend is configured on this gateway (plugin '{}')",
            self.name
        ))
    }

    /// The `invalid` error for `capability`, naming the plugin.
    pub(crate) fn invalid(&self, capability: &str, why: impl std::fmt::Display) -> HostError {
        HostError::Invalid(format!("{capability}: {why} (plugin '{}')", self.name))
    }
}

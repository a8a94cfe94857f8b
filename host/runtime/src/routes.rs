//! Building the route table from a config: every plugin loaded, configured per route and
//! warmed, or an error and nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::chain::Chain;
use super::instance::{InstanceSettings, PluginInstance};
use super::loader::{LoadError, LoadedPlugin};
use crate::Runtime;
use crate::context::PluginContext;
use sluice_bindings::Hook;
use sluice_config::GatewayConfig;

/// The chains of every route, by route name. Immutable once built; a reload builds a new one.
#[derive(Debug, Default)]
pub struct RouteTable {
    chains: HashMap<String, Arc<Chain>>,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// The route entries subscribed to each plugin channel (`grants.redis.subscribe`).
    subscribers: BTreeMap<String, Vec<Arc<PluginInstance>>>,
}

impl RouteTable {
    /// The chain of route `name`.
    pub fn chain(&self, name: &str) -> Option<&Arc<Chain>> {
        self.chains.get(name)
    }

    /// The loaded plugins, by config name.
    pub fn plugins(&self) -> &BTreeMap<String, Arc<LoadedPlugin>> {
        &self.plugins
    }

    /// The configured plugins (one per route entry) subscribed to plugin channel `channel`.
    pub fn subscribers(&self, channel: &str) -> &[Arc<PluginInstance>] {
        self.subscribers.get(channel).map_or(&[], Vec::as_slice)
    }

    /// Every plugin channel some route entry subscribes to.
    pub fn subscribed_channels(&self) -> impl Iterator<Item = &str> {
        self.subscribers.keys().map(String::as_str)
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }
}

impl Runtime {
    /// Builds every route's chain from `config`: loads each plugin the routes use, configures
    /// it per route, and runs `init` on one instance of each so that rejected configs are
    /// found now. Returns the whole table or the first error; never a partial table.
    pub async fn build_routes(&self, config: &GatewayConfig) -> Result<RouteTable, LoadError> {
        build(self, config).await
    }
}

/// Converts a TOML plugin config into the JSON text `init` receives, with every string of the
/// form `${env:NAME}` replaced by the environment variable NAME (so secrets stay out of config
/// files). An unset variable is an error naming it.
fn config_json(value: Option<&toml::Value>) -> Result<String, String> {
    let Some(value) = value else {
        return Ok("{}".to_string());
    };
    let expanded = expand_env(value)?;
    serde_json::to_string(&expanded).map_err(|e| e.to_string())
}

fn expand_env(value: &toml::Value) -> Result<toml::Value, String> {
    Ok(match value {
        toml::Value::String(s) => match s.strip_prefix("${env:").and_then(|r| r.strip_suffix('}')) {
            Some(name) => toml::Value::String(
                std::env::var(name)
                    .map_err(|_| format!("the config refers to the environment variable {name}, which is not set"))?,
            ),
            None => value.clone(),
        },
        toml::Value::Array(items) => toml::Value::Array(items.iter().map(expand_env).collect::<Result<_, _>>()?),
        toml::Value::Table(table) => toml::Value::Table(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), expand_env(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

pub(super) async fn build(runtime: &Runtime, config: &GatewayConfig) -> Result<RouteTable, LoadError> {
    // Each plugin once, in the order routes first use it.
    let mut used: Vec<&str> = Vec::new();
    for name in config
        .routes
        .iter()
        .flat_map(|r| r.plugins.iter().map(|p| p.plugin.as_str()))
    {
        if !used.contains(&name) {
            used.push(name);
        }
    }
    let mut plugins = BTreeMap::new();
    for (i, name) in used.iter().enumerate() {
        let def = &config.plugins[*name];
        let module = if super::loader::builtin_name(&def.module).is_some() {
            def.module.clone()
        } else {
            config.resolve(&def.module)
        };
        let loaded = runtime.load_plugin(name, &module).await?;
        // A progress report (one line redrawn in place on a terminal): compiling takes
        // seconds per plugin when the component cache is cold.
        tracing::info!(
            step = i as u64 + 1,
            of = used.len() as u64,
            plugin = %name,
            version = %loaded.info.version,
            size = loaded.size,
            cache = ?loaded.cache,
            compile_ms = (loaded.compile_time.as_secs_f64() * 1000.0).round() as u64,
            "plugin loaded"
        );
        plugins.insert(name.to_string(), loaded);
    }

    let mut chains = HashMap::new();
    let mut subscribers: BTreeMap<String, Vec<Arc<PluginInstance>>> = BTreeMap::new();
    for route in &config.routes {
        let mut chain = Vec::with_capacity(route.plugins.len());
        for entry in &route.plugins {
            let def = &config.plugins[&entry.plugin];
            let loaded = plugins[&entry.plugin].clone();
            let grants = entry.grants.clone().unwrap_or_else(|| def.grants.clone());
            let subscribe = grants.redis.as_ref().map(|r| r.subscribe.clone()).unwrap_or_default();
            let context = Arc::new(PluginContext::new(&entry.plugin, grants, runtime.backends().clone()));
            let config_json =
                config_json(entry.config.as_ref().or(def.config.as_ref())).map_err(|reason| LoadError {
                    plugin: entry.plugin.clone(),
                    file: loaded.file.clone(),
                    reason: format!("on route '{}': {reason}", route.name),
                })?;
            let settings = InstanceSettings {
                config_json,
                limits: def.limits.with(entry.limits),
                mode: def.instance,
                pool: def.pool,
                fail: entry.fail.unwrap_or(def.fail),
            };
            let instance = PluginInstance::new(
                loaded.clone(),
                context,
                settings,
                runtime.engine().clone(),
                runtime.ticker().clone(),
            );
            instance.warm_up().await.map_err(|failure| LoadError {
                plugin: entry.plugin.clone(),
                file: loaded.file.clone(),
                reason: format!("on route '{}': {}", route.name, failure.message_for_operator()),
            })?;
            let instance = Arc::new(instance);
            if !subscribe.is_empty() && !instance.has_hook(Hook::Message) {
                return Err(LoadError {
                    plugin: entry.plugin.clone(),
                    file: loaded.file.clone(),
                    reason: format!(
                        "on route '{}': grants.redis.subscribe names channels, but the plugin does not \
                         implement on-message (its describe does not list the `message` hook)",
                        route.name
                    ),
                });
            }
            for channel in subscribe {
                subscribers.entry(channel).or_default().push(instance.clone());
            }
            chain.push(instance);
        }
        let metrics = runtime.backends().metrics.clone();
        chains.insert(route.name.clone(), Arc::new(Chain::new(&route.name, chain, metrics)));
    }
    Ok(RouteTable {
        chains,
        plugins,
        subscribers,
    })
}

#[cfg(test)]
mod tests {
    use super::config_json;

    #[test]
    fn env_references_in_plugin_configs_are_expanded() {
        let value: toml::Value = toml::from_str(
            "secret = \"${env:SLUICE_TEST_ROUTES_SECRET}\"\nlist = [\"${env:SLUICE_TEST_ROUTES_SECRET}\", \"plain\"]",
        )
        .unwrap();
        let missing = config_json(Some(&value)).unwrap_err();
        assert!(missing.contains("SLUICE_TEST_ROUTES_SECRET"), "{missing}");
        assert_eq!(config_json(None).unwrap(), "{}");
        // PATH is set wherever tests run.
        let path: toml::Value = toml::from_str("p = \"${env:PATH}\"").unwrap();
        let json: serde_json::Value = serde_json::from_str(&config_json(Some(&path)).unwrap()).unwrap();
        assert_eq!(json["p"], std::env::var("PATH").unwrap());
        let plain: toml::Value = toml::from_str("a = \"${not-env}\"").unwrap();
        assert_eq!(config_json(Some(&plain)).unwrap(), r#"{"a":"${not-env}"}"#);
    }
}

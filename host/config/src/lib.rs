//! The gateway's configuration (floor 1, a leaf: no other host crate): one TOML file, parsed
//! with unknown fields rejected and validated as a whole before anything is built from it.
//! Also what validation needs to know: the grantable Redis commands ([`redis_commands`]); and
//! [`ConfigError`], which points at the line, column and text at fault; and the
//! config text with its secrets replaced ([`redact`]).

mod demo;
mod error;
mod gpu;
mod http_cache;
mod http_client;
mod plugin;
mod postgres;
pub mod redact;
mod redis;
pub mod redis_commands;
mod runtime;
mod server;
mod sinks;
mod telemetry;
mod upgrades;
mod upstream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use demo::DemoSettings;
pub use error::ConfigError;
pub use gpu::{BackendKind, GpuBackendDef, GpuModelDef, GpuSettings, Weights, WeightsDef};
pub use http_cache::HttpCacheSettings;
pub use http_client::HttpClientSettings;
pub use plugin::{
    ChainEntry, FailPolicy, Grants, HttpGrant, InstanceMode, Limits, LimitsOverride, PluginDef, PoolSettings,
    PostgresGrant, RedisGrant,
};
pub use postgres::PostgresSettings;
pub use redis::RedisSettings;
pub use runtime::{Profiler, RuntimeSettings};
pub use server::{AdminSettings, ServerSettings, TlsSettings};
pub use sinks::{AuditWhenFull, SINK_TABLES, SinkSettings};
pub use telemetry::TelemetrySettings;
pub use upgrades::UpgradeSettings;
pub use upstream::{Balance, HealthCheck, UpstreamDef};

/// A whole gateway configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The public listener (`[server]`).
    #[serde(default)]
    pub server: ServerSettings,
    /// The admin listener (`[admin]`).
    #[serde(default)]
    pub admin: AdminSettings,
    /// The built-in demo upstream (`[demo]`), served only when configured.
    #[serde(default)]
    pub demo: Option<crate::DemoSettings>,
    /// Upstreams by name (`[upstreams.NAME]`).
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamDef>,
    /// Plugin runtime settings (`[runtime]`).
    #[serde(default)]
    pub runtime: RuntimeSettings,
    /// Plugin definitions by name (`[plugins.NAME]`).
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginDef>,
    /// Routes, each with an ordered plugin chain (`[[routes]]`).
    #[serde(default)]
    pub routes: Vec<RouteDef>,
    /// The Postgres pool and the statements plugins may be granted (`[postgres]`), read at
    /// start-up; none when absent.
    #[serde(default)]
    pub postgres: Option<PostgresSettings>,
    /// The Redis client pool and the scripts plugins may be granted (`[redis]`), read at
    /// start-up; none when absent.
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    /// The background writer of telemetry, audit and inference rows (`[sinks]`), read at
    /// start-up.
    #[serde(default)]
    pub sinks: SinkSettings,
    /// Span export over OTLP (`[telemetry]`), read at start-up.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// The outbound HTTP client plugins use (`[http_client]`), read at start-up.
    #[serde(default)]
    pub http_client: HttpClientSettings,
    /// The HTTP response cache's storage (`[http_cache]`), read at start-up.
    #[serde(default)]
    pub http_cache: HttpCacheSettings,
    /// The GPU scheduler's fleet (`[gpu]`), read at start-up; none means no GPU routing.
    #[serde(default)]
    pub gpu: Option<GpuSettings>,
    /// The directory relative paths in this config resolve against (the config file's
    /// directory); not part of the file.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The TOML text this config was parsed from (empty for one built in code); shown,
    /// redacted, by the admin API.
    #[serde(skip)]
    pub source_text: std::sync::Arc<str>,
}

/// One route: what requests it matches, the plugins they pass through in order, and the
/// upstream they go to. Routes are tried in config order; the first match wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteDef {
    /// The route's name, unique in the config; shown to plugins as `request-head.route`.
    pub name: String,
    /// What the route matches; an empty match takes every request.
    #[serde(default, rename = "match")]
    pub matcher: RouteMatch,
    /// The `[upstreams.NAME]` requests go to; without one, only plugin answers are sent
    /// (a request that reaches the end of the chain gets 502).
    #[serde(default)]
    pub upstream: Option<String>,
    /// The plugin chain: request hooks run in this order, response hooks in reverse.
    #[serde(default)]
    pub plugins: Vec<ChainEntry>,
    /// The protocol upgrades (WebSocket) this route tunnels to its upstream, and their
    /// timeouts.
    #[serde(default)]
    pub upgrades: UpgradeSettings,
}

/// What a route matches. Every condition given must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteMatch {
    /// The request's host (the `Host` header or `:authority`, without the port), exactly.
    #[serde(default)]
    pub host: Option<String>,
    /// A path prefix, on segment boundaries: `/api` matches `/api` and `/api/x`, not `/apix`.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// An exact path (without the query).
    #[serde(default)]
    pub path: Option<String>,
    /// Methods, upper case; any method when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Headers that must be present with exactly these values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl GatewayConfig {
    /// Reads, parses and validates the config at `path`; relative paths in it resolve against
    /// the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Self::parse(&text, path, base)
    }

    /// Parses and validates `text`; `path` names it in errors, `base_dir` anchors relative
    /// paths.
    pub fn parse(text: &str, path: &Path, base_dir: PathBuf) -> Result<Self, ConfigError> {
        let mut config: GatewayConfig =
            toml::from_str(text).map_err(|e| ConfigError::parse(text, path, e.span().unwrap_or(0..0), e.message()))?;
        config.base_dir = base_dir;
        config.source_text = text.into();
        config
            .validate()
            .map_err(|message| ConfigError::invalid(text, path, message))?;
        Ok(config)
    }

    /// Resolves a path from the config against [`GatewayConfig::base_dir`].
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.runtime.validate()?;
        self.server.validate()?;
        self.admin.validate()?;
        self.telemetry.validate()?;
        self.sinks.validate()?;
        self.http_cache.validate()?;
        if let Some(gpu) = &self.gpu {
            gpu.validate()?;
        }
        if let Some(pg) = &self.postgres {
            pg.validate()?;
        }
        if let Some(redis) = &self.redis {
            redis.validate()?;
        }
        for (name, def) in &self.upstreams {
            def.validate().map_err(|e| format!("upstreams.{name}: {e}"))?;
        }
        for (name, def) in &self.plugins {
            // Names go into Redis key namespaces (`PREFIX:{name}:`), metric labels and logs.
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!(
                    "plugins.{name}: plugin names may use only letters, digits, '_' and '-'"
                ));
            }
            def.validate().map_err(|e| format!("plugins.{name}: {e}"))?;
            self.check_memory(def.limits.memory_mb, &format!("plugins.{name}"))?;
            if let (Some(grant), Some(pg)) = (&def.grants.postgres, &self.postgres)
                && let Some(missing) = grant.statements.iter().find(|s| !pg.statements.contains_key(*s))
            {
                return Err(format!(
                    "plugins.{name}: grants.postgres names statement '{missing}', which [postgres.statements] does not define"
                ));
            }
            if let Some(grant) = &def.grants.redis {
                crate::redis_commands::check_grant(grant, self.redis.as_ref())
                    .map_err(|e| format!("plugins.{name}: {e}"))?;
            }
            if def.pool.max_instances > self.runtime.max_instances as usize {
                return Err(format!(
                    "plugins.{name}: pool.max_instances ({}) is more than runtime.max_instances ({})",
                    def.pool.max_instances, self.runtime.max_instances
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for route in &self.routes {
            if !seen.insert(route.name.as_str()) {
                return Err(format!("route '{}' is defined twice", route.name));
            }
            if let Some(up) = &route.upstream
                && !self.upstreams.contains_key(up)
            {
                return Err(format!(
                    "route '{}' sends to upstream '{up}', which no [upstreams.{up}] section defines",
                    route.name
                ));
            }
            route
                .upgrades
                .validate()
                .map_err(|e| format!("route '{}': {e}", route.name))?;
            for p in [&route.matcher.path_prefix, &route.matcher.path].into_iter().flatten() {
                if !p.starts_with('/') {
                    return Err(format!("route '{}': paths start with '/', got '{p}'", route.name));
                }
            }
            for entry in &route.plugins {
                if !self.plugins.contains_key(&entry.plugin) {
                    return Err(format!(
                        "route '{}' uses plugin '{}', which no [plugins.{}] section defines",
                        route.name, entry.plugin, entry.plugin
                    ));
                }
                entry
                    .validate()
                    .map_err(|e| format!("route '{}', plugin '{}': {e}", route.name, entry.plugin))?;
                if let Some(memory_mb) = entry.limits.and_then(|l| l.memory_mb) {
                    self.check_memory(memory_mb, &format!("route '{}', plugin '{}'", route.name, entry.plugin))?;
                }
            }
        }
        Ok(())
    }
}

impl GatewayConfig {
    fn check_memory(&self, memory_mb: u32, at: &str) -> Result<(), String> {
        if memory_mb > self.runtime.max_memory_mb {
            return Err(format!(
                "{at}: limits.memory_mb = {memory_mb} is above runtime.max_memory_mb = {}",
                self.runtime.max_memory_mb
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

//! Plugin definitions (`[plugins.NAME]`) and chain entries (`[[routes.plugins]]`).

use std::path::PathBuf;

use serde::Deserialize;

/// A plugin definition: which component to load and how to run it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginDef {
    /// The `.wasm` component; relative paths resolve against the config file's directory.
    pub module: PathBuf,
    /// Backends granted beyond log, metrics and clock. Default: none.
    #[serde(default)]
    pub grants: Grants,
    /// CPU and memory limits.
    #[serde(default)]
    pub limits: Limits,
    /// `pooled` (default) reuses instances; `fresh` creates one per request.
    #[serde(default)]
    pub instance: InstanceMode,
    /// Instance pool tuning for `pooled` mode.
    #[serde(default)]
    pub pool: PoolSettings,
    /// What a failure of this plugin does to the request. Default: `closed`.
    #[serde(default)]
    pub fail: FailPolicy,
    /// The plugin config passed to `init` (as JSON) when a route gives none.
    #[serde(default)]
    pub config: Option<toml::Value>,
}

/// One plugin in a route's chain, with optional per-route overrides.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEntry {
    /// The name of a `[plugins.NAME]` definition.
    pub plugin: String,
    /// The plugin config for this route; replaces the definition's `config`.
    #[serde(default)]
    pub config: Option<toml::Value>,
    /// Grants for this route; replace the definition's `grants`.
    #[serde(default)]
    pub grants: Option<Grants>,
    /// Limits for this route; each field given replaces the definition's.
    #[serde(default)]
    pub limits: Option<LimitsOverride>,
    /// The failure policy for this route; replaces the definition's `fail`.
    #[serde(default)]
    pub fail: Option<FailPolicy>,
}

/// Backends granted to a plugin. log, metrics and clock are always granted.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// The plugin's private key/value store.
    #[serde(default)]
    pub kv: bool,
    /// The shared response cache.
    #[serde(default)]
    pub cache: bool,
    /// Redis commands and named scripts.
    #[serde(default)]
    pub redis: Option<RedisGrant>,
    /// Postgres statements.
    #[serde(default)]
    pub postgres: Option<PostgresGrant>,
    /// Outbound HTTP hosts (`http-client`; `http` is the older spelling, still accepted).
    #[serde(default, alias = "http")]
    pub http_client: Option<HttpGrant>,
    /// The GPU scheduler.
    #[serde(default)]
    pub gpu: bool,
    /// The audit log.
    #[serde(default)]
    pub audit: bool,
    /// Rate limits kept by the host (`rate-limit`; `ratelimit` is the older spelling, still
    /// accepted).
    #[serde(default, alias = "ratelimit")]
    pub rate_limit: bool,
    /// The HTTP response cache (`http-cache`).
    #[serde(default)]
    pub http_cache: bool,
}

/// Which Redis commands, scripts and channels a plugin may use.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisGrant {
    /// Allowed commands, upper case (`GET`, `INCRBY`, ...).
    #[serde(default)]
    pub commands: Vec<String>,
    /// Allowed named scripts.
    #[serde(default)]
    pub scripts: Vec<String>,
    /// Channels the plugin may publish on.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Channels whose messages the plugin receives through `on-message` (it must list the
    /// `message` hook).
    #[serde(default)]
    pub subscribe: Vec<String>,
}

/// Which Postgres statements a plugin may run.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresGrant {
    /// Names of statements from the gateway's statement list.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Whether any SQL may be run.
    #[serde(default)]
    pub any: bool,
}

/// Which hosts a plugin may call.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpGrant {
    /// Host names (or `host:port`) the plugin may call.
    pub hosts: Vec<String>,
}

/// CPU and memory limits of a plugin.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The most memory (all linear memories of an instance together), in MiB. Default 16.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// The CPU budget of one hook call, in milliseconds. Default 5.
    #[serde(default = "default_cpu_ms")]
    pub cpu_ms: u32,
    /// The CPU budget of `init` on a new instance, in milliseconds. Default 1000.
    #[serde(default = "default_init_ms")]
    pub init_ms: u32,
}

/// Per-route limit overrides: each field given replaces the definition's.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// See [`Limits::memory_mb`].
    pub memory_mb: Option<u32>,
    /// See [`Limits::cpu_ms`].
    pub cpu_ms: Option<u32>,
    /// See [`Limits::init_ms`].
    pub init_ms: Option<u32>,
}

fn default_memory_mb() -> u32 {
    16
}
fn default_cpu_ms() -> u32 {
    5
}
fn default_init_ms() -> u32 {
    1000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_mb: default_memory_mb(),
            cpu_ms: default_cpu_ms(),
            init_ms: default_init_ms(),
        }
    }
}

impl Limits {
    /// These limits with `over`'s fields applied.
    pub fn with(self, over: Option<LimitsOverride>) -> Limits {
        let Some(over) = over else { return self };
        Limits {
            memory_mb: over.memory_mb.unwrap_or(self.memory_mb),
            cpu_ms: over.cpu_ms.unwrap_or(self.cpu_ms),
            init_ms: over.init_ms.unwrap_or(self.init_ms),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if !(1..=4096).contains(&self.memory_mb) {
            return Err(format!("limits.memory_mb must be 1..=4096, got {}", self.memory_mb));
        }
        if !(1..=60_000).contains(&self.cpu_ms) {
            return Err(format!("limits.cpu_ms must be 1..=60000, got {}", self.cpu_ms));
        }
        if !(1..=60_000).contains(&self.init_ms) {
            return Err(format!("limits.init_ms must be 1..=60000, got {}", self.init_ms));
        }
        Ok(())
    }
}

/// How instances of a plugin are managed.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// Instances are reused across requests and recycled by [`PoolSettings`].
    #[default]
    Pooled,
    /// A new instance for every request: no state survives between requests.
    Fresh,
}

/// Instance pool tuning.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    /// Idle instances kept for reuse. Default 64.
    #[serde(default = "default_max_idle")]
    pub max_idle: usize,
    /// The most instances of this plugin on this route alive at once, busy or idle (the
    /// calls it runs concurrently), so that one plugin cannot take every slot of
    /// `runtime.max_instances`. Default 256; at most `runtime.max_instances`.
    #[serde(default = "default_max_instances")]
    pub max_instances: usize,
    /// How long a call waits for an instance when `max_instances` are busy, in ms, before
    /// it fails as `busy` (503). Default 1000.
    #[serde(default = "default_acquire_timeout_ms")]
    pub acquire_timeout_ms: u64,
    /// Hook calls after which an instance is replaced. Default 10,000.
    #[serde(default = "default_max_uses")]
    pub max_uses: u64,
    /// Memory (MiB) past which an instance is replaced after its call, rather than reused;
    /// defaults to half-way from the instance's memory when new to the memory limit.
    #[serde(default)]
    pub recycle_memory_mb: Option<u32>,
}

fn default_max_idle() -> usize {
    64
}
fn default_max_instances() -> usize {
    256
}
fn default_acquire_timeout_ms() -> u64 {
    1000
}
fn default_max_uses() -> u64 {
    10_000
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_idle: default_max_idle(),
            max_instances: default_max_instances(),
            acquire_timeout_ms: default_acquire_timeout_ms(),
            max_uses: default_max_uses(),
            recycle_memory_mb: None,
        }
    }
}

/// What a plugin failure (trap, timeout, memory excess, invalid verdict) does to the request.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FailPolicy {
    /// Skip the plugin and go on with the rest of the chain.
    Open,
    /// Answer 500 (or 503 for timeouts and memory) with a JSON body naming the plugin.
    #[default]
    Closed,
}

impl PluginDef {
    pub(super) fn validate(&self) -> Result<(), String> {
        self.limits.validate()?;
        if self.pool.max_uses == 0 {
            return Err("pool.max_uses must be at least 1".into());
        }
        if self.pool.max_instances == 0 {
            return Err("pool.max_instances must be at least 1".into());
        }
        Ok(())
    }
}

impl ChainEntry {
    pub(super) fn validate(&self) -> Result<(), String> {
        Limits::default().with(self.limits).validate()
    }
}

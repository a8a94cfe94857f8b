//! `[runtime]`: settings of the plugin runtime shared by every plugin.

use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the wasmtime engine and the compiled-component cache.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Where compiled components are cached; relative to the config file. Default
    /// `.sluice-cache`. An empty string disables the on-disk cache.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// The epoch tick in milliseconds: CPU deadlines are enforced to within one tick.
    /// Default 1.
    #[serde(default = "default_epoch_tick_ms")]
    pub epoch_tick_ms: u64,
    /// The most plugin instances alive at once, across all plugins (pooling allocator
    /// slots). Default 1000.
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// The largest memory limit any plugin may have, in MiB (the size of each pooled
    /// memory slot). Default 512.
    #[serde(default = "default_max_memory_mb")]
    pub max_memory_mb: u32,
    /// Tells a native profiler about the plugins' compiled code, so `perf` names guest
    /// functions: `"none"` (default), `"perfmap"` (writes `/tmp/perf-PID.map`) or `"jitdump"`
    /// (writes `jit-PID.dump` for `perf inject`). For profiling only: it costs at load time.
    #[serde(default)]
    pub profiler: Profiler,
}

/// Which native profiler the engine describes the plugins' compiled code to.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Profiler {
    /// No profiler: guest code shows as anonymous addresses.
    #[default]
    None,
    /// A perf map file (`/tmp/perf-PID.map`) that `perf report` reads.
    PerfMap,
    /// A jitdump file that `perf inject --jit` merges into a recording.
    JitDump,
}

fn default_cache_dir() -> PathBuf {
    PathBuf::from(".sluice-cache")
}
fn default_epoch_tick_ms() -> u64 {
    1
}
fn default_max_instances() -> u32 {
    1000
}
fn default_max_memory_mb() -> u32 {
    512
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            cache_dir: default_cache_dir(),
            epoch_tick_ms: default_epoch_tick_ms(),
            max_instances: default_max_instances(),
            max_memory_mb: default_max_memory_mb(),
            profiler: Profiler::None,
        }
    }
}

impl RuntimeSettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.epoch_tick_ms) {
            return Err(format!(
                "runtime.epoch_tick_ms must be 1..=1000, got {}",
                self.epoch_tick_ms
            ));
        }
        if !(1..=100_000).contains(&self.max_instances) {
            return Err(format!(
                "runtime.max_instances must be 1..=100000, got {}",
                self.max_instances
            ));
        }
        if !(1..=4096).contains(&self.max_memory_mb) {
            return Err(format!(
                "runtime.max_memory_mb must be 1..=4096, got {}",
                self.max_memory_mb
            ));
        }
        Ok(())
    }
}

//! The plugin runtime of one gateway: the engine, the linker every plugin is instantiated
//! with, the compiled-component cache, the epoch ticker and the backends plugins use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::aot_cache::ComponentCache;
use crate::engine::{self, EpochTicker};
use crate::loader::{self, LoadError, LoadedPlugin};
use crate::state::HostState;
use sluice_backends::Backends;
use sluice_config::{GatewayConfig, RuntimeSettings};

/// The CPU budget of `describe` at load time.
const DESCRIBE_BUDGET: Duration = Duration::from_secs(1);

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration.
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The epoch ticker thread could not start.
    #[error("cannot start the epoch ticker: {0}")]
    Ticker(#[from] std::io::Error),
}

/// The plugin runtime of one gateway.
pub struct Runtime {
    engine: Engine,
    ticker: Arc<EpochTicker>,
    linker: Arc<Linker<HostState>>,
    cache: ComponentCache,
    backends: Backends,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("cache", &self.cache).finish()
    }
}

impl Runtime {
    /// Starts a runtime with `settings`, caching compiled components in `cache_dir` (none:
    /// always compile), over the capability backends `backends`.
    pub fn new(
        settings: &RuntimeSettings,
        cache_dir: Option<PathBuf>,
        backends: Backends,
    ) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(settings).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        let ticker = Arc::new(EpochTicker::start(
            &engine,
            Duration::from_millis(settings.epoch_tick_ms),
        )?);
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        crate::linker::link(&mut linker).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        Ok(Runtime {
            engine,
            ticker,
            linker: Arc::new(linker),
            cache: ComponentCache::new(cache_dir),
            backends,
        })
    }

    /// A runtime for `config`: its `[runtime]` settings, its cache directory, and `backends`.
    pub fn for_config(config: &GatewayConfig, backends: Backends) -> Result<Self, RuntimeError> {
        let dir = &config.runtime.cache_dir;
        let cache_dir = (!dir.as_os_str().is_empty()).then(|| config.resolve(dir));
        Self::new(&config.runtime, cache_dir, backends)
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The backends plugins use.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The compiled-component cache.
    pub fn component_cache(&self) -> &ComponentCache {
        &self.cache
    }

    /// Loads plugin `name` from `file`: checks, compiles (on a blocking thread, or from the
    /// cache), pre-links and describes it.
    pub async fn load_plugin(&self, name: &str, file: &Path) -> Result<Arc<LoadedPlugin>, LoadError> {
        tracing::debug!(plugin = name, file = %file.display(), "loading plugin");
        let compiled = {
            let (engine, linker, cache, backends) = (
                self.engine.clone(),
                self.linker.clone(),
                self.cache.clone(),
                self.backends.clone(),
            );
            let (task_name, task_file) = (name.to_string(), file.to_path_buf());
            tokio::task::spawn_blocking(move || {
                let ctx = loader::LoadContext {
                    engine: &engine,
                    linker: &linker,
                    cache: &cache,
                    backends: &backends,
                    describe_budget: DESCRIBE_BUDGET,
                };
                loader::compile(&ctx, &task_name, &task_file)
            })
            .await
            .map_err(|e| LoadError {
                plugin: name.to_string(),
                file: file.to_path_buf(),
                reason: format!("the compile task failed: {e}"),
            })??
        };
        let ctx = self.load_context();
        let loaded = loader::finish_load(&ctx, name, file, compiled).await?;
        Ok(Arc::new(loaded))
    }

    fn load_context(&self) -> loader::LoadContext<'_> {
        loader::LoadContext {
            engine: &self.engine,
            linker: &self.linker,
            cache: &self.cache,
            backends: &self.backends,
            describe_budget: DESCRIBE_BUDGET,
        }
    }

    pub(crate) fn ticker(&self) -> &Arc<EpochTicker> {
        &self.ticker
    }
}

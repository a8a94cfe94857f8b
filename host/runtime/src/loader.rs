//! Loading a plugin file: check that it is a component of the `sluice:plugin@0.1` world,
//! compile it (or load it from the AOT cache), pre-link it, and ask it to `describe` itself.
//! Every failure becomes a [`LoadError`] naming the file, the plugin and the reason.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use super::aot_cache::{CacheOutcome, ComponentCache};
use super::state::HostState;
use crate::context::PluginContext;
use sluice_backends::Backends;
use sluice_bindings::{Hook, PackedHooks, PackedIndices, Plugin, PluginIndices, PluginInfo};
use sluice_config::Grants;

/// The WIT package this host implements, and the version prefix a plugin must import.
pub const WIT_PACKAGE: &str = "sluice:plugin";
/// The WIT version this host implements; plugins built against any 0.1.x load.
pub const WIT_VERSION: &str = "0.1.5";
const COMPATIBLE_PREFIX: &str = "0.1.";

/// The exports every plugin must have.
const REQUIRED_EXPORTS: &[&str] = &[
    "describe",
    "init",
    "on-request-headers",
    "on-request-body",
    "on-response-headers",
    "on-log",
];

/// A plugin that could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin '{plugin}' ({}): {reason}", file.display())]
pub struct LoadError {
    /// The plugin's name in the config.
    pub plugin: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// Why it could not be loaded, in words an operator can act on.
    pub reason: String,
}

/// A compiled, pre-linked plugin component and what it said about itself.
pub struct LoadedPlugin {
    /// The plugin's name in the config.
    pub name: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// The sha256 of the file.
    pub sha256: [u8; 32],
    /// The size of the file in bytes.
    pub size: usize,
    /// The pre-linked component, ready to instantiate ([`LoadedPlugin::instantiate`]).
    pub instance_pre: InstancePre<HostState>,
    /// Where the component keeps the world's exports, found (and type-checked) once at load.
    pub indices: PluginIndices,
    /// Where the component keeps the packed hooks, when it exports them.
    pub packed: PackedIndices,
    /// What `describe` returned.
    pub info: PluginInfo,
    /// Whether the compiled code came from the cache.
    pub cache: CacheOutcome,
    /// Time to compile or load the compiled code.
    pub compile_time: Duration,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("file", &self.file)
            .field("info", &self.info)
            .field("cache", &self.cache)
            .finish()
    }
}

impl LoadedPlugin {
    /// Whether the plugin implements `hook`.
    pub fn has_hook(&self, hook: Hook) -> bool {
        self.info.hooks.contains(&hook)
    }

    /// A new instance in `store`: the world's exports and the packed hooks it has.
    pub(crate) async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<(Plugin, PackedHooks)> {
        instantiate(&self.instance_pre, &self.indices, &self.packed, store).await
    }
}

/// Instantiates the component and takes its exports by the indices found at load.
async fn instantiate(
    instance_pre: &InstancePre<HostState>,
    indices: &PluginIndices,
    packed: &PackedIndices,
    store: &mut Store<HostState>,
) -> wasmtime::Result<(Plugin, PackedHooks)> {
    let instance = instance_pre.instantiate_async(&mut *store).await?;
    let bindings = indices.load(&mut *store, &instance)?;
    let hooks = packed.load(&mut *store, &instance)?;
    Ok((bindings, hooks))
}

/// Everything loading needs from the runtime.
pub(crate) struct LoadContext<'a> {
    pub(crate) engine: &'a wasmtime::Engine,
    pub(crate) linker: &'a Linker<HostState>,
    pub(crate) cache: &'a ComponentCache,
    pub(crate) backends: &'a Backends,
    pub(crate) describe_budget: Duration,
}

/// A compiled component that passed the world checks, not yet linked.
pub(crate) struct Compiled {
    component: Component,
    sha256: [u8; 32],
    size: usize,
    cache: CacheOutcome,
    compile_time: Duration,
}

/// The name in a `builtin:NAME` module path: a first-party plugin embedded in the binary.
pub fn builtin_name(module: &Path) -> Option<&str> {
    module.to_str()?.strip_prefix("builtin:")
}

/// Reads, checks and compiles plugin `name` from `file`. Compilation runs on the calling
/// thread: call it from a blocking task, off the request path.
pub(crate) fn compile(ctx: &LoadContext<'_>, name: &str, file: &Path) -> Result<Compiled, LoadError> {
    let fail = |reason: String| LoadError {
        plugin: name.to_string(),
        file: file.to_path_buf(),
        reason,
    };
    let bytes = match builtin_name(file) {
        Some(name) => sluice_artifacts::builtin(name)
            .ok_or_else(|| {
                let known: Vec<&str> = sluice_artifacts::BUILTIN.iter().map(|(n, _)| *n).collect();
                fail(format!("no built-in plugin '{name}' (built in: {})", known.join(", ")))
            })?
            .to_vec(),
        None => std::fs::read(file).map_err(|e| fail(format!("cannot read the file: {e}")))?,
    };
    check_header(&bytes).map_err(fail)?;
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    let started = Instant::now();
    let (component, cache) = ctx
        .cache
        .load_or_compile(ctx.engine, &bytes, &sha256)
        .map_err(|e| fail(format!("the component does not compile: {e:#}")))?;
    let compile_time = started.elapsed();
    check_world(ctx.engine, &component).map_err(fail)?;
    Ok(Compiled {
        component,
        sha256,
        size: bytes.len(),
        cache,
        compile_time,
    })
}

/// Pre-links `component` and asks it to describe itself.
pub(crate) async fn finish_load(
    ctx: &LoadContext<'_>,
    name: &str,
    file: &Path,
    compiled: Compiled,
) -> Result<LoadedPlugin, LoadError> {
    let fail = |reason: String| LoadError {
        plugin: name.to_string(),
        file: file.to_path_buf(),
        reason,
    };
    let Compiled {
        component,
        sha256,
        size,
        cache,
        compile_time,
    } = compiled;
    let instance_pre = ctx
        .linker
        .instantiate_pre(&component)
        .map_err(|e| fail(format!("its imports do not match what this host provides: {e:#}")))?;
    let indices = PluginIndices::new(&instance_pre).map_err(|e| {
        fail(format!(
            "its exports do not match the {WIT_PACKAGE}@{WIT_VERSION} world: {e:#}"
        ))
    })?;

    // `describe` runs on a throwaway instance with no grants.
    let context = Arc::new(PluginContext::new(name, Grants::default(), ctx.backends.clone()));
    let mut store = Store::new(ctx.engine, HostState::new(context, 64 << 20));
    store.limiter(|s| &mut s.limiter);
    store.data_mut().begin_call("-", "", "", ctx.describe_budget);
    // Wall time, looked at every epoch advance (the ticker's pace varies with the load).
    let (started, budget) = (Instant::now(), ctx.describe_budget);
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() >= budget {
            return Err(wasmtime::format_err!("`describe` ran past {budget:?}"));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
    store.set_epoch_deadline(1);
    let packed = PackedIndices::new(&component);
    let (bindings, _) = instantiate(&instance_pre, &indices, &packed, &mut store)
        .await
        .map_err(|e| fail(format!("instantiating it failed: {e:#}")))?;
    let info = bindings
        .call_describe(&mut store)
        .await
        .map_err(|e| fail(format!("`describe` trapped: {e:#}")))?;
    if info.name.is_empty() {
        return Err(fail("`describe` returned an empty name".into()));
    }
    Ok(LoadedPlugin {
        name: name.to_string(),
        file: file.to_path_buf(),
        sha256,
        size,
        instance_pre,
        indices,
        packed,
        info,
        cache,
        compile_time,
    })
}

/// Checks the binary header: a component, not a core module or something else.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("not a WebAssembly file (no `\\0asm` header)".into());
    }
    // Bytes 4..8: version (u16 LE) and layer (u16 LE); layer 1 is a component.
    if bytes[6..8] != [1, 0] {
        return Err(format!(
            "a core WebAssembly module, not a component: build it for the wasm32-wasip2 target \
             (or wrap it with `wasm-tools component new`) against the {WIT_PACKAGE}@{WIT_VERSION} world"
        ));
    }
    Ok(())
}

/// Checks the component's imports and exports against the world, so that a plugin of another
/// world or another WIT version is named as such rather than as a link error.
fn check_world(engine: &wasmtime::Engine, component: &Component) -> Result<(), String> {
    let ty = component.component_type();
    for (import, _) in ty.imports(engine) {
        if let Some(rest) = import.strip_prefix(WIT_PACKAGE).and_then(|r| r.strip_prefix('/')) {
            let version = rest.split_once('@').map(|(_, v)| v).unwrap_or("(unversioned)");
            if !version.starts_with(COMPATIBLE_PREFIX) {
                return Err(format!(
                    "built against {WIT_PACKAGE}@{version} (it imports `{import}`); this host speaks \
                     {WIT_PACKAGE}@{WIT_VERSION} and loads plugins built against any 0.1.x"
                ));
            }
        } else if !import.starts_with("wasi:") {
            return Err(format!("it imports `{import}`, which this host does not provide"));
        }
    }
    let exports: Vec<&str> = ty.exports(engine).map(|(name, _)| name).collect();
    let missing: Vec<&str> = REQUIRED_EXPORTS
        .iter()
        .copied()
        .filter(|e| !exports.contains(e))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "it does not export {} of the {WIT_PACKAGE}@{WIT_VERSION} world (it exports: {}); \
             is it a Sluice plugin?",
            missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
            if exports.is_empty() {
                "nothing".to_string()
            } else {
                exports.join(", ")
            }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_header;

    #[test]
    fn headers_tell_components_from_modules_and_junk() {
        assert!(
            check_header(b"hello world")
                .unwrap_err()
                .contains("not a WebAssembly file")
        );
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}

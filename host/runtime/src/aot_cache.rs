//! The on-disk cache of compiled components. An entry is keyed by the wasm's sha256 and the
//! engine's compatibility hash, written atomically with a CRC32 beside it, and loaded with
//! `Component::deserialize_file`. A missing, corrupt or stale entry is recompiled; the cache
//! can slow a start-up down but never fail it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled: there was no entry (or no cache directory).
    Compiled,
    /// Compiled because the entry could not be used; the reason says why.
    Recompiled(String),
}

/// A directory of compiled components, or none (always compile).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir` (created on first write), or no cache when `dir` is `None`.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir }
    }

    /// The entry path for a wasm with `sha256` on `engine`.
    pub fn entry_path(&self, engine: &Engine, sha256: &[u8; 32]) -> Option<PathBuf> {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let name = format!("{}-{:016x}.cwasm", hex::encode(sha256), h.finish());
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// The compiled component for `wasm` (whose digest is `sha256`): from the cache when a
    /// valid entry exists, otherwise compiled and (best effort) written to the cache.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        sha256: &[u8; 32],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.entry_path(engine, sha256) else {
            return Ok((Component::new(engine, wasm)?, CacheOutcome::Compiled));
        };
        let outcome = match load_entry(engine, &path) {
            Ok(Some(component)) => return Ok((component, CacheOutcome::Hit)),
            Ok(None) => CacheOutcome::Compiled,
            Err(reason) => {
                tracing::warn!(entry = %path.display(), %reason, "compiled-component cache entry unusable; recompiling");
                CacheOutcome::Recompiled(reason)
            }
        };
        tracing::info!(
            size_mib = format_args!("{:.1}", wasm.len() as f64 / 1_048_576.0),
            cache = %path.display(),
            "compiling the component (not in the compiled-component cache); components that embed a \
             language runtime (JavaScript, Python) take seconds, and the next start loads them from the cache"
        );
        let component = Component::new(engine, wasm)?;
        match component.serialize() {
            Ok(bytes) => {
                if let Err(e) = write_entry(&path, &bytes) {
                    tracing::warn!(entry = %path.display(), error = %e, "could not write the compiled-component cache");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not serialize a compiled component"),
        }
        Ok((component, outcome))
    }
}

fn crc_path(path: &Path) -> PathBuf {
    path.with_extension("cwasm.crc32")
}

/// `Ok(None)` when there is no entry; `Err` with a reason when there is one that can't be used.
fn load_entry(engine: &Engine, path: &Path) -> Result<Option<Component>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("unreadable: {e}")),
    };
    let expected = std::fs::read_to_string(crc_path(path)).map_err(|e| format!("checksum unreadable: {e}"))?;
    let actual = format!("{:08x}", crc32fast::hash(&bytes));
    if expected.trim() != actual {
        return Err(format!(
            "checksum mismatch (expected {}, found {actual})",
            expected.trim()
        ));
    }
    // SAFETY: `deserialize_file` trusts that the file holds code wasmtime produced. The file
    // is in the operator's cache directory, was written by this function's sibling through an
    // atomic rename, and its full contents just matched the checksum written with it; wasmtime
    // also checks its own header and the engine compatibility before using it.
    #[allow(unsafe_code)]
    let component = unsafe { Component::deserialize_file(engine, path) };
    component.map(Some).map_err(|e| format!("rejected by wasmtime: {e}"))
}

/// Writes `bytes` to `path` atomically (temp file, then rename), checksum first.
fn write_entry(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    write_atomic(&crc_path(path), format!("{:08x}\n", crc32fast::hash(bytes)).as_bytes())?;
    write_atomic(path, bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

//! The compiled-component cache: a second load is a hit; a corrupt or foreign entry is
//! recompiled and replaced, never a crash.

use sluice_artifacts as wasm;
use sluice_backends::Backends;
use sluice_config::RuntimeSettings;
use sluice_runtime::{CacheOutcome, Runtime};
use std::path::Path;

fn runtime(dir: &Path) -> Runtime {
    Runtime::new(
        &RuntimeSettings::default(),
        Some(dir.to_path_buf()),
        Backends::in_memory(),
    )
    .unwrap()
}

fn entry(dir: &Path) -> std::path::PathBuf {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_load_comes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let file = Path::new(wasm::GOOD);
    assert_eq!(
        rt.load_plugin("good", file).await.unwrap().cache,
        CacheOutcome::Compiled
    );
    assert_eq!(rt.load_plugin("good", file).await.unwrap().cache, CacheOutcome::Hit);
    // A new runtime (a restart) finds the entry too.
    assert_eq!(
        runtime(dir.path()).load_plugin("good", file).await.unwrap().cache,
        CacheOutcome::Hit
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let file = Path::new(wasm::GOOD);
    rt.load_plugin("good", file).await.unwrap();
    let path = entry(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&path, &bytes).unwrap();

    let loaded = rt.load_plugin("good", file).await.unwrap();
    assert!(
        matches!(&loaded.cache, CacheOutcome::Recompiled(why) if why.contains("checksum mismatch")),
        "{:?}",
        loaded.cache
    );
    assert_eq!(
        rt.load_plugin("good", file).await.unwrap().cache,
        CacheOutcome::Hit,
        "the entry was rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_wasmtime_rejects_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    let file = Path::new(wasm::GOOD);
    rt.load_plugin("good", file).await.unwrap();
    let path = entry(dir.path());
    // Consistent checksum, but not an artifact of this engine: as after a wasmtime upgrade
    // that kept the file name, or a truncated write that was checksummed.
    let junk = b"\x7fELF not really a compiled component".to_vec();
    std::fs::write(&path, &junk).unwrap();
    std::fs::write(
        path.with_extension("cwasm.crc32"),
        format!("{:08x}\n", crc32fast::hash(&junk)),
    )
    .unwrap();

    let loaded = rt.load_plugin("good", file).await.unwrap();
    assert!(
        matches!(&loaded.cache, CacheOutcome::Recompiled(why) if why.contains("rejected by wasmtime")),
        "{:?}",
        loaded.cache
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_cache_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    // The cache "directory" is below a regular file, so it can never be created.
    let rt = runtime(&blocker.join("cache"));
    for _ in 0..2 {
        let loaded = rt.load_plugin("good", Path::new(wasm::GOOD)).await.unwrap();
        assert_ne!(loaded.cache, CacheOutcome::Hit);
    }
}

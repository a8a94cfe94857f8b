//! `sluice plugin new`: the scaffolded project passes its own test, builds for wasm32-wasip2
//! and is a plugin `sluice plugin check` accepts; bad names and existing directories are refused.

use std::path::Path;
use std::process::Command;

use super::support::sluice_cli;

fn cargo(dir: &Path, args: &[&str]) {
    // Shared with the examples' builds, so the SDK compiles once per machine.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--target-dir")
        .arg(&target)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "cargo {args:?} in the new project");
}

#[test]
fn a_new_plugin_tests_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    let (ok, _, err) = sluice_cli(["plugin", "new", "scaffold-check", "--dir", dir]);
    assert!(ok, "{err}");
    let project = tmp.path().join("scaffold-check");
    cargo(&project, &["test"]);
    cargo(&project, &["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples/wasm32-wasip2/release/scaffold_check.wasm");
    let (ok, text, err) = sluice_cli(["plugin", "check", wasm.to_str().unwrap()]);
    assert!(ok, "{text}{err}");
    assert!(text.contains("plugin scaffold-check 0.1.0"), "{text}");

    let (ok, _, err) = sluice_cli(["plugin", "new", "scaffold-check", "--dir", dir]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (_, _, err) = sluice_cli(["plugin", "new", "9 lives", "--dir", dir]);
    assert!(err.contains("is not a plugin name"), "{err}");
}

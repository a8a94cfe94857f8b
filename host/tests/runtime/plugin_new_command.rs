//! `sluice plugin new`: the scaffolded project passes its own test, builds for wasm32-wasip2
//! and is a plugin `sluice plugin check` accepts; bad names and existing directories are refused.

use std::path::Path;
use std::process::Command;

fn sluice(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

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
    let out = sluice(&["plugin", "new", "scaffold-check", "--dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let project = tmp.path().join("scaffold-check");
    cargo(&project, &["test"]);
    cargo(&project, &["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/examples/wasm32-wasip2/release/scaffold_check.wasm");
    let out = sluice(&["plugin", "check", wasm.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("plugin scaffold-check 0.1.0"), "{text}");

    let again = sluice(&["plugin", "new", "scaffold-check", "--dir", dir]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = sluice(&["plugin", "new", "9 lives", "--dir", dir]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a plugin name"));
}

//! `sluice plugin new` and `plugin wit`: the scaffolded project passes its own test, builds for
//! wasm32-wasip2 and is a plugin `sluice plugin check` accepts; bad names and existing
//! directories are refused; `plugin wit` writes the host's WIT.

use std::path::Path;
use std::process::Command;

use super::support::sluice_cli;

fn cargo(dir: &Path, args: &[&str]) {
    // Shared with the examples' builds, so the SDK compiles once per machine.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/examples");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .arg("--target-dir")
        .arg(&target)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "cargo {args:?} in the new project");
}

/// Scaffolds `name` (with `extra` flags), runs its test, builds it and checks the component.
fn scaffold_test_build_check(dir: &Path, name: &str, extra: &[&str]) {
    let mut args = vec!["plugin", "new", name, "--dir", dir.to_str().unwrap()];
    args.extend(extra);
    let (ok, _, err) = sluice_cli(args);
    assert!(ok, "{err}");
    let project = dir.join(name);
    cargo(&project, &["test"]);
    cargo(&project, &["build", "--release", "--target", "wasm32-wasip2"]);
    let wasm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/examples/wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    let (ok, text, err) = sluice_cli(["plugin", "check", wasm.to_str().unwrap()]);
    assert!(ok, "{text}{err}");
    assert!(text.contains(&format!("plugin {name} 0.1.0")), "{text}");
}

#[test]
fn a_new_plugin_tests_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    scaffold_test_build_check(tmp.path(), "scaffold-check", &[]);
    let manifest = std::fs::read_to_string(tmp.path().join("scaffold-check/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("plugins/sdk"),
        "inside a checkout, the checkout's SDK: {manifest}"
    );

    let dir = tmp.path().to_str().unwrap();
    let (ok, _, err) = sluice_cli(["plugin", "new", "scaffold-check", "--dir", dir]);
    assert!(!ok && err.contains("already exists"), "{err}");
    let (_, _, err) = sluice_cli(["plugin", "new", "9 lives", "--dir", dir]);
    assert!(err.contains("is not a plugin name"), "{err}");
}

/// What someone without a Sluice checkout gets: the SDK and WIT copied into the project,
/// which builds from crates.io alone.
#[test]
fn a_new_plugin_with_a_vendored_sdk_tests_builds_and_checks() {
    let tmp = tempfile::tempdir().unwrap();
    scaffold_test_build_check(tmp.path(), "scaffold-vendored", &["--vendor-sdk"]);
    let project = tmp.path().join("scaffold-vendored");
    assert!(project.join("sluice-plugin-sdk/wit/world.wit").exists());
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("path = \"sluice-plugin-sdk\""), "{manifest}");
}

/// `sluice plugin wit DIR` writes exactly the WIT in `wit/`, for authors in other languages.
#[test]
fn plugin_wit_writes_the_world_this_host_speaks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wit");
    let (ok, text, err) = sluice_cli(["plugin", "wit", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(text.contains("sluice:plugin@0.1.5"), "{text}");
    let repo_wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit");
    for file in ["host.wit", "types.wit", "world.wit"] {
        let written = std::fs::read_to_string(out.join(file)).unwrap();
        assert_eq!(written, std::fs::read_to_string(repo_wit.join(file)).unwrap(), "{file}");
    }
}

//! Builds every plugin workspace (`plugins/` and `tests/plugins/`) for `wasm32-wasip2` in
//! release, so that one `cargo build` or `cargo test` at the root produces the host and every
//! plugin. Writes `artifacts.rs` into OUT_DIR: one `&str` constant per plugin with the path of
//! its `.wasm`, named after the crate in SCREAMING_SNAKE_CASE.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const WORKSPACES: &[&str] = &["plugins", "tests/plugins"];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("workspace root exists");
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("wasm-plugins");

    ensure_target(&root);
    let mut consts = String::new();
    let mut all = String::from("/// Every plugin built, as (crate name, path).\npub const ALL: &[(&str, &str)] = &[\n");
    let mut builtin = String::from(
        "/// The first-party plugins (`plugins/`), embedded: what a config names as `builtin:NAME`.\n\
         pub const BUILTIN: &[(&str, &[u8])] = &[\n",
    );
    for workspace in WORKSPACES {
        let dir = root.join(workspace);
        watch(&dir);
        for (name, path) in build_workspace(&dir, &target_dir) {
            let ident = name.to_uppercase().replace('-', "_");
            let path = path.display().to_string();
            writeln!(consts, "/// The `{name}` plugin, built from `{workspace}/`.").unwrap();
            writeln!(consts, "pub const {ident}: &str = {path:?};").unwrap();
            writeln!(all, "    ({name:?}, {path:?}),").unwrap();
            if *workspace == "plugins" {
                // `builtin:gpu-router` for the crate `gpu-router` (whose file is `gpu_router.wasm`).
                let builtin_name = name.replace('_', "-");
                writeln!(builtin, "    ({builtin_name:?}, include_bytes!({path:?})),").unwrap();
            }
        }
    }
    all.push_str("];\n");
    builtin.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it")).join("artifacts.rs");
    std::fs::write(out, consts + &all + &builtin).expect("OUT_DIR is writable");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    // The frozen WIT the compatibility test plugin is built from.
    watch(&root.join("tests/compat"));
}

/// Makes sure the toolchain has the `wasm32-wasip2` standard library. rustup installs the
/// targets of `rust-toolchain.toml` only when it installs the toolchain itself, so a machine
/// whose 1.95.0 was already there has none: add it with rustup, saying so in one line.
fn ensure_target(root: &Path) {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let installed = |sysroot: &Path| sysroot.join("lib/rustlib").join(WASM_TARGET).join("lib").is_dir();
    if sysroot.as_deref().is_some_and(installed) {
        return;
    }
    println!("cargo:warning=the {WASM_TARGET} target is not installed; adding it: rustup target add {WASM_TARGET}");
    let added = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", WASM_TARGET])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .status();
    match added {
        Ok(status) if status.success() => {}
        Ok(status) => panic!("`rustup target add {WASM_TARGET}` failed ({status}); the plugins need it"),
        Err(e) => panic!(
            "the plugins need the {WASM_TARGET} target and rustup could not be run to add it ({e}); \
             install the target for this toolchain by hand"
        ),
    }
}

/// Runs `cargo build` on one plugin workspace and returns each cdylib's crate name and path.
fn build_workspace(dir: &Path, target_dir: &Path) -> Vec<(String, PathBuf)> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args(["build", "--release", "--message-format=json-render-diagnostics"])
        .args(["--target", WASM_TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        .stderr(std::process::Stdio::inherit());
    // The outer build's settings are not the plugins' settings.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ] {
        cmd.env_remove(var);
    }
    let output = cmd.output().expect("cargo runs");
    if !output.status.success() {
        panic!(
            "building the plugins in {} for {WASM_TARGET} failed (is the target installed? \
             `rustup target add {WASM_TARGET}`)",
            dir.display()
        );
    }
    let mut built = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let name = msg["target"]["name"].as_str().unwrap_or_default().to_string();
        let files = msg["filenames"].as_array().cloned().unwrap_or_default();
        for file in files.iter().filter_map(|f| f.as_str()) {
            if file.ends_with(".wasm") {
                built.push((name.clone(), PathBuf::from(file)));
            }
        }
    }
    built.sort();
    built
}

/// Asks cargo to rerun this script when any source or manifest in `dir` changes, skipping
/// build output directories.
fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && name != ".git" {
                watch(&path);
            }
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

//! Builds the plugins under `examples/` the way their READMEs say: cargo for Rust, npm and
//! componentize-js for JavaScript, a virtualenv and componentize-py for Python. A missing
//! toolchain fails the test with one line naming what to install (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds a Rust example (`examples/DIR`, cached under `target/examples`) and returns the
/// component: `target/examples/wasm32-wasip2/release/ARTIFACT.wasm`.
pub fn build_rust(dir: &str, artifact: &str) -> PathBuf {
    let root = repo_root();
    let target = root.join("target/examples");
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(root.join("examples").join(dir).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    run(&mut cargo, "cargo (the Rust toolchain with the wasm32-wasip2 target)");
    target.join(format!("wasm32-wasip2/release/{artifact}.wasm"))
}

/// Builds a JavaScript example (`examples/DIR`: `npm ci` when its packages are missing, then
/// `npm run build`) unless `OUTPUT` is newer than its sources and the WIT, and returns it.
pub fn build_js(dir: &str, output: &str) -> PathBuf {
    let project = repo_root().join("examples").join(dir);
    let wasm = project.join(output);
    if !project.join("node_modules/.bin/componentize-js").exists() {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&project),
            "npm (Node.js 18 or newer)",
        );
    }
    if stale(&wasm, &[project.join("src"), project.join("package-lock.json")]) {
        run(
            Command::new("npm").args(["run", "build"]).current_dir(&project),
            "npm (Node.js 18 or newer)",
        );
    }
    wasm
}

/// Builds a Python example (`examples/DIR`: a `.venv` with its `requirements.txt` when
/// missing, then `componentize-py … componentize MODULE`) unless `OUTPUT` is newer than its
/// sources and the WIT, and returns it.
pub fn build_python(dir: &str, module: &str, output: &str) -> PathBuf {
    let project = repo_root().join("examples").join(dir);
    let wasm = project.join(output);
    let tool = project.join(".venv/bin/componentize-py");
    if !tool.exists() {
        run(
            Command::new("python3")
                .args(["-m", "venv", ".venv"])
                .current_dir(&project),
            "python3 with the venv module (Python 3.10 or newer)",
        );
        run(
            Command::new(project.join(".venv/bin/pip"))
                .args(["install", "--quiet", "-r", "requirements.txt"])
                .current_dir(&project),
            "pip (PyPI must be reachable)",
        );
    }
    let sources: Vec<PathBuf> = std::fs::read_dir(&project)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .collect();
    if stale(&wasm, &sources) {
        run(
            Command::new(&tool)
                .args([
                    "--wit-path",
                    "../../wit",
                    "--world",
                    "plugin",
                    "componentize",
                    module,
                    "-o",
                    output,
                ])
                .current_dir(&project),
            "componentize-py",
        );
    }
    wasm
}

/// Runs a build step; panics with one line when it cannot start or fails.
pub(crate) fn run(command: &mut Command, needs: &str) {
    match command.status() {
        Ok(status) => assert!(status.success(), "{command:?} failed ({status}); see its output above"),
        Err(e) => panic!("cannot run {command:?}: {e}; building this example needs {needs}"),
    }
}

/// Whether `output` is missing or older than any file under `inputs` or the WIT.
fn stale(output: &Path, inputs: &[PathBuf]) -> bool {
    let Some(built) = modified(output) else {
        return true;
    };
    let mut inputs = inputs.to_vec();
    inputs.push(repo_root().join("wit"));
    inputs.iter().any(|input| newest(input).is_some_and(|t| t > built))
}

fn newest(path: &Path) -> Option<SystemTime> {
    if path.is_dir() {
        std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| newest(&e.path()))
            .max()
    } else {
        modified(path)
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

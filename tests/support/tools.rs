//! Programs some end-to-end tests drive (promtool, Chromium), installed from Debian's packages
//! when the machine lacks them, so the README's test command works on a fresh machine; and
//! the npm packages of `tests/browser`.

use std::path::PathBuf;
use std::process::Command;

/// Held while a test installs a package: tests run in parallel, and two apt-gets at once
/// fail on dpkg's lock (the dashboard test's Chromium beside the rules test's promtool).
static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Makes sure `command` runs (`command probe…` succeeds); when it does not, installs Debian's
/// `package` with apt-get, or fails the test saying what to install. Installs are one at a
/// time in this process, and wait for dpkg's lock when another process holds it.
pub fn ensure_debian_package(command: &str, probe: &[&str], package: &str) {
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let runs = || {
        Command::new(command)
            .args(probe)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs() {
        return;
    }
    eprintln!("{command} is missing: installing Debian's {package} package with apt-get");
    let script = format!(
        "apt-get -o DPkg::Lock::Timeout=600 update -qq && \
         DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq {package}"
    );
    let installed = Command::new("sh")
        .args(["-c", &script])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed && runs(),
        "cannot run {command}: install Debian's {package} package (apt-get install {package})"
    );
}

/// `tests/browser` with its npm packages installed (`npm ci` when they are missing).
pub fn browser_scripts() -> PathBuf {
    let dir = crate::examples::repo_root().join("tests/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        crate::examples::run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
            "npm (Node.js 18 or newer)",
        );
    }
    dir
}

//! Running the `sluice` binary this package builds.

/// Runs the `sluice` binary with `args` (logging at `warn`) and returns whether it succeeded,
/// its stdout and its stderr.
pub(crate) fn sluice_cli<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the sluice binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

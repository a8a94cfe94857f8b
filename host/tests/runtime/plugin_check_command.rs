//! `sluice plugin check`: what a loadable plugin is and imports, grants compared with a config,
//! and one clear line (exit 1) for files that are not loadable plugins.

use super::support::sluice_cli;

fn check(args: &[&str]) -> (bool, String, String) {
    sluice_cli(["plugin", "check"].iter().chain(args))
}

#[test]
fn a_plugin_is_described_with_its_imports_and_the_grants_they_need() {
    let (ok, out, err) = check(&[sluice_artifacts::PG_QUERY]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("plugin pg-query 0.1.0"), "{out}");
    assert!(out.contains("hooks: on-request-headers"), "{out}");
    assert!(out.contains("imports: postgres"), "{out}");
    assert!(out.contains("grants needed to use them: postgres"), "{out}");
    assert!(out.contains("compiled in"), "{out}");
}

#[test]
fn a_config_that_does_not_grant_an_import_gets_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gw.toml");
    let module = sluice_artifacts::PG_QUERY;
    std::fs::write(
        &config,
        format!("[plugins.pg]\nmodule = {module:?}\n[[routes]]\nname = \"r\"\nplugins = [{{ plugin = \"pg\" }}]\n"),
    )
    .unwrap();
    let (ok, out, err) = check(&[module, "--config", config.to_str().unwrap()]);
    assert!(ok, "warnings do not fail: {out}{err}");
    assert!(
        out.contains("warning: imports postgres, which [plugins.pg] does not grant (grants.postgres)"),
        "{out}"
    );
}

#[test]
fn files_that_are_not_loadable_plugins_fail_with_one_line() {
    let (ok, _, err) = check(&[sluice_artifacts::WRONG_VERSION]);
    assert!(!ok);
    assert!(err.contains("built against sluice:plugin@1.0.0"), "{err}");
    let (ok, _, err) = check(&[sluice_artifacts::OTHER_WORLD]);
    assert!(!ok);
    assert!(err.contains("does not export `describe`"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, "not wasm").unwrap();
    let (ok, _, err) = check(&[junk.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("junk.wasm: not a WebAssembly file"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

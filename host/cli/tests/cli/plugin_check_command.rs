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
        format!("[plugins.pg]\nmodule = {module:?}\n[[routes]]\nname = \"r\"\nplugins = [{{ plugin = \"pg\", config = {{ statement = \"s\" }} }}]\n"),
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
    // An empty core module: the header says module, not component.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (ok, _, err) = check(&[core.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("core.wasm: a core WebAssembly module, not a component: build it for the wasm32-wasip2 target"),
        "{err}"
    );
}

#[test]
fn the_good_plugin_shows_its_hooks_imports_and_wasi() {
    let (ok, out, err) = check(&[sluice_artifacts::GOOD]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("plugin good 0.1.0"), "{out}");
    assert!(out.contains("built against sluice:plugin@0.1.5"), "{out}");
    assert!(
        out.contains(
            "hooks: on-request-headers, on-request-body, on-response-headers, on-log \
             (request hooks called packed: plugin-packed world)"
        ),
        "{out}"
    );
    assert!(out.contains("imports: log, metrics, clock, kv, cache, audit"), "{out}");
    assert!(out.contains("wasi imports: wasi:"), "{out}");
    assert!(out.contains("grants needed to use them: kv, cache, audit"), "{out}");
}

/// A config for `good` granting only kv, with one route per `(name, config)`.
fn good_config(dir: &std::path::Path, routes: &[(&str, &str)]) -> String {
    let mut text = format!(
        "[plugins.g]\nmodule = {:?}\ngrants = {{ kv = true }}\n",
        sluice_artifacts::GOOD
    );
    for (name, config) in routes {
        text.push_str(&format!(
            "[[routes]]\nname = {name:?}\nplugins = [{{ plugin = \"g\", config = {config} }}]\n"
        ));
    }
    let path = dir.join("gw.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn missing_grants_warn_and_init_runs_with_each_route_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = good_config(dir.path(), &[("plain", "{ tag = \"a\" }")]);
    let (ok, out, err) = check(&[sluice_artifacts::GOOD, "--config", &config]);
    assert!(ok, "warnings do not fail: {out}{err}");
    assert!(
        out.contains(
            "warning: imports cache, which [plugins.g] does not grant (grants.cache): calls will fail with `denied`"
        ),
        "{out}"
    );
    assert!(out.contains("warning: imports audit"), "{out}");
    assert!(!out.contains("warning: imports kv"), "{out}");
    assert!(out.contains("route plain: init ok"), "{out}");

    let config = good_config(dir.path(), &[("plain", "{}"), ("strict", "{ reject = true }")]);
    let (ok, out, err) = check(&[sluice_artifacts::GOOD, "--config", &config]);
    assert!(!ok, "a failing init fails the check: {out}");
    assert!(out.contains("route plain: init ok"), "{out}");
    assert!(
        out.contains("route strict: init failed: the plugin rejected its config"),
        "{out}"
    );
    assert!(err.contains("init failed on route(s) strict"), "{err}");
}

#[test]
fn json_reports_the_same_facts() {
    let (ok, out, err) = check(&[sluice_artifacts::GOOD, "--json"]);
    assert!(ok, "{out}{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["loadable"], true);
    assert_eq!(report["plugin"]["name"], "good");
    assert_eq!(report["plugin"]["wit_version"], "0.1.5");
    assert_eq!(
        report["plugin"]["packed_hooks"], true,
        "the SDK builds against plugin-packed"
    );
    assert_eq!(report["plugin"]["max_body_bytes"], 64);
    assert!(
        report["plugin"]["host_imports"]
            .as_array()
            .unwrap()
            .contains(&"audit".into())
    );

    let (ok, out, _) = check(&[sluice_artifacts::WRONG_VERSION, "--json"]);
    assert!(!ok);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["loadable"], false);
    assert!(
        report["error"].as_str().unwrap().contains("sluice:plugin@1.0.0"),
        "{report}"
    );
}

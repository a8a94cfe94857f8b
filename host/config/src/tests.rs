use std::path::{Path, PathBuf};

use super::*;

fn parse(text: &str) -> Result<GatewayConfig, ConfigError> {
    GatewayConfig::parse(text, Path::new("sluice.toml"), PathBuf::from("/etc/sluice"))
}

#[test]
fn the_embedded_default_config_is_valid() {
    let config = parse(include_str!("../../../config/sluice.toml")).unwrap();
    assert_eq!(config.runtime.epoch_tick_ms, 1);
}

#[test]
fn the_gpu_example_config_is_valid_and_bad_fleets_are_refused() {
    let config = parse(include_str!("../../../gpu-sim/gateway.example.toml")).unwrap();
    let gpu = config.gpu.unwrap();
    assert_eq!(gpu.backends[0].models.len(), 3);
    assert_eq!(gpu.weights_for("inference"), crate::Weights::default());
    let backend = "[[gpu.backends]]\nname = \"a\"\nurl = \"http://127.0.0.1:8000\"\n";
    for (bad, why) in [
        (format!("[gpu]\n{backend}{backend}"), "listed twice"),
        (
            "[gpu]\n[[gpu.backends]]\nname = \"a\"\nurl = \"https://x:1\"\n".into(),
            "http://host:port",
        ),
        (format!("[gpu]\nqueue_capacity = 0\n{backend}"), "queue_capacity"),
        (
            format!("[gpu]\n[gpu.weights]\nprefix_hit = -1.0\n{backend}"),
            "finite number",
        ),
        (
            "[gpu]\n[[gpu.backends]]\nname = \"a b\"\nurl = \"http://x:1\"\n".into(),
            "letters, digits",
        ),
    ] {
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn unknown_keys_are_errors_with_their_line() {
    let err = parse("[runtime]\nepoch_tick_ms = 1\ncache_dri = \"x\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("sluice.toml:3:"), "{text}");
    assert!(text.contains("unknown field `cache_dri`"), "{text}");
}

#[test]
fn the_profiler_is_off_by_default_and_named_in_lower_case() {
    assert_eq!(parse("").unwrap().runtime.profiler, Profiler::None);
    let config = parse("[runtime]\nprofiler = \"perfmap\"\n").unwrap();
    assert_eq!(config.runtime.profiler, Profiler::PerfMap);
    let config = parse("[runtime]\nprofiler = \"jitdump\"\n").unwrap();
    assert_eq!(config.runtime.profiler, Profiler::JitDump);
    let err = parse("[runtime]\nprofiler = \"vtune\"\n").unwrap_err().to_string();
    assert!(err.contains("unknown variant `vtune`"), "{err}");
}

#[test]
fn a_route_naming_an_undefined_plugin_is_refused() {
    let err = parse("[[routes]]\nname = \"r\"\nplugins = [{ plugin = \"ghost\" }]\n").unwrap_err();
    assert!(
        err.to_string()
            .contains("uses plugin 'ghost', which no [plugins.ghost] section defines"),
        "{err}"
    );
}

#[test]
fn limits_are_checked_against_the_runtime() {
    let err = parse("[plugins.p]\nmodule = \"p.wasm\"\nlimits = { memory_mb = 1024 }\n").unwrap_err();
    assert!(err.to_string().contains("above runtime.max_memory_mb = 512"), "{err}");
    let err = parse("[plugins.p]\nmodule = \"p.wasm\"\nlimits = { cpu_ms = 0 }\n").unwrap_err();
    assert!(err.to_string().contains("limits.cpu_ms must be 1..=60000"), "{err}");
}

#[test]
fn duplicate_routes_are_refused() {
    let err = parse("[[routes]]\nname = \"a\"\n[[routes]]\nname = \"a\"\n").unwrap_err();
    assert!(err.to_string().contains("route 'a' is defined twice"), "{err}");
}

#[test]
fn route_entries_override_the_definition() {
    let config = parse(
        "[plugins.p]\nmodule = \"p.wasm\"\nfail = \"open\"\nlimits = { cpu_ms = 7 }\n\
         [[routes]]\nname = \"r\"\nplugins = [{ plugin = \"p\", fail = \"closed\", limits = { memory_mb = 32 } }]\n",
    )
    .unwrap();
    let def = &config.plugins["p"];
    let entry = &config.routes[0].plugins[0];
    assert_eq!(entry.fail, Some(FailPolicy::Closed));
    let limits = def.limits.with(entry.limits);
    assert_eq!((limits.cpu_ms, limits.memory_mb), (7, 32));
    assert_eq!(config.resolve(&def.module), PathBuf::from("/etc/sluice/p.wasm"));
}

#[test]
fn a_route_tunnels_websocket_by_default_and_its_upgrades_are_checked() {
    let route = "[[routes]]\nname = \"ws\"\n";
    let config = parse(route).unwrap();
    assert!(config.routes[0].upgrades.allows("websocket"));
    let config = parse(&format!(
        "{route}upgrades = {{ protocols = [\"websocket\", \"mqtt\"], idle_timeout_ms = 1000 }}\n"
    ))
    .unwrap();
    let upgrades = &config.routes[0].upgrades;
    assert!(upgrades.allows("mqtt") && upgrades.idle_timeout_ms == 1000);
    assert_eq!(upgrades.max_duration_ms, 86_400_000);
    let err = parse(&format!("{route}upgrades = {{ protocols = [\"h2c\"] }}\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("route 'ws': upgrades.protocols"), "{err}");
}

#[test]
fn http3_needs_the_tls_certificate() {
    let err = parse("[server]\nhttp3_listen = \"127.0.0.1:8443\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("http3_listen needs server.tls"), "{err}");
    let config =
        parse("[server]\nhttp3_listen = \"127.0.0.1:8443\"\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n").unwrap();
    assert_eq!(config.server.http3_listen, Some("127.0.0.1:8443".parse().unwrap()));
}

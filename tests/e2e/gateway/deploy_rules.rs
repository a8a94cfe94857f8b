//! What `deploy/` ships for Prometheus and Grafana: `promtool check rules` accepts the alert
//! rules, `promtool test rules` runs their unit tests (each alert fires on the series that
//! should raise it, and only after its `for`), the Grafana dashboard is well formed, and every
//! metric the rules and the dashboard's queries name is one a real gateway with every backend
//! exports at `/metrics`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_artifacts as wasm;
use sluice_e2e::examples::repo_root;
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::{Upstream, full, get, send, start_gateway};

use super::admin_openapi::{TOKEN, full_config};
use super::gpu_route::{chat, post, sim, sim_config};

/// Runs promtool with `args` in `dir` and fails the test unless it succeeds; installs Debian's
/// `prometheus` package first when promtool is missing, so the suite runs on a fresh machine.
fn promtool_ok(args: &[&str], dir: &Path) {
    sluice_e2e::tools::ensure_debian_package("promtool", &["--version"], "prometheus");
    let out = Command::new("promtool").args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn rules_dir() -> PathBuf {
    repo_root().join("deploy/prometheus")
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    promtool_ok(&["check", "rules", "alerts.yml"], &rules_dir());
    promtool_ok(&["test", "rules", "alerts_test.yml"], &rules_dir());
}

/// The metric names an expression text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("sluice_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        names.insert(name);
    }
    names
}

/// The metric families a `/metrics` text declares (`# TYPE name kind`), histograms also under
/// their `_bucket`, `_sum` and `_count` series names.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let mut words = line.strip_prefix("# TYPE ").unwrap_or("").split(' ');
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        names.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// The dashboard's queries, after checking its shape: unique panel ids, every panel on the
/// `$datasource` variable with at least one query, the sections the issue asks for.
fn dashboard_queries() -> String {
    let text = std::fs::read_to_string(repo_root().join("deploy/grafana/sluice.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("sluice.json is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    let ids: BTreeSet<u64> = panels.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    let rows: Vec<&str> = panels
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    for section in [
        "Overview",
        "Upstreams",
        "HTTP cache",
        "GPU fleet",
        "Dependencies",
        "Reloads",
    ] {
        assert!(rows.contains(&section), "no {section} row: {rows:?}");
    }
    let mut queries = Vec::new();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{}", panel["title"]);
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        queries.extend(targets.iter().filter_map(|t| t["expr"].as_str().map(str::to_string)));
    }
    queries.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_the_dashboard_name_is_exported_by_a_real_gateway() {
    let rules = std::fs::read_to_string(rules_dir().join("alerts.yml")).unwrap();
    let expressions: String = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut wanted = metric_names(&expressions);
    assert!(wanted.len() >= 10, "{wanted:?}");
    wanted.extend(metric_names(&dashboard_queries()));

    let upstream = Upstream::start().await;
    let db = TestDatabase::create("rules").await;
    // m2 is listed but not loaded: asking for it makes a cold load.
    let backend = sim("gpu-r", sim_config(&[("m1", true), ("m2", false)], 2, 1), 2).await;
    let panicker = format!(
        "[plugins.panicker]\nmodule = {:?}\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ rate_limit = true }}\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [plugins.auth]\nmodule = \"builtin:auth\"\ngrants = {{ kv = true, audit = true }}\n\
         [[routes]]\nname = \"private\"\nmatch = {{ path_prefix = \"/private\" }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"auth\", config = {{ secret = \"rules-secret-0123456789\", lookup_statement = \"\", touch_statement = \"\" }} }}]\n\
         [[routes]]\nname = \"boom\"\nmatch = {{ path_prefix = \"/panic\" }}\nupstream = \"app\"\nplugins = [{{ plugin = \"panicker\" }}]\n\
         [[routes]]\nname = \"edge\"\nmatch = {{ path_prefix = \"/edge\" }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"ratelimit\", config = {{ limits = [{{ name = \"ip\", key = \"ip\", limit = 100, period = \"1s\" }}] }} }}, {{ plugin = \"cache\" }}]\n",
        wasm::PANICKER
    );
    let gw = start_gateway(&format!("{}{panicker}", full_config(&db, &upstream, &backend))).await;
    assert_eq!(get(&gw.url("/app/x")).await.status, 200);
    assert_eq!(get(&gw.url("/panic")).await.status, 500);
    assert_eq!(get(&gw.url("/edge/x")).await.status, 200);
    assert_eq!(get(&gw.url("/private/x")).await.status, 401, "an audited denial");
    for model in ["m1", "m2"] {
        let answer = post(&gw, "/v1/chat/completions", &chat(model, "hi", 4), &[]).await;
        assert_eq!(answer.status, 200, "{model}");
    }
    let admin = |method: &str, path: &str| {
        hyper::Request::builder()
            .method(method)
            .uri(gw.admin_url(path))
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(full(""))
            .unwrap()
    };
    assert_eq!(send(admin("POST", "/admin/reload")).await.status, 200);

    // Rows reach the sink's counters after its next flush.
    let deadline = Instant::now() + Duration::from_secs(10);
    let missing = loop {
        let text = String::from_utf8(send(admin("GET", "/metrics")).await.body.to_vec()).unwrap();
        let missing: Vec<_> = wanted.difference(&exported(&text)).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "the rules or the dashboard name metrics the gateway does not export: {missing:?}"
    );
}

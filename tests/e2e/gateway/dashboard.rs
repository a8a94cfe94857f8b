//! The admin dashboard in a real browser: Debian's headless Chromium, driven by
//! playwright-core (`tests/browser/dashboard.mjs`), opens the page of a gateway with an admin
//! token and an unreachable Redis while load runs through it. The page asks for the token once
//! and sends it only as a header, the request rate it shows rises under load, auth denials
//! are listed by reason, Redis shows as down and the gateway as degraded, the invalidate form
//! drops a cached entry (the next fetch goes upstream), the GPU fleet (one simulated backend,
//! one cold load) is shown, nothing overflows a phone-sized screen, and no console error is
//! logged. Screenshots go to `target/e2e-screenshots/`.

use serde_json::Value;
use sluice_e2e::examples::repo_root;
use sluice_e2e::origin::Origin;
use sluice_e2e::redis::prefix;
use sluice_e2e::tools::{browser_scripts, ensure_debian_package};
use sluice_e2e::{DEMO_AUTH, DEMO_KEY, closed_port, start_gateway};

use super::gpu_route::{SimBackend, chat, post, sim, sim_config};

const TOKEN: &str = "dashboard-t0ken";
fn config(origin: &Origin, gpu: &SimBackend) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
         [gpu]\nscrape_interval_ms = 100\n{}\
         [plugins.router]\nmodule = \"builtin:gpu-router\"\ngrants = {{ gpu = true }}\n\
         [[routes]]\nname = \"inference\"\nmatch = {{ path_prefix = \"/v1/\" }}\nplugins = [{{ plugin = \"router\" }}]\n\
         [redis]\nurl = \"redis://127.0.0.1:{}\"\nprefix = \"{}\"\n\
         [upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.auth]\nmodule = \"builtin:auth\"\ngrants = {{ kv = true, audit = true }}\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ rate_limit = true }}\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [[routes]]\nname = \"private\"\nmatch = {{ path_prefix = \"/private\" }}\nupstream = \"app\"\n\
         plugins = [{DEMO_AUTH}]\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"ratelimit\", config = {{ limits = [{{ name = \"per-ip\", key = \"ip\", limit = 100000, period = \"1s\" }}] }} }}, {{ plugin = \"cache\" }}]\n",
        gpu.entry(),
        closed_port(),
        prefix(),
        origin.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_gateway_under_load_in_a_real_browser() {
    ensure_debian_package("chromium", &["--version"], "chromium");
    let scripts = browser_scripts();
    let origin = Origin::start().await;
    let backend = sim("gpu-a", sim_config(&[("m-cold", false)], 2, 1), 2).await;
    let gw = start_gateway(&config(&origin, &backend)).await;
    // One inference request loads a model cold: the GPU card shows the fleet and the load.
    let answer = post(&gw, "/v1/chat/completions", &chat("m-cold", "hi", 4), &[]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let shots = repo_root().join("target/e2e-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let _ = std::fs::remove_file(shots.join("dashboard.png"));

    let out = tokio::process::Command::new("node")
        .arg("dashboard.mjs")
        .current_dir(&scripts)
        .env("SLUICE_ADMIN", gw.admin_url(""))
        .env("SLUICE_PUBLIC", gw.url(""))
        .env("SLUICE_TOKEN", TOKEN)
        .env("SLUICE_API_KEY", DEMO_KEY)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", "/usr/bin/chromium")
        .output()
        .await
        .expect("node runs (Node.js 18 or newer)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout
        .lines()
        .last()
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| {
            panic!(
                "the browser script printed no report:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert_eq!(
        report["failures"],
        Value::Array(vec![]),
        "the dashboard in Chromium: {report:#}"
    );
    assert!(out.status.success(), "{report:#}");
    let png = std::fs::read(shots.join("dashboard.png")).expect("a screenshot was saved");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real screenshot");
    eprintln!("dashboard facts: {}", report["facts"]);
}

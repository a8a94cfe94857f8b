//! `[gpu]` on reload: the scheduling policy applies to the next request (a shorter
//! `max_wait_ms` turns a queued request into a 503 instead of a late 200), a backend added to
//! the list takes requests, a backend removed from it takes no new ones while the request it
//! runs finishes, and `/admin/gpu` shows the policy and backends in force.

use std::sync::Arc;

use serde_json::Value;
use sluice_e2e::get;

use super::gpu_route::{chat, fleet_config, fleet_gateway, post, sim, sim_config, until};

fn names(snapshot: &Value) -> Vec<(String, bool)> {
    snapshot["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap().to_string(), b["retired"].as_bool().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gpu_policy_reloads() {
    // 500 ms per generated token: an answer holds the only slot for 2 s or more.
    let one = sim("one", sim_config(&[("m", true)], 1, 500), 1).await;
    let gw = Arc::new(fleet_gateway(&[&one], "max_wait_ms = 60000", "").await);
    assert_eq!(
        get(&gw.admin_url("/admin/gpu")).await.json()["policy"]["max_wait_ms"],
        60000
    );

    let reloaded = gw
        .reload_with(&fleet_config(
            &[&one],
            "max_wait_ms = 300\n[gpu.weights]\nprefix_hit = 7.5",
            "",
        ))
        .await;
    assert_eq!(reloaded.status, 200, "{:?}", reloaded.body);
    let snapshot = get(&gw.admin_url("/admin/gpu")).await.json();
    assert_eq!(snapshot["policy"]["max_wait_ms"], 300, "{snapshot}");
    assert_eq!(snapshot["policy"]["weights"]["prefix_hit"], 7.5, "{snapshot}");

    // The only slot is busy with a long answer; a request queued behind it now gives up after
    // 300 ms where the start-up policy would have waited for the slot.
    let busy_gw = gw.clone();
    let long = tokio::spawn(async move { post(&busy_gw, "/v1/chat/completions", &chat("m", "long", 200), &[]).await });
    until(&gw, "the long request's lease", |s| {
        s["leases"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    let queued = post(&gw, "/v1/chat/completions", &chat("m", "short", 2), &[]).await;
    assert_eq!(queued.status, 503, "{:?}", queued.body);
    assert!(queued.header("retry-after").is_some());
    long.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_backends_are_added_and_retired_by_a_reload() {
    // 300 ms per generated token on `one`: its answer runs 1.2 s or more.
    let one = sim("one", sim_config(&[("m", true)], 1, 300), 1).await;
    let spare = sim("spare", sim_config(&[("m", true)], 1, 20), 1).await;
    let gw = Arc::new(fleet_gateway(&[&one], "", "").await);

    // A request runs on `one`, the only backend, filling its one slot.
    let busy_gw = gw.clone();
    let on_one =
        tokio::spawn(async move { post(&busy_gw, "/v1/chat/completions", &chat("m", "a long story", 200), &[]).await });
    until(&gw, "a request on `one`", |s| s["backends"][0]["in_flight"] == 1).await;

    // Added by a reload: `spare` takes the next request while `one` is busy.
    let reloaded = gw.reload_with(&fleet_config(&[&one, &spare], "", "")).await;
    assert_eq!(reloaded.status, 200, "{:?}", reloaded.body);
    let snapshot = get(&gw.admin_url("/admin/gpu")).await.json();
    assert_eq!(
        names(&snapshot),
        [("one".to_string(), false), ("spare".to_string(), false)],
        "{snapshot}"
    );
    let added = post(&gw, "/v1/chat/completions", &chat("m", "next", 2), &[]).await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    assert_eq!(added.header("x-sluice-backend"), Some("spare"));

    // Removed by a reload: `one` is retired, finishes what it runs, and takes nothing new.
    let reloaded = gw.reload_with(&fleet_config(&[&spare], "", "")).await;
    assert_eq!(reloaded.status, 200, "{:?}", reloaded.body);
    let snapshot = get(&gw.admin_url("/admin/gpu")).await.json();
    assert!(names(&snapshot).contains(&("one".to_string(), true)), "{snapshot}");
    let finished = on_one.await.unwrap();
    assert_eq!(finished.status, 200, "{:?}", finished.body);
    assert_eq!(finished.header("x-sluice-backend"), Some("one"));
    for _ in 0..3 {
        let after = post(&gw, "/v1/chat/completions", &chat("m", "again", 2), &[]).await;
        assert_eq!(after.status, 200, "{:?}", after.body);
        assert_eq!(after.header("x-sluice-backend"), Some("spare"));
    }
    let snapshot = until(&gw, "the retired backend gone from the list", |s| {
        s["backends"].as_array().is_some_and(|b| b.len() == 1)
    })
    .await;
    assert_eq!(names(&snapshot), [("spare".to_string(), false)], "{snapshot}");
}

//! `[gpu]` on reload: the scheduling policy applies to the next request (here a shorter
//! `max_wait_ms` turns a queued request into a 503 instead of a late 200), `/admin/gpu` shows
//! the policy in force, and a changed backend list waits for a restart without failing the
//! reload.

use std::sync::Arc;

use sluice_e2e::get;

use super::gpu_route::{chat, fleet_config, fleet_gateway, post, sim, sim_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gpu_policy_reloads_and_the_fleet_waits_for_a_restart() {
    // 500 ms per generated token: an answer holds the only slot for 2 s or more.
    let one = sim("one", sim_config(&[("m", true)], 1, 500), 1).await;
    let spare = sim("spare", sim_config(&[("m", true)], 1, 20), 1).await;
    let gw = Arc::new(fleet_gateway(&[&one], "max_wait_ms = 60000", "").await);
    assert_eq!(
        get(&gw.admin_url("/admin/gpu")).await.json()["policy"]["max_wait_ms"],
        60000
    );

    let reloaded = gw
        .reload_with(&fleet_config(
            &[&one, &spare],
            "max_wait_ms = 300\n[gpu.weights]\nprefix_hit = 7.5",
            "",
        ))
        .await;
    assert_eq!(reloaded.status, 200, "{:?}", reloaded.body);
    let snapshot = get(&gw.admin_url("/admin/gpu")).await.json();
    assert_eq!(snapshot["policy"]["max_wait_ms"], 300, "{snapshot}");
    assert_eq!(snapshot["policy"]["weights"]["prefix_hit"], 7.5, "{snapshot}");
    assert_eq!(
        snapshot["backends"].as_array().unwrap().len(),
        1,
        "the added backend waits for a restart: {snapshot}"
    );

    // The only slot is busy with a long answer; a request queued behind it now gives up after
    // 300 ms where the start-up policy would have waited for the slot.
    let busy_gw = gw.clone();
    let long = tokio::spawn(async move { post(&busy_gw, "/v1/chat/completions", &chat("m", "long", 200), &[]).await });
    let mut admitted = false;
    for _ in 0..250 {
        let s = get(&gw.admin_url("/admin/gpu")).await.json();
        if s["leases"].as_array().is_some_and(|l| !l.is_empty()) {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(admitted, "the long request holds the slot");
    let queued = post(&gw, "/v1/chat/completions", &chat("m", "short", 2), &[]).await;
    assert_eq!(queued.status, 503, "{:?}", queued.body);
    assert!(queued.header("retry-after").is_some());
    long.abort();
}

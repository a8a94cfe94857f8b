//! Retries, circuit breakers and active health checks over several targets.

use sluice_e2e::{Upstream, get, start_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_is_retried_around_and_then_kept_out_by_its_breaker() {
    let upstream = Upstream::start().await;
    let dead = sluice_e2e::closed_port();
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"127.0.0.1:{dead}\", \"{}\"]\nbreaker_failures = 2\nbreaker_open_ms = 60000\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    for _ in 0..20 {
        assert_eq!(
            get(&gw.url("/echo")).await.status,
            200,
            "connect failures are retried on the other target"
        );
    }
    assert_eq!(upstream.hits(), 20);
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    let targets = &stats["upstreams"][0]["targets"];
    assert_eq!(
        targets[0]["failures"], 2,
        "after two failures the breaker keeps the dead target out"
    );
    assert_eq!(targets[0]["breaker_open"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_every_breaker_is_open_the_answer_is_503_with_retry_after() {
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"127.0.0.1:{}\"]\nbreaker_failures = 1\nbreaker_open_ms = 30000\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\n",
        sluice_e2e::closed_port()
    ))
    .await;
    assert_eq!(get(&gw.url("/")).await.status, 502);
    let answer = get(&gw.url("/")).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"], "upstream_unavailable");
    let retry_after: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_failing_their_health_check_get_no_traffic() {
    let upstream = Upstream::start().await;
    let dead = sluice_e2e::closed_port();
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"127.0.0.1:{dead}\", \"{}\"]\nretries = 0\nbreaker_failures = 0\n\
         health_check = {{ path = \"/health\", interval_ms = 100, timeout_ms = 200 }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    // Wait for the first round of checks to mark the dead target.
    let mut marked = false;
    for _ in 0..50 {
        let stats = get(&gw.admin_url("/admin/stats")).await.json();
        if stats["upstreams"][0]["targets"][0]["healthy"] == false {
            marked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(marked, "the dead target was never marked unhealthy");
    for _ in 0..10 {
        assert_eq!(
            get(&gw.url("/echo")).await.status,
            200,
            "without retries, only skipping the dead target works"
        );
    }
}

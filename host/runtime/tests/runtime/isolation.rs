//! One test per misbehaving plugin: the failure is contained (deadline, memory cap, trap,
//! refused verdict), the failure policy applies, it is counted, and the next request to the
//! same route is served normally.

use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_artifacts as wasm;
use sluice_runtime::{NoBody, RequestOutcome, RouteTable};

use super::support::{header, plugin, request, route, table};

/// Runs the request chain of `route` for `path`.
async fn run(table: &RouteTable, route: &str, path: &str) -> (RequestOutcome, Vec<(String, Vec<u8>)>) {
    let mut head = request(route, path);
    let outcome = table
        .chain(route)
        .unwrap()
        .on_request(&mut head, &mut NoBody, &mut Default::default())
        .await;
    (outcome, head.headers)
}

/// The JSON body of a local response outcome, with its status.
fn answered(outcome: &RequestOutcome) -> (u16, Value) {
    match outcome {
        RequestOutcome::Respond { response, .. } => (response.status, serde_json::from_slice(&response.body).unwrap()),
        other => panic!("expected a local response, got {other:?}"),
    }
}

fn failures(h: &super::support::Harness, plugin: &str, kind: &str, policy: &str) -> u64 {
    h.runtime
        .backends()
        .metrics
        .counter(
            "sluice_plugin_failures_total",
            &[("plugin", plugin), ("kind", kind), ("policy", policy)],
        )
        .get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_at_its_cpu_deadline() {
    let cpu_ms = 20;
    let (h, table) = table(&format!(
        "{}{}",
        plugin(
            "spin",
            wasm::SPIN_LOOP,
            &format!("limits = {{ cpu_ms = {cpu_ms} }}\nfail = \"closed\"")
        ),
        route("r", &["plugin = \"spin\""])
    ))
    .await;

    // The plugin itself: the CPU deadline (not the wall-clock cap) stopped it.
    let direct = table.chain("r").unwrap().plugins()[0]
        .on_request_headers(&request("r", "/loop"))
        .await;
    let failure = direct.unwrap_err();
    assert_eq!(failure.kind, sluice_runtime::FailureKind::Timeout);
    assert!(failure.message.contains("CPU budget of 20 ms"), "{failure}");

    let started = Instant::now();
    let (outcome, _) = run(&table, "r", "/loop").await;
    let elapsed = started.elapsed();
    let (status, body) = answered(&outcome);
    assert_eq!(status, 503);
    assert_eq!(body["plugin"], "spin");
    assert_eq!(body["kind"], "timeout");
    assert_eq!(body["request_id"], "req-/loop");
    // The budget is CPU time, so the wall time can only be longer; how much longer than
    // cpu_ms + one tick it is in practice is measured by the benchmark, not asserted here.
    assert!(elapsed >= Duration::from_millis(cpu_ms), "stopped early: {elapsed:?}");
    assert_eq!(failures(&h, "spin", "timeout", "closed"), 1);

    let (outcome, headers) = run(&table, "r", "/ok").await;
    assert!(matches!(outcome, RequestOutcome::Forward(_)));
    assert_eq!(header(&headers, "x-spin").as_deref(), Some("ok"));
}

/// A plugin looping on its budget shares its thread: the epoch advances every
/// `LONG_CALL_SLICE` (100 µs) while it runs, and it yields at each advance, so a task beside
/// it on a one-thread runtime runs many times during its 20 ms. With the 1 ms tick alone it
/// would run about 20 times (once per tick); fewer than 40 means the finer slices are gone.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_gives_its_thread_back_in_short_slices() {
    let (_h, table) = table(&format!(
        "{}{}",
        plugin("spin", wasm::SPIN_LOOP, "limits = { cpu_ms = 20 }\nfail = \"closed\""),
        route("r", &["plugin = \"spin\""])
    ))
    .await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let beside = tokio::spawn({
        let done = done.clone();
        async move {
            let mut turns = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                turns += 1;
                tokio::task::yield_now().await;
            }
            turns
        }
    });
    tokio::task::yield_now().await;
    let (outcome, _) = run(&table, "r", "/loop").await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let turns = beside.await.unwrap();
    assert_eq!(answered(&outcome).1["kind"], "timeout");
    assert!(
        turns >= 40,
        "the task beside the loop ran only {turns} times in its 20 ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_waits_is_stopped_by_the_wall_clock_cap() {
    let (h, table) = table(&format!(
        "{}{}",
        plugin("spin", wasm::SPIN_LOOP, "limits = { cpu_ms = 20 }\nfail = \"closed\""),
        route("r", &["plugin = \"spin\""])
    ))
    .await;
    let started = Instant::now();
    let (outcome, _) = run(&table, "r", "/sleep").await;
    let (status, body) = answered(&outcome);
    assert_eq!((status, body["kind"].as_str()), (503, Some("timeout")));
    // A sleep uses no CPU: the 1 s wall-clock cap (10 × 20 ms, at least 1 s) ends it, long
    // before the plugin's 60 s sleep would.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert_eq!(failures(&h, "spin", "timeout", "closed"), 1);
    let (_, headers) = run(&table, "r", "/ok").await;
    assert_eq!(header(&headers, "x-spin").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_stays_under_its_limit() {
    let (h, table) = table(&format!(
        "{}{}",
        plugin(
            "bomb",
            wasm::MEMORY_BOMB,
            "limits = { memory_mb = 8, cpu_ms = 2000 }\nfail = \"closed\""
        ),
        route("r", &["plugin = \"bomb\""])
    ))
    .await;

    let mut head = super::support::request("r", "/bomb");
    let chain = table.chain("r").unwrap();
    let failure = chain.plugins()[0].on_request_headers(&head).await.unwrap_err();
    assert_eq!(failure.kind, sluice_runtime::FailureKind::Memory, "{failure}");
    assert!(failure.memory_bytes <= 8 << 20, "held {} bytes", failure.memory_bytes);
    assert!(
        failure.memory_bytes > 4 << 20,
        "the bomb should have grown close to the cap"
    );

    let outcome = chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await;
    let (status, body) = answered(&outcome);
    assert_eq!((status, body["kind"].as_str()), (503, Some("memory")));
    assert_eq!(failures(&h, "bomb", "memory", "closed"), 1);

    let (outcome, headers) = run(&table, "r", "/ok").await;
    assert!(matches!(outcome, RequestOutcome::Forward(_)));
    assert_eq!(header(&headers, "x-bomb").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_open_and_the_rest_of_the_chain_runs() {
    let (h, table) = table(&format!(
        "{}{}{}",
        plugin("panicker", wasm::PANICKER, "fail = \"open\""),
        plugin("good", wasm::GOOD, ""),
        route("r", &["plugin = \"panicker\"", "plugin = \"good\""])
    ))
    .await;

    let (outcome, headers) = run(&table, "r", "/panic").await;
    assert!(matches!(outcome, RequestOutcome::Forward(_)), "{outcome:?}");
    assert_eq!(header(&headers, "x-panicker"), None);
    assert_eq!(
        header(&headers, "x-chain").as_deref(),
        Some("good"),
        "the next plugin ran"
    );
    assert_eq!(failures(&h, "panicker", "trap", "open"), 1);

    let (_, headers) = run(&table, "r", "/ok").await;
    assert_eq!(header(&headers, "x-panicker").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_closed_with_500_naming_the_plugin() {
    let (_h, table) = table(&format!(
        "{}{}",
        plugin("panicker", wasm::PANICKER, "fail = \"closed\""),
        route("r", &["plugin = \"panicker\""])
    ))
    .await;
    let (outcome, _) = run(&table, "r", "/panic").await;
    let (status, body) = answered(&outcome);
    assert_eq!(status, 500);
    assert_eq!(body["error"], "plugin_failed");
    assert_eq!(body["plugin"], "panicker");
    assert_eq!(body["kind"], "trap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_verdicts_are_refused_whole() {
    let (h, table) = table(&format!(
        "{}{}{}",
        // A generous budget: lifting 10,000 headers in an unoptimised test build is slow.
        plugin(
            "bad",
            wasm::BAD_VERDICT,
            "fail = \"closed\"\nlimits = { cpu_ms = 2000 }"
        ),
        plugin(
            "bad_open",
            wasm::BAD_VERDICT,
            "fail = \"open\"\nlimits = { cpu_ms = 2000 }"
        ),
        route("closed", &["plugin = \"bad\""]) + &route("open", &["plugin = \"bad_open\""])
    ))
    .await;

    for path in ["/bad-name", "/bad-value", "/many", "/huge", "/bad-status"] {
        let (outcome, _) = run(&table, "closed", path).await;
        let (status, body) = answered(&outcome);
        assert_eq!(
            (status, body["kind"].as_str()),
            (500, Some("invalid_verdict")),
            "{path}"
        );

        let (outcome, headers) = run(&table, "open", path).await;
        assert!(matches!(outcome, RequestOutcome::Forward(_)), "{path}: {outcome:?}");
        assert!(
            headers
                .iter()
                .all(|(n, _)| !n.starts_with("x-h") && n != "x-huge" && n != "bad name"),
            "{path}"
        );
    }
    assert_eq!(failures(&h, "bad", "invalid_verdict", "closed"), 5);
    assert_eq!(failures(&h, "bad_open", "invalid_verdict", "open"), 5);

    let (_, headers) = run(&table, "closed", "/ok").await;
    assert_eq!(header(&headers, "x-bad-verdict").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_capabilities_answer_denied_and_the_plugin_keeps_serving() {
    let (_h, table) = table(&format!(
        "{}{}",
        plugin("ungranted", wasm::UNGRANTED, ""),
        route("r", &["plugin = \"ungranted\""])
    ))
    .await;
    for (path, capability) in [
        ("/kv", "kv"),
        ("/cache", "cache"),
        ("/redis", "redis"),
        ("/postgres", "postgres"),
        ("/http", "http-client"),
        ("/gpu", "gpu"),
    ] {
        let (outcome, _) = run(&table, "r", path).await;
        let RequestOutcome::Respond { response, .. } = outcome else {
            panic!("{path}: no answer")
        };
        let text = String::from_utf8(response.body).unwrap();
        assert_eq!(
            text,
            format!(
                "denied: {capability}: plugin 'ungranted' is not granted {capability} (add it to the plugin's grants)"
            ),
        );
    }
    let (_, headers) = run(&table, "r", "/ok").await;
    assert_eq!(header(&headers, "x-ungranted").as_deref(), Some("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_at_its_instance_cap_answers_busy_and_recovers() {
    let (h, table) = table(&format!(
        "{}{}",
        plugin(
            "spin",
            wasm::SPIN_LOOP,
            "limits = { cpu_ms = 20 }\nfail = \"closed\"\npool = { max_instances = 1, acquire_timeout_ms = 50 }"
        ),
        route("r", &["plugin = \"spin\""])
    ))
    .await;
    let chain = table.chain("r").unwrap().clone();
    // The only instance the plugin may have sleeps until the 1 s wall-clock cap ends it.
    let sleeper = tokio::spawn(async move {
        let mut head = request("r", "/sleep");
        chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (outcome, _) = run(&table, "r", "/ok").await;
    let (status, body) = answered(&outcome);
    assert_eq!((status, body["kind"].as_str()), (503, Some("busy")));
    assert_eq!(failures(&h, "spin", "busy", "closed"), 1);
    let (status, _) = answered(&sleeper.await.unwrap());
    assert_eq!(status, 503, "the sleeper ran into its wall-clock cap");
    // The permit came back with the instance: the next call is served.
    let (_, headers) = run(&table, "r", "/ok").await;
    assert_eq!(header(&headers, "x-spin").as_deref(), Some("ok"));
}

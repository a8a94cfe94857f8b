//! The GPU scheduler's load reading against the simulated backend: with its slots taken, the
//! simulator's `/metrics` (vLLM's series) parse into the running and waiting counts the
//! scheduler scores backends by.

use std::time::Duration;

use sluice_backends::gpu::load;
use sluice_e2e::{full, get, send};
use sluice_gpu_sim::{Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_metrics_read_as_running_and_waiting_requests() {
    let config = SimConfig {
        slots: 1,
        per_token_ms: 50,
        ..SimConfig::default()
    };
    let (addr, _sim) = Sim::start(config).await.unwrap();
    let idle = get(&format!("http://{addr}/metrics")).await;
    let idle = load::parse(&String::from_utf8_lossy(&idle.body), 0).expect("vLLM series");
    assert_eq!((idle.running, idle.waiting), (0.0, 0.0));
    let body = r#"{"model": "sim-small", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 40}"#;
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let req = hyper::Request::post(format!("http://{addr}/v1/chat/completions"))
                .header("content-type", "application/json")
                .body(full(body))
                .unwrap();
            tokio::spawn(send(req))
        })
        .collect();
    let mut busy = None;
    for _ in 0..100 {
        let text = get(&format!("http://{addr}/metrics")).await;
        let now = load::parse(&String::from_utf8_lossy(&text.body), 1).unwrap();
        if now.running + now.waiting >= 3.0 {
            busy = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = busy.expect("the three requests never showed in the metrics");
    assert_eq!((busy.running, busy.waiting), (1.0, 2.0), "one slot: one runs, two wait");
    for r in requests {
        assert_eq!(r.await.unwrap().status, 200);
    }
}

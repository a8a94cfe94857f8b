//! Hostile plugins under load: while a well-behaved route serves concurrent requests, plugins
//! on other routes loop past their CPU budget, allocate past their memory limit or panic.
//! The good route answers every request; each hostile request is answered by its plugin's
//! failure policy (closed: 503 for time and memory, 500 for a trap); and the hostile plugins'
//! pools serve their next ordinary requests.

use sluice_artifacts as wasm;
use sluice_e2e::{Answer, Upstream, full, send, start_gateway};

fn config(upstream: &Upstream) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [plugins.spin]\nmodule = {:?}\nlimits = {{ cpu_ms = 20 }}\n\
         [plugins.bomb]\nmodule = {:?}\nlimits = {{ memory_mb = 32, cpu_ms = 1000 }}\n\
         [plugins.panicker]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"spin\"\nmatch = {{ headers = {{ x-route = \"spin\" }} }}\nupstream = \"app\"\nplugins = [{{ plugin = \"spin\" }}]\n\
         [[routes]]\nname = \"bomb\"\nmatch = {{ headers = {{ x-route = \"bomb\" }} }}\nupstream = \"app\"\nplugins = [{{ plugin = \"bomb\" }}]\n\
         [[routes]]\nname = \"panic\"\nmatch = {{ headers = {{ x-route = \"panic\" }} }}\nupstream = \"app\"\nplugins = [{{ plugin = \"panicker\" }}]\n\
         [[routes]]\nname = \"good\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n",
        upstream.addr,
        wasm::GOOD,
        wasm::SPIN_LOOP,
        wasm::MEMORY_BOMB,
        wasm::PANICKER
    )
}

async fn ask(url: String, route: Option<&'static str>) -> Answer {
    let mut req = hyper::Request::get(url);
    if let Some(route) = route {
        req = req.header("x-route", route);
    }
    send(req.body(full("")).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_route_is_untouched_by_plugins_that_loop_hoard_or_panic_beside_it() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    // Four clients on the good route, 50 requests each.
    let good: Vec<_> = (0..4)
        .map(|_| {
            let url = gw.url("/echo");
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..50 {
                    statuses.push(ask(url.clone(), None).await.status);
                }
                statuses
            })
        })
        .collect();
    // Meanwhile, each hostile plugin is hit 10 times.
    let hostile: Vec<_> = [("spin", "/loop"), ("bomb", "/bomb"), ("panic", "/panic")]
        .into_iter()
        .map(|(route, path)| {
            let url = gw.url(path);
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..10 {
                    let answer = ask(url.clone(), Some(route)).await;
                    answers.push((answer.status, answer.json()["kind"].as_str().unwrap_or("-").to_string()));
                }
                (route, answers)
            })
        })
        .collect();
    for task in good {
        let statuses = task.await.unwrap();
        assert!(statuses.iter().all(|&s| s == 200), "the good route: {statuses:?}");
    }
    for task in hostile {
        let (route, answers) = task.await.unwrap();
        let want = match route {
            "spin" => (503, "timeout"),
            "bomb" => (503, "memory"),
            _ => (500, "trap"),
        };
        for (status, kind) in &answers {
            assert_eq!((*status, kind.as_str()), want, "{route}: {answers:?}");
        }
    }
    // The hostile plugins' pools serve ordinary requests again.
    for route in ["spin", "bomb", "panic"] {
        let answer = ask(gw.url("/echo"), Some(route)).await;
        assert_eq!(answer.status, 200, "{route} after the storm: {:?}", answer.body);
    }
}

//! The `audit` capability: a plugin's decision lands in `audit_log` in the real Postgres,
//! stamped by the host with the request's client IP, request id and route and the plugin's
//! name (which the plugin cannot forge); refusals and bad events are clear errors.

use serde_json::json;
use sluice_artifacts as wasm;
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::{Upstream, full, send, start_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_decision_reaches_the_audit_log_stamped_by_the_host() {
    let db = TestDatabase::create("auditcap").await;
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[sinks]\nflush_ms = 100\n[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"audited\"\nmatch = {{ headers = {{ x-tenant = \"a\" }} }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"good\", grants = {{ audit = true }} }}]\n\
         [[routes]]\nname = \"unaudited\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n",
        db.url,
        upstream.addr,
        wasm::GOOD
    ))
    .await;
    let pg = gw.running.state.runtime().backends().postgres.clone().unwrap();
    pg.migrate().await.unwrap();

    // Tenant "a" reaches the route that grants audit; anyone else the route that does not.
    let call = |tenant: &str, details: Option<&str>| {
        let mut request = hyper::Request::get(gw.url("/audit"))
            .header("x-request-id", "audit-req-1")
            .header("x-tenant", tenant);
        if let Some(details) = details {
            request = request.header("x-audit-details", details);
        }
        send(request.body(full("")).unwrap())
    };
    let answer = call("a", Some(r#"{"reason":"scope-ok","plugin":"forged"}"#)).await;
    assert_eq!(answer.json()["headers"]["x-audit"], "ok", "{:?}", answer.body);

    let sinks = gw.running.state.runtime().backends().sinks.clone().unwrap();
    sinks.flush().await;
    let row: serde_json::Value = sqlx::query_scalar(
        "SELECT json_build_object('action', action, 'outcome', outcome, 'actor', actor, \
         'client_ip', host(client_ip), 'correlation_id', correlation_id, 'route', route, 'details', details) \
         FROM audit_log",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap();
    assert_eq!(
        row,
        json!({
            "action": "test.decision",
            "outcome": "allow",
            "actor": "key-good",
            "client_ip": "127.0.0.1",
            "correlation_id": "audit-req-1",
            "route": "audited",
            // The plugin's "plugin" entry is replaced: the host names the plugin.
            "details": { "reason": "scope-ok", "plugin": "good" },
        })
    );

    // Not granted on the other route; details that are not a JSON object are refused.
    let denied = call("b", None).await;
    let refusal = denied.json()["headers"]["x-audit"].as_str().unwrap().to_string();
    assert!(
        refusal.contains("Denied") && refusal.contains("not granted audit"),
        "{refusal}"
    );
    let answer = call("a", Some("[1,2]")).await;
    let refusal = answer.json()["headers"]["x-audit"].as_str().unwrap().to_string();
    assert!(
        refusal.contains("Invalid") && refusal.contains("JSON object"),
        "{refusal}"
    );
}

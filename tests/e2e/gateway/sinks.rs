//! The row writer: batches into the real Postgres, a spill file while Postgres is unreachable
//! (a relay the test cuts), replay when it is back, counted drops when the spill is full, and
//! the in-memory ring without Postgres.

use std::sync::Arc;

use serde_json::json;
use sluice_backends::sink::{SinkRow, Sinks};
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::relay::Relay;
use sluice_e2e::{Gateway, Upstream, get, start_gateway};

/// The gateway's row writer.
pub fn sinks(gw: &Gateway) -> Arc<Sinks> {
    gw.running.state.runtime().backends().sinks.clone().unwrap()
}

/// Runs the migrations on the gateway's Postgres.
pub async fn migrated(gw: &Gateway) {
    let pg = gw.running.state.runtime().backends().postgres.clone().unwrap();
    pg.migrate().await.unwrap();
}

/// Rows in `table`.
pub async fn count(url: &str, table: &str) -> i64 {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Audit row number `n` (its time is `n` µs after a fixed instant).
pub fn audit(n: usize) -> SinkRow {
    SinkRow::AuditLog {
        occurred_at_us: 1_700_000_000_000_000 + n as i64,
        actor: Some(format!("key-{n}")),
        action: "authenticate".into(),
        subject: None,
        outcome: "allowed".into(),
        client_ip: Some("10.0.0.7".into()),
        correlation_id: Some(format!("req-{n}")),
        route: Some("app".into()),
        details: json!({ "n": n }),
    }
}

/// The value of `series` in a metrics page.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok()))
        .unwrap_or(0.0) as u64
}

/// The gateway's metrics page.
pub async fn metrics(gw: &Gateway) -> String {
    String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_rows_reach_postgres_in_batches() {
    let db = TestDatabase::create("sinkbatch").await;
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[sinks]\nrequest_telemetry = true\nbatch_rows = 100\nflush_ms = 200\n\
         [upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        db.url, upstream.addr
    ))
    .await;
    migrated(&gw).await;
    for _ in 0..250 {
        assert_eq!(get(&gw.url("/echo")).await.status, 200);
    }
    sinks(&gw).flush().await;
    assert_eq!(count(&db.url, "service_telemetry").await, 250);
    let text = metrics(&gw).await;
    assert_eq!(
        metric(
            &text,
            "sluice_sink_rows_total{outcome=\"written\",table=\"service_telemetry\"}"
        ),
        250
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_spill_while_postgres_is_unreachable_and_are_replayed_when_it_returns() {
    let db = TestDatabase::create("sinkspill").await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replace("127.0.0.1:5432", &relay.addr.to_string());
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {url:?}\nacquire_timeout_ms = 500\nmin_connections = 0\n[sinks]\nbatch_rows = 20\nflush_ms = 100\n"
    ))
    .await;
    migrated(&gw).await;
    let sinks = sinks(&gw);
    for n in 0..10 {
        assert!(sinks.emit(audit(n)));
    }
    sinks.flush().await;
    assert_eq!(count(&db.url, "audit_log").await, 10);

    relay.cut().await;
    for n in 10..60 {
        assert!(sinks.emit(audit(n)));
    }
    sinks.flush().await;
    assert!(sinks.spilled_bytes() > 0, "the rows went to the spill file");
    assert_eq!(count(&db.url, "audit_log").await, 10, "nothing reached Postgres");
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["dependencies"]["postgres"]["state"], "down", "{ready}");
    assert_eq!(ready["dependencies"]["sinks"]["state"], "spilling", "{ready}");

    relay.restore();
    sinks.flush().await;
    // The writer retries the spill every flush interval; give it a few.
    for _ in 0..50 {
        if count(&db.url, "audit_log").await == 60 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db.url, "audit_log").await, 60, "every audit row arrived, once");
    assert_eq!(sinks.spilled_bytes(), 0);
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["dependencies"]["sinks"]["state"], "up", "{ready}");
    let text = metrics(&gw).await;
    assert_eq!(
        metric(&text, "sluice_sink_rows_total{outcome=\"spilled\",table=\"audit_log\"}"),
        50
    );
    assert_eq!(
        metric(
            &text,
            "sluice_sink_rows_total{outcome=\"replayed\",table=\"audit_log\"}"
        ),
        50
    );
    assert_eq!(
        metric(&text, "sluice_sink_rows_total{outcome=\"dropped\",table=\"audit_log\"}"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spill_drops_rows_and_counts_every_one() {
    let db = TestDatabase::create("sinkfull").await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replace("127.0.0.1:5432", &relay.addr.to_string());
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {url:?}\nacquire_timeout_ms = 300\nmin_connections = 0\nmigrate_on_start = false\n\
         [sinks]\nbatch_rows = 10\nflush_ms = 100\nspill_max_bytes = 2000\n"
    ))
    .await;
    relay.cut().await;
    let sinks = sinks(&gw);
    for n in 0..40 {
        assert!(sinks.emit(audit(n)));
    }
    sinks.flush().await;
    let text = metrics(&gw).await;
    let spilled = metric(&text, "sluice_sink_rows_total{outcome=\"spilled\",table=\"audit_log\"}");
    let dropped = metric(&text, "sluice_sink_rows_total{outcome=\"dropped\",table=\"audit_log\"}");
    assert!(spilled > 0 && dropped > 0, "spilled {spilled}, dropped {dropped}");
    assert_eq!(spilled + dropped, 40, "every row is accounted for");
    assert!(sinks.spilled_bytes() <= 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_postgres_rows_stay_in_memory_and_in_a_jsonl_file() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("rows.jsonl");
    let gw = start_gateway(&format!(
        "[sinks]\nrequest_telemetry = true\nflush_ms = 50\njsonl_path = {jsonl:?}\n\
         [upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    for _ in 0..3 {
        get(&gw.url("/echo")).await;
    }
    let sinks = sinks(&gw);
    sinks.flush().await;
    let rows = sinks.recent();
    assert_eq!(rows.len(), 3);
    assert!(matches!(&rows[0], SinkRow::ServiceTelemetry { operation, success: true, .. } if operation == "app"));
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 3);
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["dependencies"]["sinks"]["backend"], "memory", "{ready}");
    assert_eq!(ready["dependencies"]["kv"]["state"], "embedded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spill_left_by_an_earlier_run_is_replayed_at_start() {
    let db = TestDatabase::create("sinkrestart").await;
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("left.jsonl");
    // Lines as the writer spills them: each row with its event id.
    let lines: String = (0..5)
        .map(|n| {
            let mut line = serde_json::to_value(audit(n)).unwrap();
            line["event_id"] = json!(format!("event-{n}"));
            line.to_string() + "\n"
        })
        .collect();
    std::fs::write(&spill, &lines).unwrap();
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[sinks]\nflush_ms = 100\nspill_path = {spill:?}\n",
        db.url
    ))
    .await;
    migrated(&gw).await;
    for _ in 0..50 {
        if count(&db.url, "audit_log").await == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db.url, "audit_log").await, 5);
    assert!(!spill.exists(), "the replayed spill is removed");

    // The same rows replayed again (a crash between the replay and the spill's rewrite)
    // land once.
    std::fs::write(&spill, &lines).unwrap();
    let again = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[sinks]\nflush_ms = 100\nspill_path = {spill:?}\n",
        db.url
    ))
    .await;
    for _ in 0..50 {
        if !spill.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!spill.exists(), "replayed");
    sinks(&again).flush().await;
    assert_eq!(count(&db.url, "audit_log").await, 5, "no row twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_audit_row_is_lost_when_postgres_goes_away_under_load() {
    let db = TestDatabase::create("sinkload").await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let url = db.url.replace("127.0.0.1:5432", &relay.addr.to_string());
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {url:?}\nacquire_timeout_ms = 300\nmin_connections = 0\n[sinks]\nbatch_rows = 50\nflush_ms = 100\n"
    ))
    .await;
    migrated(&gw).await;
    let sinks = sinks(&gw);
    // Four writers, 300 audit rows each, while Postgres goes away and comes back.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let sinks = sinks.clone();
            tokio::spawn(async move {
                for n in 0..300 {
                    assert!(sinks.emit(audit(w * 1000 + n)), "the queue never fills here");
                    if n % 10 == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    relay.cut().await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    relay.restore();
    for w in writers {
        w.await.unwrap();
    }
    sinks.flush().await;
    for _ in 0..50 {
        if count(&db.url, "audit_log").await == 1200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db.url, "audit_log").await, 1200, "every audit row arrived, once");
    let text = metrics(&gw).await;
    assert!(
        metric(&text, "sluice_sink_rows_total{outcome=\"spilled\",table=\"audit_log\"}") > 0,
        "some rows went through the spill"
    );
    assert_eq!(
        metric(&text, "sluice_sink_rows_total{outcome=\"dropped\",table=\"audit_log\"}"),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_postgres_refuses_is_set_aside_and_blocks_nothing() {
    let db = TestDatabase::create("sinkreject").await;
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("rows.jsonl");
    let gw = start_gateway(&format!(
        "[postgres]\nurl = {:?}\n[sinks]\nflush_ms = 100\nspill_path = {spill:?}\n",
        db.url
    ))
    .await;
    migrated(&gw).await;
    let sinks = sinks(&gw);
    let mut bad = audit(99);
    if let SinkRow::AuditLog { client_ip, .. } = &mut bad {
        *client_ip = Some("not an address".into());
    }
    for n in 0..3 {
        sinks.emit(audit(n));
    }
    sinks.emit(bad);
    for n in 3..6 {
        sinks.emit(audit(n));
    }
    sinks.flush().await;
    assert_eq!(
        count(&db.url, "audit_log").await,
        6,
        "the good rows of the batch are written"
    );
    let rejected = std::fs::read_to_string(dir.path().join("rows.rejected.jsonl")).unwrap();
    assert_eq!(rejected.lines().count(), 1);
    assert!(rejected.contains("not an address"));
    assert!(!spill.exists(), "nothing is spilled: Postgres was up");
    let text = metrics(&gw).await;
    assert_eq!(
        metric(
            &text,
            "sluice_sink_rows_total{outcome=\"rejected\",table=\"audit_log\"}"
        ),
        1
    );
}

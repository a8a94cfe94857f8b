//! OpenTelemetry export end to end (a test binary of its own: it installs the process's
//! global tracing subscriber). A fake OTLP/HTTP collector decodes what the gateway sends;
//! the upstream shows the trace context the gateway passed on.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use sluice_auth_keys::hex;
use sluice_config::TelemetrySettings;
use sluice_core::telemetry::logging::{self, LogFormat};
use sluice_e2e::{Upstream, full, send, start_gateway};

/// Spans received, with the `service.name` of the resource that sent them.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// A collector on a free port that keeps every span POSTed to `/v1/traces`.
async fn collector() -> (std::net::SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let store = store.clone();
                    async move {
                        assert_eq!(req.uri().path(), "/v1/traces");
                        assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let export = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
                        for resource in export.resource_spans {
                            let service = resource
                                .resource
                                .iter()
                                .flat_map(|r| &r.attributes)
                                .find(|a| a.key == "service.name")
                                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                                    Value::StringValue(s) => Some(s.clone()),
                                    _ => None,
                                })
                                .unwrap_or_default();
                            for scope in resource.scope_spans {
                                for span in scope.spans {
                                    store.lock().unwrap().push((service.clone(), span));
                                }
                            }
                        }
                        Ok::<_, Infallible>(Response::new(http_body_util::Full::new(Bytes::new())))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, received)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

/// Waits up to 10 s for a `request` span carrying `request_id`.
async fn span_for(received: &Received, request_id: &str) -> (String, Span) {
    for _ in 0..200 {
        let found = received
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.name == "request" && attribute(s, "request_id").as_deref() == Some(request_id))
            .cloned();
        if let Some(found) = found {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no span for {request_id} reached the collector");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector_and_the_trace_continues_upstream() {
    let (collector, received) = collector().await;
    let settings = TelemetrySettings {
        otlp_endpoint: Some(format!("http://{collector}")),
        service_name: "sluice-test".into(),
        export_interval_ms: 100,
        ..TelemetrySettings::default()
    };
    let guard = logging::init(LogFormat::Human, &settings, tokio::runtime::Handle::current()).unwrap();
    assert!(guard.exporting());
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;

    // A client that is part of a trace: the gateway's span joins it, and the upstream gets
    // the gateway's span as its parent.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let client_span = "b7ad6b7169203331";
    let answer = send(
        Request::get(gw.url("/echo"))
            .header("traceparent", format!("00-{trace_id}-{client_span}-01"))
            .header("x-request-id", "otlp-traced")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let forwarded = answer.json()["headers"]["traceparent"].as_str().unwrap().to_string();
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace_id, "01"), "{forwarded}");
    assert_ne!(parts[2], client_span, "the upstream's parent is the gateway's span");

    let (service, span) = span_for(&received, "otlp-traced").await;
    assert_eq!(service, "sluice-test");
    assert_eq!(hex(&span.trace_id), trace_id);
    assert_eq!(hex(&span.parent_span_id), client_span);
    assert_eq!(hex(&span.span_id), parts[2]);
    assert_eq!(span.kind, 2, "a server span");
    assert_eq!(attribute(&span, "route").as_deref(), Some("app"));
    assert_eq!(attribute(&span, "status").as_deref(), Some("200"));
    assert_eq!(attribute(&span, "method").as_deref(), Some("GET"));

    // A request outside any trace starts one of its own.
    let answer = send(
        Request::get(gw.url("/echo"))
            .header("x-request-id", "otlp-untraced")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let (_, span) = span_for(&received, "otlp-untraced").await;
    assert!(span.parent_span_id.is_empty(), "a root span");
    assert_ne!(hex(&span.trace_id), trace_id);
    let forwarded = answer.json()["headers"]["traceparent"].as_str().unwrap().to_string();
    assert!(forwarded.contains(&hex(&span.trace_id)), "{forwarded}");

    // Dropping the guard flushes and shuts the exporter down; it blocks, so off the runtime's
    // workers.
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();
}

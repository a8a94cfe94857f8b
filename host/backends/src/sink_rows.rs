//! The rows the background writer stores, and the multi-row INSERT of a batch of each kind.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{Postgres, QueryBuilder};

use super::postgres_types::TimestampMicros;

/// A row as the writer holds it: the row and the event id that makes writing it idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queued {
    /// Unique per emitted row; a row written twice is inserted once.
    #[serde(default = "new_event_id")]
    pub event_id: String,
    /// The row.
    #[serde(flatten)]
    pub row: SinkRow,
}

/// A new random event id: 32 hex characters.
pub fn new_event_id() -> String {
    sluice_core::request_id::generate_id()
}

impl Queued {
    /// `row` with a new event id.
    pub fn new(row: SinkRow) -> Self {
        Queued {
            event_id: new_event_id(),
            row,
        }
    }
}

/// The wall clock in µs since the Unix epoch: the time rows carry.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// One row for one of the gateway's log tables. Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum SinkRow {
    /// A `service_telemetry` row: one operation of a service (a proxied request, a backend
    /// call).
    ServiceTelemetry {
        /// The service, e.g. `sluice` or an upstream's name.
        service_name: String,
        /// What was done, e.g. a route name.
        operation: String,
        /// How long it took.
        latency_ms: f64,
        /// Whether it succeeded.
        success: bool,
        /// Why not, when it did not.
        error_message: Option<String>,
        /// The request id.
        correlation_id: Option<String>,
        /// The workflow it belonged to.
        workflow_id: Option<String>,
        /// Anything else, as a JSON object.
        metadata: Value,
        /// When.
        created_at_us: i64,
    },
    /// An `audit_log` row: a security-relevant decision. Never dropped silently.
    AuditLog {
        /// When.
        occurred_at_us: i64,
        /// Who (a key id, a subject).
        actor: Option<String>,
        /// What was attempted, e.g. `authenticate`.
        action: String,
        /// What it was done to.
        subject: Option<String>,
        /// `allowed`, `denied`, ...
        outcome: String,
        /// The client's IP address.
        client_ip: Option<String>,
        /// The request id.
        correlation_id: Option<String>,
        /// The route.
        route: Option<String>,
        /// Anything else, as a JSON object.
        details: Value,
    },
    /// An `inference_logs` row: one inference request.
    InferenceLog {
        /// The tenant or application domain.
        domain: String,
        /// The model.
        model_name: String,
        /// Prompt length in characters.
        prompt_length: i32,
        /// Response length in characters.
        response_length: i32,
        /// End-to-end latency.
        latency_ms: f64,
        /// Tokens generated.
        tokens_generated: i32,
        /// Tokens in the prompt.
        tokens_prompt: i32,
        /// The backend that served it.
        backend: Option<String>,
        /// The HTTP status.
        status: Option<i16>,
        /// The request id.
        correlation_id: Option<String>,
        /// When.
        created_at_us: i64,
        /// The workflow.
        workflow_id: Option<String>,
        /// The user.
        user_id: Option<String>,
    },
}

impl SinkRow {
    /// The `service_telemetry` row of one proxied request: route, status, method, request
    /// id, latency, now.
    pub fn request(route: &str, status: u16, method: &str, request_id: &str, elapsed: std::time::Duration) -> Self {
        SinkRow::ServiceTelemetry {
            service_name: "sluice".into(),
            operation: route.into(),
            latency_ms: elapsed.as_secs_f64() * 1000.0,
            success: status < 500,
            error_message: None,
            correlation_id: Some(request_id.into()),
            workflow_id: None,
            metadata: serde_json::json!({ "status": status, "method": method }),
            created_at_us: now_us(),
        }
    }

    /// Whether this is an audit row (those are never dropped without a count and a log line).
    pub fn is_audit(&self) -> bool {
        matches!(self, SinkRow::AuditLog { .. })
    }

    /// The table the row goes to.
    pub fn table(&self) -> &'static str {
        match self {
            SinkRow::ServiceTelemetry { .. } => "service_telemetry",
            SinkRow::AuditLog { .. } => "audit_log",
            SinkRow::InferenceLog { .. } => "inference_logs",
        }
    }
}

/// One multi-row INSERT per table for `rows` (an empty list of statements for no rows).
pub(super) fn inserts(rows: &[Queued]) -> Vec<QueryBuilder<Postgres>> {
    let of = |table: &'static str| rows.iter().filter(move |q| q.row.table() == table).peekable();
    let mut out = Vec::new();
    let mut telemetry = of("service_telemetry");
    if telemetry.peek().is_some() {
        let mut q = QueryBuilder::new(
            "INSERT INTO service_telemetry (event_id, service_name, operation, latency_ms, success, error_message, \
             correlation_id, workflow_id, metadata, created_at) ",
        );
        q.push_values(telemetry, |mut b, q| {
            let row = &q.row;
            b.push_bind(q.event_id.clone());
            if let SinkRow::ServiceTelemetry {
                service_name,
                operation,
                latency_ms,
                success,
                error_message,
                correlation_id,
                workflow_id,
                metadata,
                created_at_us,
            } = row
            {
                b.push_bind(service_name.clone())
                    .push_bind(operation.clone())
                    .push_bind(*latency_ms)
                    .push_bind(*success)
                    .push_bind(error_message.clone())
                    .push_bind(correlation_id.clone())
                    .push_bind(workflow_id.clone())
                    .push_bind(sqlx::types::Json(metadata.clone()))
                    .push_bind(TimestampMicros(*created_at_us));
            }
        });
        q.push(" ON CONFLICT (event_id) DO NOTHING");
        out.push(q);
    }
    let mut audit = of("audit_log");
    if audit.peek().is_some() {
        let mut q = QueryBuilder::new(
            "INSERT INTO audit_log (event_id, occurred_at, actor, action, subject, outcome, client_ip, correlation_id, \
             route, details) ",
        );
        q.push_values(audit, |mut b, q| {
            let row = &q.row;
            b.push_bind(q.event_id.clone());
            if let SinkRow::AuditLog {
                occurred_at_us,
                actor,
                action,
                subject,
                outcome,
                client_ip,
                correlation_id,
                route,
                details,
            } = row
            {
                b.push_bind(TimestampMicros(*occurred_at_us))
                    .push_bind(actor.clone())
                    .push_bind(action.clone())
                    .push_bind(subject.clone())
                    .push_bind(outcome.clone())
                    .push_bind(client_ip.clone())
                    .push_unseparated("::inet")
                    .push_bind(correlation_id.clone())
                    .push_bind(route.clone())
                    .push_bind(sqlx::types::Json(details.clone()));
            }
        });
        q.push(" ON CONFLICT (event_id) DO NOTHING");
        out.push(q);
    }
    let mut inference = of("inference_logs");
    if inference.peek().is_some() {
        let mut q = QueryBuilder::new(
            "INSERT INTO inference_logs (event_id, domain, model_name, prompt_length, response_length, latency_ms, \
             tokens_generated, tokens_prompt, backend, status, correlation_id, created_at, workflow_id, user_id) ",
        );
        q.push_values(inference, |mut b, q| {
            let row = &q.row;
            b.push_bind(q.event_id.clone());
            if let SinkRow::InferenceLog {
                domain,
                model_name,
                prompt_length,
                response_length,
                latency_ms,
                tokens_generated,
                tokens_prompt,
                backend,
                status,
                correlation_id,
                created_at_us,
                workflow_id,
                user_id,
            } = row
            {
                b.push_bind(domain.clone())
                    .push_bind(model_name.clone())
                    .push_bind(*prompt_length)
                    .push_bind(*response_length)
                    .push_bind(*latency_ms)
                    .push_bind(*tokens_generated)
                    .push_bind(*tokens_prompt)
                    .push_bind(backend.clone())
                    .push_bind(*status)
                    .push_bind(correlation_id.clone())
                    .push_bind(TimestampMicros(*created_at_us))
                    .push_bind(workflow_id.clone())
                    .push_bind(user_id.clone());
            }
        });
        q.push(" ON CONFLICT (event_id) DO NOTHING");
        out.push(q);
    }
    out
}

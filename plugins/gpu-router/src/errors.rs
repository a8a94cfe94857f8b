//! Error answers in OpenAI's format (`{"error":{"message","type","param","code"}}`), and the
//! mapping from the scheduler's failures to them.

use serde_json::json;
use sluice_plugin_sdk::{HostError, Response};

/// An error answer the plugin gives instead of routing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// OpenAI's error `type`: `invalid_request_error`, `requests` or `server_error`.
    pub kind: &'static str,
    /// The request field or header at fault, if one is.
    pub param: Option<String>,
    /// The machine-readable `code`.
    pub code: &'static str,
    /// The human-readable message.
    pub message: String,
    /// Seconds for `Retry-After`, when the caller should come back later.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    /// A 400 `invalid_request_error` with `code`, about `param` when given.
    pub fn bad_request(code: &'static str, param: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// The 404 for a model no backend serves.
    pub fn model_not_found(model: &str) -> ApiError {
        ApiError {
            status: 404,
            param: Some("model".to_string()),
            ..ApiError::bad_request("model_not_found", None, format!("The model `{model}` does not exist."))
        }
    }

    /// The 404 for a method and path the plugin does not serve (OpenAI answers `Invalid URL`
    /// the same way).
    pub fn unknown_url(method: &str, path: &str) -> ApiError {
        ApiError {
            status: 404,
            ..ApiError::bad_request("unknown_url", None, format!("Invalid URL ({method} {path})"))
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
        .to_string()
    }

    /// The local response: the status, `content-type: application/json`, `retry-after` when
    /// set, and the body.
    pub fn response(&self) -> Response {
        let resp = Response::json(self.status, self.body());
        match self.retry_after_s {
            Some(s) => resp.header("retry-after", s.to_string()),
            None => resp,
        }
    }

    /// The answer to a failed `gpu.reserve` for `model`: `not-found` → 404 `model_not_found`,
    /// `invalid` → 400 `invalid_request`, `limit` → 429 `queue_full`, `unavailable` → 503
    /// `fleet_saturated` (both with `Retry-After` from the host's wait estimate), anything
    /// else → 503 `scheduler_unavailable`.
    pub fn from_reserve(error: &HostError, model: &str) -> ApiError {
        let message = error.message().to_string();
        let retry = Some(retry_after_secs(&message));
        match error {
            HostError::NotFound(_) => ApiError::model_not_found(model),
            HostError::Invalid(_) => ApiError::bad_request("invalid_request", None, message),
            HostError::Limit(_) => ApiError {
                status: 429,
                kind: "requests",
                param: None,
                code: "queue_full",
                message,
                retry_after_s: retry,
            },
            HostError::Unavailable(_) => ApiError {
                status: 503,
                kind: "server_error",
                param: None,
                code: "fleet_saturated",
                message,
                retry_after_s: retry,
            },
            _ => ApiError {
                status: 503,
                kind: "server_error",
                param: None,
                code: "scheduler_unavailable",
                message,
                retry_after_s: None,
            },
        }
    }
}

/// `Retry-After` in seconds from a scheduler message whose first word is the estimated wait in
/// milliseconds: rounded up, at least 1; 1 when the first word is not a number.
pub fn retry_after_secs(message: &str) -> u64 {
    message
        .split_whitespace()
        .next()
        .and_then(|w| w.parse::<u64>().ok())
        .map_or(1, |ms| ms.div_ceil(1000).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parsed(e: &ApiError) -> Value {
        serde_json::from_str(&e.body()).unwrap()
    }

    #[test]
    fn bodies_follow_openai() {
        let e = ApiError::bad_request("invalid_priority", Some("x-priority"), "bad");
        assert_eq!(
            parsed(&e),
            json!({"error": {"message": "bad", "type": "invalid_request_error",
                             "param": "x-priority", "code": "invalid_priority"}})
        );
        let e = ApiError::bad_request("invalid_json", None, "no");
        assert_eq!(parsed(&e)["error"]["param"], Value::Null);
        let resp = e.response().build();
        assert_eq!(resp.status, 400);
        assert_eq!(
            resp.headers,
            vec![("content-type".to_string(), b"application/json".to_vec())]
        );
    }

    #[test]
    fn retry_after_rounds_up_and_falls_back_to_one_second() {
        for (msg, want) in [
            ("2500 ms estimated wait", 3),
            ("1000", 1),
            ("1", 1),
            ("0 ms", 1),
            ("  12001\tms", 13),
            ("queue full", 1),
            ("", 1),
            ("-5 ms", 1),
            ("18446744073709551615", 18_446_744_073_709_552),
        ] {
            assert_eq!(retry_after_secs(msg), want, "{msg:?}");
        }
    }

    #[test]
    fn reserve_failures_map_to_statuses_and_codes() {
        let e = ApiError::from_reserve(&HostError::NotFound("gpu: no backend lists llama".into()), "llama");
        assert_eq!(
            (e.status, e.code, e.param.as_deref()),
            (404, "model_not_found", Some("model"))
        );
        assert_eq!(e.message, "The model `llama` does not exist.");
        assert_eq!(e.retry_after_s, None);

        let e = ApiError::from_reserve(&HostError::Invalid("priority 0".into()), "m");
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (400, "invalid_request", "priority 0")
        );

        let e = ApiError::from_reserve(&HostError::Limit("4200 ms: queue full".into()), "m");
        assert_eq!(
            (e.status, e.kind, e.code, e.retry_after_s),
            (429, "requests", "queue_full", Some(5))
        );
        let resp = e.response().build();
        assert!(resp.headers.contains(&("retry-after".to_string(), b"5".to_vec())));

        let e = ApiError::from_reserve(&HostError::Unavailable("wait too long".into()), "m");
        assert_eq!((e.status, e.code, e.retry_after_s), (503, "fleet_saturated", Some(1)));

        for err in [
            HostError::Denied("no grant".into()),
            HostError::NotConfigured("no [gpu]".into()),
            HostError::Timeout("slow".into()),
            HostError::Other("?".into()),
        ] {
            let e = ApiError::from_reserve(&err, "m");
            assert_eq!(
                (e.status, e.code, e.retry_after_s),
                (503, "scheduler_unavailable", None)
            );
            assert_eq!(e.message, err.message());
        }
    }
}

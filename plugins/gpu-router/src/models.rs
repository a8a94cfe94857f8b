//! `GET /v1/models`: the fleet's models in OpenAI's list format, with where each can run and
//! where it is loaded now.

use serde_json::{Value, json};
use sluice_plugin_sdk::gpu::ModelEntry;

/// The body of the model list: `{"object":"list","data":[...]}`, one entry per model sorted
/// by id, each with OpenAI's `id`, `object`, `created` (0: unknown) and `owned_by` (`sluice`)
/// plus Sluice's `backends` and `resident_on`.
pub fn list_body(models: &[ModelEntry]) -> String {
    let mut sorted: Vec<&ModelEntry> = models.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let data: Vec<Value> = sorted
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id,
                "object": "model",
                "created": 0,
                "owned_by": "sluice",
                "backends": m.backends,
                "resident_on": m.resident_on,
            })
        })
        .collect();
    json!({ "object": "list", "data": data }).to_string()
}

/// Whether a request is the model list: `GET /v1/models` (the query ignored).
pub fn is_list_request(method: &str, path: &str) -> bool {
    method == "GET" && path == "/v1/models"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, backends: &[&str], resident: &[&str]) -> ModelEntry {
        ModelEntry {
            id: id.to_string(),
            backends: backends.iter().map(|s| s.to_string()).collect(),
            resident_on: resident.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_list_is_openai_shaped_and_sorted() {
        let body = list_body(&[entry("qwen", &["b"], &[]), entry("llama", &["a", "b"], &["a"])]);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            json!({"object": "list", "data": [
                {"id": "llama", "object": "model", "created": 0, "owned_by": "sluice",
                 "backends": ["a", "b"], "resident_on": ["a"]},
                {"id": "qwen", "object": "model", "created": 0, "owned_by": "sluice",
                 "backends": ["b"], "resident_on": []},
            ]})
        );
    }

    #[test]
    fn an_empty_fleet_is_an_empty_list() {
        let v: Value = serde_json::from_str(&list_body(&[])).unwrap();
        assert_eq!(v, json!({"object": "list", "data": []}));
    }

    #[test]
    fn only_get_of_the_exact_path_is_the_list() {
        assert!(is_list_request("GET", "/v1/models"));
        assert!(!is_list_request("POST", "/v1/models"));
        assert!(!is_list_request("GET", "/v1/models/llama"));
        assert!(!is_list_request("GET", "/v1/models/"));
    }
}

//! `GET /v1/models`: the fleet's models in OpenAI's list format, with where each can run and
//! where it is loaded now; `GET /v1/models/{id}`: one of them.

use serde_json::{Value, json};
use sluice_plugin_sdk::gpu::ModelEntry;

/// The body of the model list: `{"object":"list","data":[...]}`, one entry per model sorted
/// by id, each with OpenAI's `id`, `object`, `created` (0: unknown) and `owned_by` (`sluice`)
/// plus Sluice's `backends` and `resident_on`.
pub fn list_body(models: &[ModelEntry]) -> String {
    let mut sorted: Vec<&ModelEntry> = models.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let data: Vec<Value> = sorted.into_iter().map(model_json).collect();
    json!({ "object": "list", "data": data }).to_string()
}

/// One model object, as in the list.
fn model_json(m: &ModelEntry) -> Value {
    json!({
        "id": m.id,
        "object": "model",
        "created": 0,
        "owned_by": "sluice",
        "backends": m.backends,
        "resident_on": m.resident_on,
    })
}

/// The body of `GET /v1/models/{id}` for `id`: its model object, or None when the fleet has
/// no such model.
pub fn model_body(models: &[ModelEntry], id: &str) -> Option<String> {
    models.iter().find(|m| m.id == id).map(|m| model_json(m).to_string())
}

/// The model id a request retrieves: `GET /v1/models/{id}` (the rest of the path, which may
/// hold `/` as ids such as `org/model` do, percent-decoded); None for anything else.
pub fn retrieved_model(method: &str, path: &str) -> Option<String> {
    let id = path.strip_prefix("/v1/models/").filter(|id| !id.is_empty())?;
    (method == "GET").then(|| percent_decoded(id))
}

/// `text` with `%XX` escapes decoded (an invalid escape, or bytes that are not UTF-8, kept as
/// they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
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
    fn one_model_is_retrieved_by_its_id_slashes_and_escapes_included() {
        assert_eq!(retrieved_model("GET", "/v1/models/llama"), Some("llama".into()));
        assert_eq!(
            retrieved_model("GET", "/v1/models/org/model-7b"),
            Some("org/model-7b".into())
        );
        assert_eq!(
            retrieved_model("GET", "/v1/models/org%2Fmodel"),
            Some("org/model".into())
        );
        assert_eq!(retrieved_model("GET", "/v1/models/"), None);
        assert_eq!(retrieved_model("DELETE", "/v1/models/llama"), None);
        let models = [entry("llama", &["a"], &["a"])];
        let v: Value = serde_json::from_str(&model_body(&models, "llama").unwrap()).unwrap();
        assert_eq!(v["id"], "llama");
        assert_eq!(v["object"], "model");
        assert_eq!(v["resident_on"], json!(["a"]));
        assert_eq!(model_body(&models, "qwen"), None);
    }

    #[test]
    fn only_get_of_the_exact_path_is_the_list() {
        assert!(is_list_request("GET", "/v1/models"));
        assert!(!is_list_request("POST", "/v1/models"));
        assert!(!is_list_request("GET", "/v1/models/llama"));
        assert!(!is_list_request("GET", "/v1/models/"));
    }
}

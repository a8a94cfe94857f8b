//! Sluice's GPU router plugin: routes OpenAI-compatible inference requests through the
//! gateway's GPU scheduler.
//!
//! `GET /v1/models` is answered with the fleet's models, `GET /v1/models/{id}` with one of them
//! (404 `model_not_found` when the fleet has none by that id), and any other request the plugin
//! does not serve with 404 `unknown_url` (unless `pass_unknown_paths`). A `POST` to `/v1/chat/completions`,
//! `/v1/completions` or `/v1/embeddings` has its scheduling headers checked ([`headers`]), its
//! body read ([`openai`]) and a lease reserved with `gpu.reserve`; the request is then routed
//! to the backend the host grants (`route-to` with the lease and an empty url), or answered
//! with an OpenAI-style error ([`errors`]). After the response, the inference usage the host
//! measured goes to the plugin's metrics ([`usage`]).
//!
//! The config reference is `plugins/gpu-router/README.md`.

pub mod errors;
pub mod fuzzing;
pub mod headers;
pub mod models;
pub mod openai;
pub mod settings;
pub mod usage;

use sluice_plugin_sdk::gpu::{self, InferenceSpec};
use sluice_plugin_sdk::{
    Config, HeaderEdits, Hook, LogEntry, Plugin, RequestExt, RequestHead, RequestVerdict, Response, UpstreamChoice,
    log, metrics,
};

use errors::ApiError;
use openai::Endpoint;
use settings::Settings;

/// The plugin instance: the route's validated settings.
pub struct GpuRouter {
    /// The route's validated config.
    pub settings: Settings,
}

impl GpuRouter {
    /// Reserves a lease for the request and routes it, or answers the error.
    fn route(&self, req: &RequestHead, endpoint: Endpoint, body: &[u8]) -> Result<RequestVerdict, ApiError> {
        let sched = headers::parse(&req.headers, req.context("tenant"), &self.settings)?;
        let inference = openai::parse(endpoint, body, &self.settings)?;
        let spec = InferenceSpec {
            model: inference.model.clone(),
            priority: sched.priority,
            tenant: sched.tenant,
            workflow_id: sched.workflow_id,
            depends_on: sched.depends_on,
            required_gpus: sched.required_gpus,
            min_memory_mb: sched.min_memory_mb,
            prompt_tokens: inference.prompt_tokens,
            max_tokens: inference.max_tokens,
            prefix_hash: inference.prefix_hash,
        };
        let lease = gpu::reserve(&spec).map_err(|e| {
            let answer = ApiError::from_reserve(&e, &inference.model);
            if answer.code == "scheduler_unavailable" {
                log::write(
                    log::Level::Error,
                    &format!("gpu.reserve failed ({}): {}", e.kind(), e.message()),
                );
            }
            answer
        })?;
        Ok(RequestVerdict::RouteTo(UpstreamChoice {
            url: String::new(),
            lease: Some(lease),
            edits: HeaderEdits::default(),
        }))
    }
}

impl Plugin for GpuRouter {
    const NAME: &'static str = "gpu-router";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::RequestBody, Hook::Log];
    const MAX_BODY_BYTES: Option<u32> = Some(settings::MAX_BODY_LIMIT);

    fn new(config: Config) -> Result<Self, String> {
        Ok(GpuRouter {
            settings: Settings::from_json(config.as_str())?,
        })
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let path = req.path_only();
        if models::is_list_request(&req.method, path) {
            return Response::json(200, models::list_body(&gpu::models())).into();
        }
        if let Some(id) = models::retrieved_model(&req.method, path) {
            return match models::model_body(&gpu::models(), &id) {
                Some(body) => Response::json(200, body).into(),
                None => ApiError::model_not_found(&id).response().into(),
            };
        }
        if req.method != "POST" || Endpoint::of(path).is_none() {
            return match self.settings.pass_unknown_paths {
                true => RequestVerdict::Continue,
                false => ApiError::unknown_url(&req.method, path).response().into(),
            };
        }
        match headers::parse(&req.headers, req.context("tenant"), &self.settings) {
            Ok(_) => RequestVerdict::NeedBody(self.settings.max_body_bytes),
            Err(e) => e.response().into(),
        }
    }

    fn on_request_body(&mut self, req: &RequestHead, body: &[u8]) -> RequestVerdict {
        let Some(endpoint) = Endpoint::of(req.path_only()) else {
            return RequestVerdict::Continue;
        };
        self.route(req, endpoint, body).unwrap_or_else(|e| e.response().into())
    }

    fn on_log(&mut self, entry: &LogEntry) {
        let Some(used) = &entry.inference else {
            return;
        };
        let samples = usage::samples(used);
        let results = samples
            .counters
            .iter()
            .map(|(name, value)| metrics::counter_add(name, *value))
            .chain(
                samples
                    .histograms
                    .iter()
                    .map(|(name, value)| metrics::histogram_record(name, *value)),
            );
        for result in results {
            if let Err(e) = result {
                log::write(log::Level::Warn, &format!("metrics: {}", e.message()));
            }
        }
    }
}

sluice_plugin_sdk::export_plugin!(GpuRouter);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_describes_itself() {
        let info = sluice_plugin_sdk::describe::<GpuRouter>();
        assert_eq!(info.name, "gpu-router");
        assert_eq!(info.hooks, [Hook::RequestHeaders, Hook::RequestBody, Hook::Log]);
        assert_eq!(info.max_body_bytes, Some(16 << 20));
    }

    #[test]
    fn init_accepts_good_config_and_names_the_key_in_bad_config() {
        let p = GpuRouter::new(Config::new(r#"{"default_priority": 7}"#.into())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.settings.default_priority, 7);
        let e = GpuRouter::new(Config::new(r#"{"priority": 7}"#.into())).err().unwrap();
        assert!(e.contains("unknown field `priority`"), "{e}");
    }
}

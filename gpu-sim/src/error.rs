//! Library errors and the OpenAI-format HTTP errors the simulator answers with.

use std::path::PathBuf;

use hyper::{Response, StatusCode, header};

use crate::body::{SimBody, full};

/// Errors from configuring or starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration file could not be read.
    #[error("reading config {}: {source}", path.display())]
    ReadConfig {
        /// The file that was read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The configuration is not valid TOML for [`crate::SimConfig`].
    #[error("parsing config: {0}")]
    ParseConfig(#[from] toml::de::Error),
    /// The configuration parsed but describes something the simulator cannot run.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// Binding or accepting on the listening socket failed.
    #[error("listener I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An error answered to a client as `{"error": {"message", "type", "code"}}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("The model `{0}` does not exist or is not loaded.")]
    ModelNotFound(String),
    #[error("Invalid JSON body: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(
        "Not enough free GPU memory to load `{model}`: {need_mb} MiB needed, {free_mb} MiB free on the emptiest GPU"
    )]
    InsufficientMemory { model: String, need_mb: u64, free_mb: u64 },
    #[error("The model `{0}` is being loaded.")]
    ModelLoading(String),
    #[error("Simulated failure before the first token.")]
    InjectedFailure,
    #[error("No route for {0}.")]
    NotFound(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::ModelNotFound(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::InvalidJson(_) | Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientMemory { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::ModelLoading(_) => StatusCode::CONFLICT,
            Self::InjectedFailure => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::InjectedFailure => "server_error",
            Self::InsufficientMemory { .. } | Self::ModelLoading(_) => "service_unavailable_error",
            _ => "invalid_request_error",
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::ModelNotFound(_) => "model_not_found",
            Self::InvalidJson(_) => "invalid_json",
            Self::InvalidRequest(_) => "invalid_request",
            Self::InsufficientMemory { .. } => "insufficient_gpu_memory",
            Self::ModelLoading(_) => "model_loading",
            Self::InjectedFailure => "simulated_failure",
            Self::NotFound(_) => "not_found",
        }
    }

    /// Renders the error as an HTTP response in OpenAI's error format.
    pub(crate) fn into_response(self) -> Response<SimBody> {
        let body = serde_json::json!({
            "error": { "message": self.to_string(), "type": self.kind(), "code": self.code() }
        });
        let mut response = Response::new(full(body.to_string()));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

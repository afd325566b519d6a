//! The crate's error, and the one place that decides what an HTTP client sees on a refusal.

use std::{io, net::SocketAddr};

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

/// Why the example server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The o200k_base vocabulary could not be loaded (a bug: it is compiled into tiktoken-rs).
    #[error("could not load the o200k_base tokenizer: {0}")]
    Tokenizer(String),
    /// Serving failed, or the server's task panicked.
    #[error("the example LLM server failed")]
    Serve(#[source] io::Error),
}

/// A refusal in OpenAI's error format:
/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    message: String,
    kind: &'static str,
    code: Option<&'static str>,
}

impl ApiError {
    /// A malformed or unacceptable request (400 unless `status` says otherwise).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::BAD_REQUEST, message)
    }

    /// An `invalid_request_error` with another status (413, 404 for an unknown route, …).
    pub(crate) fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
        }
    }

    /// The model is not one of those served (404, as OpenAI answers).
    pub(crate) fn model_not_found(model: &str) -> Self {
        Self {
            code: Some("model_not_found"),
            ..Self::with_status(
                StatusCode::NOT_FOUND,
                format!("The model `{model}` does not exist or you do not have access to it."),
            )
        }
    }

    /// No `Authorization: Bearer` header although a key is configured.
    pub(crate) fn missing_key() -> Self {
        Self::with_status(
            StatusCode::UNAUTHORIZED,
            "You didn't provide an API key. You need to provide your API key in an \
             Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    }

    /// A bearer key other than the configured one (not echoed back).
    pub(crate) fn wrong_key() -> Self {
        Self {
            code: Some("invalid_api_key"),
            ..Self::with_status(StatusCode::UNAUTHORIZED, "Incorrect API key provided.")
        }
    }

    /// Our own failure; the details stay out of the response.
    pub(crate) fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The example server had an internal error.".to_owned(),
            kind: "server_error",
            code: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": null,
                "code": self.code,
            }
        });
        (self.status, Json(body)).into_response()
    }
}

//! The crate's error, and the one place that decides what an HTTP client sees on a refusal, in
//! the error format of the API it called.

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

/// Whose error format a refusal is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI's: `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// Anthropic's: `{"type": "error", "error": {"type", "message"}}`, the error type following
    /// the status as Anthropic documents it.
    Anthropic,
}

impl Dialect {
    /// The dialect of the API served at `path`: Anthropic's for `/v1/messages`, else OpenAI's.
    pub(crate) fn of_path(path: &str) -> Self {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Self::Anthropic
        } else {
            Self::OpenAi
        }
    }
}

/// A refusal, in OpenAI's error format unless turned into Anthropic's with
/// [`ApiError::in_dialect`].
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    message: String,
    kind: &'static str,
    code: Option<&'static str>,
    dialect: Dialect,
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
            dialect: Dialect::OpenAi,
        }
    }

    /// The same refusal, written in `dialect`'s format.
    pub(crate) fn in_dialect(self, dialect: Dialect) -> Self {
        Self { dialect, ..self }
    }

    /// Refuses an integer `name` below `min`, in OpenAI's words.
    pub(crate) fn check_minimum(name: &str, value: Option<u64>, min: u64) -> Result<(), Self> {
        match value {
            Some(value) if value < min => Err(Self::invalid(format!(
                "Invalid '{name}': integer below minimum value. Expected a value >= {min}, but \
                 got {value} instead."
            ))),
            _ => Ok(()),
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

    /// No key presented although one is configured, in the words of `dialect`'s API.
    pub(crate) fn missing_key(dialect: Dialect) -> Self {
        let message = match dialect {
            Dialect::OpenAi => {
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            }
            Dialect::Anthropic => "x-api-key header is required",
        };
        Self::with_status(StatusCode::UNAUTHORIZED, message).in_dialect(dialect)
    }

    /// A key other than the configured one (not echoed back).
    pub(crate) fn wrong_key(dialect: Dialect) -> Self {
        let message = match dialect {
            Dialect::OpenAi => "Incorrect API key provided.",
            Dialect::Anthropic => "invalid x-api-key",
        };
        Self {
            code: Some("invalid_api_key"),
            ..Self::with_status(StatusCode::UNAUTHORIZED, message)
        }
        .in_dialect(dialect)
    }

    /// Our own failure; the details stay out of the response.
    pub(crate) fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The example server had an internal error.".to_owned(),
            kind: "server_error",
            code: None,
            dialect: Dialect::OpenAi,
        }
    }
}

impl ApiError {
    /// Anthropic's error type for this refusal, from its status as Anthropic's "Errors" page
    /// lists them.
    fn anthropic_type(&self) -> &'static str {
        match self.status {
            _ if self.kind == "server_error" => "api_error",
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            status if status.is_server_error() => "api_error",
            _ => "invalid_request_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.dialect {
            Dialect::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind,
                    "param": null,
                    "code": self.code,
                }
            }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": { "type": self.anthropic_type(), "message": self.message },
            }),
        };
        (self.status, Json(body)).into_response()
    }
}

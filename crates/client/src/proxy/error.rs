//! The one place that decides what an agent sees when the proxy answers with an error, in
//! the format of the API it called ([`Dialect`]), so that its SDK shows the message and
//! applies its own retry rules to the status:
//!
//! - OpenAI: `{"error": {"message", "type", "param", "code"}}`;
//! - Anthropic: `{"type": "error", "error": {"type", "message"}}`, the type named by the
//!   status as Anthropic names it (`rate_limit_error` for 429, …);
//! - Ollama: `{"error": "<message>"}`.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::paid::PayError;

/// The `Retry-After` (seconds) when every note was busy for the whole wait: SDKs retry a 429
/// after it, by when a call has likely finished.
pub(super) const BUSY_RETRY_AFTER: u64 = 5;

/// Whose error format an answer is written in: that of the API the agent called.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Dialect {
    /// OpenAI's (chat, Responses, embeddings, models), and every other route's.
    OpenAi,
    /// Anthropic's (`/v1/messages`).
    Anthropic,
    /// Ollama's (`/api/…`).
    Ollama,
}

impl Dialect {
    /// The dialect of a request for `path`, before it is routed (the guard, unknown URLs).
    pub(super) fn of_path(path: &str) -> Self {
        if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Self::Anthropic
        } else if path.starts_with("/api/") {
            Self::Ollama
        } else {
            Self::OpenAi
        }
    }
}

/// An error answer; [`ApiError::in_dialect`] writes it for the API the agent called.
#[derive(Debug, Clone)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<&'static str>,
    code: &'static str,
    /// Seconds for a `Retry-After` header: when trying again can succeed.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An `invalid_request_error` with `status` and a nullgate `code`.
    pub(super) fn invalid(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code,
            retry_after: None,
        }
    }

    /// Names the request parameter at fault.
    pub(super) fn with_param(self, param: &'static str) -> Self {
        Self {
            param: Some(param),
            ..self
        }
    }

    /// A 403 from the guard: the request did not come from a local program.
    pub(super) fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind: "permission_error",
            ..Self::invalid(StatusCode::FORBIDDEN, code, message)
        }
    }

    /// The status of the answer.
    #[cfg(test)]
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    /// What a failed payment looks like to the agent.
    ///
    /// - `NoNote` → **429** `insufficient_quota`, as OpenAI answers an account out of credit:
    ///   SDKs retry a 429 with backoff, which is right when every note is busy, and show the
    ///   message ("deposit more or wait") when the retries run out. A 402 would be exact for
    ///   an empty wallet but is not retried, and the core does not say which of the two it is.
    /// - `Refused` → the gateway's own status (a 4xx or 5xx; anything else becomes 502).
    /// - `AllBusy` → **429** with `Retry-After` ([`BUSY_RETRY_AFTER`]): a note frees up when
    ///   its call finishes, which the proxy cannot foresee.
    /// - `FirstUseDelay` → **429** with `Retry-After`: the notes become usable then.
    /// - `TooFewNotes` → 503: nothing this request can change; it says to wait for deposits.
    /// - `Transport`, `BadReceipt` → 502: the gateway could not be reached, or answered with
    ///   something that does not check out.
    /// - `NoSuchClass`, `Wallet`, `Prover` → 500: a fault on this machine.
    pub(super) fn from_pay_error(error: &PayError) -> Self {
        let retry_after = match error {
            PayError::FirstUseDelay { seconds } => Some((*seconds).max(1)),
            PayError::AllBusy { .. } => Some(BUSY_RETRY_AFTER),
            _ => None,
        };
        let (status, kind, code) = match error {
            PayError::NoNote { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "nullgate_no_note",
            ),
            PayError::Refused { status, .. } => {
                let status = StatusCode::from_u16(*status)
                    .ok()
                    .filter(|s| s.is_client_error() || s.is_server_error())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                let kind = if status.is_client_error() {
                    "invalid_request_error"
                } else {
                    "server_error"
                };
                (status, kind, "nullgate_refused")
            }
            PayError::AllBusy { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "nullgate_all_notes_busy",
            ),
            PayError::FirstUseDelay { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "nullgate_first_use_delay",
            ),
            PayError::TooFewNotes { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "nullgate_anonymity_set_too_small",
            ),
            PayError::Transport(_) => (
                StatusCode::BAD_GATEWAY,
                "server_error",
                "nullgate_gateway_unreachable",
            ),
            PayError::BadReceipt(_) => {
                // Loud, as PROTOCOL §6 asks; the message names no request content.
                tracing::error!("{error}");
                (
                    StatusCode::BAD_GATEWAY,
                    "server_error",
                    "nullgate_bad_receipt",
                )
            }
            PayError::NoSuchClass(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "nullgate_no_such_class",
            ),
            PayError::Wallet(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "nullgate_wallet",
            ),
            PayError::Prover(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "nullgate_prover",
            ),
        };
        Self {
            status,
            message: error.to_string(),
            kind,
            param: None,
            code,
            retry_after,
        }
    }
}

impl ApiError {
    /// The answer, in `dialect`'s format.
    pub(super) fn in_dialect(self, dialect: Dialect) -> Response {
        let body = match dialect {
            Dialect::OpenAi => json!({
                "error": {
                    "message": self.message,
                    "type": self.kind,
                    "param": self.param,
                    "code": self.code,
                }
            }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_type(self.status), "message": self.message },
            }),
            Dialect::Ollama => json!({ "error": self.message }),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Anthropic's error type for a status (its API reference, "Errors").
fn anthropic_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_delays_and_busy_notes_are_429s_that_say_when_to_retry() {
        for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Ollama] {
            let error = ApiError::from_pay_error(&PayError::FirstUseDelay { seconds: 42 });
            assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
            let response = error.in_dialect(dialect);
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()["retry-after"], "42");
        }
        // Notes busy for the whole wait: retry in a few seconds.
        let busy = ApiError::from_pay_error(&PayError::AllBusy {
            class_cost: 1,
            waited: 60,
        });
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            busy.in_dialect(Dialect::Anthropic).headers()["retry-after"],
            BUSY_RETRY_AFTER.to_string().as_str()
        );
        // An empty wallet says nothing about when.
        let empty = ApiError::from_pay_error(&PayError::NoNote {
            class_cost: 1,
            reason: "no balance".into(),
        });
        assert!(
            empty
                .in_dialect(Dialect::OpenAi)
                .headers()
                .get("retry-after")
                .is_none()
        );
    }
}

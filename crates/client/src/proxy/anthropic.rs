//! Anthropic's route: `POST /v1/messages`, streamed or not, with errors in Anthropic's
//! format. Point the `anthropic` SDK's `base_url` at the proxy's root (`http://127.0.0.1:8787`).
//!
//! The SDK's `anthropic-version` and `anthropic-beta` headers are dropped with every other
//! incoming header: the gateway sends the version its upstream expects.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    response::Response,
};

use super::{
    error::Dialect,
    forward::{self, App, JsonApi},
};
use crate::paid::Payer;

/// `POST /v1/messages`. `max_tokens` is required by Anthropic; when an agent leaves it out,
/// the proxy writes the most the class pays for, as for chat.
pub(super) const MESSAGES: JsonApi = JsonApi {
    path: "/v1/messages",
    what: "an Anthropic messages request",
    // `metadata.user_id` is Anthropic's end-user identifier.
    removed: &["metadata"],
    refused: &[],
    store_false: false,
    limit_fields: &["max_tokens"],
    set_limit: Some("max_tokens"),
    choices_field: None,
};

/// `POST /v1/messages`.
pub(super) async fn messages<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    forward::json_route(app, &MESSAGES, Dialect::Anthropic, body).await
}

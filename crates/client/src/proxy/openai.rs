//! OpenAI's routes: chat completions, the Responses API, embeddings and the model list.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::Method,
    response::Response,
};

use super::{
    class::{self, Limits},
    error::{ApiError, Dialect},
    forward::{self, App, JsonApi},
    sanitize,
};
use crate::paid::{PaidRequest, Payer};

/// Identifiers every OpenAI text API accepts: the end user's id (and its successor), the
/// caller's tags, and the prompt cache key, which links every request that shares it.
const OPENAI_IDENTIFIERS: &[&str] = &["user", "metadata", "safety_identifier", "prompt_cache_key"];

/// `POST /v1/chat/completions`.
pub(super) const CHAT: JsonApi = JsonApi {
    path: "/v1/chat/completions",
    what: "an OpenAI chat completions request",
    removed: OPENAI_IDENTIFIERS,
    refused: &[],
    store_false: true,
    limit_fields: &["max_tokens", "max_completion_tokens"],
    set_limit: Some("max_tokens"),
    choices_field: Some("n"),
};

/// `POST /v1/responses` (the OpenAI Agents SDK's default). The proxy forces `store: false`,
/// so a response cannot be continued by id: the agent sends the conversation each time, as
/// the Agents SDK does by default.
pub(super) const RESPONSES: JsonApi = JsonApi {
    path: "/v1/responses",
    what: "an OpenAI Responses API request",
    removed: OPENAI_IDENTIFIERS,
    refused: &[
        (
            "previous_response_id",
            "it chains this request to an earlier one at the provider (and the proxy sends \
             store: false, so there is none to chain to); send the whole conversation as input",
        ),
        (
            "conversation",
            "a stored conversation links every request made in it at the provider; send the \
             whole conversation as input",
        ),
    ],
    store_false: true,
    limit_fields: &["max_output_tokens"],
    set_limit: Some("max_output_tokens"),
    choices_field: None,
};

/// `POST /v1/embeddings`: no completion tokens, only the input's.
pub(super) const EMBEDDINGS: JsonApi = JsonApi {
    path: "/v1/embeddings",
    what: "an OpenAI embeddings request",
    removed: &["user"],
    refused: &[],
    store_false: false,
    limit_fields: &[],
    set_limit: None,
    choices_field: None,
};

/// `GET /v1/models`.
pub(super) const MODELS: &str = "/v1/models";

/// `POST /v1/chat/completions`.
pub(super) async fn chat<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    forward::json_route(app, &CHAT, Dialect::OpenAi, body).await
}

/// `POST /v1/responses`.
pub(super) async fn responses<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    forward::json_route(app, &RESPONSES, Dialect::OpenAi, body).await
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    forward::json_route(app, &EMBEDDINGS, Dialect::OpenAi, body).await
}

/// `GET /v1/models`.
pub(super) async fn models<P: Payer>(State(app): State<Arc<App<P>>>) -> Response {
    let answer = async {
        let request = models_request(&*app.payer)?;
        let answer = forward::pay(&*app.payer, request).await?;
        Ok::<_, ApiError>(forward::respond(answer, false))
    };
    answer
        .await
        .unwrap_or_else(|error| error.in_dialect(Dialect::OpenAi))
}

/// The paid `GET /v1/models` (also behind Ollama's `/api/tags`).
pub(super) fn models_request<P: Payer>(payer: &P) -> Result<PaidRequest, ApiError> {
    let list = payer.price_list();
    let price = forward::priced(list, &Method::GET, MODELS, &[])?;
    let choice = class::choose(list, price, Limits::NONE, 0)?;
    Ok(PaidRequest {
        method: Method::GET,
        path_and_query: MODELS.to_owned(),
        headers: sanitize::forward_headers(list.signed_headers(), false),
        body: Bytes::new(),
        class_index: choice.class_index,
    })
}

//! The OpenAI-compatible routes: `POST /v1/chat/completions` and `GET /v1/models`.

use std::sync::Arc;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State, rejection::BytesRejection},
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use nullgate_protocol::price::{PriceList, RequestPrice};
use serde_json::Value;

use super::{
    ProxyConfig,
    class::{self, Limits},
    error::ApiError,
    guard::guard,
    sanitize,
};
use crate::paid::{PaidRequest, PaidResponse, Payer};

const CHAT: &str = "/v1/chat/completions";
const MODELS: &str = "/v1/models";

/// The charge `Δ` of the call, from its receipt.
const CHARGED: &str = "x-nullgate-charged";
/// `C_c`, the class the call was paid with.
const CLASS: &str = "x-nullgate-class";

struct App<P> {
    payer: Arc<P>,
    config: ProxyConfig,
}

pub(super) fn router<P: Payer>(payer: Arc<P>, config: ProxyConfig) -> Router {
    let limit = config.max_body_bytes;
    let app = Arc::new(App { payer, config });
    Router::new()
        .route(CHAT, post(chat::<P>))
        .route(MODELS, get(models::<P>))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(app)
        .layer(DefaultBodyLimit::max(limit))
        // Outermost: nothing runs, nothing is read, before the guard has passed the request.
        .layer(middleware::from_fn(guard))
}

async fn chat<P: Payer>(
    State(app): State<Arc<App<P>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is larger than the proxy's limit of {} bytes",
                app.config.max_body_bytes
            )
        } else {
            "the request body could not be read".to_owned()
        };
        ApiError::invalid(status, "nullgate_body_unreadable", message)
    })?;
    let price = priced(app.payer.price_list(), &Method::POST, CHAT, &body)?;
    let mut fields = sanitize::chat_body(&body)?;
    let stream = fields.get("stream") == Some(&Value::Bool(true));
    let mut forwarded = sanitize::serialise(&fields);
    let limits = Limits::of_chat(&fields, forwarded.len())?;
    let choice = class::choose(
        app.payer.price_list(),
        price,
        limits,
        app.config.default_max_tokens,
    )?;
    if let Some(max_tokens) = choice.set_max_tokens {
        fields.insert("max_tokens".to_owned(), Value::from(max_tokens));
        forwarded = sanitize::serialise(&fields);
    }
    let headers = sanitize::forward_headers(app.payer.price_list().signed_headers(), true);
    let request = PaidRequest {
        method: Method::POST,
        // Without the agent's query string: the routes take no query parameters, and an
        // SDK's (Azure's `api-version`, say) would tell it apart.
        path_and_query: CHAT.to_owned(),
        headers,
        body: forwarded.into(),
        class_index: choice.class_index,
    };
    pay(&*app.payer, request, stream).await
}

async fn models<P: Payer>(State(app): State<Arc<App<P>>>) -> Result<Response, ApiError> {
    let list = app.payer.price_list();
    let price = priced(list, &Method::GET, MODELS, &[])?;
    let choice = class::choose(list, price, Limits::NONE, app.config.default_max_tokens)?;
    let headers = sanitize::forward_headers(list.signed_headers(), false);
    let request = PaidRequest {
        method: Method::GET,
        path_and_query: MODELS.to_owned(),
        headers,
        body: Bytes::new(),
        class_index: choice.class_index,
    };
    pay(&*app.payer, request, false).await
}

/// The price of a request with `body` on a route the proxy serves, or a 404 saying the
/// gateway does not price the route (400 if it cannot price this body).
fn priced(
    list: &PriceList,
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<RequestPrice, ApiError> {
    let route = list.route(method.as_str(), path).ok_or_else(|| {
        ApiError::invalid(
            StatusCode::NOT_FOUND,
            "nullgate_route_not_priced",
            format!(
                "the gateway's price list has no route {method} {path}, so it cannot be paid for"
            ),
        )
    })?;
    route.pricing.for_request(body).map_err(|why| {
        ApiError::invalid(
            StatusCode::BAD_REQUEST,
            "nullgate_request_not_priced",
            format!("the gateway cannot price this request: {why}"),
        )
    })
}

/// Pays for and sends the request, and turns the gateway's answer into the agent's.
async fn pay<P: Payer>(
    payer: &P,
    request: PaidRequest,
    stream: bool,
) -> Result<Response, ApiError> {
    let answer = payer
        .pay(request)
        .await
        .map_err(|error| ApiError::from_pay_error(&error))?;
    Ok(respond(answer, stream))
}

/// The agent's answer: the gateway's status, content type and body, with `cache-control:
/// no-cache` for a stream, and the charge and class in `x-nullgate-*` headers. No other
/// response header is passed on.
fn respond(answer: PaidResponse, stream: bool) -> Response {
    let PaidResponse {
        status,
        headers,
        body,
        receipt,
        class_cost,
    } = answer;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            })
        });
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, content_type);
    if stream {
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    out.insert(CHARGED, HeaderValue::from(receipt.charge));
    out.insert(CLASS, HeaderValue::from(class_cost));
    response
}

/// Any other method or path, in OpenAI's words for it.
async fn not_found(method: Method, uri: Uri) -> Response {
    ApiError::invalid(
        StatusCode::NOT_FOUND,
        "nullgate_unknown_url",
        format!(
            "Invalid URL ({method} {}): the nullgate proxy serves POST {CHAT} and GET {MODELS}",
            uri.path()
        ),
    )
    .into_response()
}

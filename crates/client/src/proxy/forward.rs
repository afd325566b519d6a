//! What every route does with a request: read the body, price it, sanitise it, pick the
//! class, pay, and answer with the gateway's status, content type and body.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::rejection::BytesRejection,
    http::{HeaderValue, Method, StatusCode, header},
    response::Response,
};
use nullgate_protocol::price::{PriceList, RequestPrice};
use serde_json::Value;

use super::{
    ProxyConfig,
    class::{self, Limits},
    error::{ApiError, Dialect},
    sanitize,
};
use crate::paid::{PaidRequest, PaidResponse, Payer};

/// The charge `Δ` of the call, from its receipt.
pub(super) const CHARGED: &str = "x-nullgate-charged";
/// `C_c`, the class the call was paid with.
pub(super) const CLASS: &str = "x-nullgate-class";

/// What every route shares: the core that pays, and the proxy's settings.
pub(super) struct App<P> {
    pub(super) payer: Arc<P>,
    pub(super) config: ProxyConfig,
}

/// How the proxy reads one JSON API whose cost is counted in tokens: what it strips, what
/// it refuses, and which fields bound the tokens the answer may use.
#[derive(Debug)]
pub(super) struct JsonApi {
    /// The route, as the agent calls it and as it is forwarded.
    pub(super) path: &'static str,
    /// What the body is, for error messages ("an OpenAI chat completions request").
    pub(super) what: &'static str,
    /// Body fields removed: identifiers of the end user, the caller's own tags, cache keys
    /// that link requests sharing them.
    pub(super) removed: &'static [&'static str],
    /// Fields refused (400) when present and not null, with why: they link the request to
    /// earlier ones at the provider.
    pub(super) refused: &'static [(&'static str, &'static str)],
    /// Whether the API keeps requests unless `"store": false` says otherwise.
    pub(super) store_false: bool,
    /// The fields that limit the completion tokens per choice (the largest one counts).
    pub(super) limit_fields: &'static [&'static str],
    /// Where the proxy writes the limit when the request leaves it open; `None` for an API
    /// that generates no tokens (embeddings).
    pub(super) set_limit: Option<&'static str>,
    /// The field giving the number of choices, if the API has one (`n`).
    pub(super) choices_field: Option<&'static str>,
}

/// A request ready to be paid for, and whether the agent asked for a stream.
pub(super) struct Prepared {
    pub(super) request: PaidRequest,
    pub(super) stream: bool,
}

/// A JSON API route: the whole of it, errors in `dialect`.
pub(super) async fn json_route<P: Payer>(
    app: Arc<App<P>>,
    api: &'static JsonApi,
    dialect: Dialect,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let body = read_body(body, &app.config)?;
        let prepared = prepare_json(&app, api, &body)?;
        let answer = pay(&*app.payer, prepared.request).await?;
        Ok::<_, ApiError>(respond(answer, prepared.stream))
    };
    answer
        .await
        .unwrap_or_else(|error| error.in_dialect(dialect))
}

/// The body, or a 413 naming the limit (400 if it could not be read).
pub(super) fn read_body(
    body: Result<Bytes, BytesRejection>,
    config: &ProxyConfig,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is larger than the proxy's limit of {} bytes",
                config.max_body_bytes
            )
        } else {
            "the request body could not be read".to_owned()
        };
        ApiError::invalid(status, "nullgate_body_unreadable", message)
    })
}

/// Prices, sanitises and classes a request of `api` whose body is `body`.
pub(super) fn prepare_json<P: Payer>(
    app: &App<P>,
    api: &JsonApi,
    body: &[u8],
) -> Result<Prepared, ApiError> {
    let list = app.payer.price_list();
    let price = priced(list, &Method::POST, api.path, body)?;
    let fields = sanitize::json_body(body, api)?;
    prepare_fields(app, api, price, fields)
}

/// Classes a request of `api` whose sanitised body is `fields`, priced at `price`; writes
/// the completion limit the class pays for when the request leaves it open.
pub(super) fn prepare_fields<P: Payer>(
    app: &App<P>,
    api: &JsonApi,
    price: RequestPrice,
    mut fields: serde_json::Map<String, Value>,
) -> Result<Prepared, ApiError> {
    let list = app.payer.price_list();
    let stream = fields.get("stream") == Some(&Value::Bool(true));
    let mut forwarded = sanitize::serialise(&fields);
    let limits = Limits::of(api, &fields, forwarded.len())?;
    let choice = class::choose(list, price, limits, app.config.default_max_tokens)?;
    if let (Some(limit), Some(field)) = (choice.set_max_tokens, api.set_limit) {
        fields.insert(field.to_owned(), Value::from(limit));
        forwarded = sanitize::serialise(&fields);
    }
    Ok(Prepared {
        request: PaidRequest {
            method: Method::POST,
            // Without the agent's query string: these routes take no query parameters, and
            // an SDK's (Azure's `api-version`, say) would tell it apart.
            path_and_query: api.path.to_owned(),
            headers: sanitize::forward_headers(list.signed_headers(), true),
            body: forwarded.into(),
            class_index: choice.class_index,
        },
        stream,
    })
}

/// The price of a request with `body` on `method path`, or a 404 saying the gateway does
/// not price the route (400 if it cannot price this body).
pub(super) fn priced(
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

/// Pays for and sends the request; the gateway's answer, its receipt checked.
pub(super) async fn pay<P: Payer>(
    payer: &P,
    request: PaidRequest,
) -> Result<PaidResponse, ApiError> {
    payer
        .pay(request)
        .await
        .map_err(|error| ApiError::from_pay_error(&error))
}

/// The agent's answer: the gateway's status, content type and body, with `cache-control:
/// no-cache` for a stream, and the charge and class in `x-nullgate-*` headers. No other
/// response header is passed on.
pub(super) fn respond(answer: PaidResponse, stream: bool) -> Response {
    let content_type = answer
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_static(if stream {
                "text/event-stream"
            } else {
                "application/json"
            })
        });
    answer_with(&answer, content_type, answer.body.clone(), stream)
}

/// An answer with `body` of `content_type` and the status and charge of `answer`.
pub(super) fn answer_with(
    answer: &PaidResponse,
    content_type: HeaderValue,
    body: Bytes,
    stream: bool,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = answer.status;
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, content_type);
    if stream {
        out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    out.insert(CHARGED, HeaderValue::from(answer.receipt.charge));
    out.insert(CLASS, HeaderValue::from(answer.class_cost));
    response
}

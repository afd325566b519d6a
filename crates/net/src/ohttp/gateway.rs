//! The gateway side: an `axum` router that serves the key configuration and opens
//! encapsulated requests for the service it fronts.

use std::{
    sync::{Arc, RwLock},
    time::Instant,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http_body_util::{BodyExt, Limited};
use tower::ServiceExt;

use super::{
    GATEWAY_PATH, KEYS_MEDIA_TYPE, KEYS_PATH, KeyRing, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE,
};
use crate::{HttpRequest, HttpResponse, NetError};

/// What the gateway side needs.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The keys (rotate through the lock).
    pub keys: Arc<RwLock<KeyRing>>,
    /// Authorities (`host[:port]`) an inner request may name; any other is refused.
    pub allowed_authorities: Vec<String>,
    /// Largest encapsulated request accepted, in bytes.
    pub max_request: usize,
    /// Largest inner response returned, in bytes.
    pub max_response: usize,
}

#[derive(Clone)]
struct GatewayState {
    config: GatewayConfig,
    inner: Router,
}

/// A router serving `GET /ohttp-keys` and `POST /ohttp` in front of `inner`.
///
/// Failures before a request is opened (wrong media type, unknown key id, undecryptable)
/// answer in the clear with 4xx; the key error uses RFC 9457's problem type `ohttp-key` so
/// that clients refetch the configuration. Once a request is opened, every answer —
/// including a refusal of its target — is sealed, so the relay learns nothing from it.
pub fn gateway_router(config: GatewayConfig, inner: Router) -> Router {
    let limit = config.max_request;
    Router::new()
        .route(KEYS_PATH, get(serve_keys))
        .route(GATEWAY_PATH, post(open_request))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(GatewayState { config, inner })
}

async fn serve_keys(State(state): State<GatewayState>) -> Response {
    let (body, max_age) = {
        let keys = state.config.keys.read().unwrap_or_else(|e| e.into_inner());
        (keys.served_body(), keys.max_age())
    };
    match body {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, KEYS_MEDIA_TYPE.to_owned()),
                (
                    header::CACHE_CONTROL,
                    format!("max-age={}", max_age.as_secs()),
                ),
            ],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn open_request(
    State(state): State<GatewayState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.get(header::CONTENT_TYPE) != Some(&HeaderValue::from_static(REQUEST_MEDIA_TYPE)) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected an encapsulated request (message/ohttp-req)",
        )
            .into_response();
    }
    let opened = {
        let keys = state.config.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.open(&body, Instant::now())
    };
    let (inner_bytes, sealer) = match opened {
        Ok(opened) => opened,
        Err(NetError::UnknownKeyId(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/problem+json")],
                r#"{"type":"https://iana.org/assignments/http-problem-types#ohttp-key","title":"key identifier unknown"}"#,
            )
                .into_response();
        }
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "the encapsulated request cannot be opened",
            )
                .into_response();
        }
    };
    let response = answer(&state, &inner_bytes).await;
    match sealer.seal(&response) {
        Ok(sealed) => ([(header::CONTENT_TYPE, RESPONSE_MEDIA_TYPE)], sealed).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The inner response to an opened request (a refusal is an inner response too).
async fn answer(state: &GatewayState, inner_bytes: &[u8]) -> HttpResponse {
    let request = match HttpRequest::from_bhttp(inner_bytes) {
        Ok(request) => request,
        Err(error) => return refusal(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    if !state
        .config
        .allowed_authorities
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(&request.authority))
    {
        return refusal(
            StatusCode::FORBIDDEN,
            "this gateway does not serve that target",
        );
    }
    let mut builder = Request::builder()
        .method(request.method.clone())
        .uri(request.path.as_str());
    if let Some(headers) = builder.headers_mut() {
        *headers = request.headers.clone();
        if let Ok(host) = HeaderValue::from_str(&request.authority) {
            headers.insert(header::HOST, host);
        }
    }
    let Ok(inner_request) = builder.body(Body::from(request.body.clone())) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "the inner request is not valid HTTP",
        );
    };
    let Ok(response) = state.inner.clone().oneshot(inner_request).await;
    let (parts, body) = response.into_parts();
    let collected = match Limited::new(body, state.config.max_response)
        .collect()
        .await
    {
        Ok(collected) => collected,
        Err(_) => return refusal(StatusCode::BAD_GATEWAY, "the response is too large"),
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    HttpResponse {
        status: parts.status,
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

fn refusal(status: StatusCode, message: &str) -> HttpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    HttpResponse {
        status,
        headers,
        body: Bytes::copy_from_slice(message.as_bytes()),
        trailers: HeaderMap::new(),
    }
}

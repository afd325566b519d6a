//! The relay: forwards opaque encapsulated requests to one gateway and the sealed answers
//! back, and nothing else.

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};

use super::{REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE};

/// What the relay needs.
#[derive(Clone)]
pub struct RelayConfig {
    /// The gateway's `POST /ohttp` URL: the only place the relay forwards to.
    pub gateway: reqwest::Url,
    /// Largest encapsulated request accepted, in bytes.
    pub max_request: usize,
}

#[derive(Clone)]
struct RelayState {
    config: RelayConfig,
    client: reqwest::Client,
}

/// A router that relays `POST /` to the gateway.
///
/// It forwards the body and its media type only: no client address, no header of the
/// client's, no cookie reaches the gateway, and it keeps no record of either side.
pub fn relay_router(config: RelayConfig) -> Router {
    let limit = config.max_request;
    Router::new()
        .route("/", post(relay))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(RelayState {
            config,
            client: reqwest::Client::new(),
        })
}

async fn relay(State(state): State<RelayState>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get(header::CONTENT_TYPE) != Some(&HeaderValue::from_static(REQUEST_MEDIA_TYPE)) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the relay forwards encapsulated requests (message/ohttp-req) only",
        )
            .into_response();
    }
    let forwarded = state
        .client
        .post(state.config.gateway.clone())
        .header(header::CONTENT_TYPE, REQUEST_MEDIA_TYPE)
        .body(body)
        .send()
        .await;
    let Ok(answer) = forwarded else {
        return (StatusCode::BAD_GATEWAY, "the gateway cannot be reached").into_response();
    };
    let status = answer.status();
    let media = answer.headers().get(header::CONTENT_TYPE).cloned();
    let Ok(body) = answer.bytes().await else {
        return (StatusCode::BAD_GATEWAY, "the gateway's answer broke off").into_response();
    };
    let mut response = (status, body).into_response();
    if let Some(media) = media.filter(|m| m == RESPONSE_MEDIA_TYPE || status.is_client_error()) {
        response.headers_mut().insert(header::CONTENT_TYPE, media);
    }
    response
}

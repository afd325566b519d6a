//! The relay: forwards opaque encapsulated requests to one gateway and the sealed answers
//! back, and the gateway's key configuration, so that clients fetch the key they seal to
//! without showing the gateway their address. Nothing else.

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};

use super::client::{MAX_KEY_CONFIGS, MAX_SEALED_RESPONSE, get_served_keys, read_limited};
use super::{KEYS_PATH, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE};

/// What the relay needs.
#[derive(Clone)]
pub struct RelayConfig {
    /// The gateway's `POST /ohttp` URL: the only place the relay forwards to (and, beside
    /// it, the gateway's `/ohttp-keys`).
    pub gateway: reqwest::Url,
    /// Largest encapsulated request accepted, in bytes.
    pub max_request: usize,
}

#[derive(Clone)]
struct RelayState {
    config: RelayConfig,
    client: reqwest::Client,
}

/// A router that relays `POST /` to the gateway, and `GET /ohttp-keys` to the gateway's
/// `/ohttp-keys` (the path beside its OHTTP endpoint).
///
/// It forwards the body and its media type only: no client address, no header of the
/// client's, no cookie reaches the gateway, and it keeps no record of either side.
pub fn relay_router(config: RelayConfig) -> Router {
    let limit = config.max_request;
    Router::new()
        .route("/", post(relay))
        .route(KEYS_PATH, get(relay_keys))
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
    let body = match read_limited(answer, MAX_SEALED_RESPONSE).await {
        Ok(body) => body,
        Err(crate::NetError::TooLarge { limit, .. }) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("the gateway's answer is larger than the relay carries ({limit} bytes)"),
            )
                .into_response();
        }
        Err(_) => {
            return (StatusCode::BAD_GATEWAY, "the gateway's answer broke off").into_response();
        }
    };
    let mut response = (status, body).into_response();
    if let Some(media) = media.filter(|m| m == RESPONSE_MEDIA_TYPE || status.is_client_error()) {
        response.headers_mut().insert(header::CONTENT_TYPE, media);
    }
    response
}

/// Passes the gateway's key configuration on, with its media type and `Cache-Control` (the
/// client keeps the key that long); the client checks it against its pin.
async fn relay_keys(State(state): State<RelayState>) -> Response {
    let Ok(url) = state.config.gateway.join(KEYS_PATH.trim_start_matches('/')) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "no key URL beside the gateway",
        )
            .into_response();
    };
    match get_served_keys(&state.client, url, "gateway", MAX_KEY_CONFIGS).await {
        Ok(served) => (StatusCode::OK, served.headers(), served.body).into_response(),
        // Said in the relay's own words: the gateway's address stays with the relay.
        Err(crate::NetError::Io { .. }) => {
            (StatusCode::BAD_GATEWAY, "the gateway cannot be reached").into_response()
        }
        Err(_) => (
            StatusCode::BAD_GATEWAY,
            "the gateway did not answer with a key configuration",
        )
            .into_response(),
    }
}

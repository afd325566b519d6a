//! A small upstream service on 127.0.0.1 shared by the transport tests.

// Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::{
    Router,
    body::Body,
    http::{HeaderMap, HeaderValue, Request},
    routing::{get, post},
};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

/// Headers each request arrived with, in order.
pub(crate) type Seen = Arc<Mutex<Vec<HeaderMap>>>;

/// An upstream that echoes `POST /echo` with a `nullgate-receipt` trailer and answers
/// `GET /hello`, recording the headers it sees.
pub(crate) fn upstream(seen: Seen) -> Router {
    let seen_echo = seen.clone();
    Router::new()
        .route(
            "/hello",
            get(move |request: Request<Body>| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(request.headers().clone());
                    "hello"
                }
            }),
        )
        .route(
            "/echo",
            post(move |request: Request<Body>| {
                let seen = seen_echo.clone();
                async move {
                    seen.lock().unwrap().push(request.headers().clone());
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let mut trailers = HeaderMap::new();
                    trailers.insert("nullgate-receipt", HeaderValue::from_static("r3c31pt"));
                    let frames = futures_util::stream::iter(vec![
                        Ok::<_, std::convert::Infallible>(Frame::data(body)),
                        Ok(Frame::trailers(trailers)),
                    ]);
                    Body::new(StreamBody::new(frames))
                }
            }),
        )
}

/// Serves `router` on an ephemeral port of 127.0.0.1 and returns its address.
pub(crate) async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

/// Serves an OHTTP gateway with `keys` in front of `inner`, allowing the authority
/// `provider.example:443`, and returns its address.
pub(crate) async fn serve_gateway(
    keys: Arc<std::sync::RwLock<nullgate_net::ohttp::KeyRing>>,
    inner: Router,
) -> std::net::SocketAddr {
    serve(nullgate_net::ohttp::gateway_router(
        nullgate_net::ohttp::GatewayConfig {
            keys,
            allowed_authorities: vec!["provider.example:443".into()],
            max_request: 1 << 20,
            max_response: 1 << 20,
        },
        inner,
    ))
    .await
}

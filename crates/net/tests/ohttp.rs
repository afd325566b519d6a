//! OHTTP end to end on 127.0.0.1: client → relay → gateway → upstream, and every rejection.

mod common;

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use nullgate_net::{
    HttpRequest, IsolationId, NetError, Transport,
    direct::DirectTransport,
    ohttp::{
        GATEWAY_PATH, KEYS_PATH, KeyRing, OhttpTransport, REQUEST_MEDIA_TYPE, RelayConfig,
        relay_router,
    },
};

struct Setup {
    keys: Arc<RwLock<KeyRing>>,
    gateway: std::net::SocketAddr,
    relay: reqwest::Url,
    seen: common::Seen,
}

const TARGET: &str = "provider.example:443";

async fn setup() -> Setup {
    let seen: common::Seen = Arc::new(Mutex::new(Vec::new()));
    let keys = Arc::new(RwLock::new(
        KeyRing::derive(
            1,
            b"test key one, 32 bytes of ikm!!!",
            Duration::from_secs(60),
        )
        .unwrap(),
    ));
    let gateway = common::serve_gateway(keys.clone(), common::upstream(seen.clone())).await;
    let relay = common::serve(relay_router(RelayConfig {
        gateway: format!("http://{gateway}{GATEWAY_PATH}").parse().unwrap(),
        max_request: 1 << 20,
    }))
    .await;
    Setup {
        keys,
        gateway,
        relay: format!("http://{relay}/").parse().unwrap(),
        seen,
    }
}

/// A client that fetched the gateway's key through the relay, pinned.
async fn client(setup: &Setup) -> OhttpTransport {
    let pinned = setup.keys.read().unwrap().served_hash().unwrap();
    OhttpTransport::through_relay(setup.relay.clone(), &pinned)
        .await
        .unwrap()
}

fn echo(body: &'static [u8]) -> HttpRequest {
    let mut request = HttpRequest::new(Method::POST, "https", TARGET, "/echo");
    request
        .headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    request.body = Bytes::from_static(body);
    request
}

#[tokio::test]
async fn round_trip_with_trailers_and_no_client_metadata() {
    let setup = setup().await;
    let transport = client(&setup).await;
    let response = transport
        .send(echo(b"{\"q\":1}"), IsolationId::fresh())
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], b"{\"q\":1}");
    assert_eq!(
        response.trailers.get("nullgate-receipt").unwrap(),
        "r3c31pt"
    );
    // The upstream saw exactly the client's headers plus Host: nothing the relay or the
    // client's HTTP stack would add (addresses, user agents, forwarding headers).
    let seen = setup.seen.lock().unwrap();
    let names: Vec<&str> = seen[0].keys().map(|n| n.as_str()).collect();
    assert_eq!(names, ["content-type", "host"]);
}

#[tokio::test]
async fn targets_outside_the_allowlist_are_refused_inside_the_seal() {
    let setup = setup().await;
    let transport = client(&setup).await;
    let mut request = echo(b"x");
    request.authority = "elsewhere.example:443".into();
    let response = transport.send(request, IsolationId::fresh()).await.unwrap();
    assert_eq!(response.status, StatusCode::FORBIDDEN);
    assert!(setup.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn unknown_key_ids_and_pins_are_rejected() {
    let setup = setup().await;
    // A configuration the gateway never had.
    let stranger = KeyRing::derive(
        7,
        b"another key entirely, 32 bytes!!",
        Duration::from_secs(1),
    )
    .unwrap();
    let transport =
        OhttpTransport::new(setup.relay.clone(), &stranger.served_body().unwrap(), None).unwrap();
    match transport.send(echo(b"x"), IsolationId::fresh()).await {
        Err(NetError::Unexpected { detail, .. }) => {
            assert!(
                detail.contains("400") && detail.contains("ohttp-key"),
                "{detail}"
            )
        }
        other => panic!("expected a key error, got {other:?}"),
    }
    // A configuration that does not match the pinned hash is refused before use.
    assert!(matches!(
        OhttpTransport::new(
            setup.relay.clone(),
            &stranger.served_body().unwrap(),
            Some(&[0; 32])
        ),
        Err(NetError::KeyConfigMismatch)
    ));
    // Fetched over any transport, or through the relay: the pin decides.
    let keys_request = HttpRequest::new(Method::GET, "http", &setup.gateway.to_string(), KEYS_PATH);
    assert!(matches!(
        OhttpTransport::fetch_key_configs(&DirectTransport, keys_request, Some(&[1; 32])).await,
        Err(NetError::KeyConfigMismatch)
    ));
    assert!(matches!(
        OhttpTransport::through_relay(setup.relay.clone(), &[1; 32]).await,
        Err(NetError::KeyConfigMismatch)
    ));
}

/// The relay passes the key configuration on unchanged, with its media type and max-age.
#[tokio::test]
async fn the_relay_serves_the_gateways_key_configuration() {
    let setup = setup().await;
    let (served, max_age) = {
        let keys = setup.keys.read().unwrap();
        (keys.served_body().unwrap(), keys.max_age())
    };
    let answer = reqwest::Client::new()
        .get(setup.relay.join("ohttp-keys").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/ohttp-keys");
    assert_eq!(
        answer.headers()["cache-control"].to_str().unwrap(),
        format!("max-age={}", max_age.as_secs())
    );
    assert_eq!(answer.bytes().await.unwrap(), served);

    // A relay whose gateway serves no key configuration says so; nothing is made up.
    let lost = common::serve(relay_router(RelayConfig {
        gateway: "http://127.0.0.1:9/ohttp".parse().unwrap(),
        max_request: 1 << 20,
    }))
    .await;
    let answer = reqwest::get(format!("http://{lost}/ohttp-keys"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert!(matches!(
        OhttpTransport::through_relay(format!("http://{lost}/").parse().unwrap(), &[0; 32]).await,
        Err(NetError::Unexpected { .. })
    ));
}

#[tokio::test]
async fn malformed_messages_are_rejected() {
    let setup = setup().await;
    let http = reqwest::Client::new();
    // Garbage with the right media type: the gateway cannot open it.
    let answer = http
        .post(setup.relay.clone())
        .header("content-type", REQUEST_MEDIA_TYPE)
        .body(vec![1u8, 0, 32, 0, 1, 0, 1, 9, 9, 9])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    // The wrong media type, at the relay and at the gateway.
    let answer = http
        .post(setup.relay.clone())
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = http
        .post(format!("http://{}{GATEWAY_PATH}", setup.gateway))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // An oversized body is refused before it is read whole.
    let answer = http
        .post(setup.relay.clone())
        .header("content-type", REQUEST_MEDIA_TYPE)
        .body(vec![1u8; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(setup.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_its_max_age_only() {
    let setup = setup().await;
    let old_client = client(&setup).await;
    let next = KeyRing::derive(
        2,
        b"test key two, 32 bytes of ikm!!!",
        Duration::from_secs(60),
    )
    .unwrap();
    setup.keys.write().unwrap().rotate(next, Instant::now());
    // A client still holding the old configuration is served within max-age.
    assert!(
        old_client
            .send(echo(b"a"), IsolationId::fresh())
            .await
            .is_ok()
    );
    // New clients get the new key.
    let new_client = client(&setup).await;
    assert!(
        new_client
            .send(echo(b"b"), IsolationId::fresh())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn retired_keys_expire_after_their_max_age() {
    // Rotate as if two minutes ago, with a max-age of 60 s: the old key is gone.
    let expired = setup().await;
    let old_client = client(&expired).await;
    let next = KeyRing::derive(
        2,
        b"test key two, 32 bytes of ikm!!!",
        Duration::from_secs(60),
    )
    .unwrap();
    let long_ago = Instant::now() - Duration::from_secs(120);
    expired.keys.write().unwrap().rotate(next, long_ago);
    assert!(
        old_client
            .send(echo(b"c"), IsolationId::fresh())
            .await
            .is_err()
    );
    assert!(
        client(&expired)
            .await
            .send(echo(b"d"), IsolationId::fresh())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn sealed_sizes_show_the_bucket_not_the_length() {
    let setup = setup().await;
    let transport = client(&setup).await;
    let gateway = format!("http://{}{GATEWAY_PATH}", setup.gateway);
    // (request bytes, response bytes) as the relay carries them, for an echo of `body`.
    let sizes = |body: &'static [u8]| {
        let sealed = transport.seal(&echo(body)).unwrap();
        let gateway = gateway.clone();
        async move {
            let sent = sealed.bytes.len();
            let answer = reqwest::Client::new()
                .post(gateway)
                .header("content-type", REQUEST_MEDIA_TYPE)
                .body(sealed.bytes.clone())
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let response = sealed.open_response(&answer).unwrap();
            assert_eq!(&response.body[..], body, "the echo, unpadded");
            (sent, answer.len())
        }
    };
    let short = sizes(b"{\"q\":\"hi\"}").await;
    let long = sizes(&[b'x'; 800]).await;
    assert_eq!(short, long, "two lengths in one bucket look the same");
    let longer = sizes(&[b'x'; 1500]).await;
    assert!(longer.0 > long.0 && longer.1 > long.1, "the next bucket");
}

#[tokio::test]
async fn a_long_lived_client_follows_a_rotation_pinned_on_chain() {
    let setup = setup().await;
    let transport = client(&setup).await;
    let old = setup.keys.read().unwrap().served_hash().unwrap();
    assert_eq!(transport.served_hash(), old);
    assert!(
        !transport.follow_gateway_keys(&old).await.unwrap(),
        "nothing to follow"
    );

    // The vault pins a key the gateway does not serve yet: the fetch is refused, and the
    // key in use stays (and still works).
    let next = KeyRing::derive(
        2,
        b"test key two, 32 bytes of ikm!!!",
        Duration::from_secs(60),
    )
    .unwrap();
    let new = next.served_hash().unwrap();
    assert!(matches!(
        transport.follow_gateway_keys(&new).await,
        Err(NetError::KeyConfigMismatch)
    ));
    assert_eq!(transport.served_hash(), old);
    assert!(
        transport
            .send(echo(b"a"), IsolationId::fresh())
            .await
            .is_ok()
    );

    // The gateway rotates: the client fetches the new key through the relay and seals to
    // it (the first byte of a sealed request names its key).
    setup.keys.write().unwrap().rotate(next, Instant::now());
    assert!(transport.follow_gateway_keys(&new).await.unwrap());
    assert_eq!(transport.served_hash(), new);
    assert_eq!(transport.seal(&echo(b"b")).unwrap().bytes[0], 2);
    let response = transport
        .send(echo(b"b"), IsolationId::fresh())
        .await
        .unwrap();
    assert_eq!(&response.body[..], b"b");
}

#[tokio::test]
async fn the_relay_reads_a_bounded_answer_from_the_gateway() {
    // A "gateway" that answers every sealed request with 17 MiB.
    let huge = axum::Router::new().route(
        GATEWAY_PATH,
        axum::routing::post(|| async {
            ([("content-type", "message/ohttp-res")], vec![0u8; 17 << 20])
        }),
    );
    let gateway = common::serve(huge).await;
    let relay = common::serve(relay_router(RelayConfig {
        gateway: format!("http://{gateway}{GATEWAY_PATH}").parse().unwrap(),
        max_request: 1 << 20,
    }))
    .await;
    let answer = reqwest::Client::new()
        .post(format!("http://{relay}/"))
        .header("content-type", REQUEST_MEDIA_TYPE)
        .body(vec![1u8; 100])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let text = answer.text().await.unwrap();
    assert!(text.contains("larger than the relay carries"), "{text}");
}

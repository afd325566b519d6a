//! `nullgate fetch`: one request through a chosen transport, against servers on 127.0.0.1
//! started by the test (an OHTTP relay and gateway from nullgate-net in front of an echo
//! service). The mixnet path is exercised in `mixnet_commands.rs` with real node processes.

mod common;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use common::nullgate;
use nullgate_net::ohttp::{
    GATEWAY_PATH, GatewayConfig, KeyRing, RelayConfig, gateway_router, relay_router,
};

/// Serves `router` on a free port of 127.0.0.1; returns the address.
async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

fn echo() -> axum::Router {
    axum::Router::new()
        .route(
            "/echo",
            axum::routing::post(|body: Bytes| async move { ([("x-echo", "yes")], body) }),
        )
        .route("/hello", axum::routing::get(|| async { "hello" }))
}

/// Runs `nullgate fetch ARGS` off the runtime's threads; returns (success, stdout, stderr).
async fn fetch(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = nullgate().arg("fetch").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_warns_that_it_hides_nothing() {
    let target = serve(echo()).await;
    let (ok, out, err) = fetch(strings(&[
        "--via",
        "direct",
        "-i",
        "-d",
        "ping",
        &format!("http://{target}/echo"),
    ]))
    .await;
    assert!(ok, "{err}");
    assert!(err.contains("WARNING: --via direct hides nothing"), "{err}");
    assert!(out.starts_with("200 OK\n"), "{out}");
    assert!(out.contains("x-echo: yes\n"), "{out}");
    assert!(out.ends_with("\n\nping"), "{out}");

    // An unsuccessful answer is printed and makes the command fail.
    let (ok, _, err) = fetch(strings(&[
        "--via",
        "direct",
        &format!("http://{target}/none"),
    ]))
    .await;
    assert!(!ok);
    assert!(err.contains("the target answered 404"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ohttp_fetches_the_key_through_the_relay_and_checks_its_hash() {
    let keys = KeyRing::derive(
        4,
        b"cli fetch test key, 32 bytes!!!!",
        Duration::from_secs(60),
    )
    .unwrap();
    let hash = hex::encode(keys.served_hash().unwrap());
    let gateway = serve(gateway_router(
        GatewayConfig {
            keys: Arc::new(RwLock::new(keys)),
            allowed_authorities: vec!["provider.example:443".into()],
            max_request: 1 << 20,
            max_response: 1 << 20,
        },
        echo(),
    ))
    .await;
    let relay = serve(relay_router(RelayConfig {
        gateway: format!("http://{gateway}{GATEWAY_PATH}").parse().unwrap(),
        max_request: 1 << 20,
    }))
    .await;
    let relay = format!("http://{relay}/");
    let call = |extra: &[&str]| {
        let mut args = strings(&["--via", "ohttp", "-d", "a private question"]);
        args.extend(strings(extra));
        args.push("https://provider.example/echo".into());
        fetch(args)
    };

    let (ok, out, err) = call(&["--relay", &relay, "--keys-hash", &hash]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "a private question");
    assert!(!err.contains("WARNING"), "{err}");

    // Another hash: the key the relay hands over is refused, nothing is sent.
    let other = format!("00{}", &hash[2..]);
    let (ok, _, err) = call(&["--relay", &relay, "--keys-hash", &other]).await;
    assert!(!ok);
    assert!(err.contains("pinned"), "{err}");

    // What is missing or malformed is named, with what to give.
    let (ok, _, err) = call(&["--relay", &relay]).await;
    assert!(!ok && err.contains("--keys-hash HEX"), "{err}");
    let (ok, _, err) = call(&["--keys-hash", &hash]).await;
    assert!(!ok && err.contains("--relay URL"), "{err}");
    let (ok, _, err) = call(&["--relay", &relay, "--keys-hash", "12"]).await;
    assert!(!ok && err.contains("64 hex digits"), "{err}");
    let (ok, _, err) = call(&["--relay", &relay, "--keys-hash", &hash, "-H", "no colon"]).await;
    assert!(!ok && err.contains("is not `Name: value`"), "{err}");
}

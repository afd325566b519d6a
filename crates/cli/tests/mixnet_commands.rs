//! `nullgate mixnet init`, `nullgate directory` and `nullgate mixnode` as separate processes
//! on 127.0.0.1, carrying one call from a library client through an exit to a real OHTTP
//! gateway; and the settings-file errors an operator meets.

use std::process::Stdio;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use nullgate_net::{
    HttpRequest, IsolationId, Transport,
    mixnet::{
        authority::{AuthoritySettings, fetch_directory},
        client::{GatewayKeys, MixnetClient, MixnetConfig},
        link::LinkKeypair,
    },
    ohttp::{GatewayConfig, KeyRing, gateway_router},
};

mod common;
use common::{Children, free_ports, nullgate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_crosses_a_mixnet_of_separate_processes() {
    let dir = std::env::temp_dir().join(format!("nullgate-mixnet-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);

    // The gateway the exit may forward to: a real OHTTP gateway over an echo service.
    let keys = Arc::new(RwLock::new(
        KeyRing::derive(
            3,
            b"cli mixnet key, 32 bytes of ikm!",
            Duration::from_secs(60),
        )
        .unwrap(),
    ));
    let inner = axum::Router::new().route(
        "/echo",
        axum::routing::post(|body: Bytes| async move { body }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}", listener.local_addr().unwrap());
    let router = gateway_router(
        GatewayConfig {
            keys: keys.clone(),
            allowed_authorities: vec!["provider.example:443".into()],
            max_request: 1 << 20,
            max_response: 1 << 20,
        },
        inner,
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let base = free_ports(4);
    let out = nullgate()
        .args(["mixnet", "init", "--base-port", &base.to_string()])
        .args(["--allow", &gateway, "--delay-cap-ms", "50"])
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("node-0-0.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "secrets are readable by the owner only"
        );
    }

    let mut children = Children(Vec::new());
    let spawn = |args: &[&str], config: &std::path::Path| {
        nullgate()
            .args(args)
            .arg("--config")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    children
        .0
        .push(spawn(&["directory"], &dir.join("directory.json")));
    for layer in 0..3 {
        children.0.push(spawn(
            &["mixnode"],
            &dir.join(format!("node-{layer}-0.json")),
        ));
    }

    let settings: AuthoritySettings =
        serde_json::from_slice(&std::fs::read(dir.join("directory.json")).unwrap()).unwrap();
    let http = reqwest::Client::new();
    let authority_url = format!("http://{}", settings.listen);
    let started = std::time::Instant::now();
    let directory = loop {
        match fetch_directory(&http, &authority_url, &settings.verifying_key()).await {
            Ok(directory) => break directory,
            Err(error) if started.elapsed() > Duration::from_secs(60) => {
                panic!("no directory after 60 s: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    // The nodes fetched the directory too before serving; give them a moment to bind.
    // The client fetches the gateway's key configuration through the mixnet, pinned.
    let hash = keys.read().unwrap().served_hash().unwrap();
    let client = loop {
        match MixnetClient::connect(
            MixnetConfig::loopback(),
            directory.clone(),
            LinkKeypair::generate().unwrap(),
            &gateway,
            GatewayKeys::Fetch { pinned_hash: hash },
        )
        .await
        {
            Ok(client) => break client,
            Err(error) if started.elapsed() > Duration::from_secs(60) => {
                panic!("cannot reach the entry: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let mut request = HttpRequest::new(Method::POST, "https", "provider.example:443", "/echo");
    request.body = Bytes::from_static(b"across four processes");
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        client.send(request, IsolationId::fresh()),
    )
    .await
    .expect("bounded in time")
    .unwrap();
    assert_eq!(response.body, Bytes::from_static(b"across four processes"));

    // The same through `nullgate fetch`, a fifth process, with the deployment's timing.
    let mut fetch = nullgate();
    fetch
        .args(["fetch", "--via", "mixnet", "--authority", &authority_url])
        .args([
            "--authority-key",
            &hex::encode(settings.verifying_key().as_bytes()),
        ])
        .args(["--gateway", &gateway, "--keys-hash", &hex::encode(hash)])
        .args([
            "-d",
            "from the command line",
            "https://provider.example/echo",
        ]);
    let out = tokio::task::spawn_blocking(move || fetch.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"from the command line");
    drop(children);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_settings_files_are_refused_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("nullgate-mixnet-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, b"{\"listen\": 5}").unwrap();
    for command in ["directory", "mixnode"] {
        let out = nullgate()
            .arg(command)
            .arg("--config")
            .arg(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not a valid settings file"), "{stderr}");
    }
    let out = nullgate()
        .args(["mixnode", "--config"])
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

//! The SOCKS5 transport against a SOCKS5 server started by the test on 127.0.0.1, which
//! records the credentials each tunnel used.

mod common;
#[path = "common/socks_server.rs"]
mod socks_server;

use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use nullgate_net::{HttpRequest, IsolationId, Transport, socks::Socks5Transport};
use socks_server::{Tunnels, socks_server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

#[tokio::test]
async fn requests_go_through_the_proxy_with_per_call_isolation() {
    let seen: common::Seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = common::serve(common::upstream(seen.clone())).await;
    let tunnels: Tunnels = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks_server(tunnels.clone()).await;
    let transport = Socks5Transport::new(proxy);

    let request = HttpRequest::new(Method::GET, "http", &upstream.to_string(), "/hello");
    let first = transport
        .send(request.clone(), IsolationId(1))
        .await
        .unwrap();
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(&first.body[..], b"hello");
    transport
        .send(request.clone(), IsolationId(2))
        .await
        .unwrap();
    transport.send(request, IsolationId(1)).await.unwrap();

    let usernames: Vec<String> = tunnels
        .lock()
        .unwrap()
        .iter()
        .map(|t| t.user.clone())
        .collect();
    assert_eq!(usernames.len(), 3, "one tunnel per call");
    assert_ne!(
        usernames[0], usernames[1],
        "different isolation, different credentials"
    );
    assert_eq!(
        usernames[0], usernames[2],
        "same isolation, same credentials"
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn an_unreachable_proxy_is_an_error_not_a_panic() {
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = unused.local_addr().unwrap();
    drop(unused);
    let transport = Socks5Transport::new(address);
    let request = HttpRequest::new(Method::GET, "http", "127.0.0.1:9", "/");
    assert!(transport.send(request, IsolationId(1)).await.is_err());
    // Schemes other than http and https are refused before connecting.
    let request = HttpRequest::new(Method::GET, "ftp", "127.0.0.1:9", "/");
    assert!(matches!(
        transport.send(request, IsolationId(1)).await,
        Err(nullgate_net::NetError::Unexpected { peer: "target", .. })
    ));
}

/// An HTTPS server on 127.0.0.1 with a fresh self-signed certificate for `localhost`; it
/// answers every request with `secret answer`. Returns its port and the certificate (DER).
async fn tls_server() -> (u16, Vec<u8>) {
    use std::sync::Arc;

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let der = certified.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.key_pair.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone().into()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\nsecret answer",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, der)
}

#[tokio::test]
async fn https_runs_tls_end_to_end_through_the_tunnel() {
    let (port, certificate) = tls_server().await;
    let tunnels: Tunnels = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks_server(tunnels.clone()).await;
    let request = HttpRequest::new(
        Method::GET,
        "https",
        &format!("localhost:{port}"),
        "/secret",
    );

    // Trusting the server's certificate: the call succeeds over TLS inside the tunnel.
    let roots = nullgate_net::TlsRoots::only(&[certificate]).unwrap();
    let transport = Socks5Transport::with_roots(proxy, roots);
    let response = transport
        .send(request.clone(), IsolationId(7))
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(&response.body[..], b"secret answer");

    // With the public roots, the self-signed certificate is refused: TLS is really checked.
    let public = Socks5Transport::new(proxy);
    let refused = public.send(request, IsolationId(8)).await;
    assert!(
        matches!(
            &refused,
            Err(nullgate_net::NetError::Io {
                peer: "target (TLS)",
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        tunnels.lock().unwrap().len(),
        2,
        "both went through the proxy"
    );
}

//! The mixnet as a transport, on sockets: a client on a Noise link to its entry, three
//! layers of two nodes, exits beside the last layer, and a real OHTTP gateway in front of an
//! upstream service, all on 127.0.0.1.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use nullgate_net::{
    HttpRequest, IsolationId, NetError, Transport,
    mixnet::{
        client::{GatewayKeys, MixnetClient, MixnetConfig},
        directory::Directory,
        harness::{Harness, HarnessConfig},
    },
    ohttp::KeyRing,
};

const TARGET: &str = "provider.example:443";

struct Setup {
    net: Harness,
    gateway: String,
    rpc: String,
    keys: Arc<RwLock<KeyRing>>,
    seen: common::Seen,
}

async fn setup(config: &MixnetConfig, seed: u64) -> Setup {
    let seen: common::Seen = Arc::new(Mutex::new(Vec::new()));
    let keys = Arc::new(RwLock::new(
        KeyRing::derive(
            1,
            b"mixnet test key, 32 bytes ikm!!!",
            Duration::from_secs(60),
        )
        .unwrap(),
    ));
    let address = common::serve_gateway(keys.clone(), common::upstream(seen.clone())).await;
    let gateway = format!("http://{address}");
    let rpc = format!("http://{}/rpc", common::serve(json_rpc()).await);
    let net = Harness::start(HarnessConfig {
        per_layer: 2,
        format: config.format,
        frame_len: config.frame_len,
        clients: 2,
        allowlist: vec![gateway.clone()],
        rpc_allowlist: vec![rpc.clone()],
        exit_delay: Duration::from_millis(1),
        delay_cap: Duration::from_millis(100),
        seed,
    })
    .await
    .unwrap();
    Setup {
        net,
        gateway,
        rpc,
        keys,
        seen,
    }
}

/// A JSON-RPC endpoint answering `eth_chainId` (31337) at `POST /rpc`.
fn json_rpc() -> axum::Router {
    axum::Router::new().route(
        "/rpc",
        axum::routing::post(|body: Bytes| async move {
            let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let answer = match call["method"].as_str() {
                Some("eth_chainId") => {
                    serde_json::json!({"jsonrpc": "2.0", "id": call["id"], "result": "0x7a69"})
                }
                _ => serde_json::json!({"jsonrpc": "2.0", "id": call["id"],
                    "error": {"code": -32601, "message": "method not found"}}),
            };
            (
                [("content-type", "application/json")],
                serde_json::to_vec(&answer).unwrap(),
            )
        }),
    )
}

async fn client(setup: &Setup, config: MixnetConfig, index: usize, gateway: &str) -> MixnetClient {
    // The client verifies the signed directory before using it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let directory =
        Directory::verify(setup.net.signed_directory(), &setup.net.authority(), now).unwrap();
    let (body, hash) = {
        let keys = setup.keys.read().unwrap();
        (keys.served_body().unwrap(), keys.served_hash().unwrap())
    };
    MixnetClient::connect(
        config,
        directory,
        setup.net.client_key(index).unwrap(),
        gateway,
        GatewayKeys::Known {
            body: &body,
            pinned_hash: Some(&hash),
        },
    )
    .await
    .unwrap()
}

fn echo(body: Vec<u8>) -> HttpRequest {
    let mut request = HttpRequest::new(Method::POST, "https", TARGET, "/echo");
    request
        .headers
        .insert("content-type", HeaderValue::from_static("application/json"));
    request.body = Bytes::from(body);
    request
}

/// Sends an echo of `body` through `client`; the answer must be `body`.
async fn assert_echoed(client: &MixnetClient, body: &'static [u8]) {
    let response = client
        .send(echo(body.to_vec()), IsolationId::fresh())
        .await
        .unwrap();
    assert_eq!(response.body, Bytes::from_static(body));
}

fn contains(haystack: &str, needle: &str) -> bool {
    haystack.contains(needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cross_the_mixnet_and_the_exit_never_learns_the_client() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = MixnetConfig::loopback();
        let setup = setup(&config, 1).await;
        let client = client(&setup, config, 0, &setup.gateway).await;

        // A request larger than one packet, so it travels in several fragments.
        let body = b"a private question; ".repeat(400);
        let response = client
            .send(echo(body.clone()), IsolationId::fresh())
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body, Bytes::from(body.clone()));
        assert_eq!(
            response.trailers.get("nullgate-receipt").unwrap(),
            "r3c31pt",
            "the receipt trailer survives the trip"
        );
        for _ in 0..3 {
            assert_echoed(&client, b"again").await;
        }
        assert_eq!(setup.seen.lock().unwrap().len(), 4, "four calls upstream");

        // What the exits recorded: the target and sizes, never the client's key or port.
        let records = setup.net.exit_records();
        assert_eq!(records.len(), 4);
        let client_key = hex::encode(setup.net.client_key(0).unwrap().public());
        for record in &records {
            assert_eq!(record.target, setup.gateway);
            assert_eq!(record.outcome, "forwarded");
            let text = format!("{record:?}");
            assert!(!contains(&text, &client_key));
            assert!(!contains(&text, "private question"));
        }
        assert!(records.iter().any(|r| r.request_bytes > 8000));
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_refuses_targets_outside_its_allowlist() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = MixnetConfig::loopback();
        let setup = setup(&config, 2).await;
        let client = client(&setup, config, 0, "http://127.0.0.1:9").await;
        let error = client
            .send(echo(b"x".to_vec()), IsolationId::fresh())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, NetError::Unexpected { detail, .. } if detail.contains("allowlist")),
            "{error}"
        );
        let records = setup.net.exit_records();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].outcome, "refused: not allowlisted");
        assert!(
            setup.seen.lock().unwrap().is_empty(),
            "nothing reached upstream"
        );
    })
    .await
    .expect("bounded in time");
}

/// The gateway's key configuration fetched through the mixnet: used when it matches the pin,
/// refused when it does not (an exit could serve a key of its own) and when the gateway is
/// not allowlisted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_key_is_fetched_through_the_mixnet_and_must_match_its_pin() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = MixnetConfig::loopback();
        let setup = setup(&config, 3).await;
        let directory = Directory::verify(
            setup.net.signed_directory(),
            &setup.net.authority(),
            nullgate_net::mixnet::epoch::EpochClock::now().as_secs(),
        )
        .unwrap();
        let hash = setup.keys.read().unwrap().served_hash().unwrap();
        let connect = |gateway: String, pinned_hash: [u8; 32]| {
            let (directory, key) = (directory.clone(), setup.net.client_key(0).unwrap());
            async move {
                MixnetClient::connect(
                    config,
                    directory,
                    key,
                    &gateway,
                    GatewayKeys::Fetch { pinned_hash },
                )
                .await
            }
        };

        let client = connect(setup.gateway.clone(), hash).await.unwrap();
        assert_echoed(&client, b"sealed to a fetched key").await;

        // The gateway rotates (its old key retired at once) and the vault pins the new one:
        // the client fetches it through the mixnet and seals to it.
        assert!(!client.follow_gateway_keys(&hash).await.unwrap());
        let next = KeyRing::derive(
            9,
            b"mixnet test key two, 32 bytes!!!",
            Duration::from_secs(60),
        )
        .unwrap();
        let rotated = next.served_hash().unwrap();
        setup
            .keys
            .write()
            .unwrap()
            .rotate(next, std::time::Instant::now() - Duration::from_secs(120));
        assert!(client.follow_gateway_keys(&rotated).await.unwrap());
        assert_echoed(&client, b"sealed to the new key").await;
        drop(client);

        let mut other = hash;
        other[0] ^= 1;
        // Keys taken later, once the pin is read (through the mixnet too): no call leaves
        // before, and a body that does not hash to the pin is refused.
        let later = MixnetClient::connect(
            config,
            directory.clone(),
            setup.net.client_key(0).unwrap(),
            &setup.gateway,
            GatewayKeys::Later,
        )
        .await
        .unwrap();
        let error = later
            .send(echo(b"too early".to_vec()), IsolationId::fresh())
            .await;
        assert!(
            matches!(&error, Err(NetError::BadMessage(m)) if m.contains("pin")),
            "{error:?}"
        );
        let error = later.follow_gateway_keys(&other).await.unwrap_err();
        assert!(matches!(error, NetError::KeyConfigMismatch), "{error}");
        assert!(later.follow_gateway_keys(&rotated).await.unwrap());
        assert!(!later.follow_gateway_keys(&rotated).await.unwrap());
        assert_echoed(&later, b"sealed to a key taken later").await;
        drop(later);

        let error = connect(setup.gateway.clone(), other).await.err().unwrap();
        assert!(matches!(error, NetError::KeyConfigMismatch), "{error}");

        let error = connect("http://127.0.0.1:9".into(), hash)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, NetError::Unexpected { detail, .. } if detail.contains("allowlist")),
            "{error}"
        );
        let outcomes: Vec<String> = setup
            .net
            .exit_records()
            .into_iter()
            .map(|record| record.outcome)
            .collect();
        assert_eq!(
            outcomes.iter().filter(|o| *o == "forwarded").count(),
            8,
            "five key fetches and three calls: {outcomes:?}"
        );
        assert!(outcomes.contains(&"refused: not allowlisted".to_owned()));
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_reads_go_through_an_exit_to_allowlisted_json_rpc_endpoints_only() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = MixnetConfig::loopback();
        let setup = setup(&config, 4).await;
        let client = client(&setup, config, 0, &setup.gateway).await;
        let authority = setup
            .rpc
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        let read = |path: &str| {
            let mut request = HttpRequest::new(Method::POST, "http", authority, path);
            request
                .headers
                .insert("content-type", HeaderValue::from_static("application/json"));
            request.body = Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}"#,
            );
            request
        };
        let response = client
            .rpc(&setup.rpc)
            .send(read("/rpc"), IsolationId::fresh())
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(answer["result"], "0x7a69");
        assert_eq!(answer["id"], 7);

        // An endpoint the exits do not allowlist, and a request for another path than the
        // allowlisted URL, are refused.
        let other = format!("http://{authority}/other");
        let refused = client
            .rpc(&other)
            .send(read("/other"), IsolationId::fresh())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("allowlist"), "{refused}");
        let mismatched = client
            .rpc(&setup.rpc)
            .send(read("/other"), IsolationId::fresh())
            .await
            .unwrap_err();
        assert!(
            mismatched
                .to_string()
                .contains("exactly the allowlisted URL"),
            "{mismatched}"
        );
        let outcomes: Vec<String> = setup
            .net
            .exit_records()
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(outcomes.iter().filter(|o| *o == "forwarded").count(), 1);
        assert!(
            setup.seen.lock().unwrap().is_empty(),
            "nothing went to the gateway"
        );
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_sends_cover_traffic_and_its_loops_come_back() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = MixnetConfig {
            loop_gap: Duration::from_millis(20),
            ..MixnetConfig::loopback()
        };
        let setup = setup(&config, 3).await;
        let client = client(&setup, config, 1, &setup.gateway).await;
        // Bounded by the test's timeout: loops come back and drops flow.
        while client.metrics.loops_returned.load(Ordering::Relaxed) < 5
            || client.metrics.drops.load(Ordering::Relaxed) <= 20
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(client.metrics.real.load(Ordering::Relaxed), 0);
        // Drops reach the exits and are discarded there: no request, no record.
        assert!(setup.net.exit_records().is_empty());
    })
    .await
    .expect("bounded in time");
}

/// A mixnet as the commands run it: the authority (`nullgate directory`'s code) and three
/// `start_mixnode` nodes (`nullgate mixnode`'s), the last with an exit, in front of a gateway.
struct RealMixnet {
    nodes: Vec<nullgate_net::mixnet::mixnode::Mixnode>,
    /// A second middle node the authority lists but that has not started (see `late`).
    late: Option<(
        nullgate_net::mixnet::mixnode::MixnodeSettings,
        tokio::net::TcpListener,
    )>,
    authority_url: String,
    authority: ed25519_dalek::VerifyingKey,
    gateway: String,
    keys: Arc<RwLock<KeyRing>>,
    seen: common::Seen,
}

async fn real_mixnet(epoch_seconds: u64, grace_ms: u64, late: bool) -> RealMixnet {
    use ed25519_dalek::SigningKey;
    use nullgate_net::mixnet::{
        authority::{AuthorityConfig, NodeRecord, authority_router},
        epoch::EpochClock,
        mixnode::{ExitSettings, MixnodeSettings, start_mixnode},
    };

    let seen: common::Seen = Arc::new(Mutex::new(Vec::new()));
    let keys = Arc::new(RwLock::new(
        KeyRing::derive(
            2,
            b"mixnode test key, 32 bytes ikm!!",
            Duration::from_secs(3600),
        )
        .unwrap(),
    ));
    let gateway = format!(
        "http://{}",
        common::serve_gateway(keys.clone(), common::upstream(seen.clone())).await
    );
    let authority = SigningKey::from_bytes(&[77; 32]);
    let genesis = EpochClock::now().as_secs() - 10;
    let mut listeners = Vec::new();
    let mut settings = Vec::new();
    let layers: &[u8] = if late { &[0, 1, 2, 1] } else { &[0, 1, 2] };
    for (index, layer) in layers.iter().copied().enumerate() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let index = index as u8;
        settings.push(MixnodeSettings {
            listen: listener.local_addr().unwrap(),
            layer: usize::from(layer),
            address: [index + 1; 32],
            link_secret: [index + 10; 32],
            identity_secret: [index + 20; 32],
            key_seed: [index + 30; 32],
            authority_url: String::new(),
            authority_key: authority.verifying_key().to_bytes(),
            genesis,
            epoch_seconds,
            grace_ms,
            payload_size: 2048,
            frame_len: MixnetConfig::loopback().frame_len,
            queue_capacity: 1024,
            delay_cap_ms: 100,
            exit: (layer == 2).then(|| ExitSettings {
                allowlist: vec![gateway.clone()],
                rpc_allowlist: Vec::new(),
                processing_delay_ms: 1,
            }),
        });
        listeners.push(listener);
    }
    let authority_url = format!(
        "http://{}",
        common::serve(authority_router(AuthorityConfig {
            signing: authority.clone(),
            clock: settings[0].clock(),
            nodes: settings
                .iter()
                .map(|s| NodeRecord {
                    layer: s.layer,
                    address: s.address,
                    endpoint: s.listen.to_string(),
                    link_key: s.link_key(),
                    identity: s.identity(),
                })
                .collect(),
        }))
        .await
    );
    let mut pairs: Vec<_> = settings
        .into_iter()
        .zip(listeners)
        .map(|(mut s, listener)| {
            s.authority_url = authority_url.clone();
            (s, listener)
        })
        .collect();
    let late = late.then(|| pairs.pop().unwrap());
    let starts: Vec<_> = pairs
        .into_iter()
        .map(|(s, listener)| tokio::spawn(start_mixnode(s, listener)))
        .collect();
    let mut nodes = Vec::new();
    for start in starts {
        nodes.push(start.await.unwrap().unwrap());
    }
    RealMixnet {
        nodes,
        late,
        authority_url,
        authority: authority.verifying_key(),
        gateway,
        keys,
        seen,
    }
}

impl RealMixnet {
    /// A client with a fresh key (the entry serves anonymous clients), routing by the
    /// authority's current directory.
    async fn client(&self, config: MixnetConfig) -> MixnetClient {
        use nullgate_net::mixnet::{authority::fetch_directory, link::LinkKeypair};

        let http = reqwest::Client::new();
        let directory = fetch_directory(&http, &self.authority_url, &self.authority)
            .await
            .unwrap();
        // The key configuration comes through the mixnet too, checked against its hash.
        let hash = self.keys.read().unwrap().served_hash().unwrap();
        MixnetClient::connect(
            config,
            directory,
            LinkKeypair::generate().unwrap(),
            &self.gateway,
            GatewayKeys::Fetch { pinned_hash: hash },
        )
        .await
        .unwrap()
    }
}

/// The nodes announce their keys, learn each other from the signed directory, and carry a
/// call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixnodes_bootstrap_from_the_directory_authority_and_carry_calls() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let net = real_mixnet(3600, 1000, false).await;
        let client = net.client(MixnetConfig::loopback()).await;
        assert_echoed(&client, b"through real mixnodes").await;
        assert_eq!(net.seen.lock().unwrap().len(), 1);
        // Six hops: every node forwarded or delivered.
        for node in &net.nodes {
            let forwarded = node.metrics.forwarded.load(Ordering::Relaxed);
            let delivered = node.metrics.delivered.load(Ordering::Relaxed);
            assert!(forwarded + delivered > 0);
        }
    })
    .await
    .expect("bounded in time");
}

/// Nodes rotate their keys every epoch (2 s here). A client following the authority keeps
/// working across epochs; one routing by a stale directory is dropped once the grace period
/// of its keys is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_following_the_authority_keeps_working_across_key_epochs() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let net = real_mixnet(2, 500, false).await;
        let config = MixnetConfig {
            reply_timeout: Duration::from_secs(2),
            attempts: 1,
            ..MixnetConfig::loopback()
        };
        let mut following = net.client(config).await;
        following.follow_authority(&net.authority_url, net.authority);
        let stale = net.client(config).await;
        let first_epoch = following.epoch().unwrap();
        for client in [&following, &stale] {
            assert_echoed(client, b"epoch one").await;
        }
        // Two boundaries later, past the grace period.
        while following.epoch().unwrap() < first_epoch + 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_echoed(&following, b"epoch three").await;
        assert!(
            stale
                .send(echo(b"stale".to_vec()), IsolationId::fresh())
                .await
                .is_err(),
            "packets under an expired epoch's keys are dropped"
        );
        assert_eq!(stale.epoch(), Some(first_epoch));
    })
    .await
    .expect("bounded in time");
}

/// An answer that does not arrive in time: the call is sent again, whole, with fresh
/// fragments and reply blocks, and the second attempt's answer is the one returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_an_answer_in_time_is_sent_again() {
    use std::sync::atomic::AtomicUsize;

    tokio::time::timeout(Duration::from_secs(60), async {
        let config = MixnetConfig {
            reply_timeout: Duration::from_millis(1500),
            attempts: 4,
            ..MixnetConfig::loopback()
        };
        let keys = Arc::new(RwLock::new(
            KeyRing::derive(
                4,
                b"retry test key, 32 bytes of ikm!",
                Duration::from_secs(60),
            )
            .unwrap(),
        ));
        // The upstream answers its first request only after 4 s, later ones at once.
        let count = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let upstream = axum::Router::new().route(
            "/echo",
            axum::routing::post(move |body: Bytes| {
                let seen = Arc::clone(&seen);
                async move {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        tokio::time::sleep(Duration::from_secs(4)).await;
                    }
                    body
                }
            }),
        );
        let gateway = format!(
            "http://{}",
            common::serve_gateway(keys.clone(), upstream).await
        );
        let net = Harness::start(HarnessConfig {
            per_layer: 1,
            format: config.format,
            frame_len: config.frame_len,
            clients: 1,
            allowlist: vec![gateway.clone()],
            rpc_allowlist: Vec::new(),
            exit_delay: Duration::ZERO,
            delay_cap: Duration::from_millis(100),
            seed: 5,
        })
        .await
        .unwrap();
        let setup = Setup {
            net,
            gateway: gateway.clone(),
            rpc: String::new(),
            keys,
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let client = client(&setup, config, 0, &gateway).await;
        assert_echoed(&client, b"eventually").await;
        assert!(client.metrics.retries.load(Ordering::Relaxed) >= 1);
        assert!(
            count.load(Ordering::SeqCst) >= 2,
            "the upstream saw the call again"
        );
    })
    .await
    .expect("bounded in time");
}

/// A node that joins after the others: at the next epoch the others take it from the
/// directory into their peer sets, and calls routed through it get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_later_is_taken_into_the_peer_sets_at_the_next_epoch() {
    use nullgate_net::mixnet::mixnode::start_mixnode;

    tokio::time::timeout(Duration::from_secs(60), async {
        let mut net = real_mixnet(2, 500, true).await;
        let config = MixnetConfig {
            reply_timeout: Duration::from_secs(2),
            attempts: 3,
            ..MixnetConfig::loopback()
        };
        let mut client = net.client(config).await;
        client.follow_authority(&net.authority_url, net.authority);
        let (settings, listener) = net.late.take().unwrap();
        let joined = start_mixnode(settings, listener).await.unwrap();
        assert_eq!(
            joined.directory.layers[1].len(),
            2,
            "the newcomer is in the directory"
        );
        let first_epoch = client.epoch().unwrap();
        while client.epoch().unwrap() < first_epoch + 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Every call picks a middle node at random per fragment and per reply block: with
        // two middle nodes, the newcomer carries some of them. (Around the boundary, cover
        // packets built by a client that refreshed before the entry may be unroutable; from
        // here on none are.)
        let unroutable = &net.nodes[0].metrics.dropped_unroutable;
        let before = unroutable.load(Ordering::Relaxed);
        for i in 0..5u8 {
            let answer = client
                .send(echo(vec![i; 100]), IsolationId::fresh())
                .await
                .unwrap();
            assert_eq!(answer.body, Bytes::from(vec![i; 100]));
        }
        assert!(joined.metrics.forwarded.load(Ordering::Relaxed) > 0);
        assert_eq!(
            unroutable.load(Ordering::Relaxed),
            before,
            "the entry knew where the newcomer is"
        );
    })
    .await
    .expect("bounded in time");
}

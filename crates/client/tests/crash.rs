//! Crash safety of a request (PROTOCOL §5 step 7, §9): the client is killed between the
//! journal write and the send, after the send before the receipt, and after answering
//! before the receipted state was written. On restart it re-sends
//! exactly the journalled bytes, ends with the right state, and never sends a different
//! request at that index. The gateway, chain and upstream are real; the network in between
//! is a recording transport that can lose one response (as a dropped connection would).
//!
//! The same harness checks the anonymity threshold (PROTOCOL §9): below it nothing is sent.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use nullgate_client::{
    client::{Client, ClientConfig},
    paid::{PaidRequest, PayError},
    trust::trust,
    wallet::{VaultId, Wallet},
};
use nullgate_example_llm::RunningExampleLlm;
use nullgate_gateway::{
    Gateway,
    config::Limits,
    dev::{DEV_AUTHORITY, DevDeployment, demo_price_list, dev_ohttp_keys},
    store::{NullifierStore, sqlite::SqliteStore},
    upstream::Upstream,
};
use nullgate_net::{
    HttpRequest, HttpResponse, IsolationId, NetError, Transport, ohttp::OhttpTransport,
};
use nullgate_zk::{
    groth16::CircuitKind,
    keys::{DEV_SEED, dev_setup},
};

/// A network that records every request it carries and can lose the next response.
#[derive(Clone)]
struct Network {
    inner: Arc<OhttpTransport>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    lose_next_response: Arc<AtomicBool>,
}

impl Transport for Network {
    async fn send(
        &self,
        request: HttpRequest,
        isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        if request.method == http::Method::POST {
            self.sent.lock().unwrap().push(request.to_bhttp().unwrap());
        }
        let response = self.inner.send(request, isolation).await?;
        if self.lose_next_response.swap(false, Ordering::SeqCst) {
            return Err(NetError::Unexpected {
                peer: "network",
                detail: "connection reset (test)".into(),
            });
        }
        Ok(response)
    }
}

struct World {
    dev: DevDeployment,
    upstream: RunningExampleLlm,
    network: Network,
    _gateway: Gateway,
}

async fn world() -> World {
    let request = Arc::new(dev_setup(CircuitKind::Request, &DEV_SEED).unwrap());
    let exit = dev_setup(CircuitKind::Exit, &DEV_SEED).unwrap();
    let dev = DevDeployment::deploy(request, &exit, demo_price_list())
        .await
        .unwrap();
    let upstream = nullgate_example_llm::start(Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap().keep();
    let store = Arc::new(SqliteStore::open(&dir.join("gateway.sqlite"), 24).unwrap());
    let gateway = Gateway::start(dev.gateway_parts(
        store as Arc<dyn NullifierStore>,
        Upstream::new(&upstream.base_url(), None).unwrap(),
        Limits {
            poll_ms: 50,
            ..Limits::default()
        },
    ))
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ohttp", listener.local_addr().unwrap());
    let router = gateway.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let keys = dev_ohttp_keys().served_body().unwrap();
    let network = Network {
        inner: Arc::new(OhttpTransport::new(url.parse().unwrap(), &keys, None).unwrap()),
        sent: Arc::default(),
        lose_next_response: Arc::default(),
    };
    World {
        dev,
        upstream,
        network,
        _gateway: gateway,
    }
}

async fn client(world: &World, wallet: Wallet) -> Client<Network> {
    client_with_threshold(world, wallet, 0).await
}

async fn client_with_threshold(
    world: &World,
    wallet: Wallet,
    min_anonymity: usize,
) -> Client<Network> {
    let trusted = trust(
        &world.dev.vault,
        &world.dev.request_key,
        &world.network,
        DEV_AUTHORITY,
    )
    .await
    .unwrap();
    Client::new(
        wallet,
        world.network.clone(),
        world.dev.vault.clone(),
        trusted,
        world.dev.request_key.clone(),
        ClientConfig {
            authority: DEV_AUTHORITY.into(),
            default_class: 1,
            in_progress_retries: 4,
            min_anonymity,
        },
    )
    .unwrap()
}

async fn synced(client: &Client<Network>) {
    for _ in 0..100 {
        if client.sync().await.is_ok() && client.notes().iter().all(|n| n.note_id.is_some()) {
            client.wait_pregenerated(Duration::from_secs(60)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the client never synced");
}

fn chat() -> PaidRequest {
    PaidRequest {
        method: http::Method::POST,
        path_and_query: "/v1/chat/completions".into(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Bytes::from_static(br#"{"model":"nullgate-example-1","messages":[{"role":"user","content":"crash test"}],"max_tokens":16}"#),
        class_index: 1,
    }
}

/// The id of the world's vault, as a wallet names it.
async fn vault_id(world: &World) -> VaultId {
    let deployment = world
        .dev
        .vault
        .summary()
        .await
        .unwrap()
        .deployment()
        .unwrap();
    VaultId {
        chain_id: deployment.chain_id,
        vault: deployment.vault,
    }
}

async fn new_wallet(world: &World, dir: &Path) -> Client<Network> {
    let wallet = Wallet::create(dir, vault_id(world).await).unwrap();
    let client = client(world, wallet).await;
    client.deposit(world.dev.operator, &[50_000]).await.unwrap();
    synced(&client).await;
    client
}

/// Drops a client and waits until its background tasks let the wallet lock go.
async fn crash(client: Client<Network>, dir: &Path) -> Wallet {
    client.wait_pregenerated(Duration::from_secs(60)).await;
    drop(client);
    for _ in 0..200 {
        if let Ok(opened) = Wallet::open(dir) {
            assert!(opened.warning.is_none());
            return opened.wallet;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the wallet stayed locked");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_journal_write_and_send() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let prepared = client.prepare(&chat()).await.unwrap();
    let journalled = prepared.request_bytes().to_vec();
    // Killed here: journalled, nothing sent.
    drop(prepared);
    let wallet = crash(client, dir.path()).await;
    assert!(world.network.sent.lock().unwrap().is_empty());
    assert_eq!(world.upstream.counters().chat_completions, 0);

    let restarted = client_after_restart(&world, wallet).await;
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![journalled],
        "the journalled bytes, exactly, once"
    );
    assert_eq!(world.upstream.counters().chat_completions, 1);
    let note = restarted.notes()[0];
    assert_eq!(note.state.index, 1, "the index is settled by its receipt");
    assert_eq!(note.state.balance, 50_000 - restarted.stats().charged);
    assert!(restarted.stats().charged > 0);

    // The next call uses the next index.
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_send_before_the_receipt() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    world
        .network
        .lose_next_response
        .store(true, Ordering::SeqCst);
    let lost = client.pay_request(chat()).await;
    assert!(lost.is_err(), "the response was lost");
    // The gateway served it; the client never saw the receipt.
    assert_eq!(world.upstream.counters().chat_completions, 1);
    assert_eq!(client.notes()[0].state.index, 0);
    let wallet = crash(client, dir.path()).await;

    let restarted = client_after_restart(&world, wallet).await;
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0], sent[1],
        "a re-send is byte for byte the original, never a different request"
    );
    assert_eq!(
        world.upstream.counters().chat_completions,
        1,
        "the gateway answered the retry from its store"
    );
    let note = restarted.notes()[0];
    assert_eq!(note.state.index, 1);
    assert_eq!(note.state.balance, 50_000 - restarted.stats().charged);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
    assert_eq!(world.upstream.counters().chat_completions, 2);
}

/// The wallet's files (wallet, backup, journal slots) as they are now.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for name in ["wallet.json", "wallet.json.bak"] {
        files.push((dir.join(name), std::fs::read(dir.join(name)).unwrap()));
    }
    for entry in std::fs::read_dir(dir.join("journal")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files.push((path, bytes));
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_answering_before_the_state_was_written() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let prepared = client.prepare(&chat()).await.unwrap();
    // What the disk holds once the request is journalled and before its state is written.
    let journalled = snapshot(dir.path());
    let answered = client.send(prepared).await.unwrap();
    assert_eq!(answered.status, 200);
    client.settled(Duration::from_secs(10)).await;
    drop(crash(client, dir.path()).await);
    // Killed after the agent had its answer, before the wallet write: the disk as it was.
    for (path, bytes) in journalled {
        std::fs::write(path, bytes).unwrap();
    }
    let wallet = Wallet::open(dir.path()).unwrap().wallet;
    assert_eq!(wallet.notes()[0].state.index, 0);

    let restarted = client_after_restart(&world, wallet).await;
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the journalled request, byte for byte");
    assert_eq!(
        world.upstream.counters().chat_completions,
        1,
        "the re-send is answered from the gateway's store"
    );
    let note = restarted.notes()[0];
    assert_eq!(note.state.index, 1, "settled by the same receipt");
    assert_eq!(note.state.balance, 50_000 - answered.receipt.charge);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
}

async fn client_after_restart(world: &World, wallet: Wallet) -> Client<Network> {
    let client = client(world, wallet).await;
    synced(&client).await;
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn below_the_anonymity_threshold_nothing_is_spent() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::create(dir.path(), vault_id(&world).await).unwrap();
    let client = client_with_threshold(&world, wallet, 2).await;
    // Before the first sync the set is unknown, and nothing is spent either.
    assert_eq!(client.anonymity_set(), None);
    client.deposit(world.dev.operator, &[50_000]).await.unwrap();
    synced(&client).await;
    assert_eq!(client.anonymity_set(), Some(1));
    let error = client.prepare(&chat()).await.unwrap_err();
    assert!(
        matches!(error, PayError::TooFewNotes { active: 1, min: 2 }),
        "{error}"
    );
    assert!(error.to_string().contains("wait for more deposits"));
    assert!(world.network.sent.lock().unwrap().is_empty());
    assert_eq!(client.notes()[0].state.index, 0);

    // A second note in the vault: two to hide among, enough.
    client.deposit(world.dev.operator, &[50_000]).await.unwrap();
    synced(&client).await;
    assert_eq!(client.anonymity_set(), Some(2));
    client.pay_request(chat()).await.unwrap();
}

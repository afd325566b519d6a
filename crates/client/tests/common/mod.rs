//! The world the client's tests run in: a DEV deployment on the embedded chain, a real
//! gateway in front of the example upstream, and an OHTTP network between them that records
//! what it carries and can lose a response.

#![allow(dead_code, unreachable_pub)]

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
    paid::PaidRequest,
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
    groth16::{CircuitKind, ProverKey},
    keys::{DEV_SEED, dev_setup},
};

/// A network that records every request it carries and can lose the next response.
#[derive(Clone)]
pub struct Network {
    pub inner: Arc<OhttpTransport>,
    /// Every POST carried, as binary HTTP.
    pub sent: Arc<Mutex<Vec<Vec<u8>>>>,
    /// Set: the next response is lost on its way back.
    pub lose_next_response: Arc<AtomicBool>,
    /// Every `ohttpKeysHash` the client asked the transport to follow.
    pub followed: Arc<Mutex<Vec<[u8; 32]>>>,
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

    async fn follow_gateway_keys(&self, pinned_hash: &[u8; 32]) -> Result<bool, NetError> {
        self.followed.lock().unwrap().push(*pinned_hash);
        self.inner.follow_gateway_keys(pinned_hash).await
    }
}

pub struct World {
    pub dev: DevDeployment,
    pub upstream: RunningExampleLlm,
    pub network: Network,
    /// The exit circuit's DEV proving key (the deployment pins its hash).
    pub exit_key: ProverKey,
    /// `http://host:port` of the gateway (its `/metrics` is there).
    pub gateway_url: String,
    pub _gateway: Gateway,
}

pub async fn world() -> World {
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
    let gateway_url = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{gateway_url}/ohttp");
    let router = gateway.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let keys = dev_ohttp_keys().served_body().unwrap();
    let network = Network {
        inner: Arc::new(OhttpTransport::new(url.parse().unwrap(), &keys, None).unwrap()),
        sent: Arc::default(),
        lose_next_response: Arc::default(),
        followed: Arc::default(),
    };
    World {
        dev,
        upstream,
        network,
        exit_key: exit,
        gateway_url,
        _gateway: gateway,
    }
}

pub async fn client(world: &World, wallet: Wallet) -> Client<Network> {
    client_with_threshold(world, wallet, 0).await
}

pub async fn client_with_threshold(
    world: &World,
    wallet: Wallet,
    min_anonymity: usize,
) -> Client<Network> {
    client_with_config(
        world,
        wallet,
        ClientConfig {
            min_anonymity,
            ..config()
        },
    )
    .await
}

/// How the tests' clients behave unless a test says otherwise.
pub fn config() -> ClientConfig {
    ClientConfig {
        authority: DEV_AUTHORITY.into(),
        default_class: 1,
        in_progress_retries: 4,
        min_anonymity: 0,
        prover_threads: 0,
        first_use_delay: Duration::ZERO,
    }
}

pub async fn client_with_config(
    world: &World,
    wallet: Wallet,
    config: ClientConfig,
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
        config,
    )
    .unwrap()
}

pub async fn synced(client: &Client<Network>) {
    for _ in 0..100 {
        if client.sync().await.is_ok() && client.notes().iter().all(|n| n.note_id.is_some()) {
            client.wait_pregenerated(Duration::from_secs(60)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the client never synced");
}

pub fn chat() -> PaidRequest {
    PaidRequest {
        method: http::Method::POST,
        path_and_query: "/v1/chat/completions".into(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Bytes::from_static(br#"{"model":"nullgate-example-1","messages":[{"role":"user","content":"crash test"}],"max_tokens":16}"#),
        class_index: 1,
    }
}

/// The id of the world's vault, as a wallet names it.
pub async fn vault_id(world: &World) -> VaultId {
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

pub async fn new_wallet(world: &World, dir: &Path) -> Client<Network> {
    let wallet = Wallet::create(dir, vault_id(world).await).unwrap();
    let client = client(world, wallet).await;
    client.deposit(world.dev.operator, &[50_000]).await.unwrap();
    synced(&client).await;
    client
}

/// Drops a client and waits until its background tasks let the wallet lock go.
pub async fn crash(client: Client<Network>, dir: &Path) -> Wallet {
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

pub async fn client_after_restart(world: &World, wallet: Wallet) -> Client<Network> {
    let client = client(world, wallet).await;
    synced(&client).await;
    client
}

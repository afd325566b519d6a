//! A DEV deployment with a gateway in front of the example upstream, and honest (or
//! deliberately broken) credentials made with nullgate-zk, for the gateway's tests.

#![allow(dead_code, unreachable_pub)]

pub mod postgres;

use std::sync::{Arc, OnceLock};

use nullgate_chain::{BlockRef, Ledger};
use nullgate_example_llm::{ExampleLlmConfig, RunningExampleLlm};
use nullgate_gateway::{
    Gateway,
    config::Limits,
    dev::{DevDeployment, demo_price_list},
    metrics::Metrics,
    store::{NullifierStore, sqlite::SqliteStore},
    upstream::Upstream,
    verify::{Presented, Verified, Verifier},
    watcher::{TreeView, Watcher},
};
use nullgate_protocol::{
    credential::{Credential, ProofContext, UnsignedCredential},
    payload,
    price::PriceList,
    receipt::Receipt,
};
use nullgate_zk::{
    Fr,
    circuit::request::{RequestCircuit, RequestWitness},
    curve::Scalar,
    derive,
    groth16::{CircuitKind, ProverKey},
    keys::{DEV_SEED, dev_setup},
    note::{self, Note},
    state::StateValue,
    tree::NoteTree,
};

/// DEV keys, made once per test binary.
pub fn keys() -> &'static (Arc<ProverKey>, ProverKey) {
    static KEYS: OnceLock<(Arc<ProverKey>, ProverKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            Arc::new(dev_setup(CircuitKind::Request, &DEV_SEED).unwrap()),
            dev_setup(CircuitKind::Exit, &DEV_SEED).unwrap(),
        )
    })
}

pub struct Harness {
    pub dev: DevDeployment,
    pub gateway: Gateway,
    pub store: Arc<SqliteStore>,
    pub upstream: RunningExampleLlm,
    pub url: String,
    pub notes: Vec<Note>,
    pub tree: NoteTree,
    pub dom: Fr,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// A vault with `notes` notes of 100,000 credits each, and a gateway serving it with
    /// the demo price list in front of the example LLM.
    pub async fn start(notes: usize) -> Self {
        Self::start_with(notes, demo_price_list(), None).await
    }

    /// The same with `prices`, in front of `upstream` (default: the example LLM, which
    /// runs either way).
    pub async fn start_with(notes: usize, prices: PriceList, upstream: Option<String>) -> Self {
        let (request, exit) = keys();
        let dev = DevDeployment::deploy(request.clone(), exit, prices)
            .await
            .unwrap();
        let mut deposited = Vec::new();
        let mut tree = NoteTree::new();
        for i in 0..notes {
            let secret = Fr::from(7_000_003u64 + i as u64 * 7919);
            dev.vault
                .deposit(dev.operator, &note::commitment(&secret), 100_000)
                .await
                .unwrap();
            let record = dev
                .vault
                .note(&note::commitment(&secret), BlockRef::Latest)
                .await
                .unwrap();
            let note = Note {
                secret,
                note_id: record.note_id,
                deposit: record.amount,
                expiry: record.expiry,
            };
            tree.extend(&[note.leaf()]).unwrap();
            deposited.push(note);
        }
        let example = nullgate_example_llm::start(ExampleLlmConfig::default())
            .await
            .unwrap();
        let base = upstream.unwrap_or_else(|| example.base_url());
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("gateway.sqlite"), 24).unwrap());
        let limits = Limits {
            poll_ms: 50,
            ..Limits::default()
        };
        let parts = dev.gateway_parts(
            store.clone() as Arc<dyn NullifierStore>,
            Upstream::new(&base, None).unwrap(),
            limits,
        );
        let gateway = Gateway::start(parts).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = gateway.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let dom = dev.vault.dom().await.unwrap();
        Self {
            dev,
            gateway,
            store,
            upstream: example,
            url,
            notes: deposited,
            tree,
            dom,
            _dir: dir,
        }
    }

    /// Another gateway replica for this deployment on `store`, in front of the same
    /// upstream: its base URL.
    pub async fn replica(&self, store: Arc<dyn NullifierStore>) -> (Gateway, String) {
        let limits = Limits {
            poll_ms: 50,
            ..Limits::default()
        };
        self.replica_with(store, &self.upstream.base_url(), limits)
            .await
    }

    /// The same in front of `upstream`, with `limits`.
    pub async fn replica_with(
        &self,
        store: Arc<dyn NullifierStore>,
        upstream: &str,
        limits: Limits,
    ) -> (Gateway, String) {
        let parts = self
            .dev
            .gateway_parts(store, Upstream::new(upstream, None).unwrap(), limits);
        let gateway = Gateway::start(parts).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = gateway.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (gateway, url)
    }

    /// Note `i`'s status on chain now.
    pub async fn status_of(&self, i: usize) -> nullgate_chain::NoteStatus {
        self.dev
            .vault
            .note(&note::commitment(&self.notes[i].secret), BlockRef::Latest)
            .await
            .unwrap()
            .status
    }

    /// Note `i`'s status once it is `wanted`, or after 10 s whatever it is then (slashes
    /// are submitted in the background).
    pub async fn wait_for(
        &self,
        i: usize,
        wanted: nullgate_chain::NoteStatus,
    ) -> nullgate_chain::NoteStatus {
        let mut status = self.status_of(i).await;
        for _ in 0..200 {
            if status == wanted {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            status = self.status_of(i).await;
        }
        status
    }

    /// This deployment as a gateway's chain watcher sees it now (from a watcher of its own).
    pub async fn tree_view(&self) -> Arc<TreeView> {
        let watcher = Watcher::start(
            self.dev.vault.clone(),
            0,
            std::time::Duration::from_secs(3600),
            Arc::new(Metrics::default()),
            None,
            None,
        )
        .await
        .unwrap();
        watcher.view().read().unwrap().clone()
    }

    pub async fn hour(&self) -> u32 {
        (self.dev.ledger.finalized().await.unwrap().timestamp / 3600) as u32
    }

    /// The genesis witness of note `i`.
    pub fn genesis(&self, i: usize) -> RequestWitness {
        let note = self.notes[i];
        RequestWitness {
            note,
            path: self.tree.path(note.note_id).unwrap(),
            state: StateValue::new(note.deposit, 0, note.note_id).unwrap(),
            blinding: Scalar::from(0u64),
            signature: None,
        }
    }

    /// A proven, unsigned credential for `witness` in class `class_index` at hour `hour`.
    pub fn prove(
        &self,
        witness: &RequestWitness,
        class_index: u8,
        hour: u32,
    ) -> UnsignedCredential {
        let key = nullgate_gateway::dev::dev_state_key().public_key();
        let class = self.dev.price_list.class(class_index).unwrap();
        UnsignedCredential::prove(
            &self.dev.request_key,
            &ProofContext {
                dom: self.dom,
                root: self.tree.root(),
                state_key: (1, &key),
                class: (class_index, class),
                hour,
            },
            witness,
            &mut rand::thread_rng(),
        )
        .unwrap()
        .0
    }

    /// A genesis exit of note `i` declaring `count` requests, paying `payout` to
    /// [`RECIPIENT`]: its public inputs and proof.
    pub fn genesis_exit(
        &self,
        i: usize,
        count: u32,
        payout: u64,
    ) -> (
        nullgate_zk::circuit::exit::ExitPublic,
        nullgate_zk::groth16::Proof,
    ) {
        use nullgate_zk::circuit::exit::{ExitCircuit, ExitWitness};
        let note = self.notes[i];
        let witness = ExitWitness {
            note,
            state: StateValue::new(note.deposit, 0, note.note_id).unwrap(),
            blinding: Scalar::from(0u64),
            signature: None,
            request_count: count,
        };
        let (circuit, public) = ExitCircuit::new(
            self.dom,
            &nullgate_gateway::dev::dev_state_key().public_key(),
            self.dev.price_list.max_class(),
            payout,
            RECIPIENT,
            &witness,
        )
        .unwrap();
        let proof = keys().1.prove(circuit, &mut rand::thread_rng()).unwrap();
        (public, proof)
    }

    /// What a client deviating from PROTOCOL §5.2 sends: a valid credential for `witness`'s
    /// index, but for request key `key` instead of the one derived for the index.
    pub fn prove_with_key(
        &self,
        witness: &RequestWitness,
        class_index: u8,
        hour: u32,
        key: &ed25519_dalek::SigningKey,
    ) -> UnsignedCredential {
        let state_key = nullgate_gateway::dev::dev_state_key().public_key();
        let class = self.dev.price_list.class(class_index).unwrap();
        let (circuit, public) = RequestCircuit::new(
            self.dom,
            self.tree.root(),
            &state_key,
            class,
            hour,
            derive::share_x(&key.verifying_key()),
            witness,
        )
        .unwrap();
        let proof = self
            .dev
            .request_key
            .prove(circuit, &mut rand::thread_rng())
            .unwrap();
        UnsignedCredential {
            root: self.tree.root(),
            key_number: 1,
            class_index,
            hour,
            nullifier: public.nullifier,
            share_y: public.share_y,
            published_state: nullgate_zk::curve::Point::from_coordinates(
                public.published_state.x,
                public.published_state.y,
                "A_pub",
            )
            .unwrap(),
            proof,
            request_key: key.verifying_key(),
        }
    }

    /// Signs `unsigned` for a chat request with `body` with the index's derived key.
    pub fn sign(
        &self,
        unsigned: UnsignedCredential,
        witness: &RequestWitness,
        body: &str,
    ) -> Credential {
        self.sign_at(unsigned, witness, CHAT, body)
    }

    /// The same for `POST path`.
    pub fn sign_at(
        &self,
        unsigned: UnsignedCredential,
        witness: &RequestWitness,
        path: &str,
        body: &str,
    ) -> Credential {
        let esk = derive::request_signing_key(&witness.note.secret, witness.state.index());
        sign_for(unsigned, &esk, path, body)
    }

    /// Proves, signs and sends `POST path` with `body` for `witness` in class `class_index`.
    pub async fn pay(
        &self,
        witness: &RequestWitness,
        class_index: u8,
        path: &str,
        body: &str,
    ) -> reqwest::Response {
        let unsigned = self.prove(witness, class_index, self.hour().await);
        let credential = self.sign_at(unsigned, witness, path, body);
        self.post(path, Some(&credential.to_authorization()), body)
            .await
    }

    pub async fn post_chat(&self, authorization: Option<&str>, body: &str) -> reqwest::Response {
        self.post(CHAT, authorization, body).await
    }

    /// `POST path` with a JSON `body`.
    pub async fn post(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: &str,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.unwrap()
    }

    /// (final records, reservations) in the store.
    pub async fn stored(&self) -> (u64, u64) {
        self.store.counts().await.unwrap()
    }
}

/// A sample's value in the gateway's `/metrics` at `url`.
pub async fn metric(url: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// Who the tests' exits pay.
pub const RECIPIENT: [u8; 20] = [0x42; 20];

/// The chat completions path.
pub const CHAT: &str = "/v1/chat/completions";

/// The receipt in a response's `NullGate-Receipt` header.
pub fn receipt_of(response: &reqwest::Response) -> Receipt {
    Receipt::from_header(
        response
            .headers()
            .get("nullgate-receipt")
            .expect("a receipt header")
            .as_bytes(),
    )
    .unwrap()
}

/// The receipt in a stream's final `event: nullgate-receipt`.
pub fn stream_receipt(text: &str) -> Receipt {
    let event = text
        .split("\n\n")
        .find(|event| event.starts_with("event: nullgate-receipt"))
        .expect("the receipt event");
    Receipt::from_header(event.split("data: ").nth(1).unwrap().trim().as_bytes()).unwrap()
}

pub fn sign_with(
    unsigned: UnsignedCredential,
    esk: &ed25519_dalek::SigningKey,
    body: &str,
) -> Credential {
    sign_for(unsigned, esk, CHAT, body)
}

/// Signs `unsigned` for `POST path` with a JSON `body`.
pub fn sign_for(
    unsigned: UnsignedCredential,
    esk: &ed25519_dalek::SigningKey,
    path: &str,
    body: &str,
) -> Credential {
    let headers = payload::signed_headers(
        &["content-type".to_owned()],
        [("content-type", b"application/json".as_slice())],
    );
    let digest =
        payload::payload_digest(&unsigned.nullifier, "POST", path, &headers, body.as_bytes());
    Credential {
        signature: ed25519_dalek::Signer::sign(esk, &digest),
        body: unsigned,
    }
}

pub fn chat(content: &str, stream: bool) -> String {
    serde_json::json!({
        "model": "nullgate-example-1",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 20,
        "stream": stream,
    })
    .to_string()
}

/// Credentials that went through the gateway's own verifier, for tests that drive a
/// nullifier store directly (a store accepts only a `Verified`), and what signing their
/// receipts needs.
pub struct VerifiedCredentials {
    /// Genesis credentials of distinct notes, so at distinct nullifiers.
    pub verified: Vec<Verified>,
    /// The vault's `dom`.
    pub dom: Fr,
    /// The price list they were verified under.
    pub prices: PriceList,
}

/// How many [`VerifiedCredentials`] there are.
pub const VERIFIED_COUNT: usize = 3;

/// [`VERIFIED_COUNT`] verified credentials, proven once per test binary.
pub fn verified_credentials() -> &'static VerifiedCredentials {
    static CREDENTIALS: OnceLock<VerifiedCredentials> = OnceLock::new();
    CREDENTIALS.get_or_init(|| {
        // On a runtime of its own: callers are inside a test's runtime, which cannot block
        // on a future, and the deployment's tasks must not outlive the runtime that made them.
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(make_verified_credentials())
        })
        .join()
        .expect("making the verified credentials")
    })
}

async fn make_verified_credentials() -> VerifiedCredentials {
    let h = Harness::start(VERIFIED_COUNT).await;
    let deployment = h.gateway.deployment().clone();
    let view = h.tree_view().await;
    let verifier = Verifier::new(
        h.dev.request_key.verifier_key(),
        1_000,
        Arc::new(Metrics::default()),
    );
    let hour = h.hour().await;
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    let verified = (0..VERIFIED_COUNT)
        .map(|i| {
            let witness = h.genesis(i);
            let body = chat(&format!("store test {i}"), false);
            let credential = h.sign(h.prove(&witness, 0, hour), &witness, &body);
            let presented = Presented::parse(
                Some(credential.to_authorization().as_bytes()),
                "POST",
                "/v1/chat/completions",
                &headers,
                body.as_bytes(),
                &h.dev.price_list,
            )
            .unwrap();
            verifier
                .verify(&deployment, &h.dev.price_list, &view, presented)
                .expect("an honest credential verifies")
        })
        .collect();
    VerifiedCredentials {
        verified,
        dom: h.dom,
        prices: h.dev.price_list.clone(),
    }
}

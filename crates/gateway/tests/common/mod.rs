//! A DEV deployment with a gateway in front of the example upstream, and honest (or
//! deliberately broken) credentials made with nullgate-zk, for the gateway's tests.

#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, OnceLock};

use nullgate_chain::{BlockRef, Ledger};
use nullgate_example_llm::{ExampleLlmConfig, RunningExampleLlm};
use nullgate_gateway::{
    Gateway,
    config::Limits,
    dev::{DevDeployment, demo_price_list},
    store::{NullifierStore, sqlite::SqliteStore},
    upstream::Upstream,
};
use nullgate_protocol::{
    credential::{Credential, ProofContext, UnsignedCredential},
    payload,
};
use nullgate_zk::{
    Fr,
    circuit::request::RequestWitness,
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
    /// A vault with `notes` notes of 100,000 credits each, and a gateway serving it.
    pub async fn start(notes: usize) -> Self {
        let (request, exit) = keys();
        let dev = DevDeployment::deploy(request.clone(), exit, demo_price_list())
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
        let upstream = nullgate_example_llm::start(ExampleLlmConfig::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("gateway.sqlite"), 24).unwrap());
        let limits = Limits {
            poll_ms: 50,
            ..Limits::default()
        };
        let parts = dev.gateway_parts(
            store.clone() as Arc<dyn NullifierStore>,
            Upstream::new(&upstream.base_url(), None).unwrap(),
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
            upstream,
            url,
            notes: deposited,
            tree,
            dom,
            _dir: dir,
        }
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

    /// Signs `unsigned` for a chat request with `body` with the index's derived key.
    pub fn sign(
        &self,
        unsigned: UnsignedCredential,
        witness: &RequestWitness,
        body: &str,
    ) -> Credential {
        let esk = derive::request_signing_key(&witness.note.secret, witness.state.index());
        sign_with(unsigned, &esk, body)
    }

    pub async fn post_chat(&self, authorization: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.url))
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

pub fn sign_with(
    unsigned: UnsignedCredential,
    esk: &ed25519_dalek::SigningKey,
    body: &str,
) -> Credential {
    let headers = payload::signed_headers(
        &["content-type".to_owned()],
        [("content-type", b"application/json".as_slice())],
    );
    let digest = payload::payload_digest(
        &unsigned.nullifier,
        "POST",
        "/v1/chat/completions",
        &headers,
        body.as_bytes(),
    );
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

//! The directory authority: the service behind `nullgate directory`. It knows the nodes from
//! its configuration (layer, address, endpoint, link key, Ed25519 identity), collects each
//! node's per-epoch Sphinx keys, announced ahead of time and signed by the node's identity,
//! and serves the current epoch's [`Directory`], signed with the authority's key.
//!
//! - `POST /v1/keys` with a JSON [`KeyAnnouncement`]: 204 when recorded (or repeated), 400
//!   if malformed, 403 for an unknown node or a bad signature, 409 if the node already
//!   announced another key for that epoch, 422 for an epoch outside current..=current+2.
//! - `GET /v1/directory`: the signed document (signature ‖ JSON), or 503 while a layer has
//!   no node with a key for this epoch.
//!
//! Normative format (the document and the key announcements): `docs/spec/MIXNET.md` §6.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::directory::{Directory, LAYERS, NodeEntry};
use super::epoch::EpochClock;
use super::packet::NodeAddress;
use crate::NetError;

/// Path of the key announcements.
pub const KEYS_PATH: &str = "/v1/keys";
/// Path of the signed directory.
pub const DIRECTORY_PATH: &str = "/v1/directory";
/// How many epochs ahead a key may be announced.
pub const ANNOUNCE_AHEAD: u64 = 2;

/// A node as the authority's configuration lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its layer, 0 (entry) to 2 (exit side).
    pub layer: usize,
    /// Its address in packet headers (hex).
    #[serde(with = "hex::serde")]
    pub address: NodeAddress,
    /// Where it listens (`host:port`).
    pub endpoint: String,
    /// Its Noise link key (hex).
    #[serde(with = "hex::serde")]
    pub link_key: [u8; 32],
    /// Its Ed25519 identity, which signs its key announcements (hex).
    #[serde(with = "hex::serde")]
    pub identity: [u8; 32],
}

/// A node's Sphinx key for one epoch, signed by the node's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAnnouncement {
    /// The node's address (hex).
    #[serde(with = "hex::serde")]
    pub address: NodeAddress,
    /// The epoch the key is for.
    pub epoch: u64,
    /// The X25519 public key (hex).
    #[serde(with = "hex::serde")]
    pub key: [u8; 32],
    /// Ed25519 over the domain, address, epoch and key (hex).
    #[serde(with = "hex::serde")]
    pub signature: [u8; 64],
}

impl KeyAnnouncement {
    /// Signs `key` for `epoch` as the node at `address`.
    pub fn sign(identity: &SigningKey, address: NodeAddress, epoch: u64, key: [u8; 32]) -> Self {
        let signature = identity.sign(&Self::message(&address, epoch, &key));
        Self {
            address,
            epoch,
            key,
            signature: signature.to_bytes(),
        }
    }

    fn message(address: &NodeAddress, epoch: u64, key: &[u8; 32]) -> Vec<u8> {
        let mut message = b"nullgate/v1/node-key".to_vec();
        message.extend_from_slice(address);
        message.extend_from_slice(&epoch.to_be_bytes());
        message.extend_from_slice(key);
        message
    }

    /// Whether `identity` signed this announcement.
    pub fn verify(&self, identity: &VerifyingKey) -> bool {
        identity
            .verify_strict(
                &Self::message(&self.address, self.epoch, &self.key),
                &Signature::from_bytes(&self.signature),
            )
            .is_ok()
    }
}

/// The authority's configuration.
pub struct AuthorityConfig {
    /// The key that signs directories.
    pub signing: SigningKey,
    /// The epoch clock the nodes share.
    pub clock: EpochClock,
    /// The nodes.
    pub nodes: Vec<NodeRecord>,
}

/// Announced keys by (node, epoch).
type AnnouncedKeys = Arc<Mutex<HashMap<(NodeAddress, u64), [u8; 32]>>>;

#[derive(Clone)]
struct AuthorityState {
    signing: Arc<SigningKey>,
    clock: EpochClock,
    nodes: Arc<Vec<NodeRecord>>,
    keys: AnnouncedKeys,
}

/// The authority's HTTP service.
pub fn authority_router(config: AuthorityConfig) -> Router {
    Router::new()
        .route(KEYS_PATH, post(announce))
        .route(DIRECTORY_PATH, get(serve_directory))
        .with_state(AuthorityState {
            signing: Arc::new(config.signing),
            clock: config.clock,
            nodes: Arc::new(config.nodes),
            keys: Arc::default(),
        })
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (status, format!("{reason}\n")).into_response()
}

async fn announce(
    State(state): State<AuthorityState>,
    body: Result<Json<KeyAnnouncement>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(announcement)) = body else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected a JSON key announcement {address, epoch, key, signature}",
        );
    };
    let Some(node) = state
        .nodes
        .iter()
        .find(|n| n.address == announcement.address)
    else {
        return refuse(StatusCode::FORBIDDEN, "unknown node address");
    };
    let identity = VerifyingKey::from_bytes(&node.identity);
    if !identity.is_ok_and(|id| announcement.verify(&id)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "the signature is not the node's identity's",
        );
    }
    let current = state.clock.epoch_at(EpochClock::now());
    if !(current..=current + ANNOUNCE_AHEAD).contains(&announcement.epoch) {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!(
                "epoch {} is outside the announcement window {current}..={}",
                announcement.epoch,
                current + ANNOUNCE_AHEAD
            ),
        );
    }
    let Ok(mut keys) = state.keys.lock() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
    };
    keys.retain(|(_, epoch), _| *epoch >= current.saturating_sub(1));
    let slot = keys
        .entry((announcement.address, announcement.epoch))
        .or_insert(announcement.key);
    if *slot != announcement.key {
        return refuse(
            StatusCode::CONFLICT,
            "this node already announced another key for that epoch",
        );
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn serve_directory(State(state): State<AuthorityState>) -> Response {
    let now = EpochClock::now();
    let epoch = state.clock.epoch_at(now);
    let document = {
        let Ok(keys) = state.keys.lock() else {
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
        };
        let mut layers = vec![Vec::new(); LAYERS];
        for node in state.nodes.iter() {
            let (Some(key), Some(layer)) =
                (keys.get(&(node.address, epoch)), layers.get_mut(node.layer))
            else {
                continue;
            };
            layer.push(NodeEntry {
                address: node.address,
                endpoint: node.endpoint.clone(),
                link_key: node.link_key,
                key: *key,
                next_key: keys
                    .get(&(node.address, epoch + 1))
                    .copied()
                    .unwrap_or_default(),
            });
        }
        if layers.iter().any(Vec::is_empty) {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "not every layer has a node with a key for this epoch yet",
            );
        }
        Directory {
            epoch,
            valid_from: state.clock.start(epoch).as_secs(),
            valid_until: state.clock.start(epoch + 1).as_secs_f64().ceil() as u64,
            layers,
        }
    };
    match document.sign(&state.signing) {
        Ok(signed) => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], signed).into_response()
        }
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "signing failed"),
    }
}

/// Fetches the current directory from the authority at `base` and verifies it.
pub async fn fetch_directory(
    http: &reqwest::Client,
    base: &str,
    authority: &VerifyingKey,
) -> Result<Directory, NetError> {
    let io = |detail: String| NetError::Io {
        peer: "directory authority",
        detail,
    };
    let answer = http
        .get(format!("{}{DIRECTORY_PATH}", base.trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| io(e.to_string()))?;
    let status = answer.status();
    let body =
        crate::ohttp::client::read_limited(answer, super::directory::MAX_DOCUMENT + 64).await?;
    if !status.is_success() {
        return Err(NetError::Unexpected {
            peer: "directory authority",
            detail: format!(
                "status {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ),
        });
    }
    Directory::verify(&body, authority, EpochClock::now().as_secs())
}

/// Announces `announcement` to the authority at `base`.
pub async fn announce_key(
    http: &reqwest::Client,
    base: &str,
    announcement: &KeyAnnouncement,
) -> Result<(), NetError> {
    let answer = http
        .post(format!("{}{KEYS_PATH}", base.trim_end_matches('/')))
        .json(announcement)
        .send()
        .await
        .map_err(|e| NetError::Io {
            peer: "directory authority",
            detail: e.to_string(),
        })?;
    if answer.status().is_success() {
        return Ok(());
    }
    Err(NetError::Unexpected {
        peer: "directory authority",
        detail: format!(
            "status {}: {}",
            answer.status(),
            answer.text().await.unwrap_or_default().trim()
        ),
    })
}

/// The authority's settings file, as `nullgate directory --config` reads it.
#[derive(Clone, Serialize, Deserialize)]
pub struct AuthoritySettings {
    /// Where to serve.
    pub listen: std::net::SocketAddr,
    /// Secret of the Ed25519 key that signs directories (hex).
    #[serde(with = "hex::serde")]
    pub signing_secret: [u8; 32],
    /// Start of epoch 0, seconds since the Unix epoch.
    pub genesis: u64,
    /// Epoch length, seconds.
    pub epoch_seconds: u64,
    /// The nodes.
    pub nodes: Vec<NodeRecord>,
}

impl std::fmt::Debug for AuthoritySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The signing secret is never printed.
        f.debug_struct("AuthoritySettings")
            .field("listen", &self.listen)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl AuthoritySettings {
    /// The public key clients and nodes pin.
    pub fn verifying_key(&self) -> VerifyingKey {
        SigningKey::from_bytes(&self.signing_secret).verifying_key()
    }

    /// The service's configuration.
    pub fn config(&self) -> AuthorityConfig {
        AuthorityConfig {
            signing: SigningKey::from_bytes(&self.signing_secret),
            clock: EpochClock {
                genesis: std::time::Duration::from_secs(self.genesis),
                length: std::time::Duration::from_secs(self.epoch_seconds.max(1)),
            },
            nodes: self.nodes.clone(),
        }
    }
}

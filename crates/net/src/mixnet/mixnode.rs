//! A whole mix node as `nullgate mixnode` runs it: announce this node's per-epoch keys to the
//! directory authority (and keep announcing ahead), learn the other nodes from the signed
//! directory, then serve: links in, rotating keys, delays, links out, and an exit beside
//! the node if it is in the last layer and configured as one.
//!
//! The settings come from a JSON file ([`MixnodeSettings`]); its secrets (link key, identity,
//! key seed) never leave the process and are never logged.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::authority::{ANNOUNCE_AHEAD, KeyAnnouncement, announce_key, fetch_directory};
use super::directory::{Directory, LAYERS};
use super::epoch::{EpochClock, KeySchedule};
use super::exit::{ExitConfig, ExitMetrics, RunningExit, spawn_exit};
use super::link::LinkKeypair;
use super::node::NodeKeys;
use super::packet::{NodeAddress, Sphinx};
use super::server::{Allowed, NodeConfig, NodeMetrics, Peer, RunningNode, spawn_node};
use crate::NetError;

/// A mix node's settings file.
#[derive(Clone, Serialize, Deserialize)]
pub struct MixnodeSettings {
    /// Where to listen for links.
    pub listen: SocketAddr,
    /// Its layer, 0 (entry) to 2 (exit side).
    pub layer: usize,
    /// Its address in packet headers (hex).
    #[serde(with = "hex::serde")]
    pub address: NodeAddress,
    /// Secret of its Noise link key (hex).
    #[serde(with = "hex::serde")]
    pub link_secret: [u8; 32],
    /// Secret of its Ed25519 identity (hex), which signs key announcements.
    #[serde(with = "hex::serde")]
    pub identity_secret: [u8; 32],
    /// Seed of its per-epoch Sphinx keys (hex).
    #[serde(with = "hex::serde")]
    pub key_seed: [u8; 32],
    /// The directory authority's base URL.
    pub authority_url: String,
    /// The directory authority's Ed25519 key (hex).
    #[serde(with = "hex::serde")]
    pub authority_key: [u8; 32],
    /// Start of epoch 0, seconds since the Unix epoch.
    pub genesis: u64,
    /// Epoch length, seconds.
    pub epoch_seconds: u64,
    /// How long the previous epoch's key still opens packets, milliseconds.
    pub grace_ms: u64,
    /// Sphinx payload size, bytes.
    pub payload_size: usize,
    /// Link frame length, bytes.
    pub frame_len: usize,
    /// Packets the delay queue holds at most.
    pub queue_capacity: usize,
    /// The longest per-hop delay honoured, milliseconds.
    pub delay_cap_ms: u64,
    /// Run an exit beside this node (last layer only).
    pub exit: Option<ExitSettings>,
}

impl std::fmt::Debug for MixnodeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets are never printed.
        f.debug_struct("MixnodeSettings")
            .field("listen", &self.listen)
            .field("layer", &self.layer)
            .field("address", &hex::encode(self.address))
            .field("authority_url", &self.authority_url)
            .finish_non_exhaustive()
    }
}

/// An exit's settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExitSettings {
    /// Gateways (base URLs) it forwards to.
    pub allowlist: Vec<String>,
    /// JSON-RPC endpoints (full URLs) it forwards chain reads to.
    #[serde(default)]
    pub rpc_allowlist: Vec<String>,
    /// Mean random processing delay, milliseconds.
    pub processing_delay_ms: u64,
}

impl MixnodeSettings {
    /// The epoch clock.
    pub fn clock(&self) -> EpochClock {
        EpochClock {
            genesis: Duration::from_secs(self.genesis),
            length: Duration::from_secs(self.epoch_seconds.max(1)),
        }
    }

    /// The public link key.
    pub fn link_key(&self) -> [u8; 32] {
        LinkKeypair::from_secret(self.link_secret).public()
    }

    /// The public identity.
    pub fn identity(&self) -> [u8; 32] {
        SigningKey::from_bytes(&self.identity_secret)
            .verifying_key()
            .to_bytes()
    }
}

/// A running mix node.
pub struct Mixnode {
    /// Its counters.
    pub metrics: Arc<NodeMetrics>,
    /// Its exit's counters, if it runs an exit.
    pub exit_metrics: Option<Arc<ExitMetrics>>,
    /// The directory it started from.
    pub directory: Directory,
    _node: RunningNode,
    _exit: Option<RunningExit>,
    announcer: JoinHandle<()>,
}

impl Drop for Mixnode {
    fn drop(&mut self) {
        self.announcer.abort();
    }
}

/// How long a starting node waits for the authority and the other nodes.
const STARTUP: Duration = Duration::from_secs(60);

/// Starts a node on `listener` with `settings`: announces its keys, waits until the
/// authority serves a directory listing every layer, then serves.
pub async fn start_mixnode(
    settings: MixnodeSettings,
    listener: TcpListener,
) -> Result<Mixnode, NetError> {
    if settings.layer >= LAYERS {
        return Err(NetError::BadMessage(format!(
            "layer {} does not exist (0 to {})",
            settings.layer,
            LAYERS - 1
        )));
    }
    if settings.exit.is_some() && settings.layer != LAYERS - 1 {
        return Err(NetError::BadMessage(
            "only a last-layer node runs an exit".into(),
        ));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| NetError::Io {
            peer: "directory authority",
            detail: e.to_string(),
        })?;
    let clock = settings.clock();
    let schedule = KeySchedule::new(settings.key_seed);
    let identity = SigningKey::from_bytes(&settings.identity_secret);
    let authority = ed25519_dalek::VerifyingKey::from_bytes(&settings.authority_key)
        .map_err(|_| NetError::BadMessage("authority_key is not an Ed25519 key".into()))?;

    let announce_window = |epoch: u64| -> Vec<KeyAnnouncement> {
        (epoch..=epoch + 1)
            .map(|e| KeyAnnouncement::sign(&identity, settings.address, e, schedule.public(e)))
            .collect()
    };
    let deadline = tokio::time::Instant::now() + STARTUP;
    // Announce this epoch's and the next one's keys, retrying while the authority starts.
    let epoch = clock.epoch_at(EpochClock::now());
    for announcement in announce_window(epoch) {
        retry(deadline, || {
            announce_key(&http, &settings.authority_url, &announcement)
        })
        .await?;
    }
    let directory = retry(deadline, || {
        fetch_directory(&http, &settings.authority_url, &authority)
    })
    .await?;

    let (peers, allowed) = peers_of(&directory, settings.layer).await?;
    let format = Sphinx::new(settings.payload_size);
    let (deliveries_tx, deliveries) = mpsc::channel(4096);
    let node = spawn_node(
        listener,
        NodeConfig {
            format,
            keys: NodeKeys::Rotating {
                schedule,
                clock,
                grace: Duration::from_millis(settings.grace_ms),
            },
            link_key: LinkKeypair::from_secret(settings.link_secret),
            // Entries serve anonymous clients; the other layers only nodes (and exits, which
            // use their node's link key).
            allowed_peers: allowed,
            next_hops: peers.clone(),
            frame_len: settings.frame_len,
            queue_capacity: settings.queue_capacity,
            delay_cap: Duration::from_millis(settings.delay_cap_ms),
        },
        deliveries_tx,
    );
    // The exit replies by the node's own table, so one directory refresh serves both.
    let exit = settings.exit.as_ref().map(|exit| {
        spawn_exit(
            ExitConfig {
                format,
                allowlist: exit.allowlist.clone(),
                rpc_allowlist: exit.rpc_allowlist.clone(),
                processing_delay: Duration::from_millis(exit.processing_delay_ms),
                processing_delay_cap: Duration::from_millis(exit.processing_delay_ms * 10),
                parity: 2,
                gateway_timeout: Duration::from_secs(30),
                link_key: LinkKeypair::from_secret(settings.link_secret),
                reply_hops: node.peers().next_hops(),
                frame_len: settings.frame_len,
                max_pending: 1024,
            },
            deliveries,
        )
    });
    // At every boundary: announce the keys up to ANNOUNCE_AHEAD epochs ahead, then take
    // the new epoch's directory for the peer set (nodes that joined, left or moved).
    let announcer = {
        let (url, settings) = (settings.authority_url.clone(), settings.clone());
        let table = node.peers();
        tokio::spawn(async move {
            let identity = SigningKey::from_bytes(&settings.identity_secret);
            let schedule = KeySchedule::new(settings.key_seed);
            loop {
                let now = EpochClock::now();
                let epoch = clock.epoch_at(now);
                for e in epoch + 1..=epoch + ANNOUNCE_AHEAD {
                    let announcement =
                        KeyAnnouncement::sign(&identity, settings.address, e, schedule.public(e));
                    // A failure is retried at the next boundary; the key is still one epoch
                    // ahead of need.
                    let _ = announce_key(&http, &url, &announcement).await;
                }
                tokio::time::sleep(clock.start(epoch + 1).saturating_sub(now)).await;
                let fresh = fetch_directory(&http, &url, &authority).await;
                if let Ok(directory) = fresh
                    && let Ok((peers, allowed)) = peers_of(&directory, settings.layer).await
                {
                    table.update(allowed, peers);
                }
            }
        })
    };
    Ok(Mixnode {
        metrics: Arc::clone(&node.metrics),
        exit_metrics: exit.as_ref().map(|exit| Arc::clone(&exit.metrics)),
        directory,
        _node: node,
        _exit: exit,
        announcer,
    })
}

/// The next hops a node of `layer` may send to (every listed node), and who may link in:
/// anyone at the entry (clients), the listed nodes (and their exits) elsewhere.
async fn peers_of(
    directory: &Directory,
    layer: usize,
) -> Result<(HashMap<NodeAddress, Peer>, Allowed), NetError> {
    let mut peers = HashMap::new();
    let mut node_keys = Vec::new();
    for node in directory.layers.iter().flatten() {
        let socket = tokio::net::lookup_host(&node.endpoint)
            .await
            .ok()
            .and_then(|mut addresses| addresses.next())
            .ok_or_else(|| {
                NetError::BadMessage(format!(
                    "directory endpoint {:?} does not resolve",
                    node.endpoint
                ))
            })?;
        peers.insert(
            node.address,
            Peer {
                socket,
                link_key: node.link_key,
            },
        );
        node_keys.push(node.link_key);
    }
    let allowed = if layer == 0 {
        Allowed::Anyone
    } else {
        Allowed::Listed(node_keys)
    };
    Ok((peers, allowed))
}

/// Runs `attempt` until it succeeds or `deadline` passes (then its last error).
async fn retry<T, F, Fut>(deadline: tokio::time::Instant, mut attempt: F) -> Result<T, NetError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, NetError>>,
{
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

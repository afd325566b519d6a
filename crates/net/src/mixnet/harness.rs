//! A loopback mixnet for tests and benchmarks: a signed directory, `per_layer` nodes in each
//! of the three layers on 127.0.0.1, an exit beside every last-layer node, and link keys for
//! the clients, all derived from one seed.
//!
//! Links form a full mesh (a reply crosses the layers backwards, so every node may dial any
//! other); entries accept the harness's client keys and last-layer nodes the exits' keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use x25519_dalek::{PublicKey, StaticSecret};

use super::directory::{Directory, LAYERS, NodeEntry};
use super::exit::{ExitConfig, ExitRecord, RunningExit, spawn_exit};
use super::link::LinkKeypair;
use super::node::NodeKeys;
use super::packet::Sphinx;
use super::server::{Allowed, NodeConfig, NodeMetrics, Peer, RunningNode, spawn_node};
use crate::NetError;

/// What to start.
#[derive(Clone, Debug)]
pub struct HarnessConfig {
    /// Nodes in each layer.
    pub per_layer: usize,
    /// The packet format.
    pub format: Sphinx,
    /// The link frame length.
    pub frame_len: usize,
    /// How many client link keys to register at the entries.
    pub clients: usize,
    /// The gateways the exits forward to.
    pub allowlist: Vec<String>,
    /// The JSON-RPC endpoints the exits forward chain reads to.
    pub rpc_allowlist: Vec<String>,
    /// The exits' mean processing delay.
    pub exit_delay: Duration,
    /// The longest per-hop delay a node honours.
    pub delay_cap: Duration,
    /// Every key derives from it.
    pub seed: u64,
}

/// A running loopback mixnet.
pub struct Harness {
    directory: Directory,
    signed: Vec<u8>,
    authority: ed25519_dalek::VerifyingKey,
    nodes: Vec<RunningNode>,
    exits: Vec<RunningExit>,
    clients: Vec<[u8; 32]>,
    _drains: Vec<tokio::task::JoinHandle<()>>,
}

/// The 32-byte key `label`/`index` of a loopback network started from `seed` (test keys:
/// anyone who knows the seed has them).
pub(crate) fn seeded_key(seed: u64, label: &str, index: usize) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"nullgate/v1/harness")
        .chain_update(seed.to_be_bytes())
        .chain_update(label.as_bytes())
        .chain_update((index as u64).to_be_bytes())
        .finalize()
        .into()
}

impl Harness {
    /// Starts the directory, the nodes and the exits.
    pub async fn start(config: HarnessConfig) -> Result<Self, NetError> {
        let io = |detail: String| NetError::Io {
            peer: "loopback harness",
            detail,
        };
        let derive = |label: &str, index: usize| seeded_key(config.seed, label, index);
        let count = config.per_layer * LAYERS;
        let mut listeners = Vec::new();
        let mut entries = Vec::new();
        let mut packet_keys = Vec::new();
        for i in 0..count {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| io(e.to_string()))?;
            let packet_key = StaticSecret::from(derive("packet", i));
            entries.push(NodeEntry {
                address: derive("address", i),
                endpoint: listener
                    .local_addr()
                    .map_err(|e| io(e.to_string()))?
                    .to_string(),
                link_key: LinkKeypair::from_secret(derive("link", i)).public(),
                key: PublicKey::from(&packet_key).to_bytes(),
                next_key: PublicKey::from(&StaticSecret::from(derive("next", i))).to_bytes(),
            });
            listeners.push(listener);
            packet_keys.push(packet_key);
        }
        let exit_keys: Vec<[u8; 32]> = (0..config.per_layer).map(|i| derive("exit", i)).collect();
        let clients: Vec<[u8; 32]> = (0..config.clients).map(|i| derive("client", i)).collect();
        let peers: HashMap<_, _> = entries
            .iter()
            .map(|e| {
                let socket = e.endpoint.parse().map_err(|_| io("endpoint".into()))?;
                Ok((
                    e.address,
                    Peer {
                        socket,
                        link_key: e.link_key,
                    },
                ))
            })
            .collect::<Result<_, NetError>>()?;
        let mut allowed: Vec<[u8; 32]> = entries.iter().map(|e| e.link_key).collect();
        allowed.extend(
            exit_keys
                .iter()
                .map(|k| LinkKeypair::from_secret(*k).public()),
        );
        allowed.extend(
            clients
                .iter()
                .map(|k| LinkKeypair::from_secret(*k).public()),
        );

        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| io(e.to_string()))?
            .as_secs();
        let directory = Directory {
            epoch: 1,
            valid_from: now.saturating_sub(60),
            valid_until: now + 3600,
            layers: entries
                .chunks(config.per_layer)
                .map(<[NodeEntry]>::to_vec)
                .collect(),
        };
        let authority = SigningKey::from_bytes(&derive("authority", 0));
        let signed = directory.sign(&authority)?;

        let mut nodes = Vec::new();
        let mut exits = Vec::new();
        let mut drains = Vec::new();
        for (i, (listener, packet_key)) in listeners.into_iter().zip(packet_keys).enumerate() {
            let (tx, rx) = mpsc::channel(4096);
            nodes.push(spawn_node(
                listener,
                NodeConfig {
                    format: config.format,
                    keys: NodeKeys::Fixed(packet_key),
                    link_key: LinkKeypair::from_secret(derive("link", i)),
                    allowed_peers: Allowed::Listed(allowed.clone()),
                    next_hops: peers.clone(),
                    frame_len: config.frame_len,
                    queue_capacity: 4096,
                    delay_cap: config.delay_cap,
                },
                tx,
            ));
            let layer = i / config.per_layer;
            if layer == LAYERS - 1 {
                // The exit replies by its node's table.
                let reply_hops = nodes
                    .last()
                    .map(|node: &RunningNode| node.peers().next_hops())
                    .ok_or_else(|| io("no node for the exit".into()))?;
                exits.push(spawn_exit(
                    ExitConfig {
                        format: config.format,
                        allowlist: config.allowlist.clone(),
                        rpc_allowlist: config.rpc_allowlist.clone(),
                        processing_delay: config.exit_delay,
                        processing_delay_cap: config.exit_delay * 10,
                        parity: 2,
                        gateway_timeout: Duration::from_secs(10),
                        link_key: LinkKeypair::from_secret(exit_keys[i % config.per_layer]),
                        reply_hops,
                        frame_len: config.frame_len,
                        max_pending: 64,
                    },
                    rx,
                ));
            } else {
                // Earlier layers deliver only to mailboxes; anything else is dropped.
                let mut rx = rx;
                drains.push(tokio::spawn(
                    async move { while rx.recv().await.is_some() {} },
                ));
            }
        }
        Ok(Self {
            directory,
            signed,
            authority: authority.verifying_key(),
            nodes,
            exits,
            clients,
            _drains: drains,
        })
    }

    /// The directory as the authority signed it.
    pub fn signed_directory(&self) -> &[u8] {
        &self.signed
    }

    /// The directory authority's key.
    pub fn authority(&self) -> ed25519_dalek::VerifyingKey {
        self.authority
    }

    /// The directory's content.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The link key of client `index` (registered at every entry).
    pub fn client_key(&self, index: usize) -> Option<LinkKeypair> {
        self.clients
            .get(index)
            .map(|k| LinkKeypair::from_secret(*k))
    }

    /// The counters of node `index` (layer by layer, entry side first).
    pub fn node_metrics(&self, index: usize) -> Option<Arc<NodeMetrics>> {
        self.nodes.get(index).map(|n| Arc::clone(&n.metrics))
    }

    /// Everything every exit recorded.
    pub fn exit_records(&self) -> Vec<ExitRecord> {
        self.exits
            .iter()
            .filter_map(|e| e.records.lock().ok().map(|r| r.clone()))
            .flatten()
            .collect()
    }
}

//! A mix node on the network: Noise links in ([`Link::accept`]), the per-packet step
//! ([`EpochState`]), the bounded delay queue ([`DelayQueue`]), Noise links out to the next
//! layer, and Prometheus counters.
//!
//! Packets arriving on every inbound link go to one processing task, which owns the epoch
//! state and the queue; so the replay cache needs no lock. A link that sends a frame that
//! fails authentication is closed (Noise cannot resynchronise); a frame that authenticates
//! but holds no valid packet is counted and dropped, and the link stays up.
//
// Not yet here (issue 4): epoch rotation driven by the directory (the state is replaced
// whole, see `EpochState`), and handing delivered payloads to the exit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use x25519_dalek::StaticSecret;

use super::link::{Link, LinkKeypair};
use super::node::{Dropped, EpochState};
use super::packet::{NodeAddress, Opened, PacketFormat};
use super::timing::DelayQueue;

/// Where a node sends packets for one next-hop address.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The socket address the peer listens on.
    pub socket: SocketAddr,
    /// The peer's static link key, pinned on connect.
    pub link_key: [u8; 32],
}

/// A running node's configuration.
pub struct NodeConfig<F> {
    /// The packet format.
    pub format: F,
    /// This node's packet key for the current epoch.
    pub packet_key: StaticSecret,
    /// This node's link key pair.
    pub link_key: LinkKeypair,
    /// Static link keys allowed to connect (previous layer, or clients at the entry).
    pub allowed_peers: Vec<[u8; 32]>,
    /// The next layer, by the address carried in packet headers.
    pub next_hops: HashMap<NodeAddress, Peer>,
    /// The length of every link frame.
    pub frame_len: usize,
    /// Packets the delay queue holds at most.
    pub queue_capacity: usize,
    /// The longest delay a header may ask for.
    pub delay_cap: Duration,
}

/// A payload that left the mixnet at this node (it was the last hop).
#[derive(Debug)]
pub struct Delivered {
    /// The destination the sender named.
    pub destination: [u8; 32],
    /// A reply's opener identifier (zero for a forward message).
    pub identifier: [u8; 16],
    /// The payload as the last hop sees it.
    pub payload: Vec<u8>,
}

/// A node's counters, readable while it runs.
#[derive(Debug, Default)]
pub struct NodeMetrics {
    /// Frames received on inbound links.
    pub received: AtomicU64,
    /// Packets forwarded to the next layer.
    pub forwarded: AtomicU64,
    /// Packets delivered at this node (last hop).
    pub delivered: AtomicU64,
    /// Packets dropped as replays.
    pub dropped_replay: AtomicU64,
    /// Packets dropped as invalid (malformed, tampered, wrong key).
    pub dropped_invalid: AtomicU64,
    /// Packets dropped because the delay queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Packets dropped because the next hop is unknown or unreachable.
    pub dropped_unroutable: AtomicU64,
    /// Inbound links refused or closed on a bad frame.
    pub links_failed: AtomicU64,
}

impl NodeMetrics {
    /// The counters in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let counters = [
            ("received", &self.received),
            ("forwarded", &self.forwarded),
            ("delivered", &self.delivered),
            ("dropped_replay", &self.dropped_replay),
            ("dropped_invalid", &self.dropped_invalid),
            ("dropped_queue_full", &self.dropped_queue_full),
            ("dropped_unroutable", &self.dropped_unroutable),
            ("links_failed", &self.links_failed),
        ];
        let mut text = String::new();
        for (name, value) in counters {
            text.push_str(&format!(
                "# TYPE nullgate_mixnode_{name}_total counter\nnullgate_mixnode_{name}_total {}\n",
                value.load(Ordering::Relaxed)
            ));
        }
        text
    }
}

/// A running node: its counters and its tasks (aborted on drop).
pub struct RunningNode {
    /// The node's counters.
    pub metrics: Arc<NodeMetrics>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts a node on `listener`; payloads for which it is the last hop go to `deliveries`.
pub fn spawn_node<F>(
    listener: TcpListener,
    config: NodeConfig<F>,
    deliveries: mpsc::Sender<Delivered>,
) -> RunningNode
where
    F: PacketFormat + Send + 'static,
{
    let metrics = Arc::new(NodeMetrics::default());
    let (packets_tx, packets_rx) = mpsc::channel::<Vec<u8>>(config.queue_capacity.max(1));
    let link_key = Arc::new(config.link_key);
    let allowed = Arc::new(config.allowed_peers);
    let frame_len = config.frame_len;
    let accept = tokio::spawn(accept_links(
        listener,
        Arc::clone(&link_key),
        allowed,
        frame_len,
        packets_tx,
        Arc::clone(&metrics),
    ));
    let state = EpochState::new(config.format, config.packet_key);
    let queue = DelayQueue::new(config.queue_capacity, config.delay_cap);
    let process = tokio::spawn(process_packets(
        state,
        queue,
        packets_rx,
        Outbound {
            link_key,
            next_hops: config.next_hops,
            links: HashMap::new(),
            frame_len,
        },
        deliveries,
        Arc::clone(&metrics),
    ));
    RunningNode {
        metrics,
        tasks: vec![accept, process],
    }
}

async fn accept_links(
    listener: TcpListener,
    link_key: Arc<LinkKeypair>,
    allowed: Arc<Vec<[u8; 32]>>,
    frame_len: usize,
    packets: mpsc::Sender<Vec<u8>>,
    metrics: Arc<NodeMetrics>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (link_key, allowed, packets, metrics) = (
            Arc::clone(&link_key),
            Arc::clone(&allowed),
            packets.clone(),
            Arc::clone(&metrics),
        );
        tokio::spawn(async move {
            let link = Link::accept(stream, &link_key, |key| allowed.contains(key), frame_len);
            let Ok(Ok(mut link)) = tokio::time::timeout(Duration::from_secs(10), link).await else {
                metrics.links_failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            loop {
                match link.recv().await {
                    Ok(packet) => {
                        metrics.received.fetch_add(1, Ordering::Relaxed);
                        if packets.send(packet).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => {
                        metrics.links_failed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
    }
}

struct Outbound {
    link_key: Arc<LinkKeypair>,
    next_hops: HashMap<NodeAddress, Peer>,
    links: HashMap<NodeAddress, Link<TcpStream>>,
    frame_len: usize,
}

impl Outbound {
    /// Sends on the link to `next`, dialling it first if needed; one retry on a fresh link.
    async fn send(&mut self, next: NodeAddress, packet: &[u8]) -> bool {
        let Some(peer) = self.next_hops.get(&next).cloned() else {
            return false;
        };
        for _ in 0..2 {
            if !self.links.contains_key(&next) {
                let Ok(stream) = TcpStream::connect(peer.socket).await else {
                    return false;
                };
                let _ = stream.set_nodelay(true);
                match Link::connect(stream, &self.link_key, &peer.link_key, self.frame_len).await {
                    Ok(link) => {
                        self.links.insert(next, link);
                    }
                    Err(_) => return false,
                }
            }
            if let Some(link) = self.links.get_mut(&next) {
                if link.send(packet).await.is_ok() {
                    return true;
                }
                self.links.remove(&next);
            }
        }
        false
    }
}

async fn process_packets<F: PacketFormat>(
    mut state: EpochState<F>,
    mut queue: DelayQueue<(NodeAddress, Vec<u8>)>,
    mut packets: mpsc::Receiver<Vec<u8>>,
    mut outbound: Outbound,
    deliveries: mpsc::Sender<Delivered>,
    metrics: Arc<NodeMetrics>,
) {
    let start = Instant::now();
    loop {
        let wake = queue
            .next_due()
            .map(|due| start + due)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            packet = packets.recv() => {
                let Some(packet) = packet else { return };
                match state.process(&packet) {
                    Ok(Opened::Forward { next, delay, packet }) => {
                        if queue.push(start.elapsed(), delay, (next, packet)).is_err() {
                            metrics.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(Opened::Deliver { destination, identifier, payload }) => {
                        metrics.delivered.fetch_add(1, Ordering::Relaxed);
                        let _ = deliveries.try_send(Delivered { destination, identifier, payload });
                    }
                    Err(Dropped::Replay) => {
                        metrics.dropped_replay.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        metrics.dropped_invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
        for (next, packet) in queue.pop_due(start.elapsed()) {
            if outbound.send(next, &packet).await {
                metrics.forwarded.fetch_add(1, Ordering::Relaxed);
            } else {
                metrics.dropped_unroutable.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use x25519_dalek::PublicKey;

    use super::*;
    use crate::mixnet::packet::{Hop, Sphinx};

    const FRAME: usize = 4_096;

    struct Net {
        _nodes: Vec<RunningNode>,
        metrics: Vec<Arc<NodeMetrics>>,
        route: Vec<Hop>,
        entry: Peer,
        client: LinkKeypair,
        deliveries: mpsc::Receiver<Delivered>,
    }

    /// Three nodes, one per layer, on 127.0.0.1.
    async fn three_layers(format: Sphinx) -> Net {
        let client = LinkKeypair::generate().unwrap();
        let mut listeners = Vec::new();
        let mut link_keys = Vec::new();
        let mut route = Vec::new();
        let mut packet_keys = Vec::new();
        for i in 0..3u8 {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
            link_keys.push(LinkKeypair::generate().unwrap());
            let key = StaticSecret::from([i + 1; 32]);
            route.push(Hop {
                address: [i + 10; 32],
                key: PublicKey::from(&key),
            });
            packet_keys.push(key);
        }
        let peers: Vec<Peer> = (0..3)
            .map(|i| Peer {
                socket: listeners[i].local_addr().unwrap(),
                link_key: link_keys[i].public(),
            })
            .collect();
        let entry = peers[0].clone();
        let (tx, deliveries) = mpsc::channel(64);
        let mut nodes = Vec::new();
        let mut previous = client.public();
        for (i, (listener, (link_key, packet_key))) in listeners
            .into_iter()
            .zip(link_keys.into_iter().zip(packet_keys))
            .enumerate()
        {
            let public = link_key.public();
            let next_hops = if i < 2 {
                HashMap::from([(route[i + 1].address, peers[i + 1].clone())])
            } else {
                HashMap::new()
            };
            let config = NodeConfig {
                format,
                packet_key,
                link_key,
                allowed_peers: vec![previous],
                next_hops,
                frame_len: FRAME,
                queue_capacity: 256,
                delay_cap: Duration::from_millis(50),
            };
            nodes.push(spawn_node(listener, config, tx.clone()));
            previous = public;
        }
        Net {
            metrics: nodes.iter().map(|node| Arc::clone(&node.metrics)).collect(),
            _nodes: nodes,
            route,
            entry,
            client,
            deliveries,
        }
    }

    #[tokio::test]
    async fn three_hops_over_links_with_replays_and_garbage_dropped() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let format = Sphinx::new(1024);
            let mut net = three_layers(format).await;
            let stream = TcpStream::connect(net.entry.socket).await.unwrap();
            let mut link = Link::connect(stream, &net.client, &net.entry.link_key, FRAME)
                .await
                .unwrap();
            let delays = vec![Duration::from_millis(1); 3];
            let packet = format
                .create(b"through three layers", &net.route, [0xde; 32], &delays)
                .unwrap();
            // Garbage first: it authenticates on the link but is no packet. Each one differs,
            // so each costs the node a key exchange (equal ones would be dropped as replays).
            for i in 0..50u8 {
                link.send(&vec![i; format.packet_size()]).await.unwrap();
            }
            link.send(&packet).await.unwrap();
            link.send(&packet).await.unwrap(); // a replay
            let delivered = net.deliveries.recv().await.unwrap();
            assert_eq!(delivered.destination, [0xde; 32]);
            assert_eq!(
                format.plaintext(&delivered.payload).unwrap(),
                b"through three layers"
            );
            let entry = &net.metrics[0];
            while entry.dropped_replay.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(entry.dropped_invalid.load(Ordering::Relaxed), 50);
            assert_eq!(entry.forwarded.load(Ordering::Relaxed), 1);
            assert_eq!(net.metrics[2].delivered.load(Ordering::Relaxed), 1);
            let text = entry.prometheus();
            assert!(text.contains("nullgate_mixnode_dropped_replay_total 1\n"));
            assert!(text.contains("nullgate_mixnode_dropped_invalid_total 50\n"));
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test]
    async fn an_unknown_client_cannot_open_a_link() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let net = three_layers(Sphinx::new(1024)).await;
            let stranger = LinkKeypair::generate().unwrap();
            let stream = TcpStream::connect(net.entry.socket).await.unwrap();
            let mut link = Link::connect(stream, &stranger, &net.entry.link_key, FRAME)
                .await
                .unwrap();
            // The entry refuses after the last handshake message and closes the link.
            let _ = link.send(b"anything").await;
            assert!(link.recv().await.is_err());
            while net.metrics[0].links_failed.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(net.metrics[0].received.load(Ordering::Relaxed), 0);
        })
        .await
        .expect("bounded in time");
    }
}

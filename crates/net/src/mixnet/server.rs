//! A mix node on the network: Noise links in ([`Link::accept`]), the per-packet step
//! ([`Epochs`]), the bounded delay queue ([`DelayQueue`]), Noise links out to the next
//! layer, and Prometheus counters.
//!
//! Packets arriving on every inbound link go to one processing task, which owns the epoch
//! state and the queue. It opens a lone packet itself and a backlog on one worker thread per
//! core; those threads share each epoch's replay cache behind its lock (see
//! [`super::node`]), so a packet and its replay racing on two threads still open once.
//! Every inbound link also has a
//! mailbox: a payload delivered here for [`mailbox_address`] of the link's key goes back down
//! that link (how replies and loop packets reach a client through its entry node). A link that sends a frame that
//! fails authentication is closed (Noise cannot resynchronise); a frame that authenticates
//! but holds no valid packet is counted and dropped, and the link stays up.
//!
//! Packet keys rotate every epoch ([`Epochs`]: the previous epoch's key and replay cache
//! are kept through a grace period, then dropped), and what the last layer delivers goes to
//! the exit beside the node.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use x25519_dalek::{PublicKey, StaticSecret};

use super::epoch::EpochClock;
use super::link::{Link, LinkError, LinkKeypair};
use super::node::{Dropped, Epochs, NodeKeys};
use super::packet::{Hop, NodeAddress, Opened, PacketFormat, Sphinx};
use super::timing::DelayQueue;
use crate::NetError;

/// The destination address that makes a node deliver a payload down the inbound link
/// authenticated with `link_key` (a client's mailbox at its entry node). What comes down the
/// link is one frame: the reply identifier (16 bytes) then the payload.
pub fn mailbox_address(link_key: &[u8; 32]) -> NodeAddress {
    Sha256::new()
        .chain_update(b"nullgate/v1/mailbox")
        .chain_update(link_key)
        .finalize()
        .into()
}

/// The next hops by address, replaceable while the node runs (the directory changes).
pub type SharedPeers = Arc<std::sync::RwLock<HashMap<NodeAddress, Peer>>>;

/// Open inbound links by mailbox address, each with the queue its writer task drains.
type Mailboxes = Arc<std::sync::Mutex<HashMap<NodeAddress, mpsc::Sender<Vec<u8>>>>>;

/// Where a node sends packets for one next-hop address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The socket address the peer listens on.
    pub socket: SocketAddr,
    /// The peer's static link key, pinned on connect.
    pub link_key: [u8; 32],
}

/// Who may open a link to a node.
#[derive(Clone, Debug)]
pub enum Allowed {
    /// Any static key: an entry node serving anonymous clients (their packets still have
    /// to open under the node's Sphinx key to go anywhere).
    Anyone,
    /// Only these static keys: other nodes (and exits), or registered clients.
    Listed(Vec<[u8; 32]>),
}

impl Allowed {
    /// Whether `key` may open a link.
    pub fn permits(&self, key: &[u8; 32]) -> bool {
        match self {
            Self::Anyone => true,
            Self::Listed(keys) => keys.contains(key),
        }
    }
}

/// A running node's configuration.
pub struct NodeConfig<F> {
    /// The packet format.
    pub format: F,
    /// This node's packet keys: fixed, or rotating every epoch.
    pub keys: NodeKeys,
    /// This node's link key pair.
    pub link_key: LinkKeypair,
    /// Who may open a link to this node.
    pub allowed_peers: Allowed,
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
    /// Packets opened on a worker thread because others were waiting (the node was busy
    /// enough to use more than one core).
    pub opened_on_workers: AtomicU64,
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
            ("opened_on_workers", &self.opened_on_workers),
        ];
        prometheus_counters("nullgate_mixnode", &counters)
    }
}

/// `counters` in the Prometheus text exposition format, each named
/// `{prefix}_{name}_total`.
pub(crate) fn prometheus_counters(prefix: &str, counters: &[(&str, &AtomicU64)]) -> String {
    let mut text = String::new();
    for (name, value) in counters {
        text.push_str(&format!(
            "# TYPE {prefix}_{name}_total counter\n{prefix}_{name}_total {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    text
}

/// A running node: its counters and its tasks (aborted on drop).
pub struct RunningNode {
    /// The node's counters.
    pub metrics: Arc<NodeMetrics>,
    allowed: Arc<std::sync::RwLock<Allowed>>,
    next_hops: SharedPeers,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// A handle to change the node's peers while it runs.
    pub fn peers(&self) -> PeerTable {
        PeerTable {
            allowed: Arc::clone(&self.allowed),
            next_hops: Arc::clone(&self.next_hops),
        }
    }
}

/// Who may link into a running node and where it sends packets next.
#[derive(Clone)]
pub struct PeerTable {
    allowed: Arc<std::sync::RwLock<Allowed>>,
    next_hops: SharedPeers,
}

impl PeerTable {
    /// The next hops, shared: an exit beside the node sends its replies by the same table.
    pub fn next_hops(&self) -> SharedPeers {
        Arc::clone(&self.next_hops)
    }

    /// Replaces both (from a new directory). Links already open stay; a peer whose endpoint
    /// or key changed is dialled afresh.
    pub fn update(&self, allowed: Allowed, next_hops: HashMap<NodeAddress, Peer>) {
        if let Ok(mut current) = self.allowed.write() {
            *current = allowed;
        }
        if let Ok(mut current) = self.next_hops.write() {
            *current = next_hops;
        }
    }
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
    F: PacketFormat + Copy + Send + 'static,
{
    let metrics = Arc::new(NodeMetrics::default());
    let (packets_tx, packets_rx) = mpsc::channel::<Vec<u8>>(config.queue_capacity.max(1));
    let link_key = Arc::new(config.link_key);
    let allowed = Arc::new(std::sync::RwLock::new(config.allowed_peers));
    let next_hops: SharedPeers = Arc::new(std::sync::RwLock::new(config.next_hops));
    let frame_len = config.frame_len;
    let mailboxes = Mailboxes::default();
    let accept = tokio::spawn(accept_links(
        listener,
        Arc::clone(&link_key),
        Arc::clone(&allowed),
        frame_len,
        packets_tx,
        Arc::clone(&mailboxes),
        Arc::clone(&metrics),
    ));
    let state = Epochs::new(config.format, config.keys, EpochClock::now());
    let queue = DelayQueue::new(config.queue_capacity, config.delay_cap);
    let process = tokio::spawn(process_packets(
        state,
        queue,
        packets_rx,
        Forwarder::new(
            link_key,
            Arc::clone(&next_hops),
            frame_len,
            Arc::clone(&metrics),
        ),
        mailboxes,
        deliveries,
        Arc::clone(&metrics),
    ));
    RunningNode {
        metrics,
        allowed,
        next_hops,
        tasks: vec![accept, process],
    }
}

/// A loopback mixnet for tests and `nullgate bench net`: one node per layer, three layers, on
/// 127.0.0.1, with packet keys derived from a seed; the caller plays the client (one pinned
/// link into the entry) and the exit (it reads what the last layer delivers).
pub struct Loopback {
    nodes: Vec<RunningNode>,
    route: Vec<Hop>,
    entry: Peer,
    client: LinkKeypair,
    deliveries: mpsc::Receiver<Delivered>,
    format: Sphinx,
    frame_len: usize,
}

impl Loopback {
    /// Starts the three nodes. `frame_len` must hold one packet of `format`.
    pub async fn start(format: Sphinx, frame_len: usize, seed: u64) -> Result<Self, NetError> {
        let io = |detail: String| NetError::Io {
            peer: "loopback mixnet",
            detail,
        };
        let client = LinkKeypair::generate().map_err(|e| io(e.to_string()))?;
        let mut listeners = Vec::new();
        let mut link_keys = Vec::new();
        let mut route = Vec::new();
        let mut packet_keys = Vec::new();
        for layer in 0..3u8 {
            listeners.push(
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|e| io(e.to_string()))?,
            );
            link_keys.push(LinkKeypair::generate().map_err(|e| io(e.to_string()))?);
            let key = StaticSecret::from(super::harness::seeded_key(
                seed,
                "loopback packet",
                usize::from(layer),
            ));
            route.push(Hop {
                address: [layer + 10; 32],
                key: PublicKey::from(&key),
            });
            packet_keys.push(key);
        }
        let mut peers = Vec::new();
        for (listener, link_key) in listeners.iter().zip(&link_keys) {
            peers.push(Peer {
                socket: listener.local_addr().map_err(|e| io(e.to_string()))?,
                link_key: link_key.public(),
            });
        }
        let entry = peers[0].clone();
        let (tx, deliveries) = mpsc::channel(1024);
        let mut nodes = Vec::new();
        let mut previous = client.public();
        for (layer, (listener, (link_key, packet_key))) in listeners
            .into_iter()
            .zip(link_keys.into_iter().zip(packet_keys))
            .enumerate()
        {
            let public = link_key.public();
            let next_hops = match (route.get(layer + 1), peers.get(layer + 1)) {
                (Some(hop), Some(peer)) => HashMap::from([(hop.address, peer.clone())]),
                _ => HashMap::new(),
            };
            let config = NodeConfig {
                format,
                keys: NodeKeys::Fixed(packet_key),
                link_key,
                allowed_peers: Allowed::Listed(vec![previous]),
                next_hops,
                frame_len,
                queue_capacity: 1024,
                delay_cap: Duration::from_millis(50),
            };
            nodes.push(spawn_node(listener, config, tx.clone()));
            previous = public;
        }
        Ok(Self {
            nodes,
            route,
            entry,
            client,
            deliveries,
            format,
            frame_len,
        })
    }

    /// The route entry → layer 2 → layer 3.
    pub fn route(&self) -> &[Hop] {
        &self.route
    }

    /// The counters of the node in `layer` (0, 1 or 2).
    pub fn metrics(&self, layer: usize) -> Option<&NodeMetrics> {
        self.nodes.get(layer).map(|node| &*node.metrics)
    }

    /// Opens the client's pinned link into the entry node.
    pub async fn client_link(&self) -> Result<Link<TcpStream>, LinkError> {
        let stream = TcpStream::connect(self.entry.socket).await?;
        stream.set_nodelay(true)?;
        Link::connect(stream, &self.client, &self.entry.link_key, self.frame_len).await
    }

    /// Opens a link into the entry with a key the entry does not know.
    pub async fn stranger_link(&self) -> Result<Link<TcpStream>, LinkError> {
        let stranger = LinkKeypair::generate()?;
        let stream = TcpStream::connect(self.entry.socket).await?;
        Link::connect(stream, &stranger, &self.entry.link_key, self.frame_len).await
    }

    /// The next payload the last layer delivers.
    pub async fn next_delivery(&mut self) -> Option<Delivered> {
        self.deliveries.recv().await
    }

    /// One request and its reply through the mixnet: the request (with a reply block) goes
    /// through the three layers on `link`; playing the exit, the harness answers through the
    /// reply block, which goes through the three layers again; the client opens the reply.
    /// Returns the time from sending the request to opening the reply.
    pub async fn round_trip(
        &mut self,
        link: &mut Link<TcpStream>,
        message: &[u8],
        delays: &[Duration],
    ) -> Result<Duration, NetError> {
        let bad = |detail: &str| NetError::Unexpected {
            peer: "loopback mixnet",
            detail: detail.to_owned(),
        };
        let started = std::time::Instant::now();
        let (block, opener) = self.format.reply_block(&self.route, [0xc1; 32], delays)?;
        let block_len = u16::try_from(block.len()).map_err(|_| bad("reply block too large"))?;
        let mut request = block_len.to_be_bytes().to_vec();
        request.extend_from_slice(&block);
        request.extend_from_slice(message);
        let packet = self
            .format
            .create(&request, &self.route, [0xe0; 32], delays)?;
        link.send(&packet).await.map_err(|e| bad(&e.to_string()))?;

        // The exit's side.
        let delivered = self.deliveries.recv().await.ok_or_else(|| bad("closed"))?;
        let plain = self.format.plaintext(&delivered.payload)?;
        let block = plain
            .get(2..2 + usize::from(block_len))
            .ok_or_else(|| bad("short request"))?;
        let (first_hop, reply) = self.format.use_reply_block(block, b"reply")?;
        if first_hop != self.route[0].address {
            return Err(bad("reply block names another first hop"));
        }
        link.send(&reply).await.map_err(|e| bad(&e.to_string()))?;

        // Back at the client.
        let delivered = self.deliveries.recv().await.ok_or_else(|| bad("closed"))?;
        if delivered.identifier != opener.identifier() {
            return Err(bad("an unexpected reply"));
        }
        if opener.open(&delivered.payload)? != b"reply" {
            return Err(bad("the reply does not open"));
        }
        Ok(started.elapsed())
    }
}

async fn accept_links(
    listener: TcpListener,
    link_key: Arc<LinkKeypair>,
    allowed: Arc<std::sync::RwLock<Allowed>>,
    frame_len: usize,
    packets: mpsc::Sender<Vec<u8>>,
    mailboxes: Mailboxes,
    metrics: Arc<NodeMetrics>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (link_key, allowed, packets, mailboxes, metrics) = (
            Arc::clone(&link_key),
            Arc::clone(&allowed),
            packets.clone(),
            Arc::clone(&mailboxes),
            Arc::clone(&metrics),
        );
        tokio::spawn(async move {
            let link = Link::accept(
                stream,
                &link_key,
                |key| allowed.read().is_ok_and(|allowed| allowed.permits(key)),
                frame_len,
            );
            let Ok(Ok(link)) = tokio::time::timeout(Duration::from_secs(10), link).await else {
                metrics.links_failed.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let mailbox = mailbox_address(&link.remote_key());
            let (mut reader, mut writer) = link.into_split();
            let (down_tx, mut down_rx) = mpsc::channel::<Vec<u8>>(256);
            if let Ok(mut open) = mailboxes.lock() {
                open.insert(mailbox, down_tx.clone());
            }
            let down = tokio::spawn(async move {
                while let Some(frame) = down_rx.recv().await {
                    if writer.send(&frame).await.is_err() {
                        return;
                    }
                }
            });
            loop {
                match reader.recv().await {
                    Ok(packet) => {
                        metrics.received.fetch_add(1, Ordering::Relaxed);
                        if packets.send(packet).await.is_err() {
                            break;
                        }
                    }
                    Err(_) => {
                        metrics.links_failed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
            down.abort();
            if let Ok(mut open) = mailboxes.lock() {
                // Only this link's entry: a newer link with the same key may have replaced it.
                if open
                    .get(&mailbox)
                    .is_some_and(|tx| tx.same_channel(&down_tx))
                {
                    open.remove(&mailbox);
                }
            }
        });
    }
}

/// Links out to the next hops: one task per peer, dialled on first use, fed by a bounded
/// queue, so that a slow or unreachable peer never stalls packet processing (its packets are
/// dropped when its queue is full).
pub(crate) struct Forwarder {
    link_key: Arc<LinkKeypair>,
    next_hops: SharedPeers,
    /// Each peer's queue, with the peer it was opened for.
    queues: HashMap<NodeAddress, (Peer, mpsc::Sender<Vec<u8>>)>,
    tasks: Vec<JoinHandle<()>>,
    frame_len: usize,
    metrics: Arc<NodeMetrics>,
}

/// Packets waiting for one peer's link at most.
const PEER_QUEUE: usize = 1024;

impl Forwarder {
    pub(crate) fn new(
        link_key: Arc<LinkKeypair>,
        next_hops: SharedPeers,
        frame_len: usize,
        metrics: Arc<NodeMetrics>,
    ) -> Self {
        Self {
            link_key,
            next_hops,
            queues: HashMap::new(),
            tasks: Vec::new(),
            frame_len,
            metrics,
        }
    }

    /// Queues `packet` for `next` without waiting.
    pub(crate) fn forward(&mut self, next: NodeAddress, packet: Vec<u8>) {
        let peer = self
            .next_hops
            .read()
            .ok()
            .and_then(|hops| hops.get(&next).cloned());
        let Some(peer) = peer else {
            self.metrics
                .dropped_unroutable
                .fetch_add(1, Ordering::Relaxed);
            return;
        };
        // A new peer, or one whose endpoint or key changed: a fresh link task (the old
        // one ends once its queue is drained and dropped).
        if self
            .queues
            .get(&next)
            .is_none_or(|(opened, _)| *opened != peer)
        {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            self.tasks.retain(|task| !task.is_finished());
            self.tasks.push(tokio::spawn(peer_link(
                peer.clone(),
                Arc::clone(&self.link_key),
                self.frame_len,
                rx,
                Arc::clone(&self.metrics),
            )));
            self.queues.insert(next, (peer, tx));
        }
        if let Some((_, queue)) = self.queues.get(&next)
            && queue.try_send(packet).is_err()
        {
            self.metrics
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Drains one peer's queue onto its link, dialling (again) when needed.
async fn peer_link(
    peer: Peer,
    link_key: Arc<LinkKeypair>,
    frame_len: usize,
    mut queue: mpsc::Receiver<Vec<u8>>,
    metrics: Arc<NodeMetrics>,
) {
    let mut link: Option<Link<TcpStream>> = None;
    while let Some(packet) = queue.recv().await {
        let mut sent = false;
        // One retry on a fresh link.
        for _ in 0..2 {
            if link.is_none() {
                link = dial(&peer, &link_key, frame_len).await;
            }
            let Some(open) = link.as_mut() else { break };
            if open.send(&packet).await.is_ok() {
                sent = true;
                break;
            }
            link = None;
        }
        let counter = if sent {
            &metrics.forwarded
        } else {
            &metrics.dropped_unroutable
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

async fn dial(peer: &Peer, link_key: &LinkKeypair, frame_len: usize) -> Option<Link<TcpStream>> {
    let connect = async {
        let stream = TcpStream::connect(peer.socket).await.ok()?;
        let _ = stream.set_nodelay(true);
        Link::connect(stream, link_key, &peer.link_key, frame_len)
            .await
            .ok()
    };
    tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .ok()
        .flatten()
}

/// The node's main loop: packets in, opened on up to one worker thread per core when they
/// queue up (the key exchanges are the node's whole cost; a lone packet is opened in the
/// loop), held for their delays, forwarded or delivered.
async fn process_packets<F: PacketFormat + Copy + Send + 'static>(
    mut state: Epochs<F>,
    mut queue: DelayQueue<(NodeAddress, Vec<u8>)>,
    mut packets: mpsc::Receiver<Vec<u8>>,
    mut forwarder: Forwarder,
    mailboxes: Mailboxes,
    deliveries: mpsc::Sender<Delivered>,
    metrics: Arc<NodeMetrics>,
) {
    let start = Instant::now();
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut keys = state.keys();
    let mut opening = tokio::task::JoinSet::new();
    loop {
        let key_change = state
            .next_change()
            .map(|at| Instant::now() + at.saturating_sub(EpochClock::now()));
        let wake = [queue.next_due().map(|due| start + due), key_change]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let opened = tokio::select! {
            packet = packets.recv(), if opening.len() < workers => {
                let Some(packet) = packet else { return };
                if state.advance(EpochClock::now()) {
                    keys = state.keys();
                }
                if opening.is_empty() && packets.is_empty() {
                    // Nothing else to do: open it here, sparing the hand-off to a worker
                    // thread and back (a tenth of a millisecond per hop on loopback).
                    Some(keys.process(&packet))
                } else {
                    metrics.opened_on_workers.fetch_add(1, Ordering::Relaxed);
                    let keys = keys.clone();
                    opening.spawn_blocking(move || keys.process(&packet));
                    None
                }
            }
            Some(opened) = opening.join_next() => {
                // A worker that panicked counts as an invalid packet.
                Some(opened.unwrap_or_else(|e| {
                    Err(Dropped::Invalid(NetError::BadMessage(e.to_string())))
                }))
            }
            () = tokio::time::sleep_until(wake) => {
                if state.advance(EpochClock::now()) {
                    keys = state.keys();
                }
                None
            }
        };
        if let Some(opened) = opened {
            handle(
                opened,
                start.elapsed(),
                &mut queue,
                &mailboxes,
                &deliveries,
                &metrics,
            );
        }
        for (next, packet) in queue.pop_due(start.elapsed()) {
            forwarder.forward(next, packet);
        }
    }
}

/// What becomes of one processed packet: held in `queue` from `now` for its delay,
/// handed down a client's link at the entry, delivered, or counted as dropped.
fn handle(
    opened: Result<Opened, Dropped>,
    now: Duration,
    queue: &mut DelayQueue<(NodeAddress, Vec<u8>)>,
    mailboxes: &Mailboxes,
    deliveries: &mpsc::Sender<Delivered>,
    metrics: &NodeMetrics,
) {
    match opened {
        Ok(Opened::Forward {
            next,
            delay,
            packet,
        }) => {
            if queue.push(now, delay, (next, packet)).is_err() {
                metrics.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(Opened::Deliver {
            destination,
            identifier,
            payload,
        }) => {
            metrics.delivered.fetch_add(1, Ordering::Relaxed);
            let mailbox = mailboxes
                .lock()
                .ok()
                .and_then(|open| open.get(&destination).cloned());
            match mailbox {
                Some(down) => {
                    let mut frame = identifier.to_vec();
                    frame.extend_from_slice(&payload);
                    let _ = down.try_send(frame);
                }
                None => {
                    let _ = deliveries.try_send(Delivered {
                        destination,
                        identifier,
                        payload,
                    });
                }
            }
        }
        Err(Dropped::Replay) => {
            metrics.dropped_replay.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            metrics.dropped_invalid.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Held by the tests that measure time or load the CPU, so that they do not run at once
    /// (the test harness runs tests in parallel threads).
    static TIMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test]
    async fn three_hops_over_links_with_replays_and_garbage_dropped() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let format = Sphinx::new(1024);
            let mut net = Loopback::start(format, 4096, 7).await.unwrap();
            let mut link = net.client_link().await.unwrap();
            let delays = vec![Duration::from_millis(1); 3];
            let packet = format
                .create(b"through three layers", net.route(), [0xde; 32], &delays)
                .unwrap();
            // Garbage first: it authenticates on the link but is no packet. Each one differs,
            // so each costs the node a key exchange (equal ones would be dropped as replays).
            for i in 0..50u8 {
                link.send(&vec![i; format.packet_size()]).await.unwrap();
            }
            link.send(&packet).await.unwrap();
            link.send(&packet).await.unwrap(); // a replay
            let delivered = net.next_delivery().await.unwrap();
            assert_eq!(delivered.destination, [0xde; 32]);
            assert_eq!(
                format.plaintext(&delivered.payload).unwrap(),
                b"through three layers"
            );
            let entry = net.metrics(0).unwrap();
            // Packets are opened on worker threads in parallel: the counts settle in any
            // order (the timeout above bounds the wait).
            while entry.dropped_replay.load(Ordering::Relaxed) == 0
                || entry.dropped_invalid.load(Ordering::Relaxed) < 50
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(entry.dropped_invalid.load(Ordering::Relaxed), 50);
            assert_eq!(entry.forwarded.load(Ordering::Relaxed), 1);
            assert_eq!(net.metrics(2).unwrap().delivered.load(Ordering::Relaxed), 1);
            let text = entry.prometheus();
            assert!(text.contains("nullgate_mixnode_dropped_replay_total 1\n"));
            assert!(text.contains("nullgate_mixnode_dropped_invalid_total 50\n"));
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test]
    async fn a_request_and_its_reply_cross_the_mixnet_over_six_hops() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let format = Sphinx::new(1024);
            let mut net = Loopback::start(format, 4096, 8).await.unwrap();
            let mut link = net.client_link().await.unwrap();
            for _ in 0..3 {
                net.round_trip(&mut link, b"request", &[Duration::ZERO; 3])
                    .await
                    .unwrap();
            }
            // Six hops a round trip, three forwarded by the entry per round trip.
            assert_eq!(net.metrics(0).unwrap().forwarded.load(Ordering::Relaxed), 6);
            assert_eq!(net.metrics(2).unwrap().delivered.load(Ordering::Relaxed), 6);
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test]
    async fn with_delays_the_output_order_differs_from_the_input_order() {
        use rand::SeedableRng;

        use crate::mixnet::timing::hop_delays;

        tokio::time::timeout(Duration::from_secs(30), async {
            let format = Sphinx::new(1024);
            let mut net = Loopback::start(format, 4096, 10).await.unwrap();
            let mut link = net.client_link().await.unwrap();
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
            let packets: Vec<Vec<u8>> = (0..20u8)
                .map(|i| {
                    let delays = hop_delays(
                        &mut rng,
                        3,
                        Duration::from_millis(5),
                        Duration::from_millis(40),
                    );
                    format
                        .create(&[i], net.route(), [0xde; 32], &delays)
                        .unwrap()
                })
                .collect();
            for packet in &packets {
                link.send(packet).await.unwrap();
            }
            let mut order = Vec::new();
            for _ in 0..packets.len() {
                let delivered = net.next_delivery().await.unwrap();
                order.push(format.plaintext(&delivered.payload).unwrap()[0]);
            }
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                (0..20u8).collect::<Vec<_>>(),
                "every packet arrives once"
            );
            assert_ne!(order, sorted, "the mix reorders");
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_under_a_garbage_flood_keeps_serving_valid_traffic() {
        let _serial = TIMING.lock().await;
        tokio::time::timeout(Duration::from_secs(60), async {
            let format = Sphinx::new(1024);
            let mut net = Loopback::start(format, 4096, 11).await.unwrap();
            let mut flood_link = net.client_link().await.unwrap();
            let mut link = net.client_link().await.unwrap();
            const GARBAGE: u64 = 10_000;
            let flood = tokio::spawn(async move {
                for i in 0..GARBAGE {
                    let mut junk = vec![0u8; format.packet_size()];
                    junk[..8].copy_from_slice(&i.to_be_bytes());
                    if flood_link.send(&junk).await.is_err() {
                        return;
                    }
                }
            });
            let mut served = 0;
            while !flood.is_finished() || served < 10 {
                net.round_trip(&mut link, b"valid", &[Duration::ZERO; 3])
                    .await
                    .unwrap();
                served += 1;
            }
            let entry = net.metrics(0).unwrap();
            while entry.dropped_invalid.load(Ordering::Relaxed) < GARBAGE {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(served >= 10, "valid round trips completed during the flood");
            assert!(
                entry.opened_on_workers.load(Ordering::Relaxed) > 0,
                "the backlog was opened on worker threads"
            );
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_next_hop_does_not_stall_the_others() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let format = Sphinx::new(1024);
            // A black hole: the kernel accepts the connection (backlog) and nobody ever
            // answers the handshake, so dialling it hangs until the dial timeout.
            let hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let first_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let last_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let last_socket = last_listener.local_addr().unwrap();
            let client = LinkKeypair::from_secret([1; 32]);
            let first_link = LinkKeypair::from_secret([2; 32]);
            let last_link = LinkKeypair::from_secret([3; 32]);
            let keys: Vec<StaticSecret> = (4..7u8).map(|i| StaticSecret::from([i; 32])).collect();
            let hop = |i: usize| Hop {
                address: [i as u8; 32],
                key: PublicKey::from(&keys[i]),
            };
            let (tx, mut deliveries) = mpsc::channel(16);
            let _last = spawn_node(
                last_listener,
                NodeConfig {
                    format,
                    keys: NodeKeys::Fixed(keys[2].clone()),
                    link_key: LinkKeypair::from_secret([3; 32]),
                    allowed_peers: Allowed::Listed(vec![first_link.public()]),
                    next_hops: HashMap::new(),
                    frame_len: 4096,
                    queue_capacity: 64,
                    delay_cap: Duration::from_millis(10),
                },
                tx.clone(),
            );
            let entry_socket = first_listener.local_addr().unwrap();
            let entry_key = first_link.public();
            let _first = spawn_node(
                first_listener,
                NodeConfig {
                    format,
                    keys: NodeKeys::Fixed(keys[0].clone()),
                    link_key: first_link,
                    allowed_peers: Allowed::Listed(vec![client.public()]),
                    next_hops: HashMap::from([
                        (
                            hop(1).address,
                            Peer {
                                socket: hole.local_addr().unwrap(),
                                link_key: [9; 32],
                            },
                        ),
                        (
                            hop(2).address,
                            Peer {
                                socket: last_socket,
                                link_key: last_link.public(),
                            },
                        ),
                    ]),
                    frame_len: 4096,
                    queue_capacity: 64,
                    delay_cap: Duration::from_millis(10),
                },
                tx,
            );
            let stream = TcpStream::connect(entry_socket).await.unwrap();
            let mut link = Link::connect(stream, &client, &entry_key, 4096)
                .await
                .unwrap();
            // First a packet towards the black hole, then one towards the live node.
            let stuck = format
                .create(
                    b"stuck",
                    &[hop(0), hop(1)],
                    [0xaa; 32],
                    &[Duration::ZERO; 2],
                )
                .unwrap();
            let live = format
                .create(b"live", &[hop(0), hop(2)], [0xbb; 32], &[Duration::ZERO; 2])
                .unwrap();
            link.send(&stuck).await.unwrap();
            link.send(&live).await.unwrap();
            let started = std::time::Instant::now();
            let delivered = deliveries.recv().await.unwrap();
            assert_eq!(delivered.destination, [0xbb; 32]);
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the live hop was served while the dial to the black hole hung"
            );
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_node_holds_packets_for_their_exponential_delays() {
        use rand::SeedableRng;

        use crate::mixnet::timing::exponential;

        let _serial = TIMING.lock().await;
        tokio::time::timeout(Duration::from_secs(60), async {
            let format = Sphinx::new(1024);
            let mut net = Loopback::start(format, 4096, 12).await.unwrap();
            let mut link = net.client_link().await.unwrap();
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
            let mean = Duration::from_millis(20);
            const PACKETS: usize = 200;
            // The entry holds each packet for its drawn delay; the other hops forward at once.
            // Packets go out 4 ms apart and each is matched to its own delivery time.
            let drawn: Vec<Duration> = (0..PACKETS)
                .map(|_| exponential(&mut rng, mean, Duration::from_millis(50)))
                .collect();
            let mut sent_at = Vec::new();
            // Deliveries are timestamped as they come, by a task of their own.
            let mut deliveries = std::mem::replace(&mut net.deliveries, mpsc::channel(1).1);
            let timer = tokio::spawn(async move {
                let mut arrived = vec![None; PACKETS];
                while arrived.iter().any(Option::is_none) {
                    let delivered = deliveries.recv().await.unwrap();
                    let plain = format.plaintext(&delivered.payload).unwrap();
                    let index = u32::from_be_bytes(plain[..4].try_into().unwrap()) as usize;
                    arrived[index] = Some(tokio::time::Instant::now());
                }
                arrived
            });
            let started = tokio::time::Instant::now();
            for (i, delay) in drawn.iter().enumerate() {
                let packet = format
                    .create(
                        &(i as u32).to_be_bytes(),
                        net.route(),
                        [0xde; 32],
                        &[*delay, Duration::ZERO, Duration::ZERO],
                    )
                    .unwrap();
                tokio::time::sleep_until(started + Duration::from_millis(4 * i as u64)).await;
                sent_at.push(tokio::time::Instant::now());
                link.send(&packet).await.unwrap();
            }
            let arrived = timer.await.unwrap();
            let measured: Vec<f64> = arrived
                .iter()
                .zip(&sent_at)
                .map(|(at, sent)| (at.unwrap() - *sent).as_secs_f64() * 1000.0)
                .collect();
            // Each packet was held for its own delay (plus a little transit).
            let mut errors: Vec<f64> = measured
                .iter()
                .zip(&drawn)
                .map(|(m, d)| m - d.as_secs_f64() * 1000.0)
                .collect();
            errors.sort_by(f64::total_cmp);
            let median_error = errors[PACKETS / 2];
            assert!(
                (-0.5..10.0).contains(&median_error),
                "median excess {median_error:.2} ms"
            );
            // And the held times follow the exponential distribution: mean within 20%, and
            // about 1 − 1/e of them below the mean.
            // Transit (the median excess) taken out, what remains is the time held.
            let mean_ms = measured.iter().sum::<f64>() / PACKETS as f64 - median_error;
            assert!((16.0..24.0).contains(&mean_ms), "mean {mean_ms:.2} ms");
            let below = measured
                .iter()
                .filter(|m| **m < 20.0 + median_error)
                .count();
            let fraction = below as f64 / PACKETS as f64;
            eprintln!(
                "held: mean {mean_ms:.2} ms (configured 20), median excess {median_error:.2} ms, \
                 {fraction:.3} below the mean (1 - 1/e = 0.632)"
            );
            assert!(
                (0.52..0.75).contains(&fraction),
                "fraction below the mean {fraction}"
            );
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_node_rotates_its_key_and_rejects_the_expired_epoch() {
        use crate::mixnet::epoch::KeySchedule;

        tokio::time::timeout(Duration::from_secs(30), async {
            let format = Sphinx::new(1024);
            let schedule = KeySchedule::new([21; 32]);
            // Epochs of 600 ms starting now, 100 ms of grace.
            let clock = EpochClock {
                genesis: EpochClock::now(),
                length: Duration::from_millis(600),
            };
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let socket = listener.local_addr().unwrap();
            let node_link = LinkKeypair::from_secret([22; 32]);
            let node_public = node_link.public();
            let client = LinkKeypair::from_secret([23; 32]);
            let (tx, mut deliveries) = mpsc::channel(16);
            let node = spawn_node(
                listener,
                NodeConfig {
                    format,
                    keys: NodeKeys::Rotating {
                        schedule: schedule.clone(),
                        clock,
                        grace: Duration::from_millis(100),
                    },
                    link_key: node_link,
                    allowed_peers: Allowed::Listed(vec![client.public()]),
                    next_hops: HashMap::new(),
                    frame_len: 4096,
                    queue_capacity: 64,
                    delay_cap: Duration::from_millis(10),
                },
                tx,
            );
            let stream = TcpStream::connect(socket).await.unwrap();
            let mut link = Link::connect(stream, &client, &node_public, 4096)
                .await
                .unwrap();
            let packet = |epoch: u64, tag: u8| {
                let hop = Hop {
                    address: [1; 32],
                    key: PublicKey::from(&schedule.key(epoch)),
                };
                format
                    .create(&[tag], &[hop], [0xde; 32], &[Duration::ZERO])
                    .unwrap()
            };
            link.send(&packet(0, 1)).await.unwrap();
            let delivered = deliveries.recv().await.unwrap();
            assert_eq!(format.plaintext(&delivered.payload).unwrap(), [1]);
            // Wait past the boundary and the grace period.
            let after = clock.start(1) + Duration::from_millis(200);
            tokio::time::sleep(after.saturating_sub(EpochClock::now())).await;
            link.send(&packet(0, 2)).await.unwrap();
            link.send(&packet(1, 3)).await.unwrap();
            let delivered = deliveries.recv().await.unwrap();
            assert_eq!(
                format.plaintext(&delivered.payload).unwrap(),
                [3],
                "only the new epoch's packet opens"
            );
            assert_eq!(node.metrics.dropped_invalid.load(Ordering::Relaxed), 1);
        })
        .await
        .expect("bounded in time");
    }

    #[tokio::test]
    async fn an_unknown_client_cannot_open_a_link() {
        tokio::time::timeout(Duration::from_secs(30), async {
            let net = Loopback::start(Sphinx::new(1024), 4096, 9).await.unwrap();
            let mut link = net.stranger_link().await.unwrap();
            // The entry refuses after the last handshake message and closes the link.
            let _ = link.send(b"anything").await;
            assert!(link.recv().await.is_err());
            let entry = net.metrics(0).unwrap();
            while entry.links_failed.load(Ordering::Relaxed) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(entry.received.load(Ordering::Relaxed), 0);
        })
        .await
        .expect("bounded in time");
    }
}

//! The mixnet as a [`Transport`]: one call is one OHTTP-sealed request in fragments to an
//! exit, and the sealed answer back in single-use reply blocks.
//!
//! A client holds one Noise link to its entry node. A Loopix loop owns the sending half: at
//! Poisson times of rate `λ` it sends the next real packet, or a drop (cover) packet when it
//! has none, and on a slower Poisson schedule a loop packet that travels every layer and
//! comes back to the client. Replies and loops come back down the same link (the entry
//! delivers payloads addressed to the client's mailbox, see
//! [`mailbox_address`](super::server::mailbox_address)).
//!
//! Per call: the request is sealed to the gateway's OHTTP key, wrapped with enough reply
//! blocks for the configured response cap, fragmented with Reed-Solomon parity, and each
//! fragment goes in its own packet over entry → a random middle node → the call's exit
//! (one exit per call, so it can reassemble). Reply blocks route exit layer → middle →
//! entry, each over freshly drawn nodes. A call whose answer does not arrive in time is
//! sent again whole, with new fragments and reply blocks (randomised retransmission).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use x25519_dalek::PublicKey;

use super::directory::{Directory, NodeEntry};
use super::exit::{ExitPayload, ExitReply, ExitRequest};
use super::fragment::{Reassembler, fragment};
use super::link::{Link, LinkKeypair, LinkWriter};
use super::packet::{Hop, NodeAddress, PacketFormat, ReplyOpener, Sphinx};
use super::server::mailbox_address;
use super::timing::{ClientSchedule, Send, exponential, hop_delays};
use crate::ohttp::OhttpTransport;
use crate::{HttpRequest, HttpResponse, IsolationId, NetError, Transport};

/// Where drop (cover) packets are addressed: the exit discards them.
const DROP_DESTINATION: NodeAddress = [0xff; 32];

/// A mixnet client's parameters.
#[derive(Clone, Copy, Debug)]
pub struct MixnetConfig {
    /// The packet format (payload size) of the network.
    pub format: Sphinx,
    /// The link frame length (holds one packet).
    pub frame_len: usize,
    /// Parity fragments per request.
    pub parity: u8,
    /// The largest sealed answer a call can receive (it sets how many reply blocks go out).
    pub response_cap: usize,
    /// Mean per-hop delay put in headers (exponential).
    pub hop_delay: Duration,
    /// The longest per-hop delay.
    pub hop_delay_cap: Duration,
    /// Mean gap between packets of the Poisson stream (`1/λ`).
    pub send_gap: Duration,
    /// Mean gap between loop packets.
    pub loop_gap: Duration,
    /// How long to wait for an answer before sending the call again.
    pub reply_timeout: Duration,
    /// How many times a call is sent at most.
    pub attempts: u32,
}

impl MixnetConfig {
    /// The parameters of a real deployment: 2 KiB payloads, 50 ms mean per-hop delay (capped
    /// at 1 s), 50 packets per second, a loop every 2 s, 64 KiB answers.
    pub fn deployment() -> Self {
        Self {
            format: Sphinx::new(2048),
            frame_len: 4096,
            parity: 2,
            response_cap: 64 << 10,
            hop_delay: Duration::from_millis(50),
            hop_delay_cap: Duration::from_secs(1),
            send_gap: Duration::from_millis(20),
            loop_gap: Duration::from_secs(2),
            reply_timeout: Duration::from_secs(30),
            attempts: 3,
        }
    }

    /// Small, fast parameters for tests on 127.0.0.1: no delays, a packet every millisecond.
    pub fn loopback() -> Self {
        Self {
            hop_delay: Duration::ZERO,
            hop_delay_cap: Duration::ZERO,
            send_gap: Duration::from_millis(1),
            loop_gap: Duration::from_millis(200),
            response_cap: 16 << 10,
            // Generous: loaded CI machines run many of these at once.
            reply_timeout: Duration::from_secs(15),
            ..Self::deployment()
        }
    }

    /// Reply blocks per call: enough fragments for `response_cap` plus parity.
    fn reply_blocks(&self) -> usize {
        let data = (self.response_cap + 1).div_ceil(self.fragment_shard());
        (data + usize::from(self.parity)).min(super::exit::MAX_REPLY_BLOCKS)
    }

    fn fragment_shard(&self) -> usize {
        self.format
            .plaintext_capacity()
            .saturating_sub(super::fragment::FRAGMENT_HEADER)
            .max(1)
    }
}

/// Counters of a running client.
#[derive(Debug, Default)]
pub struct ClientMetrics {
    /// Calls sent again after their answer did not arrive in time.
    pub retries: std::sync::atomic::AtomicU64,
    /// Real packets sent.
    pub real: std::sync::atomic::AtomicU64,
    /// Drop (cover) packets sent.
    pub drops: std::sync::atomic::AtomicU64,
    /// Loop packets sent.
    pub loops_sent: std::sync::atomic::AtomicU64,
    /// Loop packets that came back.
    pub loops_returned: std::sync::atomic::AtomicU64,
}

/// Waiting calls: reply identifier → (call, opener), and call → where its fragments go.
#[derive(Default)]
struct Pending {
    openers: HashMap<[u8; 16], (u64, ReplyOpener)>,
    calls: HashMap<u64, mpsc::Sender<Vec<u8>>>,
}

/// The client's current view of the network: the directory, and its entry node's entry in
/// it (whose Sphinx key changes every epoch while its link stays).
#[derive(Clone)]
struct View {
    directory: Directory,
    entry: NodeEntry,
}

impl View {
    /// Takes `directory` as the new view, keeping the same entry node (by address).
    fn update(&mut self, directory: Directory) -> Result<(), NetError> {
        let entry = directory.layers[0]
            .iter()
            .find(|node| node.address == self.entry.address)
            .cloned()
            .ok_or_else(|| NetError::Unexpected {
                peer: "directory authority",
                detail: "this client's entry node is no longer listed".into(),
            })?;
        *self = Self { directory, entry };
        Ok(())
    }
}

type SharedView = Arc<std::sync::RwLock<View>>;

/// Where a mixnet client gets the OHTTP key configuration of its gateway.
#[derive(Clone, Copy, Debug)]
pub enum GatewayKeys<'a> {
    /// The served `application/ohttp-keys` body, already in hand; with a pin, it must hash
    /// to it.
    Known {
        /// The body.
        body: &'a [u8],
        /// Its expected SHA-256 (PROTOCOL §2 `ohttpKeysHash`), if known.
        pinned_hash: Option<&'a [u8; 32]>,
    },
    /// Fetched at connect through the mixnet itself (an exit gets the gateway's
    /// `/ohttp-keys`), so the fetch reveals no address either. The exit could answer with a
    /// key of its own, so a fetched body is accepted only if it hashes to the pin.
    Fetch {
        /// The expected SHA-256 of the body (PROTOCOL §2 `ohttpKeysHash`).
        pinned_hash: [u8; 32],
    },
    /// Fetched through the mixnet by the first [`Transport::follow_gateway_keys`], once the
    /// pin is known: for a client whose own chain reads (which give the pin) go through the
    /// mixnet too ([`MixnetClient::rpc`]). Gateway calls are refused until then.
    Later,
}

/// A client of the mixnet, usable as a [`Transport`] to one gateway.
pub struct MixnetClient {
    config: MixnetConfig,
    view: SharedView,
    mailbox: NodeAddress,
    gateway: String,
    /// Seals gateway calls; set before `connect` returns, except with [`GatewayKeys::Later`].
    ohttp: std::sync::OnceLock<OhttpTransport>,
    outgoing: mpsc::Sender<Vec<u8>>,
    pending: Arc<Mutex<Pending>>,
    next_call: std::sync::atomic::AtomicU64,
    /// The client's counters.
    pub metrics: Arc<ClientMetrics>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for MixnetClient {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl MixnetClient {
    /// Connects to a random entry node of `directory` with `link_key` and starts the Loopix
    /// loop. Calls go to the gateway at `gateway` (a base URL the exits allowlist), sealed to
    /// its OHTTP key configuration, given or fetched as `keys` says.
    pub async fn connect(
        config: MixnetConfig,
        directory: Directory,
        link_key: LinkKeypair,
        gateway: &str,
        keys: GatewayKeys<'_>,
    ) -> Result<Self, NetError> {
        let io = |detail: String| NetError::Io {
            peer: "mixnet entry",
            detail,
        };
        if directory.layers.len() != super::directory::LAYERS
            || directory.layers.iter().any(Vec::is_empty)
        {
            return Err(NetError::BadMessage(format!(
                "a directory lists {} non-empty layers; verify it with Directory::verify",
                super::directory::LAYERS
            )));
        }
        let ohttp = std::sync::OnceLock::new();
        if let GatewayKeys::Known { body, pinned_hash } = keys {
            let _ = ohttp.set(sealer(body, pinned_hash)?);
        }
        let entries = &directory.layers[0];
        let entry = entries[rand::thread_rng().gen_range(0..entries.len())].clone();
        let stream = TcpStream::connect(&entry.endpoint)
            .await
            .map_err(|e| io(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let link = Link::connect(stream, &link_key, &entry.link_key, config.frame_len)
            .await
            .map_err(|e| io(e.to_string()))?;
        let (mut reader, writer) = link.into_split();
        let mailbox = mailbox_address(&link_key.public());
        let metrics = Arc::new(ClientMetrics::default());
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (outgoing, queued) = mpsc::channel(4096);

        let view = Arc::new(std::sync::RwLock::new(View { directory, entry }));
        let sender = tokio::spawn(client_loop(
            config,
            Arc::clone(&view),
            mailbox,
            writer,
            queued,
            Arc::clone(&metrics),
        ));
        let (reader_pending, reader_metrics) = (Arc::clone(&pending), Arc::clone(&metrics));
        let receiver = tokio::spawn(async move {
            while let Ok(frame) = reader.recv().await {
                let Some((identifier, payload)) = frame.split_first_chunk::<16>() else {
                    continue;
                };
                let Ok(mut pending) = reader_pending.lock() else {
                    return;
                };
                // Forward packets (our loops) carry a zero identifier; replies a random one.
                if identifier == &[0u8; 16] {
                    reader_metrics
                        .loops_returned
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                // A reply to an attempt given up on: ignored.
                let Some((call, opener)) = pending.openers.remove(identifier) else {
                    continue;
                };
                if let (Ok(piece), Some(call)) = (opener.open(payload), pending.calls.get(&call)) {
                    let _ = call.try_send(piece);
                }
            }
        });
        let client = Self {
            config,
            view,
            mailbox,
            gateway: gateway.to_owned(),
            ohttp,
            outgoing,
            pending,
            next_call: Default::default(),
            metrics,
            tasks: vec![sender, receiver],
        };
        if let GatewayKeys::Fetch { pinned_hash } = keys {
            let body = client.fetch_gateway_keys().await?;
            let _ = client.ohttp.set(sealer(&body, Some(&pinned_hash))?);
        }
        Ok(client)
    }

    /// What seals gateway calls, once the keys are known.
    fn sealing(&self) -> Result<&OhttpTransport, NetError> {
        self.ohttp.get().ok_or_else(|| {
            NetError::BadMessage(
                "no gateway key configuration yet: follow_gateway_keys takes the vault's pin \
                 first"
                    .into(),
            )
        })
    }

    /// The gateway's served key configurations, fetched through the mixnet (unchecked).
    async fn fetch_gateway_keys(&self) -> Result<Bytes, NetError> {
        let answer = self.call(Call::Keys).await?;
        if !answer.status.is_success() {
            return Err(NetError::Unexpected {
                peer: "gateway",
                detail: format!("key configuration request answered {}", answer.status),
            });
        }
        Ok(answer.body)
    }

    /// Keeps the view current: fetches the directory from the authority at `base` (signed
    /// by `authority`) each time the current one expires, so that packets use each epoch's
    /// node keys. Without it a client works only until its directory's epoch ends.
    pub fn follow_authority(&mut self, base: &str, authority: ed25519_dalek::VerifyingKey) {
        let (view, base) = (Arc::clone(&self.view), base.to_owned());
        self.tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let until = match view.read() {
                    Ok(view) => view.directory.valid_until,
                    Err(_) => return,
                };
                let now = super::epoch::EpochClock::now();
                tokio::time::sleep(Duration::from_secs(until).saturating_sub(now)).await;
                // The next epoch's directory, retried each second until the authority has it.
                loop {
                    let fetched = super::authority::fetch_directory(&http, &base, &authority)
                        .await
                        .ok()
                        .filter(|directory| directory.valid_until > until);
                    if let Some(directory) = fetched {
                        match view.write() {
                            Ok(mut view) => {
                                let _ = view.update(directory);
                            }
                            Err(_) => return,
                        }
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }));
    }

    /// The epoch of the directory the client routes by.
    pub fn epoch(&self) -> Option<u64> {
        self.view.read().ok().map(|view| view.directory.epoch)
    }

    /// A [`Transport`] for chain reads: each request is a JSON-RPC POST to `url`, which the
    /// exits must allowlist. It leaves the mixnet as plain HTTP at the exit (public chain
    /// data), still without its sender.
    pub fn rpc<'a>(&'a self, url: &str) -> RpcThroughMixnet<'a> {
        RpcThroughMixnet {
            client: self,
            url: url.to_owned(),
        }
    }

    /// Sends `call`, again after a randomised pause when no answer arrives in time.
    async fn call(&self, call: Call<'_>) -> Result<HttpResponse, NetError> {
        let mut last = None;
        for attempt in 0..self.config.attempts.max(1) {
            if attempt > 0 {
                self.metrics
                    .retries
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // A random pause before sending again, so retries do not line up in time
                // with the attempt they repeat.
                let pause = exponential(
                    &mut rand::thread_rng(),
                    self.config.reply_timeout / 10,
                    self.config.reply_timeout,
                );
                tokio::time::sleep(pause).await;
            }
            match self.attempt(&call).await {
                Ok(response) => return Ok(response),
                // A refusal is an answer: sending again would get the same.
                Err(error @ NetError::Unexpected { .. }) => return Err(error),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(closed))
    }

    /// One attempt of a call: fragments out, reply fragments in, until the answer rebuilds
    /// or the reply timeout passes.
    async fn attempt(&self, call: &Call<'_>) -> Result<HttpResponse, NetError> {
        let (target, payload, sealed) = match call {
            Call::Gateway(request) => {
                let ohttp = self.sealing()?;
                let sealed = ohttp.seal(request)?;
                let payload = ExitPayload::Ohttp(sealed.bytes.clone());
                (self.gateway.clone(), payload, Some(sealed))
            }
            Call::Rpc { url, request } => {
                (url.to_string(), ExitPayload::Rpc(request.to_bhttp()?), None)
            }
            Call::Keys => (self.gateway.clone(), ExitPayload::Keys, None),
        };
        let call = self
            .next_call
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (pieces_tx, mut pieces) = mpsc::channel(MAX_PIECES);
        let exit_request = {
            let view = self.view.read().map_err(|_| poisoned())?.clone();
            let mut rng = rand::thread_rng();
            let mut reply_blocks = Vec::new();
            let mut openers = Vec::new();
            for _ in 0..self.config.reply_blocks() {
                let back = Self::reply_route(&view, &mut rng);
                let delays = self.delays(&mut rng);
                let (block, opener) =
                    self.config
                        .format
                        .reply_block(&back, self.mailbox, &delays)?;
                reply_blocks.push(block);
                openers.push(opener);
            }
            let mut pending = self.pending.lock().map_err(|_| poisoned())?;
            for opener in openers {
                pending.openers.insert(opener.identifier(), (call, opener));
            }
            pending.calls.insert(call, pieces_tx);
            ExitRequest {
                target,
                reply_blocks,
                payload,
            }
        };
        let result = self.exchange(&exit_request, &mut pieces).await;
        if let Ok(mut pending) = self.pending.lock() {
            pending.calls.remove(&call);
            pending.openers.retain(|_, (owner, _)| *owner != call);
        }
        match ExitReply::decode(&result?)? {
            ExitReply::Answer(answer) => match sealed {
                Some(sealed) => sealed.open_response(&answer),
                None => HttpResponse::from_bhttp(&answer),
            },
            ExitReply::Refused(reason) => Err(NetError::Unexpected {
                peer: "mixnet exit",
                detail: reason,
            }),
        }
    }

    async fn exchange(
        &self,
        request: &ExitRequest,
        pieces: &mut mpsc::Receiver<Vec<u8>>,
    ) -> Result<Vec<u8>, NetError> {
        let packets = {
            let view = self.view.read().map_err(|_| poisoned())?.clone();
            let mut rng = rand::thread_rng();
            let exit = pick(&view.directory.layers[2], &mut rng);
            let fragments = fragment(
                &request.encode()?,
                self.config.format.plaintext_capacity(),
                self.config.parity,
            )?;
            let mut packets = Vec::with_capacity(fragments.len());
            for piece in fragments {
                let middle = pick(&view.directory.layers[1], &mut rng);
                let route = [hop(&view.entry), hop(middle), hop(exit)];
                let delays = self.delays(&mut rng);
                packets.push(
                    self.config
                        .format
                        .create(&piece, &route, exit.address, &delays)?,
                );
            }
            packets
        };
        for packet in packets {
            self.outgoing.send(packet).await.map_err(|_| closed())?;
        }
        let mut reassembler = Reassembler::new(1);
        let deadline = tokio::time::Instant::now() + self.config.reply_timeout;
        loop {
            let piece = tokio::time::timeout_at(deadline, pieces.recv())
                .await
                .map_err(|_| NetError::Io {
                    peer: "mixnet",
                    detail: format!("no answer within {:?}", self.config.reply_timeout),
                })?
                .ok_or_else(closed)?;
            if let Ok(Some(answer)) = reassembler.push(&piece) {
                return Ok(answer);
            }
        }
    }

    /// A reply route: exit layer → middle → this client's entry (which delivers to us).
    fn reply_route(view: &View, rng: &mut impl Rng) -> Vec<Hop> {
        vec![
            hop(pick(&view.directory.layers[2], rng)),
            hop(pick(&view.directory.layers[1], rng)),
            hop(&view.entry),
        ]
    }

    fn delays(&self, rng: &mut impl Rng) -> Vec<Duration> {
        hop_delays(rng, 3, self.config.hop_delay, self.config.hop_delay_cap)
    }
}

/// What one call carries.
enum Call<'a> {
    /// A request for the gateway, OHTTP-sealed.
    Gateway(&'a HttpRequest),
    /// A JSON-RPC request for `url`.
    Rpc {
        url: &'a str,
        request: &'a HttpRequest,
    },
    /// The gateway's key configuration.
    Keys,
}

/// What seals gateway calls to the key configuration `body` (checked against `pinned_hash`).
fn sealer(body: &[u8], pinned_hash: Option<&[u8; 32]>) -> Result<OhttpTransport, NetError> {
    // The relay URL is unused: this transport seals only, the exit posts.
    let relay = reqwest::Url::parse("http://unused.invalid/")
        .map_err(|e| NetError::BadMessage(e.to_string()))?;
    OhttpTransport::new(relay, body, pinned_hash)
}

impl Transport for MixnetClient {
    async fn send(
        &self,
        request: HttpRequest,
        _isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        // Every call is unlinkable already: fresh routes, fresh reply blocks, fresh OHTTP
        // encapsulation; the isolation id has nothing more to separate.
        self.sealing()?;
        self.call(Call::Gateway(&request)).await
    }

    /// Fetches the gateway's key configurations through the mixnet when the vault pins
    /// another body than the one in use (a rotation), or the first pin is given
    /// ([`GatewayKeys::Later`]).
    async fn follow_gateway_keys(&self, pinned_hash: &[u8; 32]) -> Result<bool, NetError> {
        let Some(ohttp) = self.ohttp.get() else {
            // GatewayKeys::Later: the first pin.
            let body = self.fetch_gateway_keys().await?;
            let _ = self.ohttp.set(sealer(&body, Some(pinned_hash))?);
            return Ok(true);
        };
        if &ohttp.served_hash() == pinned_hash {
            return Ok(false);
        }
        let body = self.fetch_gateway_keys().await?;
        ohttp.replace_keys(&body, pinned_hash)?;
        Ok(true)
    }
}

/// Chain reads through the mixnet to one JSON-RPC endpoint (see [`MixnetClient::rpc`]).
pub struct RpcThroughMixnet<'a> {
    client: &'a MixnetClient,
    url: String,
}

impl Transport for RpcThroughMixnet<'_> {
    async fn send(
        &self,
        request: HttpRequest,
        _isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        self.client
            .call(Call::Rpc {
                url: &self.url,
                request: &request,
            })
            .await
    }
}

/// Reply fragments buffered per call at most.
const MAX_PIECES: usize = 512;

fn pick<'a>(layer: &'a [NodeEntry], rng: &mut impl Rng) -> &'a NodeEntry {
    &layer[rng.gen_range(0..layer.len())]
}

fn hop(node: &NodeEntry) -> Hop {
    Hop {
        address: node.address,
        key: PublicKey::from(node.key),
    }
}

fn closed() -> NetError {
    NetError::Io {
        peer: "mixnet",
        detail: "the client's link to its entry node closed".into(),
    }
}

fn poisoned() -> NetError {
    NetError::Io {
        peer: "mixnet",
        detail: "client state poisoned by a panic".into(),
    }
}

/// The Loopix loop: Poisson stream of real-or-drop packets, plus loop packets.
async fn client_loop(
    config: MixnetConfig,
    view: SharedView,
    mailbox: NodeAddress,
    mut writer: LinkWriter<TcpStream>,
    mut queued: mpsc::Receiver<Vec<u8>>,
    metrics: Arc<ClientMetrics>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let start = tokio::time::Instant::now();
    let mut schedule = {
        let mut rng = rand::thread_rng();
        ClientSchedule::new(&mut rng, Duration::ZERO, config.send_gap, config.loop_gap)
    };
    loop {
        let wake = start + schedule.next_wakeup();
        tokio::select! {
            packet = queued.recv() => {
                let Some(packet) = packet else { return };
                schedule.enqueue(packet);
                continue;
            }
            () = tokio::time::sleep_until(wake) => {}
        }
        let (stream, loops) = {
            let mut rng = rand::thread_rng();
            schedule.tick(&mut rng, start.elapsed())
        };
        for send in stream {
            let packet = match send {
                Send::Real(packet) => {
                    metrics.real.fetch_add(1, Relaxed);
                    Some(packet)
                }
                Send::Drop => {
                    metrics.drops.fetch_add(1, Relaxed);
                    cover(&config, &view, DROP_DESTINATION, false)
                }
            };
            if let Some(packet) = packet
                && writer.send(&packet).await.is_err()
            {
                return;
            }
        }
        for _ in 0..loops {
            metrics.loops_sent.fetch_add(1, Relaxed);
            if let Some(packet) = cover(&config, &view, mailbox, true)
                && writer.send(&packet).await.is_err()
            {
                return;
            }
        }
    }
}

/// A cover packet: a drop (entry → middle → exit layer, discarded there) or a loop (through
/// every layer and back to this client's entry, which hands it down our link).
fn cover(
    config: &MixnetConfig,
    view: &SharedView,
    destination: NodeAddress,
    looped: bool,
) -> Option<Vec<u8>> {
    let view = view.read().ok()?;
    let (directory, entry) = (&view.directory, &view.entry);
    let mut rng = rand::thread_rng();
    let mut route = vec![
        hop(entry),
        hop(pick(&directory.layers[1], &mut rng)),
        hop(pick(&directory.layers[2], &mut rng)),
    ];
    if looped {
        route.push(hop(pick(&directory.layers[1], &mut rng)));
        route.push(hop(entry));
    }
    let delays = hop_delays(
        &mut rng,
        route.len(),
        config.hop_delay,
        config.hop_delay_cap,
    );
    // Zeros: encrypted on every hop, and no fragment the exit would keep.
    let filler = vec![0u8; config.format.plaintext_capacity()];
    config
        .format
        .create(&filler, &route, destination, &delays)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_with_an_empty_layer_is_refused_before_connecting() {
        let keys = crate::ohttp::KeyRing::derive(
            1,
            b"client unit test key, 32 bytes!!",
            Duration::from_secs(60),
        )
        .unwrap();
        let directory = Directory {
            epoch: 1,
            valid_from: 0,
            valid_until: u64::MAX,
            layers: vec![Vec::new(); 3],
        };
        let result = MixnetClient::connect(
            MixnetConfig::loopback(),
            directory,
            LinkKeypair::from_secret([1; 32]),
            "http://127.0.0.1:9",
            GatewayKeys::Known {
                body: &keys.served_body().unwrap(),
                pinned_hash: None,
            },
        )
        .await;
        assert!(matches!(result, Err(NetError::BadMessage(_))));
    }
}

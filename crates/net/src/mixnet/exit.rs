//! The exit: where a request leaves the mixnet for an allowlisted gateway, and its answer
//! goes back in the client's single-use reply blocks.
//!
//! The exit runs beside a last-layer node and reads what that node delivers: fragments of
//! [`ExitRequest`]s. It knows the target and the sizes, never who sent the request (it sees
//! no client address or key, only packets from mix nodes) nor what it says (the request is
//! OHTTP-sealed to the gateway). It waits a random processing delay, posts the sealed request
//! to the gateway's OHTTP endpoint, and fragments the sealed answer into the reply blocks.
//! A target outside the allowlist, a gateway failure, or an answer larger than the reply
//! blocks carry, is answered with an [`ExitReply::Refused`] reason instead.
//!
//! The other kind of target is a JSON-RPC endpoint users read the chain from (PROTOCOL §2:
//! clients read the chain over the anonymity transport): the request travels as Binary HTTP,
//! and the exit sends it to exactly the allowlisted URL it names. The exit sees such a
//! request (public chain reads), still not who sent it.
//!
//! The third is a gateway's OHTTP key configuration (`GET /ohttp-keys` of an allowlisted
//! gateway), so that a client fetches the key it then seals to through the mixnet too. The
//! exit could substitute its own key; clients only accept a body matching the pinned hash.
//!
//! Normative format: `docs/spec/MIXNET.md` §5.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::CONTENT_TYPE;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::fragment::{Reassembler, fragment};
use super::link::LinkKeypair;
use super::packet::{NodeAddress, Sphinx};
use super::server::{Delivered, Forwarder, NodeMetrics, SharedPeers, prometheus_counters};
use super::timing::exponential;
use crate::NetError;
use crate::ohttp::{
    GATEWAY_PATH, KEYS_PATH, REQUEST_MEDIA_TYPE, RESPONSE_MEDIA_TYPE,
    client::{content_type, get_served_keys, read_limited},
};

/// The first bytes of every exit request (format version 1).
const REQUEST_MAGIC: &[u8; 4] = b"NGX1";
/// Most reply blocks one request may carry.
pub const MAX_REPLY_BLOCKS: usize = 255;
/// Longest target URL.
const MAX_TARGET: usize = 2048;

/// What the exit forwards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitPayload {
    /// An OHTTP-sealed request (RFC 9458 `message/ohttp-req`) for the gateway.
    Ohttp(Vec<u8>),
    /// A Binary HTTP request (RFC 9292) for a JSON-RPC endpoint.
    Rpc(Vec<u8>),
    /// A request for the gateway's key configuration (no bytes of the client's).
    Keys,
}

impl ExitPayload {
    fn kind(&self) -> u8 {
        match self {
            Self::Ohttp(_) => 0,
            Self::Rpc(_) => 1,
            Self::Keys => 2,
        }
    }

    /// The bytes carried.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Ohttp(bytes) | Self::Rpc(bytes) => bytes,
            Self::Keys => &[],
        }
    }
}

/// What a client sends the exit, reassembled from its fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitRequest {
    /// The gateway's base URL (scheme, host, port) or the JSON-RPC endpoint's URL, as the
    /// exit's allowlists name them.
    pub target: String,
    /// Single-use reply blocks for the answer, one per answer fragment.
    pub reply_blocks: Vec<Vec<u8>>,
    /// The request.
    pub payload: ExitPayload,
}

impl ExitRequest {
    /// The wire form: magic, payload kind (0 OHTTP, 1 JSON-RPC, 2 keys), target (u16 length), reply
    /// blocks (u8 count, u16 lengths), then the payload to the end.
    pub fn encode(&self) -> Result<Vec<u8>, NetError> {
        let target_len = u16::try_from(self.target.len())
            .ok()
            .filter(|len| usize::from(*len) <= MAX_TARGET)
            .ok_or(NetError::TooLarge {
                what: "exit target",
                limit: MAX_TARGET,
            })?;
        let count = u8::try_from(self.reply_blocks.len()).map_err(|_| NetError::TooLarge {
            what: "reply block count",
            limit: MAX_REPLY_BLOCKS,
        })?;
        let mut out = REQUEST_MAGIC.to_vec();
        out.push(self.payload.kind());
        out.extend_from_slice(&target_len.to_be_bytes());
        out.extend_from_slice(self.target.as_bytes());
        out.push(count);
        for block in &self.reply_blocks {
            let len = u16::try_from(block.len()).map_err(|_| NetError::TooLarge {
                what: "reply block",
                limit: usize::from(u16::MAX),
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(block);
        }
        out.extend_from_slice(self.payload.bytes());
        Ok(out)
    }

    /// Parses the wire form; any inconsistency is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        let bad = |what: &str| NetError::BadMessage(format!("exit request: {what}"));
        let mut rest = bytes
            .strip_prefix(REQUEST_MAGIC)
            .ok_or_else(|| bad("unknown format"))?;
        let mut take = |n: usize| -> Result<&[u8], NetError> {
            if rest.len() < n {
                return Err(bad("truncated"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let kind = take(1)?[0];
        let target_len = usize::from(u16::from_be_bytes([take(1)?[0], take(1)?[0]]));
        if target_len > MAX_TARGET {
            return Err(bad("target too long"));
        }
        let target = std::str::from_utf8(take(target_len)?)
            .map_err(|_| bad("target is not UTF-8"))?
            .to_owned();
        let count = take(1)?[0];
        let mut reply_blocks = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([take(1)?[0], take(1)?[0]]));
            reply_blocks.push(take(len)?.to_vec());
        }
        let payload = match kind {
            0 => ExitPayload::Ohttp(rest.to_vec()),
            1 => ExitPayload::Rpc(rest.to_vec()),
            2 if rest.is_empty() => ExitPayload::Keys,
            2 => return Err(bad("a key request carries no payload")),
            _ => return Err(bad("unknown payload kind")),
        };
        Ok(Self {
            target,
            reply_blocks,
            payload,
        })
    }
}

/// What the exit sends back, reassembled from the reply fragments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitReply {
    /// The answer: the gateway's OHTTP-sealed response (`message/ohttp-res`), or a JSON-RPC
    /// endpoint's response or the gateway's key configuration as Binary HTTP.
    Answer(Vec<u8>),
    /// The exit did not forward the request or got no usable answer; why.
    Refused(String),
}

impl ExitReply {
    /// The wire form: one kind byte (0 answer, 1 refused), then the bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body) = match self {
            Self::Answer(bytes) => (0, bytes.as_slice()),
            Self::Refused(reason) => (1, reason.as_bytes()),
        };
        let mut out = vec![kind];
        out.extend_from_slice(body);
        out
    }

    /// Parses the wire form.
    pub fn decode(bytes: &[u8]) -> Result<Self, NetError> {
        match bytes.split_first() {
            Some((0, body)) => Ok(Self::Answer(body.to_vec())),
            Some((1, reason)) => Ok(Self::Refused(String::from_utf8_lossy(reason).into_owned())),
            _ => Err(NetError::BadMessage("exit reply: unknown kind".into())),
        }
    }
}

/// Appends `record`, dropping the oldest when [`MAX_EXIT_RECORDS`] are kept already.
fn keep_newest(records: &mut Vec<ExitRecord>, record: ExitRecord) {
    if records.len() >= MAX_EXIT_RECORDS {
        records.remove(0);
    }
    records.push(record);
}

/// `url` as a URL parser writes it (`http://node:8545` and `http://node:8545/` are one
/// endpoint), or as given when it does not parse.
fn normalised(url: &str) -> String {
    reqwest::Url::parse(url).map_or_else(|_| url.to_owned(), String::from)
}

/// A running exit's configuration.
pub struct ExitConfig {
    /// The packet format (for reading fragments and filling reply blocks).
    pub format: Sphinx,
    /// Gateways (base URLs, exactly as clients name them) this exit forwards to.
    pub allowlist: Vec<String>,
    /// JSON-RPC endpoints (full URLs) this exit forwards chain reads to.
    pub rpc_allowlist: Vec<String>,
    /// Mean of the random processing delay before forwarding (exponential).
    pub processing_delay: Duration,
    /// The longest processing delay.
    pub processing_delay_cap: Duration,
    /// Parity fragments added to each answer.
    pub parity: u8,
    /// How long the gateway has to answer.
    pub gateway_timeout: Duration,
    /// The exit's link key, with which it dials the first hops of reply blocks.
    pub link_key: LinkKeypair,
    /// Where reply packets go: the nodes a reply block may start at, by address (usually
    /// the exit's own node's table, [`PeerTable::next_hops`](super::server::PeerTable::next_hops),
    /// so both follow the directory together).
    pub reply_hops: SharedPeers,
    /// The link frame length.
    pub frame_len: usize,
    /// Requests being reassembled at most.
    pub max_pending: usize,
}

/// One request the exit handled, as it records it: the target and sizes, nothing about the
/// sender (tests assert that no client address or key ever appears here).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    /// The target the request named.
    pub target: String,
    /// Bytes of the request as carried.
    pub request_bytes: usize,
    /// Bytes of the reply before fragmentation.
    pub reply_bytes: usize,
    /// Whether it was forwarded and answered (`forwarded`) or why not.
    pub outcome: String,
}

/// How many [`ExitRecord`]s an exit keeps: the newest, so that a busy exit's memory stays
/// bounded.
pub const MAX_EXIT_RECORDS: usize = 256;

/// What an exit counts: totals only, nothing about any one request.
#[derive(Debug, Default)]
pub struct ExitMetrics {
    /// Sealed gateway calls forwarded and answered.
    pub gateway_calls: AtomicU64,
    /// Chain reads (JSON-RPC) forwarded and answered.
    pub rpc_calls: AtomicU64,
    /// Gateway key configurations fetched.
    pub key_fetches: AtomicU64,
    /// Requests refused: not allowlisted, or the target failed.
    pub refused: AtomicU64,
}

impl ExitMetrics {
    /// The counters in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        let counters = [
            ("gateway_calls", &self.gateway_calls),
            ("rpc_calls", &self.rpc_calls),
            ("key_fetches", &self.key_fetches),
            ("refused", &self.refused),
        ];
        prometheus_counters("nullgate_exit", &counters)
    }
}

/// A running exit: its records, its counters and its tasks (aborted on drop).
pub struct RunningExit {
    /// The newest [`MAX_EXIT_RECORDS`] requests it handled, in order of completion.
    pub records: Arc<Mutex<Vec<ExitRecord>>>,
    /// Its counters.
    pub metrics: Arc<ExitMetrics>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RunningExit {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts an exit reading the payloads its node delivers.
pub fn spawn_exit(config: ExitConfig, mut deliveries: mpsc::Receiver<Delivered>) -> RunningExit {
    let records = Arc::new(Mutex::new(Vec::new()));
    let metrics = Arc::new(ExitMetrics::default());
    let (replies_tx, mut replies_rx) = mpsc::channel::<(NodeAddress, Vec<u8>)>(1024);
    let mut forwarder = Forwarder::new(
        Arc::new(config.link_key),
        config.reply_hops,
        config.frame_len,
        Arc::new(NodeMetrics::default()),
    );
    let sender = tokio::spawn(async move {
        while let Some((first_hop, packet)) = replies_rx.recv().await {
            forwarder.forward(first_hop, packet);
        }
    });
    let handler = Arc::new(Handler {
        format: config.format,
        allowlist: config.allowlist,
        rpc_allowlist: config
            .rpc_allowlist
            .iter()
            .map(|url| normalised(url))
            .collect(),
        processing_delay: config.processing_delay,
        processing_delay_cap: config.processing_delay_cap,
        parity: config.parity,
        http: reqwest::Client::builder()
            .timeout(config.gateway_timeout)
            .pool_max_idle_per_host(0)
            .build()
            .ok(),
        records: Arc::clone(&records),
        metrics: Arc::clone(&metrics),
        replies: replies_tx,
    });
    let max_pending = config.max_pending;
    let format = config.format;
    let reader = tokio::spawn(async move {
        let mut reassembler = Reassembler::new(max_pending);
        while let Some(delivered) = deliveries.recv().await {
            let Ok(fragment) = format.plaintext(&delivered.payload) else {
                continue;
            };
            // A drop (cover) packet, a stray or bad fragment: nothing to do.
            let Ok(Some(message)) = reassembler.push(&fragment) else {
                continue;
            };
            let handler = Arc::clone(&handler);
            tokio::spawn(async move { handler.handle(&message).await });
        }
    });
    RunningExit {
        records,
        metrics,
        tasks: vec![sender, reader],
    }
}

struct Handler {
    format: Sphinx,
    allowlist: Vec<String>,
    /// Normalised once ([`normalised`]), so that a request's target is compared as parsed.
    rpc_allowlist: Vec<String>,
    processing_delay: Duration,
    processing_delay_cap: Duration,
    parity: u8,
    http: Option<reqwest::Client>,
    records: Arc<Mutex<Vec<ExitRecord>>>,
    metrics: Arc<ExitMetrics>,
    replies: mpsc::Sender<(NodeAddress, Vec<u8>)>,
}

impl Handler {
    async fn handle(&self, message: &[u8]) {
        // Not a request (a loop or drop payload that happened to reassemble): ignore.
        let Ok(request) = ExitRequest::decode(message) else {
            return;
        };
        let allowed = match &request.payload {
            ExitPayload::Ohttp(_) | ExitPayload::Keys => self.allowlist.contains(&request.target),
            ExitPayload::Rpc(_) => self.rpc_allowlist.contains(&normalised(&request.target)),
        };
        let (reply, outcome) = if !allowed {
            (
                ExitReply::Refused("target is not on this exit's allowlist".into()),
                "refused: not allowlisted".to_owned(),
            )
        } else {
            let delay = exponential(
                &mut rand::thread_rng(),
                self.processing_delay,
                self.processing_delay_cap,
            );
            tokio::time::sleep(delay).await;
            let answer = match &request.payload {
                ExitPayload::Ohttp(sealed) => self.forward(&request, sealed).await,
                ExitPayload::Rpc(bhttp) => self.forward_rpc(&request, bhttp).await,
                ExitPayload::Keys => self.fetch_keys(&request).await,
            };
            match answer {
                Ok(answer) => {
                    let counter = match &request.payload {
                        ExitPayload::Ohttp(_) => &self.metrics.gateway_calls,
                        ExitPayload::Rpc(_) => &self.metrics.rpc_calls,
                        ExitPayload::Keys => &self.metrics.key_fetches,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    (ExitReply::Answer(answer), "forwarded".to_owned())
                }
                Err(error) => (
                    ExitReply::Refused(format!("target: {error}")),
                    "refused: target failed".to_owned(),
                ),
            }
        };
        if matches!(reply, ExitReply::Refused(_)) {
            self.metrics.refused.fetch_add(1, Ordering::Relaxed);
        }
        let (reply_bytes, fragments) = self.reply_fragments(request.reply_blocks.len(), reply);
        // Recorded before the reply leaves, so whoever reads the answer finds the record.
        if let Ok(mut records) = self.records.lock() {
            keep_newest(
                &mut records,
                ExitRecord {
                    target: request.target,
                    request_bytes: request.payload.bytes().len(),
                    reply_bytes,
                    outcome,
                },
            );
        }
        for (piece, block) in fragments.iter().zip(&request.reply_blocks) {
            if let Ok(packet) = self.format.use_reply_block(block, piece) {
                let _ = self.replies.send(packet).await;
            }
        }
    }

    async fn forward(&self, request: &ExitRequest, sealed: &[u8]) -> Result<Vec<u8>, NetError> {
        let io = |detail: String| NetError::Io {
            peer: "gateway",
            detail,
        };
        let url = format!("{}{GATEWAY_PATH}", request.target.trim_end_matches('/'));
        let answer = self
            .http("gateway")?
            .post(url)
            .header(CONTENT_TYPE, REQUEST_MEDIA_TYPE)
            .body(sealed.to_vec())
            .send()
            .await
            .map_err(|e| io(e.to_string()))?;
        let (status, media) = (answer.status(), content_type(&answer));
        // The answer must fit the reply blocks; larger ones are refused below anyway.
        let limit = request.reply_blocks.len() * self.fragment_len();
        let body = read_limited(answer, limit).await?;
        if !status.is_success() || media != RESPONSE_MEDIA_TYPE {
            return Err(NetError::Unexpected {
                peer: "gateway",
                detail: format!("status {status}, content type {media:?}"),
            });
        }
        Ok(body.to_vec())
    }

    /// Sends a Binary HTTP request to the JSON-RPC endpoint it names, which must be the
    /// allowlisted `request.target` (compared as parsed URLs); returns the response as Binary
    /// HTTP.
    async fn forward_rpc(&self, request: &ExitRequest, bhttp: &[u8]) -> Result<Vec<u8>, NetError> {
        let inner = crate::HttpRequest::from_bhttp(bhttp)?;
        let url = format!("{}://{}{}", inner.scheme, inner.authority, inner.path);
        if normalised(&url) != normalised(&request.target) || inner.method != http::Method::POST {
            return Err(NetError::BadMessage(
                "a JSON-RPC request is a POST to exactly the allowlisted URL".into(),
            ));
        }
        let mut outgoing = self
            .http("JSON-RPC endpoint")?
            .post(url)
            .body(inner.body.clone());
        if let Some(media) = inner.headers.get(CONTENT_TYPE) {
            outgoing = outgoing.header(CONTENT_TYPE, media.clone());
        }
        let answer = outgoing.send().await.map_err(|e| NetError::Io {
            peer: "JSON-RPC endpoint",
            detail: e.to_string(),
        })?;
        let (status, headers) = (answer.status(), answer.headers().clone());
        let limit = request.reply_blocks.len() * self.fragment_len();
        let body = read_limited(answer, limit).await?;
        let mut kept = http::HeaderMap::new();
        if let Some(media) = headers.get(CONTENT_TYPE) {
            kept.insert(CONTENT_TYPE, media.clone());
        }
        crate::HttpResponse {
            status,
            headers: kept,
            body,
            trailers: http::HeaderMap::new(),
        }
        .to_bhttp()
    }

    /// Gets the allowlisted gateway's key configuration; returns it (with its media type and
    /// `Cache-Control`, which says how long the client may keep it) as Binary HTTP.
    async fn fetch_keys(&self, request: &ExitRequest) -> Result<Vec<u8>, NetError> {
        let url = format!("{}{KEYS_PATH}", request.target.trim_end_matches('/'));
        let limit = request.reply_blocks.len() * self.fragment_len();
        let served = get_served_keys(self.http("gateway")?, url, "gateway", limit).await?;
        crate::HttpResponse {
            status: http::StatusCode::OK,
            headers: served.headers(),
            body: served.body,
            trailers: http::HeaderMap::new(),
        }
        .to_bhttp()
    }

    /// The exit's HTTP client (none if it could not be built at start).
    fn http(&self, peer: &'static str) -> Result<&reqwest::Client, NetError> {
        self.http.as_ref().ok_or_else(|| NetError::Io {
            peer,
            detail: "no HTTP client".into(),
        })
    }

    fn fragment_len(&self) -> usize {
        self.format.plaintext_capacity()
    }

    /// Fragments `reply` for `blocks` reply blocks (a refusal instead if it needs more);
    /// returns the reply's size and its fragments.
    fn reply_fragments(&self, blocks: usize, reply: ExitReply) -> (usize, Vec<Vec<u8>>) {
        let mut bytes = reply.encode();
        let mut fragments = fragment(&bytes, self.fragment_len(), self.parity);
        if fragments.as_ref().map_or(true, |f| f.len() > blocks) {
            bytes = ExitReply::Refused("the answer is larger than the reply blocks carry".into())
                .encode();
            fragments = fragment(&bytes, self.fragment_len(), 1);
        }
        (bytes.len(), fragments.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_keeps_only_its_newest_records() {
        let record = |n: usize| ExitRecord {
            target: format!("http://gateway-{n}"),
            request_bytes: n,
            reply_bytes: 0,
            outcome: "forwarded".into(),
        };
        let mut records = Vec::new();
        for n in 0..MAX_EXIT_RECORDS + 10 {
            keep_newest(&mut records, record(n));
        }
        assert_eq!(records.len(), MAX_EXIT_RECORDS);
        assert_eq!(records[0], record(10));
        assert_eq!(records[MAX_EXIT_RECORDS - 1], record(MAX_EXIT_RECORDS + 9));
    }

    #[test]
    fn json_rpc_targets_compare_as_parsed_urls() {
        assert_eq!(
            normalised("http://127.0.0.1:8545"),
            normalised("http://127.0.0.1:8545/")
        );
        assert_ne!(
            normalised("http://127.0.0.1:8545/rpc"),
            normalised("http://127.0.0.1:8545/other")
        );
        assert_eq!(normalised("not a url"), "not a url");
    }

    #[test]
    fn requests_and_replies_round_trip_and_bad_bytes_are_errors() {
        let request = ExitRequest {
            target: "http://127.0.0.1:8080".into(),
            reply_blocks: vec![vec![1; 300], vec![2; 300]],
            payload: ExitPayload::Ohttp(vec![9; 500]),
        };
        let bytes = request.encode().unwrap();
        assert_eq!(ExitRequest::decode(&bytes).unwrap(), request);
        for cut in 0..bytes.len().min(700) {
            // Every truncation before the sealed part is an error, never a panic.
            let result = ExitRequest::decode(&bytes[..cut]);
            if cut < bytes.len() - 500 {
                assert!(result.is_err(), "truncated at {cut}");
            }
        }
        assert!(ExitRequest::decode(b"XXXX").is_err());
        let rpc = ExitRequest {
            payload: ExitPayload::Rpc(vec![3; 40]),
            ..request
        };
        assert_eq!(ExitRequest::decode(&rpc.encode().unwrap()).unwrap(), rpc);
        let mut unknown = rpc.encode().unwrap();
        unknown[4] = 9;
        assert!(ExitRequest::decode(&unknown).is_err());
        let keys = ExitRequest {
            payload: ExitPayload::Keys,
            ..rpc.clone()
        };
        assert_eq!(ExitRequest::decode(&keys.encode().unwrap()).unwrap(), keys);
        // A key request with bytes after it is malformed, not a key request.
        let mut padded = keys.encode().unwrap();
        padded.push(0);
        assert!(ExitRequest::decode(&padded).is_err());
        let reply = ExitReply::Refused("no".into());
        assert_eq!(ExitReply::decode(&reply.encode()).unwrap(), reply);
        assert_eq!(
            ExitReply::decode(&ExitReply::Answer(vec![5; 3]).encode()).unwrap(),
            ExitReply::Answer(vec![5; 3])
        );
        assert!(ExitReply::decode(&[7]).is_err());
        assert!(ExitReply::decode(&[]).is_err());
    }
}

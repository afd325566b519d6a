//! The client core (PROTOCOL §5, §6 end, §9): notes, pre-generated credentials, the
//! journalled request, and the receipt checked before the state advances.
//!
//! A request goes through two types: [`Client::prepare`] picks a free note, takes its
//! pre-generated credential (proving on the spot only if there is none fresh), signs the
//! payload digest and journals the request, fsynced, marked as possibly sent; [`Prepared`]
//! then goes out with [`Client::send`]. From the moment it is journalled, the index is
//! settled only by a receipt: after a crash, [`Client::recover`] re-sends the journalled
//! bytes exactly, never a different request at that index.
//!
//! One request is in flight per note; several notes give concurrency.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use nullgate_chain::{
    Address, AnonymitySet, BlockRef, NoteRecord, NoteStatus as ChainStatus, Vault,
};
use nullgate_net::{HttpRequest, HttpResponse, IsolationId, Transport};
use nullgate_protocol::{
    credential::{ProofContext, UnsignedCredential},
    payload,
    price::PriceList,
    receipt::{RECEIPT_HEADER, Receipt},
    rejection::Problem,
};
use nullgate_zk::{
    Fr,
    circuit::request::RequestWitness,
    curve::Point,
    derive,
    field::fr_to_bytes,
    groth16::ProverKey,
    note::{self, Note},
    state::StateValue,
};

use crate::{
    journal::{Journal, JournalEntry},
    paid::{PaidRequest, PaidResponse, PayError, Payer},
    trust::{ChainView, TrustError, Trusted, fetch_tree},
    wallet::{NoteEntry, NoteState, NoteStatus, Wallet, WalletError},
};

/// How a client behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The authority sealed requests name (the gateway's).
    pub authority: String,
    /// The class index credentials are pre-generated for until a note has been used (then
    /// the class it was last used with).
    pub default_class: u8,
    /// How often a 503 "still running" is retried before the note is held for later.
    pub in_progress_retries: u32,
    /// The fewest Active, unexpired notes in the vault a request may hide among (PROTOCOL
    /// §9); below it every request is refused with [`PayError::TooFewNotes`]. 0 turns the
    /// rule off (a one-user demo chain).
    pub min_anonymity: usize,
    /// How many threads prove credentials, on demand and in the background; every proof
    /// runs on them, so proving never takes more than this many cores from the proxy and
    /// the transport. 0 picks [`default_prover_threads`].
    pub prover_threads: usize,
    /// The longest random delay between depositing a note and its first use (PROTOCOL §3);
    /// each note [`Client::deposit`] makes draws its own, uniformly up to this.
    pub first_use_delay: Duration,
}

/// The default [`ClientConfig::first_use_delay`]: up to an hour after the deposit, so that a
/// deposit's time does not point at the first request among the deposits of that hour.
pub const DEFAULT_FIRST_USE_DELAY: Duration = Duration::from_secs(3600);

/// The default [`ClientConfig::prover_threads`]: one per core. Every call needs a proof, so
/// the prover bounds a wallet's sustained rate (on 2 cores, `nullgate bench client`: one
/// thread 1.5–1.8 calls/s, two 2.5–3.1); agents are still answered, as proofs run on these
/// threads only and never on the async runtime's. Fewer leaves cores free.
pub fn default_prover_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// How long a request waits for a busy note before it is refused.
const BUSY_WAIT: Duration = Duration::from_secs(60);

/// The default [`ClientConfig::min_anonymity`]: a request among fewer notes than this narrows
/// down who made it too far.
pub const DEFAULT_MIN_ANONYMITY: usize = 8;

/// The anonymity set as [`Client::sync`] follows it: the vault's events up to the newest
/// finalised block, folded.
#[derive(Debug, Default)]
struct Anonymity {
    set: AnonymitySet,
    /// The first block not yet read.
    next_block: u64,
    /// The set's size at the last sync; `None` before the first.
    size: Option<usize>,
}

/// A credential proven ahead of its request (§5 steps 1–5).
#[derive(Clone, Debug)]
struct Pregenerated {
    unsigned: UnsignedCredential,
    index: u32,
    class: u8,
    root: Fr,
    hour: u32,
}

#[derive(Default, Debug)]
struct Slot {
    busy: bool,
    /// Whether the note's journal slot holds a request (kept in step with the journal, so
    /// picking a note reads no file).
    journalled: bool,
    /// A receipted state is being written (the note stays busy until it is).
    settling: bool,
    proving: bool,
    class: Option<u8>,
    pregenerated: Option<Pregenerated>,
}

/// How many of the latest values [`Samples`] keeps.
pub const MAX_SAMPLES: usize = 4096;

/// The latest [`MAX_SAMPLES`] measurements of one kind and how many there were in all, so a
/// long-running proxy's statistics stay bounded.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    recent: VecDeque<f64>,
    total: u64,
}

impl Samples {
    /// Records one measurement, dropping the oldest kept one when full.
    pub fn push(&mut self, value: f64) {
        if self.recent.len() == MAX_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
        self.total += 1;
    }

    /// How many measurements were ever recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The kept measurements, oldest first.
    pub fn values(&self) -> Vec<f64> {
        self.recent.iter().copied().collect()
    }

    /// The measurements recorded since `earlier` (a copy taken before), as far as kept.
    pub fn since(&self, earlier: &Samples) -> Vec<f64> {
        let new = usize::try_from(self.total.saturating_sub(earlier.total)).unwrap_or(usize::MAX);
        let skip = self.recent.len().saturating_sub(new);
        self.recent.iter().skip(skip).copied().collect()
    }
}

/// What the client measured (for `nullgate demo` and benches). Nothing here links calls.
#[derive(Clone, Debug, Default)]
pub struct ClientStats {
    /// Milliseconds of each proof made.
    pub proof_ms: Samples,
    /// Calls served by a pre-generated credential.
    pub pregenerated_used: u64,
    /// Calls that had to prove on the spot.
    pub proved_on_demand: u64,
    /// Microseconds of sign + journal write per call (sealing happens in the transport).
    pub critical_path_us: Samples,
    /// Microseconds of each exchange with the gateway through the transport (seal, the
    /// network, the gateway, open), retries after a 503 included.
    pub exchange_us: Samples,
    /// Microseconds of each receipt check (decoding, `A'`, the state signature).
    pub receipt_check_us: Samples,
    /// Receipts checked and applied.
    pub receipts: u64,
    /// Credits charged by those receipts.
    pub charged: u64,
}

struct Inner<T> {
    transport: T,
    vault: Arc<Vault>,
    trusted: Trusted,
    prover: Arc<ProverKey>,
    config: ClientConfig,
    wallet: Mutex<Wallet>,
    journal: Journal,
    view: RwLock<Option<ChainView>>,
    slots: Mutex<Vec<Slot>>,
    stats: Mutex<ClientStats>,
    anonymity: Mutex<Anonymity>,
    freed: tokio::sync::Notify,
    /// The threads every proof runs on ([`ClientConfig::prover_threads`]).
    provers: rayon::ThreadPool,
    /// How many requests wait for a busy note now.
    waiting: AtomicUsize,
    /// The `ohttpKeysHash` whose key the transport last failed to fetch (said once).
    unfollowed_pin: Mutex<Option<[u8; 32]>>,
}

/// A request waiting for a busy note. The first of a wave of waiting requests says so in
/// one log line (a sign that agents call more often at once than there are notes).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn start(waiting: &'a AtomicUsize, class_cost: u64) -> Self {
        if waiting.fetch_add(1, Ordering::SeqCst) == 0 {
            tracing::warn!(
                "every note able to pay {class_cost} credits is busy; requests wait up to {} s for one to finish (more notes, `nullgate wallet deposit --notes K`, let more calls run at once)",
                BUSY_WAIT.as_secs()
            );
        }
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The client: a wallet, its journal, a transport to the gateway, and the pinned keys.
pub struct Client<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// A request journalled and ready to leave (§5 step 7 done).
#[derive(Debug)]
pub struct Prepared {
    slot: usize,
    entry: JournalEntry,
}

impl Prepared {
    /// The exact bytes that will be sent (and re-sent after a crash).
    pub fn request_bytes(&self) -> &[u8] {
        &self.entry.request
    }
}

fn wallet_error(e: impl std::fmt::Display) -> PayError {
    PayError::Wallet(e.to_string())
}

impl<T: Transport + 'static> Client<T> {
    /// A client over an open wallet, checked deployment and pinned transport.
    pub fn new(
        wallet: Wallet,
        transport: T,
        vault: Arc<Vault>,
        trusted: Trusted,
        prover: Arc<ProverKey>,
        config: ClientConfig,
    ) -> Result<Self, PayError> {
        let journal = Journal::open(wallet.journal_dir()).map_err(wallet_error)?;
        for slot in 0..wallet.notes().len() {
            journal.prepare(slot).map_err(wallet_error)?;
        }
        let threads = match config.prover_threads {
            0 => default_prover_threads(),
            n => n,
        };
        let provers = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("nullgate-prover-{i}"))
            .build()
            .map_err(|e| PayError::Prover(format!("starting {threads} prover threads: {e}")))?;
        let mut slots: Vec<Slot> = (0..wallet.notes().len()).map(|_| Slot::default()).collect();
        for (slot, _) in journal.pending().map_err(wallet_error)? {
            if let Some(s) = slots.get_mut(slot) {
                s.journalled = true;
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                vault,
                trusted,
                prover,
                config,
                wallet: Mutex::new(wallet),
                journal,
                view: RwLock::new(None),
                slots: Mutex::new(slots),
                stats: Mutex::new(ClientStats::default()),
                anonymity: Mutex::new(Anonymity::default()),
                freed: tokio::sync::Notify::new(),
                provers,
                waiting: AtomicUsize::new(0),
                unfollowed_pin: Mutex::new(None),
            }),
        })
    }

    /// The Active, unexpired notes in the vault at the last sync (PROTOCOL §9); `None`
    /// before the first.
    pub fn anonymity_set(&self) -> Option<usize> {
        self.inner.anonymity().size
    }

    /// What the client measured so far.
    pub fn stats(&self) -> ClientStats {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The notes as the wallet holds them.
    pub fn notes(&self) -> Vec<NoteEntry> {
        self.inner.wallet().notes().to_vec()
    }

    /// The checked deployment.
    pub fn trusted(&self) -> &Trusted {
        &self.inner.trusted
    }

    /// Deposits one note per amount from `from` in one transaction. The secrets are in the
    /// wallet, fsynced, before the transaction is sent, so a crash cannot lose a deposit.
    pub async fn deposit(&self, from: Address, amounts: &[u64]) -> Result<(), PayError> {
        let notes;
        {
            let mut wallet = self.inner.wallet();
            notes = add_pending_notes(
                &mut wallet,
                &self.inner.journal,
                amounts,
                self.inner.config.first_use_delay,
            )?;
            let mut slots = self.inner.slots();
            while slots.len() < wallet.notes().len() {
                slots.push(Slot::default());
            }
        }
        self.inner
            .vault
            .deposit_many(from, &notes)
            .await
            .map_err(|e| PayError::Wallet(format!("deposit: {e}")))?;
        Ok(())
    }

    /// Follows the chain: activates notes whose deposits are final, re-syncs the tree when
    /// it grew (checked against the chain), re-sends journalled requests, and
    /// pre-generates the next credential of every idle note.
    pub async fn sync(&self) -> Result<(), TrustError> {
        let inner = &self.inner;
        let finalized = inner.vault.ledger().finalized().await?;
        let pending: Vec<(usize, Fr)> = inner
            .wallet()
            .notes()
            .iter()
            .enumerate()
            .filter(|(_, n)| n.status == NoteStatus::Pending)
            .map(|(i, n)| (i, n.secret))
            .collect();
        for (slot, secret) in pending {
            let record = inner
                .vault
                .note(
                    &note::commitment(&secret),
                    BlockRef::Number(finalized.number),
                )
                .await?;
            activate(&mut inner.wallet(), slot, &record)
                .map_err(|e| TrustError::Gateway(format!("wallet: {e}")))?;
        }
        let (count, _) = inner
            .vault
            .deposit_state(BlockRef::Number(finalized.number))
            .await?;
        let hour = u32::try_from(finalized.timestamp / 3600).unwrap_or(u32::MAX);
        let next_block = inner.anonymity().next_block;
        if next_block <= finalized.number {
            let events = inner.vault.events(next_block, finalized.number).await?;
            let mut anonymity = inner.anonymity();
            // Another sync may have read them meanwhile: fold each block once.
            if anonymity.next_block == next_block {
                for event in &events {
                    anonymity.set.observe(event);
                }
                anonymity.next_block = finalized.number + 1;
            }
        }
        {
            let mut anonymity = inner.anonymity();
            anonymity.size = Some(anonymity.set.size_at(hour));
        }
        inner.follow_gateway_keys(finalized.number).await;
        let stale = inner
            .view
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|v| v.count != count);
        if stale {
            let view = fetch_tree(&inner.vault, &inner.transport, &inner.config.authority).await?;
            *inner.view.write().unwrap_or_else(|e| e.into_inner()) = Some(view);
        } else if let Some(view) = inner
            .view
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            view.hour = hour;
        }
        self.recover().await;
        self.pregenerate_idle();
        Ok(())
    }

    /// Re-sends every journalled request byte for byte (after a restart or a failed send)
    /// and applies the receipts that come back.
    pub async fn recover(&self) {
        let pending = match self.inner.journal.pending() {
            Ok(pending) => pending,
            Err(error) => {
                tracing::error!(%error, "cannot read the journal");
                return;
            }
        };
        for (slot, entry) in pending {
            let index = self.inner.wallet().note(slot).map(|n| n.state.index);
            if index != Some(entry.index) {
                // The state was saved past it before the slot was cleared: settled.
                if self.inner.journal.clear(slot).is_ok() {
                    self.inner.slots()[slot].journalled = false;
                }
                continue;
            }
            if !self.inner.claim(slot) {
                continue;
            }
            let _ = self.send(Prepared { slot, entry }).await;
        }
        self.settled(Duration::from_secs(30)).await;
    }

    /// Starts proving the next credential of every idle active note that lacks a fresh one.
    pub fn pregenerate_idle(&self) {
        let count = self.inner.slots().len();
        for slot in 0..count {
            self.inner.clone().spawn_pregenerate(slot);
        }
    }

    /// Waits until every idle note has a fresh pre-generated credential (or `timeout`); a
    /// note whose receipted state is still being written counts as not ready yet.
    pub async fn wait_pregenerated(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.inner.slots().iter().all(|s| !s.proving && !s.settling) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// §5 steps 1–7: a free note that can pay class `request.class_index`, its credential
    /// (pre-generated if fresh), the signature over the payload, the fsynced journal entry.
    pub async fn prepare(&self, request: &PaidRequest) -> Result<Prepared, PayError> {
        let inner = &self.inner;
        let prices = &inner.trusted.prices;
        let class_cost = prices
            .class(request.class_index)
            .ok_or(PayError::NoSuchClass(request.class_index))?;
        let min = inner.config.min_anonymity;
        let active = inner.anonymity().size.unwrap_or(0);
        if active < min {
            return Err(PayError::TooFewNotes { active, min });
        }
        let deadline = tokio::time::Instant::now() + BUSY_WAIT;
        let mut waiting = None;
        let slot = loop {
            // Registered before looking, so a note freed in between is not missed.
            let freed = inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            match inner.take_note(class_cost)? {
                Some(slot) => break slot,
                None => {
                    if waiting.is_none() {
                        waiting = Some(Waiting::start(&inner.waiting, class_cost));
                    }
                    tokio::time::timeout_at(deadline, freed)
                        .await
                        .map_err(|_| PayError::AllBusy {
                            class_cost,
                            waited: BUSY_WAIT.as_secs(),
                        })?;
                }
            }
        };
        drop(waiting);
        let result = self.prepare_on(slot, request, class_cost).await;
        if result.is_err() {
            inner.release(slot);
        }
        result
    }

    async fn prepare_on(
        &self,
        slot: usize,
        request: &PaidRequest,
        class_cost: u64,
    ) -> Result<Prepared, PayError> {
        let inner = &self.inner;
        inner.slots()[slot].class = Some(request.class_index);
        let note = inner
            .wallet()
            .note(slot)
            .copied()
            .ok_or(PayError::Wallet("no such note".into()))?;
        let view = inner
            .view()
            .ok_or(PayError::Prover("the note tree is not synced yet".into()))?;
        // A proof of this note already under way is the one to use: wait for it rather
        // than prove twice.
        let mut waited = false;
        while inner.slots()[slot].proving {
            waited = true;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let fresh = inner.slots()[slot].pregenerated.take().filter(|p| {
            p.index == note.state.index
                && p.class == request.class_index
                && p.root == view.root
                && p.hour == view.hour
        });
        let unsigned = match fresh {
            Some(p) => {
                // Counted as pre-generated only if it was ready when the call came.
                if waited {
                    inner.stats().proved_on_demand += 1;
                } else {
                    inner.stats().pregenerated_used += 1;
                }
                p.unsigned
            }
            None => {
                inner.stats().proved_on_demand += 1;
                let task = inner.clone();
                let class = request.class_index;
                tokio::task::spawn_blocking(move || task.prove(&note, class, &view))
                    .await
                    .map_err(|e| PayError::Prover(e.to_string()))??
                    .unsigned
            }
        };
        let started = Instant::now();
        let secret = note.secret;
        let index = note.state.index;
        let mut http_request = HttpRequest::new(
            request.method.clone(),
            "https",
            &inner.config.authority,
            &request.path_and_query,
        );
        for (name, value) in &request.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_bytes(value),
            ) {
                http_request.headers.append(name, value);
            }
        }
        http_request.body = request.body.clone();
        let (nullifier, published_state) = sign_request(
            unsigned,
            &secret,
            index,
            inner.trusted.prices.signed_headers(),
            &mut http_request,
        )?;
        let bytes = http_request
            .to_bhttp()
            .map_err(|e| PayError::Transport(e.to_string()))?;
        let entry = JournalEntry {
            index,
            class_cost,
            nullifier,
            published_state,
            request: bytes,
            // Set before any byte leaves: a torn later rewrite can then never hide it.
            sent: true,
        };
        inner.journal.write(slot, &entry).map_err(wallet_error)?;
        inner.slots()[slot].journalled = true;
        inner
            .stats()
            .critical_path_us
            .push(started.elapsed().as_secs_f64() * 1e6);
        Ok(Prepared { slot, entry })
    }

    /// Sends a journalled request and settles its index by the receipt that comes back.
    /// Without a receipt the journal entry stays, and the note is held until a re-send
    /// settles it.
    ///
    /// The response is returned once the receipt has checked out; the new state is written
    /// (wallet, backup, journal cleared) right after, off the caller's path, and the note
    /// stays busy until it is. A crash in between leaves the journal entry, whose re-send
    /// the gateway answers with the stored receipt. [`Client::settled`] waits for it.
    pub async fn send(&self, prepared: Prepared) -> Result<PaidResponse, PayError> {
        let slot = prepared.slot;
        match self.send_inner(&prepared).await {
            Ok((response, next)) => {
                let inner = self.inner.clone();
                inner.slots()[slot].settling = true;
                tokio::task::spawn_blocking(move || {
                    if let Err(error) = inner.persist(slot, next) {
                        tracing::error!(%error, "saving a receipted state failed; the journal keeps the request for a re-send");
                    }
                    inner.slots()[slot].settling = false;
                    inner.release(slot);
                    inner.spawn_pregenerate(slot);
                });
                Ok(response)
            }
            Err(error) => {
                self.inner.release(slot);
                Err(error)
            }
        }
    }

    /// Waits until every receipted state is on disk (what [`Client::send`] leaves to finish
    /// after answering), or `timeout`.
    pub async fn settled(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.inner.slots().iter().all(|s| !s.settling) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn send_inner(&self, prepared: &Prepared) -> Result<(PaidResponse, NoteState), PayError> {
        let inner = &self.inner;
        let entry = &prepared.entry;
        let mut attempts = 0;
        let started = Instant::now();
        let response = loop {
            let request = HttpRequest::from_bhttp(&entry.request)
                .map_err(|e| PayError::Transport(e.to_string()))?;
            let response = inner
                .transport
                .send(request, IsolationId::fresh())
                .await
                .map_err(|e| PayError::Transport(e.to_string()))?;
            if response.status == http::StatusCode::SERVICE_UNAVAILABLE
                && receipt_of(&response).is_none()
                && attempts < inner.config.in_progress_retries
            {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempts))).await;
                continue;
            }
            break response;
        };
        inner
            .stats()
            .exchange_us
            .push(started.elapsed().as_secs_f64() * 1e6);
        let started = Instant::now();
        let Some(receipt) = receipt_of(&response) else {
            let detail = serde_json::from_slice::<Problem>(&response.body)
                .map(|p| p.title)
                .unwrap_or_else(|_| format!("status {}", response.status));
            return Err(PayError::Refused {
                status: response.status.as_u16(),
                detail,
            });
        };
        let receipt = receipt.map_err(|e| PayError::BadReceipt(e.to_string()))?;
        let next = inner.check(prepared.slot, entry, &receipt)?;
        {
            let mut stats = inner.stats();
            stats
                .receipt_check_us
                .push(started.elapsed().as_secs_f64() * 1e6);
            stats.receipts += 1;
            stats.charged += receipt.charge;
        }
        if response.status == http::StatusCode::CONFLICT {
            // Rare: settle before answering, so the re-send uses the next index.
            inner.persist(prepared.slot, next)?;
            return Err(PayError::Refused {
                status: 409,
                detail: "this index was used by another copy of the wallet; the state advanced, send again".into(),
            });
        }
        let mut headers = response.headers.clone();
        headers.remove(RECEIPT_HEADER);
        let paid = PaidResponse {
            status: response.status,
            headers,
            body: strip_nullgate_events(&response.body),
            receipt,
            class_cost: entry.class_cost,
        };
        Ok((paid, next))
    }

    /// `pay` in two steps, for callers that need the journalled bytes in between.
    pub async fn pay_request(&self, request: PaidRequest) -> Result<PaidResponse, PayError> {
        let prepared = self.prepare(&request).await?;
        self.send(prepared).await
    }
}

/// A uniformly random non-zero note secret from the OS generator (rejection sampling
/// below `p` keeps it uniform).
/// Adds one Pending note per amount to `wallet`, secrets from the OS CSPRNG, each with its
/// journal slot; all fsynced before it returns, so that a crash after the deposit
/// transaction is sent cannot lose a note. Returns `(commitment, amount)` to deposit.
pub fn add_pending_notes(
    wallet: &mut Wallet,
    journal: &Journal,
    amounts: &[u64],
    first_use_delay: Duration,
) -> Result<Vec<(Fr, u64)>, PayError> {
    use rand::Rng;
    let now = unix_now();
    let mut notes = Vec::with_capacity(amounts.len());
    for &amount in amounts {
        let secret = random_secret();
        let delay = rand::rngs::OsRng.gen_range(0..=first_use_delay.as_secs());
        let note = NoteEntry {
            first_use: (delay > 0).then_some(now + delay),
            ..NoteEntry::new(secret, amount)
        };
        let slot = wallet.add_note(note).map_err(wallet_error)?;
        journal.prepare(slot).map_err(wallet_error)?;
        notes.push((note::commitment(&secret), amount));
    }
    Ok(notes)
}

/// Makes the Pending note in `slot` Active with its `note_id` and expiry, if `record` (the
/// chain's, at a finalised block) says its deposit is Active. Returns whether it did.
pub fn activate(
    wallet: &mut Wallet,
    slot: usize,
    record: &NoteRecord,
) -> Result<bool, WalletError> {
    if record.status != ChainStatus::Active
        || wallet
            .note(slot)
            .is_none_or(|n| n.status != NoteStatus::Pending)
    {
        return Ok(false);
    }
    wallet.update(slot, |n| {
        n.note_id = Some(record.note_id);
        n.expiry = Some(record.expiry);
        n.status = NoteStatus::Active;
    })?;
    Ok(true)
}

/// Seconds since the Unix epoch by this machine's clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_secret() -> Fr {
    use rand::RngCore;
    loop {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        if let Ok(value) = nullgate_zk::field::fr_from_bytes(&bytes, "secret")
            && value != Fr::from(0u64)
        {
            return value;
        }
    }
}

/// §5 step 6: signs the payload digest of `request` (its allowlisted headers as the price
/// list signs them) with the index's request key and puts the credential in its
/// `Authorization` header. Returns `N` and `A_pub`, which the journal entry keeps to check the
/// receipt. The whole of the client's signing; `nullgate bench client` times this call.
pub fn sign_request(
    unsigned: UnsignedCredential,
    secret: &Fr,
    index: u32,
    allowlist: &[String],
    request: &mut HttpRequest,
) -> Result<([u8; 32], [u8; 64]), PayError> {
    let signed = payload::signed_headers(
        allowlist,
        request
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes())),
    );
    let digest = payload::payload_digest(
        &unsigned.nullifier,
        request.method.as_str(),
        &request.path,
        &signed,
        &request.body,
    );
    let esk = derive::request_signing_key(secret, index);
    let nullifier = fr_to_bytes(&unsigned.nullifier);
    let published_state = unsigned.published_state.to_bytes();
    let credential = unsigned.sign(&esk, &digest);
    request.headers.insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_str(&credential.to_authorization())
            .map_err(|e| PayError::Prover(e.to_string()))?,
    );
    Ok((nullifier, published_state))
}

/// The receipt of a response: header, or trailer for a streamed one.
fn receipt_of(response: &HttpResponse) -> Option<Result<Receipt, nullgate_protocol::WireError>> {
    response
        .headers
        .get(RECEIPT_HEADER)
        .or_else(|| response.trailers.get(RECEIPT_HEADER))
        .map(|value| Receipt::from_header(value.as_bytes()))
}

/// Removes the gateway's own SSE events (`nullgate-receipt`, `nullgate-cutoff`) that an
/// agent's SDK would not understand.
fn strip_nullgate_events(body: &Bytes) -> Bytes {
    let needle = b"event: nullgate-";
    if !body.windows(needle.len()).any(|w| w == needle) {
        return body.clone();
    }
    let text = String::from_utf8_lossy(body);
    let kept: Vec<&str> = text
        .split_inclusive("\n\n")
        .filter(|event| !event.starts_with("event: nullgate-"))
        .collect();
    Bytes::from(kept.concat())
}

impl<T: Transport + 'static> Inner<T> {
    /// Follows a rotation of the gateway's OHTTP key (PROTOCOL §2 `ohttpKeysHash`, as of
    /// finalised block `block`): a transport that seals to it fetches the newly pinned
    /// configuration. Until the gateway serves it, calls stay sealed to the key in use (the
    /// gateway keeps it for its max-age) and the next sync tries again; the failure is
    /// logged once per pin.
    async fn follow_gateway_keys(&self, block: u64) {
        let pinned = match self.vault.ohttp_keys_hash(BlockRef::Number(block)).await {
            Ok(hash) => hash.0,
            Err(error) => {
                tracing::warn!(%error, "cannot read the vault's ohttpKeysHash; the gateway key stays");
                return;
            }
        };
        match self.transport.follow_gateway_keys(&pinned).await {
            Ok(true) => {
                tracing::info!(
                    "the vault pins a new OHTTP key for the gateway; calls are sealed to it from now on"
                );
            }
            Ok(false) => {}
            Err(error) => {
                let mut said = self
                    .unfollowed_pin
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if *said != Some(pinned) {
                    *said = Some(pinned);
                    tracing::warn!(%error, "the vault pins a new OHTTP key for the gateway, which does not serve it (yet); calls stay sealed to the key in use");
                }
            }
        }
    }

    fn wallet(&self) -> std::sync::MutexGuard<'_, Wallet> {
        self.wallet.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn anonymity(&self) -> std::sync::MutexGuard<'_, Anonymity> {
        self.anonymity.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, ClientStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn view(&self) -> Option<ChainView> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A free active note with balance for `class_cost` and no request held for a re-send,
    /// marked busy; prefers one with a pre-generated credential. `Ok(None)`: every such note
    /// is busy (its request in flight, or its state being written).
    fn take_note(&self, class_cost: u64) -> Result<Option<usize>, PayError> {
        let wallet = self.wallet();
        let mut slots = self.slots();
        let now = unix_now();
        let can_pay =
            |n: &NoteEntry| n.status == NoteStatus::Active && n.state.balance >= class_cost;
        // When a new note's first-use delay ends, while it has not.
        let delayed_until = |n: &NoteEntry| n.first_use.filter(|&t| t > now);
        let able: Vec<usize> = wallet
            .notes()
            .iter()
            .enumerate()
            .filter(|(i, n)| {
                can_pay(n)
                    && delayed_until(n).is_none()
                    // A journalled note is held for a re-send, unless it is in flight or
                    // its state is being written: then it is busy and will be free soon.
                    && (!slots[*i].journalled || slots[*i].busy || slots[*i].settling)
            })
            .map(|(i, _)| i)
            .collect();
        if able.is_empty() {
            let soonest = wallet
                .notes()
                .iter()
                .filter(|n| can_pay(n))
                .filter_map(delayed_until)
                .min();
            if let Some(soonest) = soonest {
                return Err(PayError::FirstUseDelay {
                    seconds: soonest - now,
                });
            }
            return Err(PayError::NoNote {
                class_cost,
                reason: "no active note has that balance and no request waiting for a re-send"
                    .into(),
            });
        }
        let free = able
            .iter()
            .copied()
            .filter(|&i| !slots[i].busy)
            .max_by_key(|&i| slots[i].pregenerated.is_some());
        if let Some(slot) = free {
            slots[slot].busy = true;
        }
        Ok(free)
    }

    /// Marks `slot` busy if it is free.
    fn claim(&self, slot: usize) -> bool {
        let mut slots = self.slots();
        match slots.get_mut(slot) {
            Some(s) if !s.busy => {
                s.busy = true;
                true
            }
            _ => false,
        }
    }

    fn release(&self, slot: usize) {
        if let Some(s) = self.slots().get_mut(slot) {
            s.busy = false;
        }
        self.freed.notify_waiters();
    }

    /// Proves the next credential of `entry` for class `class` under `view`.
    fn prove(
        &self,
        entry: &NoteEntry,
        class: u8,
        view: &ChainView,
    ) -> Result<Pregenerated, PayError> {
        let (Some(note_id), Some(expiry)) = (entry.note_id, entry.expiry) else {
            return Err(PayError::Prover(
                "the note's deposit is not final yet".into(),
            ));
        };
        let class_cost = self
            .trusted
            .prices
            .class(class)
            .ok_or(PayError::NoSuchClass(class))?;
        let note = Note {
            secret: entry.secret,
            note_id,
            deposit: entry.deposit,
            expiry,
        };
        let witness = RequestWitness {
            note,
            path: view
                .tree
                .path(note_id)
                .map_err(|e| PayError::Prover(e.to_string()))?,
            state: StateValue::new(entry.state.balance, entry.state.index, note_id)
                .map_err(|e| PayError::Prover(e.to_string()))?,
            blinding: entry.state.blinding,
            signature: entry.state.signature,
        };
        let (number, key) = &self.trusted.deployment.current_key;
        // Genesis credentials name the current key; later ones the key that signed.
        let key_number = if entry.state.signature.is_some() {
            entry.state.key_number
        } else {
            *number
        };
        let started = Instant::now();
        let (unsigned, _) = self
            .provers
            .install(|| {
                UnsignedCredential::prove(
                    &self.prover,
                    &ProofContext {
                        dom: self.trusted.deployment.dom,
                        root: view.root,
                        state_key: (key_number, key),
                        class: (class, class_cost),
                        hour: view.hour,
                    },
                    &witness,
                    &mut rand::rngs::OsRng,
                )
            })
            .map_err(|e| PayError::Prover(e.to_string()))?;
        self.stats()
            .proof_ms
            .push(started.elapsed().as_secs_f64() * 1e3);
        Ok(Pregenerated {
            unsigned,
            index: entry.state.index,
            class,
            root: view.root,
            hour: view.hour,
        })
    }

    fn spawn_pregenerate(self: Arc<Self>, slot: usize) {
        let Some(view) = self.view() else { return };
        let Some(entry) = self.wallet().note(slot).copied() else {
            return;
        };
        let class = {
            let mut slots = self.slots();
            let s = &mut slots[slot];
            let class = s.class.unwrap_or(self.config.default_class);
            let fresh = s.pregenerated.as_ref().is_some_and(|p| {
                p.index == entry.state.index
                    && p.class == class
                    && p.root == view.root
                    && p.hour == view.hour
            });
            let able = entry.status == NoteStatus::Active
                && self
                    .trusted
                    .prices
                    .class(class)
                    .is_some_and(|c| entry.state.balance >= c);
            if s.busy || s.proving || fresh || !able {
                return;
            }
            s.proving = true;
            class
        };
        let task = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = task.prove(&entry, class, &view);
            let mut slots = task.slots();
            slots[slot].proving = false;
            match result {
                Ok(pregenerated) => slots[slot].pregenerated = Some(pregenerated),
                Err(error) => tracing::warn!(%error, "pre-generating a credential failed"),
            }
        });
    }

    /// §6 end, first half: checks the receipt against the journalled request and returns
    /// the note's next state `(B−Δ, m+1, r+ε, σ')`.
    fn check(
        &self,
        slot: usize,
        entry: &JournalEntry,
        receipt: &Receipt,
    ) -> Result<NoteState, PayError> {
        let nullifier = nullgate_zk::field::fr_from_bytes(&entry.nullifier, "nullifier")
            .map_err(|e| PayError::BadReceipt(e.to_string()))?;
        let published = Point::from_bytes(&entry.published_state, "A_pub")
            .map_err(|e| PayError::BadReceipt(e.to_string()))?;
        let deployment = &self.trusted.deployment;
        receipt
            .check(&deployment.dom, &nullifier, &published, entry.class_cost, &[deployment.current_key])
            .map_err(|e| {
                tracing::error!(%e, "a receipt does not check out; the note is held for a safe exit");
                PayError::BadReceipt(e.to_string())
            })?;
        let note = *self
            .wallet()
            .note(slot)
            .ok_or(PayError::Wallet("no such note".into()))?;
        if note.state.index != entry.index {
            return Err(PayError::Wallet(
                "the journal entry is not the note's next index".into(),
            ));
        }
        let epsilon = derive::rerandomiser(&note.secret, entry.index);
        Ok(NoteState {
            balance: note.state.balance - receipt.charge,
            index: entry.index + 1,
            blinding: note.state.blinding + epsilon,
            signature: Some(receipt.signature),
            key_number: receipt.key_number,
        })
    }

    /// §6 end, second half: stores the checked state (wallet and backup), then clears the
    /// journal slot.
    fn persist(&self, slot: usize, next: NoteState) -> Result<(), PayError> {
        self.wallet().set_state(slot, next).map_err(wallet_error)?;
        self.journal.clear(slot).map_err(wallet_error)?;
        self.slots()[slot].journalled = false;
        Ok(())
    }
}

impl<T: Transport + 'static> Payer for Client<T> {
    fn price_list(&self) -> &PriceList {
        &self.inner.trusted.prices
    }

    async fn pay(&self, request: PaidRequest) -> Result<PaidResponse, PayError> {
        self.pay_request(request).await
    }
}

#[cfg(test)]
mod samples_tests {
    use super::*;

    #[test]
    fn samples_keep_the_latest_and_count_all() {
        let mut samples = Samples::default();
        for i in 0..10 {
            samples.push(f64::from(i));
        }
        let earlier = samples.clone();
        samples.push(10.0);
        samples.push(11.0);
        assert_eq!(samples.since(&earlier), vec![10.0, 11.0]);
        for i in 12..(MAX_SAMPLES as u32 + 100) {
            samples.push(f64::from(i));
        }
        assert_eq!(samples.total(), MAX_SAMPLES as u64 + 100);
        let values = samples.values();
        assert_eq!(values.len(), MAX_SAMPLES);
        assert_eq!(values[0], 100.0);
        // More new values than kept: what is kept.
        assert_eq!(samples.since(&earlier).len(), MAX_SAMPLES);
    }
}

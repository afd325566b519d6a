//! The chain watcher (PROTOCOL §6, opening): the note tree and its roots from finalised
//! `NoteDeposited` events, the hour of the newest finalised block, and the exits:
//! `ExitInitiated` and `NoteClosed` put their share `(N_n, x_e, y_e)` into the nullifier
//! store, and an exit whose `N_n` a request already used (an understated exit) recovers
//! `k` and slashes the note.
//!
//! Key and parameter changes: when a `KeyRegistered`, `KeyRevoked` or `ParameterChanged`
//! event is finalised, or a key activation or price list change it announced comes due,
//! the watcher reads the vault's [`LiveParameters`] at the finalised block. Requests then
//! verify under the registered keys not revoked; closes under the keys valid for the note.
//! Service stops (503, `nullgate_gateway_parameters_mismatch 1`, a log line) while the
//! vault pins what this gateway does not serve: another price list or OHTTP keys, its state
//! key revoked, or another key current for over an hour (clients accept either key within
//! an hour of an activation).
//!
//! An error while syncing or recording, or an event it does not know, stops service (the
//! gateway answers 503) and raises an alarm (`nullgate_gateway_watcher_alarm 1` and a log
//! line); the next tick retries from the same block, and events read but not yet recorded
//! stay queued, so no event is ever skipped. On a restart the watcher reads the vault's
//! events from its deployment block again (recording an exit twice is a no-op).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, RwLock},
    time::Duration,
};

use nullgate_chain::{
    BlockRef, LiveParameters, LoggedEvent, TreeSync, Vault, VaultEvent, vault::fr_from_u256,
};
use nullgate_protocol::tree::LeafRecord;
use nullgate_zk::{Fr, derive, schnorr::PublicKey};

use crate::{
    fault::{self, FaultPoint},
    metrics::{Metrics, Outcome},
    slash::Slasher,
    store::{Known, NullifierStore, Share, StoreError},
};

/// What the gateway knows of the chain, as of the newest finalised block it synced.
#[derive(Clone, Debug, Default)]
pub struct TreeView {
    roots: std::collections::HashSet<Fr>,
    leaves: Vec<LeafRecord>,
    by_commitment: HashMap<Fr, u32>,
    /// The newest finalised block's number.
    pub finalized_block: u64,
    /// Its hour (hours since the Unix epoch).
    pub finalized_hour: u32,
    /// Whether the last sync succeeded.
    pub healthy: bool,
    /// Why the vault's parameters stop service now, if they do.
    pub stopped: Option<&'static str>,
    params: Option<Arc<LiveParameters>>,
    request_keys: Arc<Vec<(u32, PublicKey)>>,
    /// When the parameters change next without an event (a key activation, a price list).
    next_change: Option<u64>,
}

impl TreeView {
    /// Whether `root` is a finalised root the gateway computed.
    pub fn has_root(&self, root: &Fr) -> bool {
        self.roots.contains(root)
    }

    /// Every deposit in `note_id` order.
    pub fn leaves(&self) -> &[LeafRecord] {
        &self.leaves
    }

    /// The `note_id` of a deposited commitment.
    pub fn note_of(&self, commitment: &Fr) -> Option<u32> {
        self.by_commitment.get(commitment).copied()
    }

    /// The state keys a request's state may be signed under: registered, not revoked.
    pub fn request_keys(&self) -> &[(u32, PublicKey)] {
        &self.request_keys
    }

    /// State key `number` if a close of note `note_id` may name it: registered, and if
    /// revoked, only for notes deposited before the revocation.
    pub fn exit_key(&self, number: u32, note_id: u32) -> Option<&PublicKey> {
        self.params
            .as_ref()?
            .keys
            .iter()
            .find(|k| k.number == number && k.revoked_at.is_none_or(|count| note_id < count))
            .map(|k| &k.key)
    }

    /// The vault's changeable parameters as of [`TreeView::finalized_block`].
    pub fn params(&self) -> Option<&LiveParameters> {
        self.params.as_deref()
    }
}

/// How long after another key's activation a gateway may still sign with its own: clients
/// accept either key within an hour of an activation (PROTOCOL §6, end).
const ROTATION_GRACE_SECONDS: u64 = 3_600;

/// What this gateway serves, compared with the vault's live parameters.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The number of the state key it signs with.
    pub signer: u32,
    /// SHA-256 of the price list it serves.
    pub price_list_hash: [u8; 32],
    /// SHA-256 of the OHTTP key configurations it serves.
    pub ohttp_keys_hash: [u8; 32],
}

impl Serving {
    /// Why this gateway must not serve under `params` at `now` (Unix seconds), if it must not.
    pub fn mismatch(&self, params: &LiveParameters, now: u64) -> Option<&'static str> {
        match params.keys.iter().find(|k| k.number == self.signer) {
            None => return Some("the vault has no state key with this gateway's number"),
            Some(key) if key.revoked_at.is_some() => {
                return Some("the vault revoked this gateway's state key; configure its successor");
            }
            Some(_) => {}
        }
        if params.current_key != self.signer {
            let activation = params
                .keys
                .iter()
                .find(|k| k.number == params.current_key)
                .map_or(0, |k| k.activation);
            if now >= activation.saturating_add(ROTATION_GRACE_SECONDS) {
                return Some("the vault's current state key is not this gateway's; configure it");
            }
        }
        if params.price_list_hash.0 != self.price_list_hash {
            return Some("the vault pins a price list this gateway does not serve");
        }
        if params.ohttp_keys_hash.0 != self.ohttp_keys_hash {
            return Some("the vault pins OHTTP keys this gateway does not serve");
        }
        None
    }
}

/// Follows the vault and publishes a fresh [`TreeView`] after every finalised block.
pub struct Watcher {
    view: Arc<RwLock<Arc<TreeView>>>,
}

/// Where the watcher records exits, and who slashes an understated one.
#[derive(Clone)]
pub struct ExitIngest {
    /// The nullifier store.
    pub store: Arc<dyn NullifierStore>,
    /// The slasher.
    pub slasher: Arc<Slasher>,
}

/// Why a watcher step failed.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Chain(#[from] nullgate_chain::ChainError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("an event the gateway cannot process: {0}")]
    Unknown(String),
}

impl Watcher {
    /// The shared view.
    /// (Readers clone the inner `Arc`: a request never copies the tree.)
    pub fn view(&self) -> Arc<RwLock<Arc<TreeView>>> {
        self.view.clone()
    }

    /// Syncs once (so the gateway starts with a tree), then keeps syncing every `poll`,
    /// recording exits through `exits` when given and stopping service while the vault's
    /// parameters differ from what `serving` says the gateway serves.
    pub async fn start(
        vault: Arc<Vault>,
        from_block: u64,
        poll: Duration,
        metrics: Arc<Metrics>,
        exits: Option<ExitIngest>,
        serving: Option<Serving>,
    ) -> Result<Self, nullgate_chain::ChainError> {
        let mut state = State {
            sync: TreeSync::new(from_block),
            pending: VecDeque::new(),
            exits,
            serving,
        };
        let view = Arc::new(RwLock::new(Arc::new(TreeView::default())));
        match step(&vault, &mut state, &view, &metrics).await {
            Ok(()) => {}
            Err(StepError::Chain(error)) => return Err(error),
            Err(StepError::Store(error)) => {
                return Err(nullgate_chain::ChainError::Rpc(format!(
                    "recording the vault's exits: {error}"
                )));
            }
            Err(error @ StepError::Unknown(_)) => {
                return Err(nullgate_chain::ChainError::Rpc(error.to_string()));
            }
        }
        let watcher = Self { view: view.clone() };
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match step(&vault, &mut state, &view, &metrics).await {
                    Ok(()) => metrics.set_watcher_alarm(false),
                    Err(error) => {
                        if !metrics.watcher_alarm() {
                            tracing::error!(%error, "chain watcher: cannot process the vault's events; service stopped until it can");
                        }
                        metrics.set_watcher_alarm(true);
                        Arc::make_mut(&mut view.write().unwrap_or_else(|e| e.into_inner()))
                            .healthy = false;
                    }
                }
            }
        });
        Ok(watcher)
    }
}

/// What the watcher carries from one step to the next.
struct State {
    sync: TreeSync,
    /// Events read but not yet recorded (a failed recording is retried, never skipped).
    pending: VecDeque<LoggedEvent>,
    exits: Option<ExitIngest>,
    serving: Option<Serving>,
}

/// The `ParameterChanged` names the vault emits.
const PARAMETERS: [&str; 6] = [
    "currentKey",
    "priceListHash",
    "ohttpKeysHash",
    "treasury",
    "clearanceSigner",
    "depositsPaused",
];

/// Whether `event` announces a key or parameter change (an unknown parameter is an error).
fn announces_change(event: &VaultEvent) -> Result<bool, StepError> {
    Ok(match event {
        VaultEvent::KeyRegistered(_) | VaultEvent::KeyRevoked(_) => true,
        VaultEvent::ParameterChanged(change) => {
            let name = change.name.0;
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            let name = std::str::from_utf8(&name[..end]).unwrap_or_default();
            if !PARAMETERS.contains(&name) {
                return Err(StepError::Unknown(format!(
                    "ParameterChanged of {:?}",
                    change.name
                )));
            }
            true
        }
        _ => false,
    })
}

async fn step(
    vault: &Vault,
    state: &mut State,
    view: &RwLock<Arc<TreeView>>,
    metrics: &Arc<Metrics>,
) -> Result<(), StepError> {
    let sync = &mut state.sync;
    let before = sync.deposits().len();
    let (step, events) = sync.sync_with_events(vault).await?;
    if !events.is_empty() {
        fault::reached(FaultPoint::WatcherSynced);
    }
    let mut announced = false;
    for event in &events {
        announced |= announces_change(&event.event)?;
    }
    state.pending.extend(events);
    let finalized = vault.ledger().finalized().await?;
    let mut next = TreeView::clone(&view.read().unwrap_or_else(|e| e.into_inner()));
    for deposit in &sync.deposits()[before..] {
        let commitment = nullgate_chain::vault::fr_from_u256(&deposit.commitment, "commitment")?;
        next.by_commitment.insert(commitment, deposit.note_id);
        next.leaves.push(LeafRecord {
            commitment,
            deposit: deposit.amount,
            expiry: deposit.expiry,
        });
    }
    next.roots.insert(step.root);
    // Roots of earlier blocks stay valid membership (PROTOCOL §6 step 3).
    next.finalized_block = finalized.number.max(step.finalized);
    next.finalized_hour = u32::try_from(finalized.timestamp / 3600).unwrap_or(u32::MAX);
    let due = next.next_change.is_some_and(|at| finalized.timestamp >= at);
    if next.params.is_none() || announced || due {
        let params = vault
            .live_parameters(BlockRef::Number(next.finalized_block))
            .await?;
        next.request_keys = Arc::new(
            params
                .keys
                .iter()
                .filter(|k| k.revoked_at.is_none())
                .map(|k| (k.number, k.key))
                .collect(),
        );
        next.next_change = params.next_change_after(finalized.timestamp);
        next.params = Some(Arc::new(params));
    }
    let stopped = match (&state.serving, &next.params) {
        (Some(serving), Some(params)) => serving.mismatch(params, finalized.timestamp),
        _ => None,
    };
    if stopped != next.stopped {
        match stopped {
            Some(why) => tracing::error!(reason = why, "service stopped by the vault's parameters"),
            None => tracing::info!("the vault's parameters match again: serving"),
        }
    }
    metrics.set_parameters_mismatch(stopped.is_some());
    next.stopped = stopped;
    next.healthy = true;
    // Exits first: the view is published (and service resumes) only once every exit read
    // so far is in the store, so no request at an exit's index slips through meanwhile.
    while let Some(event) = state.pending.front() {
        if let Some(exits) = &state.exits
            && record(exits, event, &next, metrics).await?
        {
            fault::reached(FaultPoint::WatcherRecorded);
        }
        state.pending.pop_front();
    }
    let newest = vault.ledger().latest().await?.number;
    metrics.set_watcher_lag(newest.saturating_sub(next.finalized_block));
    *view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    Ok(())
}

/// Records an exit's share (`true`; `false` for another event); an understated exit (its
/// `N_n` used by a request) is caught.
async fn record(
    exits: &ExitIngest,
    event: &LoggedEvent,
    tree: &TreeView,
    metrics: &Arc<Metrics>,
) -> Result<bool, StepError> {
    let (nullifier, y) = match &event.event {
        VaultEvent::ExitInitiated(exit) => (&exit.nullifier, &exit.share),
        VaultEvent::NoteClosed(closed) => (&closed.nullifier, &closed.share),
        _ => return Ok(false),
    };
    let nullifier = fr_from_u256(nullifier, "exit nullifier")?;
    let share = Share {
        x: derive::exit_x(&exits.slasher.dom),
        y: fr_from_u256(y, "exit share")?,
    };
    match exits.store.record_exit(&nullifier, &share).await? {
        None | Some(Known::Exit { .. } | Known::Blocked) => {}
        Some(Known::Reserved { share: used, .. } | Known::Final { share: used, .. }) => {
            metrics.count(Outcome::DoubleSpend);
            exits
                .slasher
                .caught(used, share, tree, &exits.store, metrics)
                .await?;
        }
    }
    metrics.exit_recorded();
    Ok(true)
}

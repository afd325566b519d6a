//! The chain watcher (PROTOCOL §6, opening): the note tree and its roots from finalised
//! `NoteDeposited` events, the hour of the newest finalised block, and the exits:
//! `ExitInitiated` and `NoteClosed` put their share `(N_n, x_e, y_e)` into the nullifier
//! store, and an exit whose `N_n` a request already used (an understated exit) recovers
//! `k` and slashes the note.
//!
//! An error while syncing or recording stops service (the gateway answers 503) and raises an
//! alarm (`nullgate_gateway_watcher_alarm 1` and a log line); the next tick retries from the
//! same block, and events read but not yet recorded stay queued, so no event is ever
//! skipped. Key and parameter changes are not followed yet. On a restart the watcher reads
//! the vault's events from its deployment block again (recording an exit twice is a no-op).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, RwLock},
    time::Duration,
};

use nullgate_chain::{LoggedEvent, TreeSync, Vault, VaultEvent, vault::fr_from_u256};
use nullgate_protocol::tree::LeafRecord;
use nullgate_zk::{Fr, derive};

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
}

impl Watcher {
    /// The shared view.
    /// (Readers clone the inner `Arc`: a request never copies the tree.)
    pub fn view(&self) -> Arc<RwLock<Arc<TreeView>>> {
        self.view.clone()
    }

    /// Syncs once (so the gateway starts with a tree), then keeps syncing every `poll`,
    /// recording exits through `exits` when given.
    pub async fn start(
        vault: Arc<Vault>,
        from_block: u64,
        poll: Duration,
        metrics: Arc<Metrics>,
        exits: Option<ExitIngest>,
    ) -> Result<Self, nullgate_chain::ChainError> {
        let mut state = State {
            sync: TreeSync::new(from_block),
            pending: VecDeque::new(),
            exits,
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

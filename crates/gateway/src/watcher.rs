//! The chain watcher (PROTOCOL §6, opening): the note tree and its roots from finalised
//! `NoteDeposited` events, and the hour of the newest finalised block.
//!
//! An error while syncing stops service (the gateway answers 503) and raises an alarm
//! (`nullgate_gateway_watcher_alarm 1` and a log line); the next tick retries from the same
//! block, so no event is ever skipped. Key changes, exits and clearances are followed by a
//! later version of this watcher (issue: the gateway at scale).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use nullgate_chain::{TreeSync, Vault};
use nullgate_protocol::tree::LeafRecord;
use nullgate_zk::Fr;

use crate::metrics::Metrics;

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

impl Watcher {
    /// The shared view.
    /// (Readers clone the inner `Arc`: a request never copies the tree.)
    pub fn view(&self) -> Arc<RwLock<Arc<TreeView>>> {
        self.view.clone()
    }

    /// Syncs once (so the gateway starts with a tree), then keeps syncing every `poll`.
    pub async fn start(
        vault: Arc<Vault>,
        from_block: u64,
        poll: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Self, nullgate_chain::ChainError> {
        let mut sync = TreeSync::new(from_block);
        let view = Arc::new(RwLock::new(Arc::new(TreeView::default())));
        step(&vault, &mut sync, &view).await?;
        let watcher = Self { view: view.clone() };
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(poll);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match step(&vault, &mut sync, &view).await {
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

async fn step(
    vault: &Vault,
    sync: &mut TreeSync,
    view: &RwLock<Arc<TreeView>>,
) -> Result<(), nullgate_chain::ChainError> {
    let before = sync.deposits().len();
    let step = sync.sync(vault).await?;
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
    *view.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    Ok(())
}

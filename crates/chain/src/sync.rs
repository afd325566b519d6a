//! The note tree, built from finalised `NoteDeposited` events only (PROTOCOL §3), one
//! finalised block at a time, and checked against the vault's digest at that block.

use alloy::primitives::B256;
use nullgate_zk::{Fr, note, tree::NoteTree};

use crate::ChainError;
use crate::digest;
use crate::events::{Deposit, LoggedEvent};
use crate::ledger::BlockRef;
use crate::vault::{Vault, fr_from_u256};

/// An incrementally synced note tree of one vault.
pub struct TreeSync {
    tree: NoteTree,
    deposits: Vec<Deposit>,
    digest: B256,
    /// The first block not yet read.
    next_block: u64,
}

/// What one [`TreeSync::sync`] step did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SyncStep {
    /// The finalised block synced to.
    pub finalized: u64,
    /// Notes added by this step.
    pub added: usize,
    /// The tree's root after it.
    pub root: Fr,
}

impl TreeSync {
    /// An empty tree that reads events from `from_block` on (the vault's deployment block).
    pub fn new(from_block: u64) -> Self {
        Self {
            tree: NoteTree::new(),
            deposits: Vec::new(),
            digest: B256::ZERO,
            next_block: from_block,
        }
    }

    /// The tree.
    pub fn tree(&self) -> &NoteTree {
        &self.tree
    }

    /// Every deposit synced so far, by `note_id`: the leaf list a gateway serves.
    pub fn deposits(&self) -> &[Deposit] {
        &self.deposits
    }

    /// Reads the deposits of blocks up to the newest finalised one, checks them against the
    /// vault's `(depositCount, depositsDigest)` at that block and only then adds them to the
    /// tree. On any error nothing changes.
    pub async fn sync(&mut self, vault: &Vault) -> Result<SyncStep, ChainError> {
        self.sync_with_events(vault).await.map(|(step, _)| step)
    }

    /// [`sync`](Self::sync), also returning the step's other vault events (exits, closes,
    /// slashes, key and parameter changes) in chain order, each exactly once: a step that
    /// fails returns none and changes nothing.
    pub async fn sync_with_events(
        &mut self,
        vault: &Vault,
    ) -> Result<(SyncStep, Vec<LoggedEvent>), ChainError> {
        let finalized = vault.ledger().finalized().await?.number;
        if finalized < self.next_block {
            let step = SyncStep {
                finalized,
                added: 0,
                root: self.tree.root(),
            };
            return Ok((step, Vec::new()));
        }
        let (new, others): (Vec<LoggedEvent>, Vec<LoggedEvent>) = vault
            .events(self.next_block, finalized)
            .await?
            .into_iter()
            .partition(|event| event.deposit().is_some());
        let new: Vec<Deposit> = new.iter().filter_map(LoggedEvent::deposit).collect();
        let mut digest = self.digest;
        for (offset, deposit) in new.iter().enumerate() {
            let expected = self.deposits.len() + offset;
            if deposit.note_id as usize != expected {
                return Err(ChainError::DigestMismatch(format!(
                    "event with note_id {} where {expected} was next",
                    deposit.note_id
                )));
            }
            digest = digest::extend(&digest, deposit);
        }
        let (count, onchain) = vault.deposit_state(BlockRef::Number(finalized)).await?;
        if count as usize != self.deposits.len() + new.len() || onchain != digest {
            return Err(ChainError::DigestMismatch(format!(
                "{} deposits read up to block {finalized}, the vault counts {count} \
                 (digest {})",
                self.deposits.len() + new.len(),
                if onchain == digest {
                    "equal"
                } else {
                    "differs"
                }
            )));
        }
        let leaves = new
            .iter()
            .map(|deposit| {
                let commitment = fr_from_u256(&deposit.commitment, "commitment")?;
                Ok(note::leaf(
                    deposit.note_id,
                    &commitment,
                    deposit.amount,
                    deposit.expiry,
                ))
            })
            .collect::<Result<Vec<Fr>, ChainError>>()?;
        let root = self.tree.extend(&leaves)?;
        self.deposits.extend_from_slice(&new);
        self.digest = digest;
        self.next_block = finalized + 1;
        let step = SyncStep {
            finalized,
            added: new.len(),
            root,
        };
        Ok((step, others))
    }
}

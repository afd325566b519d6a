//! The note tree, built from finalised `NoteDeposited` events only (PROTOCOL §3), one
//! finalised block at a time, and checked against the vault's digest at that block.

use alloy::primitives::B256;
use nullgate_zk::{Fr, note, tree::NoteTree};

use crate::ChainError;
use crate::digest;
use crate::events::Deposit;
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
        let finalized = vault.ledger().finalized().await?.number;
        if finalized < self.next_block {
            return Ok(SyncStep {
                finalized,
                added: 0,
                root: self.tree.root(),
            });
        }
        let new: Vec<Deposit> = vault
            .events(self.next_block, finalized)
            .await?
            .iter()
            .filter_map(|event| event.deposit())
            .collect();
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
        Ok(SyncStep {
            finalized,
            added: new.len(),
            root,
        })
    }
}

//! A double spend (PROTOCOL §6 step 2): two shares with different `x` at one nullifier
//! reveal the note's secret `k`. The gateway checks that `H(T_ID, k)` is a deposited note,
//! keeps the evidence, blocks the note's next indices, and submits one `slash(k)` after
//! checking the note's status on chain.

use std::sync::Arc;

use nullgate_chain::{Address, BlockRef, NoteStatus, Vault};
use nullgate_zk::{Fr, note, rln};

use crate::{
    metrics::Metrics,
    store::{NullifierStore, Share},
    watcher::TreeView,
};

/// How many indices past the first unseen one are blocked.
pub const BLOCK_AHEAD: u32 = 4;

/// Longest walk over a caught note's indices looking for the first unseen one.
pub const MAX_WALK: u32 = 1 << 16;

/// Everything the gateway needs to punish a double spend.
pub struct Slasher {
    /// The vault.
    pub vault: Arc<Vault>,
    /// The account that submits `slash` (none: evidence is kept, nothing submitted).
    pub from: Option<Address>,
    /// The vault's `dom`.
    pub dom: Fr,
}

/// What came of a double spend.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caught {
    /// The secret of a deposited note: evidence kept, indices blocked, slash submitted.
    Note {
        /// The note's commitment.
        commitment: Fr,
    },
    /// The shares recover a secret that is no deposited note's (a forged share): nothing.
    NotANote,
}

impl Slasher {
    /// Recovers `k` from two shares at one nullifier and acts on it. The slash itself runs
    /// in the background (a chain transaction); this returns once the evidence is kept.
    pub async fn caught(
        self: &Arc<Self>,
        first: Share,
        second: Share,
        tree: &TreeView,
        store: &Arc<dyn NullifierStore>,
        metrics: &Arc<Metrics>,
    ) -> Result<Caught, crate::store::StoreError> {
        let Ok((secret, _slope)) = rln::recover(
            &rln::Share {
                x: first.x,
                y: first.y,
            },
            &rln::Share {
                x: second.x,
                y: second.y,
            },
        ) else {
            return Ok(Caught::NotANote);
        };
        let commitment = note::commitment(&secret);
        if tree.note_of(&commitment).is_none() {
            return Ok(Caught::NotANote);
        }
        store.keep_evidence(&commitment, &secret).await?;
        // Block the first unseen index and the next few: the note gets nothing more.
        for index in 0..MAX_WALK {
            let nullifier = rln::nullifier(&rln::slope(&self.dom, &secret, index));
            if store.lookup(&nullifier).await?.is_none() {
                for ahead in index..index.saturating_add(BLOCK_AHEAD + 1) {
                    store
                        .block(&rln::nullifier(&rln::slope(&self.dom, &secret, ahead)))
                        .await?;
                }
                break;
            }
        }
        if let Some(from) = self.from {
            let slasher = self.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                match slasher.vault.note(&commitment, BlockRef::Latest).await {
                    Ok(record)
                        if matches!(record.status, NoteStatus::Active | NoteStatus::Exiting) =>
                    {
                        match slasher.vault.slash(from, &secret).await {
                            Ok(_) => metrics.slashed(),
                            Err(error) => {
                                tracing::error!(%error, "slash transaction failed; the evidence is kept")
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, "cannot read a caught note's status; the evidence is kept")
                    }
                }
            });
        }
        Ok(Caught::Note { commitment })
    }
}

//! A double spend (PROTOCOL §6 step 2): two shares with different `x` at one nullifier
//! reveal the note's secret `k`. The gateway checks that `H(T_ID, k)` is a deposited note,
//! keeps the evidence (before anything is submitted), blocks the note's next indices, and
//! submits `slash(k)` after checking the note's status on chain, retrying with backoff
//! until the note is out of reach. A restarted gateway re-checks every kept evidence
//! ([`Slasher::resume`]), so a crash between the two loses no slash.

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

/// Attempts at a slash before waiting for the next restart.
pub const SLASH_ATTEMPTS: u32 = 8;

/// The wait after the first failed attempt; it doubles after each.
pub const FIRST_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

/// The longest wait between attempts.
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// Most kept evidence re-checked after a restart.
pub const MAX_RESUMED: u32 = 10_000;

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
        if self.from.is_some() {
            tokio::spawn(self.clone().submit(commitment, secret, metrics.clone()));
        }
        Ok(Caught::Note { commitment })
    }

    /// Submits `slash(k)` for the note `commitment`, checking its status first, and retries
    /// with backoff ([`SLASH_ATTEMPTS`] times, [`FIRST_BACKOFF`] doubling up to
    /// [`MAX_BACKOFF`]) until the note is out of reach: slashed (here, by another replica,
    /// or before a restart), closed or expired. So replicas and restarts may all submit:
    /// the status check and the contract keep it to one slash per note.
    pub async fn submit(self: Arc<Self>, commitment: Fr, secret: Fr, metrics: Arc<Metrics>) {
        let Some(from) = self.from else { return };
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=SLASH_ATTEMPTS {
            match self.vault.note(&commitment, BlockRef::Latest).await {
                Ok(record) if matches!(record.status, NoteStatus::Active | NoteStatus::Exiting) => {
                    metrics.slash_submitted();
                    match self.vault.slash(from, &secret).await {
                        Ok(_) => {
                            metrics.slashed();
                            return;
                        }
                        Err(error) => tracing::warn!(
                            %error,
                            attempt,
                            "slash transaction failed; the evidence is kept, retrying"
                        ),
                    }
                }
                Ok(_) => return,
                Err(error) => tracing::warn!(
                    %error,
                    attempt,
                    "cannot read a caught note's status; the evidence is kept, retrying"
                ),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        tracing::error!(
            "slash not confirmed after {SLASH_ATTEMPTS} attempts; the evidence is kept and the next restart tries again"
        );
    }

    /// After a (re)start: every kept evidence whose note is still in reach is slashed
    /// (a crash between keeping the evidence and the slash confirming loses nothing).
    pub async fn resume(
        self: Arc<Self>,
        store: Arc<dyn NullifierStore>,
        metrics: Arc<Metrics>,
    ) -> Result<usize, crate::store::StoreError> {
        let evidence = store.evidence(MAX_RESUMED).await?;
        let count = evidence.len();
        for (commitment, secret) in evidence {
            // One at a time: a restart does not flood the chain.
            self.clone()
                .submit(commitment, secret, metrics.clone())
                .await;
        }
        Ok(count)
    }
}

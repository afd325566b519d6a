//! The verification queue of step 3: requests wait here for a verification slot, and all
//! that wait when one frees up are checked together in one batch of at most [`MAX_BATCH`].
//!
//! A batch closes when a slot is free or when it holds [`MAX_BATCH`] proofs, whichever
//! comes first. Nothing waits for company: a lone request on an idle gateway is checked at
//! once, alone, and batches grow only while every slot is busy — that is, with the load.
//! The queue holds at most [`MAX_WAITING`] requests beyond the batch being filled; past
//! that a request is refused at once (429).

use std::sync::{Arc, Weak};

use nullgate_protocol::rejection::Rejection;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::{
    service::Shared,
    verify::{MAX_BATCH, MAX_WAITING, Presented, Verified},
    watcher::TreeView,
};

/// A request's credential waiting for its verdict.
struct Job {
    presented: Presented,
    tree: Arc<TreeView>,
    verdict: oneshot::Sender<Result<Verified, Rejection>>,
}

/// The sending side of the queue; the task batching it ends when this is dropped.
pub(crate) struct VerifyQueue {
    jobs: mpsc::Sender<Job>,
}

impl VerifyQueue {
    /// The queue, and its task taking batches to `slots` (shared with mutual closes) on
    /// blocking threads for as long as `shared` lives.
    pub(crate) fn start(shared: Weak<Shared>, slots: Arc<Semaphore>) -> Self {
        let (jobs, waiting) = mpsc::channel(MAX_WAITING);
        tokio::spawn(batch_and_verify(shared, waiting, slots));
        Self { jobs }
    }

    /// Step 3 for `presented`: its verdict, or `Err(RateLimited)` when the queue is full
    /// (counted as shed) and `Err(Internal)` if the verification failed to run.
    pub(crate) async fn verify(
        &self,
        shared: &Shared,
        presented: Presented,
        tree: Arc<TreeView>,
    ) -> Result<Result<Verified, Rejection>, Rejection> {
        let (verdict, answer) = oneshot::channel();
        let job = Job {
            presented,
            tree,
            verdict,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                shared.metrics.verification_shed();
                return Err(Rejection::RateLimited);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Rejection::Internal),
        }
        answer.await.map_err(|_| {
            tracing::error!("verification task failed (charged 0)");
            Rejection::Internal
        })
    }
}

/// Takes the first waiting job, gathers what arrives until a slot is free (at most
/// [`MAX_BATCH`]), and verifies the batch on a blocking thread under that slot.
async fn batch_and_verify(
    shared: Weak<Shared>,
    mut waiting: mpsc::Receiver<Job>,
    slots: Arc<Semaphore>,
) {
    let mut open = true;
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        let slot = loop {
            tokio::select! {
                biased;
                slot = slots.clone().acquire_owned() => match slot {
                    Ok(slot) => break slot,
                    Err(_) => return,
                },
                job = waiting.recv(), if open && batch.len() < MAX_BATCH => match job {
                    Some(job) => batch.push(job),
                    // The gateway is going: this batch still gets its slot.
                    None => open = false,
                },
            }
        };
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tokio::task::spawn_blocking(move || verify_batch(&shared, batch, slot));
    }
}

/// Verifies `batch` under `_slot` and sends each job its verdict.
fn verify_batch(shared: &Shared, batch: Vec<Job>, _slot: OwnedSemaphorePermit) {
    let mut trees = Vec::with_capacity(batch.len());
    let mut presented = Vec::with_capacity(batch.len());
    let mut verdicts = Vec::with_capacity(batch.len());
    for job in batch {
        trees.push(job.tree);
        presented.push(job.presented);
        verdicts.push(job.verdict);
    }
    let results = shared.verifier.verify_many(
        &shared.deployment,
        &shared.prices,
        presented
            .into_iter()
            .zip(trees.iter().map(Arc::as_ref))
            .collect(),
    );
    for (verdict, result) in verdicts.into_iter().zip(results) {
        // The request may have gone (its client disconnected): nothing to tell.
        let _ = verdict.send(result);
    }
}

//! Steps 1 and 3 of PROTOCOL §6: parse with hard limits, then verify the request signature
//! and the proof against public inputs the gateway assembles from its own values.
//!
//! [`Verified`] can only be made by [`Verifier::verify`]: the nullifier store accepts nothing
//! else, so no code path can reserve an index for an unverified credential.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use nullgate_protocol::{
    credential::Credential,
    deployment::Deployment,
    payload,
    price::{PriceList, RequestPrice},
    rejection::Rejection,
};
use nullgate_zk::{
    Fr,
    circuit::{exit::ExitPublic, request::RequestPublic},
    derive,
    groth16::{Proof, VerifierKey},
    schnorr::PublicKey,
};

use crate::{metrics::Metrics, watcher::TreeView};

/// Step 1 done: a credential that parsed, with what the gateway computed from it and from
/// the request: `x` from `epk`, the payload digest and the request's price.
#[derive(Clone, Debug)]
pub struct Presented {
    /// The credential.
    pub credential: Credential,
    /// `x = H(T_REQ, epk_hi, epk_lo)`.
    pub share_x: Fr,
    /// The payload digest of this request.
    pub payload_digest: [u8; 32],
    /// What the request costs: known now (a fixed or JSON-RPC route, at most `C_c`), or
    /// the token prices its answer is charged at.
    pub price: RequestPrice,
}

impl Presented {
    /// Parses the `Authorization` value and computes `x` and the payload digest. Key number
    /// and class index are checked against the deployment here (hard limits of step 1).
    pub fn parse(
        authorization: Option<&[u8]>,
        method: &str,
        path_and_query: &str,
        headers: &http::HeaderMap,
        body: &[u8],
        prices: &PriceList,
    ) -> Result<Self, Rejection> {
        let value = authorization.ok_or(Rejection::MissingCredential)?;
        let credential = Credential::from_authorization(value).map_err(Rejection::Malformed)?;
        let Some(class_cost) = prices.class(credential.body.class_index) else {
            return Err(Rejection::UnknownClass(credential.body.class_index));
        };
        let path = path_and_query.split('?').next().unwrap_or_default();
        let route = prices
            .route(method, path)
            .ok_or_else(|| Rejection::UnknownRoute {
                method: method.to_owned(),
                path: path.to_owned(),
            })?;
        // A price the class cannot pay, or a body the route cannot price, is refused
        // before anything is reserved: the cap would undercharge it.
        let price = route
            .pricing
            .for_request(body)
            .map_err(Rejection::Unpriced)?;
        if let RequestPrice::Known(price) = price
            && price > class_cost
        {
            return Err(Rejection::ClassTooSmall { price, class_cost });
        }
        let signed = payload::signed_headers(
            prices.signed_headers(),
            headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())),
        );
        let payload_digest = payload::payload_digest(
            &credential.body.nullifier,
            method,
            path_and_query,
            &signed,
            body,
        );
        Ok(Self {
            share_x: derive::share_x(&credential.body.request_key),
            credential,
            payload_digest,
            price,
        })
    }

    /// The nullifier `N`.
    pub fn nullifier(&self) -> Fr {
        self.credential.body.nullifier
    }

    /// Whether the request key's signature over this payload verifies (`verify_strict`).
    pub fn signature_holds(&self) -> bool {
        self.credential
            .body
            .request_key
            .verify_strict(&self.payload_digest, &self.credential.signature)
            .is_ok()
    }
}

/// Step 3 done: the signature and the proof verified against the gateway's own public
/// inputs. Only [`Verifier::verify`] makes one.
#[derive(Clone, Debug)]
pub struct Verified {
    presented: Presented,
    class_cost: u64,
}

impl Verified {
    /// What was verified.
    pub fn presented(&self) -> &Presented {
        &self.presented
    }

    /// `C_c`, from the class index.
    pub fn class_cost(&self) -> u64 {
        self.class_cost
    }
}

/// Most proofs checked together in one batch.
pub const MAX_BATCH: usize = 64;

/// How long after a failing proof the verifier checks proofs one at a time, in
/// milliseconds: while failures go on, each invalid proof costs exactly one verification.
const ALONE_AFTER_FAILURE_MS: u64 = 1_000;

/// Verifies credentials under the vault's pinned request verifying key, and limits how many
/// invalid ones per second it looks at (globally: behind a relay one connection is many
/// users).
pub struct Verifier {
    key: VerifierKey,
    limit_per_second: u64,
    /// `second << 32 | failures in that second`.
    window: AtomicU64,
    /// When the last proof failed, in milliseconds since the Unix epoch.
    last_failure: AtomicU64,
    metrics: Arc<Metrics>,
}

/// A credential whose checks before the proof passed: what its proof is checked against.
struct Statement {
    presented: Presented,
    class_cost: u64,
    inputs: Vec<Fr>,
}

impl Verifier {
    /// A verifier for `key`, whose hash the caller has checked against the vault's,
    /// counting its proof verifications in `metrics`.
    pub fn new(key: VerifierKey, invalid_per_second: u32, metrics: Arc<Metrics>) -> Self {
        Self {
            key,
            limit_per_second: u64::from(invalid_per_second),
            window: AtomicU64::new(0),
            last_failure: AtomicU64::new(0),
            metrics,
        }
    }

    /// The verifying key's hash.
    pub fn key_hash(&self) -> [u8; 32] {
        self.key.key_hash()
    }

    fn now_second() -> u64 {
        (Self::now_ms() / 1_000) & 0xffff_ffff
    }

    fn over_limit(&self) -> bool {
        let window = self.window.load(Ordering::Relaxed);
        window >> 32 == Self::now_second() && (window & 0xffff_ffff) >= self.limit_per_second
    }

    fn count_failure(&self) {
        let second = Self::now_second();
        let _ = self
            .window
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |window| {
                Some(if window >> 32 == second {
                    window + 1
                } else {
                    second << 32 | 1
                })
            });
    }

    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    fn failed_recently(&self) -> bool {
        Self::now_ms().saturating_sub(self.last_failure.load(Ordering::Relaxed))
            < ALONE_AFTER_FAILURE_MS
    }

    /// Step 3 for one credential: see [`Verifier::verify_many`].
    pub fn verify(
        &self,
        deployment: &Deployment,
        prices: &PriceList,
        tree: &TreeView,
        presented: Presented,
    ) -> Result<Verified, Rejection> {
        self.verify_many(deployment, prices, vec![(presented, tree)])
            .pop()
            .unwrap_or(Err(Rejection::Internal))
    }

    /// Step 3 for concurrent credentials, a result for each in order: the state key by
    /// number (registered, not revoked, as of the credential's tree view), `C_c` by class
    /// index, the root one the gateway computed, the Ed25519 signature, then the proofs —
    /// together in one batch check. A failing batch is checked again proof by proof, and for a second after any
    /// failing proof every proof is checked alone, so that an invalid proof costs at most
    /// one verification beyond the batch it spoiled. CPU-bound (about a millisecond a
    /// proof alone, a third of that in a batch): call it off the async threads.
    pub fn verify_many(
        &self,
        deployment: &Deployment,
        prices: &PriceList,
        credentials: Vec<(Presented, &TreeView)>,
    ) -> Vec<Result<Verified, Rejection>> {
        let mut results: Vec<Option<Result<Verified, Rejection>>> = Vec::new();
        let mut statements = Vec::new();
        for (presented, tree) in credentials {
            let checked = if self.over_limit() {
                Err(Rejection::RateLimited)
            } else {
                self.statement(deployment, prices, tree, presented)
            };
            match checked {
                Ok(statement) => {
                    statements.push((results.len(), statement));
                    results.push(None);
                }
                Err(rejection) => {
                    if rejection != Rejection::RateLimited {
                        self.count_failure();
                    }
                    results.push(Some(Err(rejection)));
                }
            }
        }
        let together = statements.len() > 1 && !self.failed_recently() && {
            let batch: Vec<(&[Fr], &Proof)> = statements
                .iter()
                .map(|(_, s)| (s.inputs.as_slice(), &s.presented.credential.body.proof))
                .collect();
            self.metrics.batch_checked(batch.len());
            self.key.batch_holds(&batch, &mut rand::thread_rng())
        };
        for (at, statement) in statements {
            let holds = together || {
                self.metrics.batch_checked(1);
                self.key
                    .verify(
                        &statement.inputs,
                        &statement.presented.credential.body.proof,
                    )
                    .is_ok()
            };
            results[at] = Some(if holds {
                Ok(Verified {
                    presented: statement.presented,
                    class_cost: statement.class_cost,
                })
            } else {
                self.last_failure.store(Self::now_ms(), Ordering::Relaxed);
                self.count_failure();
                Err(Rejection::InvalidProof)
            });
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or(Err(Rejection::Internal)))
            .collect()
    }

    /// A mutual close's exit proof against public inputs the caller assembled from its own
    /// values, under `key` (the vault's pinned exit verifying key), with the same global
    /// limit on failures as requests. CPU-bound: call it off the async threads.
    pub fn verify_exit(
        &self,
        key: &VerifierKey,
        public: &ExitPublic,
        proof: &Proof,
    ) -> Result<(), Rejection> {
        if self.over_limit() {
            return Err(Rejection::RateLimited);
        }
        self.metrics.batch_checked(1);
        key.verify(&public.to_field_elements(), proof).map_err(|_| {
            self.count_failure();
            Rejection::InvalidProof
        })
    }

    /// Everything of step 3 but the proof: the public inputs, assembled from the gateway's
    /// own values.
    fn statement(
        &self,
        deployment: &Deployment,
        prices: &PriceList,
        tree: &TreeView,
        presented: Presented,
    ) -> Result<Statement, Rejection> {
        let body = &presented.credential.body;
        let key = key_numbered(tree.request_keys(), body.key_number)?;
        let class_cost = prices
            .class(body.class_index)
            .ok_or(Rejection::UnknownClass(body.class_index))?;
        if !tree.has_root(&body.root) {
            return Err(Rejection::UnknownRoot);
        }
        if !presented.signature_holds() {
            return Err(Rejection::BadRequestSignature);
        }
        let inputs = RequestPublic {
            dom: deployment.dom,
            root: body.root,
            public_key: key.0.affine(),
            class_cost,
            hour: body.hour,
            nullifier: body.nullifier,
            share_x: presented.share_x,
            share_y: body.share_y,
            published_state: body.published_state.affine(),
        }
        .to_field_elements();
        Ok(Statement {
            presented,
            class_cost,
            inputs,
        })
    }
}

/// The state key numbered `number` among the keys accepted for requests.
fn key_numbered(keys: &[(u32, PublicKey)], number: u32) -> Result<&PublicKey, Rejection> {
    keys.iter()
        .find(|(n, _)| *n == number)
        .map(|(_, key)| key)
        .ok_or(Rejection::UnknownKey(number))
}

/// Most requests waiting for a verification slot; past it a request is refused at once
/// (429) instead of queueing: nothing a peer sends can grow the queue without bound.
pub const MAX_WAITING: usize = 256;

/// Verification slots: at most one Groth16 check per core at a time (a batch of requests'
/// proofs, or a mutual close's exit proof), and at most [`MAX_WAITING`] closes waiting for
/// one (requests wait in the batching queue, bounded the same).
pub struct Slots {
    permits: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
}

impl Slots {
    /// `parallel` slots (at least one).
    pub fn new(parallel: usize) -> Self {
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(parallel.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// One slot per available core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// The slots themselves, for the batching queue (one waiter: it needs no bound).
    pub(crate) fn permits(&self) -> Arc<tokio::sync::Semaphore> {
        self.permits.clone()
    }

    /// A slot, waiting for one if the queue has room; `None` when it is full.
    pub async fn acquire(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Some(permit);
        }
        // Counted while waiting, also when the request is dropped mid-wait.
        let waiting = Waiting::enter(&self.waiting);
        if waiting.ahead >= MAX_WAITING {
            return None;
        }
        self.permits.acquire().await.ok()
    }
}

/// One request in the queue before the slots; leaves it when dropped.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        let ahead = count.fetch_add(1, Ordering::AcqRel);
        Self { count, ahead }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_bound_the_queue_and_a_dropped_waiter_leaves_it() {
        let slots = Slots::new(1);
        let held = slots.acquire().await.expect("a free slot");
        // Fill the queue with waiters, then one more is refused at once.
        let mut waiters: Vec<_> = (0..MAX_WAITING)
            .map(|_| Box::pin(slots.acquire()))
            .collect();
        for waiter in &mut waiters {
            assert!(futures_poll_once(waiter.as_mut()).await.is_none());
        }
        assert!(slots.acquire().await.is_none(), "the full queue refuses");
        // Dropped waiters (clients gone) leave the queue: there is room again.
        waiters.clear();
        assert_eq!(slots.waiting.load(Ordering::Acquire), 0);
        drop(held);
        assert!(slots.acquire().await.is_some());
    }

    /// Polls once: `Some` if it finished.
    async fn futures_poll_once<F: std::future::Future>(
        future: std::pin::Pin<&mut F>,
    ) -> Option<F::Output> {
        let mut future = Some(future);
        std::future::poll_fn(|cx| {
            let polled = future.take().expect("polled once").poll(cx);
            std::task::Poll::Ready(match polled {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}

//! The nullifier store (PROTOCOL §6 steps 2, 4, 6): one row per nullifier `N`, first a
//! reservation under a lease, then the final record `N → (x, y, receipt)`; and, for the
//! retry window only, the payload digest, `A_pub` and the response, in hourly partitions
//! dropped whole.
//!
//! Two stores implement the trait, with the same tables and behaviour (one behavioural suite,
//! `tests/store_behaviour.rs`, runs against both): [`sqlite::SqliteStore`], embedded in one
//! gateway, and [`postgres::PostgresStore`], shared by several gateway replicas. Only a
//! [`Verified`] credential can be reserved.

pub mod postgres;
pub mod sqlite;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use nullgate_protocol::receipt::Receipt;
use nullgate_zk::{Fr, curve::Point};

use crate::{charge::Receipted, verify::Verified};

/// A share `(x, y)` on a note's line at one index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Share {
    /// `x`.
    pub x: Fr,
    /// `y`.
    pub y: Fr,
}

/// A response kept for retries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredResponse {
    /// Status.
    pub status: u16,
    /// `content-type`, if any.
    pub content_type: Option<String>,
    /// The body exactly as sent (for a stream: every event relayed, receipt event included).
    pub body: Vec<u8>,
}

/// What the store knows of a nullifier.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per request, never stored in bulk
pub enum Known {
    /// Reserved and not yet finished.
    Reserved {
        /// The share it was reserved with.
        share: Share,
        /// Its payload digest, while kept.
        payload_digest: Option<[u8; 32]>,
        /// Whether the lease ran out (another gateway may finish it).
        lease_expired: bool,
    },
    /// Finished: the receipt, and while kept the payload digest and the response.
    Final {
        /// The share.
        share: Share,
        /// Its payload digest, while kept.
        payload_digest: Option<[u8; 32]>,
        /// The receipt.
        receipt: Receipt,
        /// The response, while kept.
        response: Option<StoredResponse>,
    },
    /// An exit's share `(N_n, x_e, y_e)` (a mutual close, or an exit seen on chain): no
    /// request is served at it, and one that comes is a double spend.
    Exit {
        /// `(x_e, y_e)`.
        share: Share,
    },
    /// Blocked after a double spend of its note: nothing is served at it.
    Blocked,
}

impl Known {
    /// A row with neither lease nor receipt: an exit's share, or (`x = 0`, which no real
    /// share has) a blocked index.
    pub(crate) fn settled_without_receipt(share: Share) -> Self {
        if share.x == Fr::from(0u64) {
            Self::Blocked
        } else {
            Self::Exit { share }
        }
    }
}

/// Step 4 done: `N` reserved for this verified credential, under a lease.
#[derive(Clone, Debug)]
pub struct Reserved {
    pub(crate) nullifier: Fr,
    pub(crate) share: Share,
    pub(crate) published_state: Point,
    pub(crate) class_cost: u64,
    pub(crate) partition: u32,
}

impl Reserved {
    /// What reserving `verified` in this hour's partition holds (both stores build it so).
    pub(crate) fn for_verified(verified: &Verified) -> Self {
        let presented = verified.presented();
        let body = &presented.credential.body;
        Self {
            nullifier: body.nullifier,
            share: Share {
                x: presented.share_x,
                y: body.share_y,
            },
            published_state: body.published_state,
            class_cost: verified.class_cost(),
            partition: current_hour(),
        }
    }

    /// `N`.
    pub fn nullifier(&self) -> Fr {
        self.nullifier
    }

    /// `C_c`.
    pub fn class_cost(&self) -> u64 {
        self.class_cost
    }

    /// `A_pub`.
    pub fn published_state(&self) -> &Point {
        &self.published_state
    }
}

/// A store failure: the gateway answers 500 and charges nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("nullifier store: {0}")]
    Database(String),
    /// A row did not decode (corruption, or another version's schema).
    #[error("nullifier store: corrupt row ({0})")]
    Corrupt(&'static str),
}

/// The outcome of [`NullifierStore::reserve`].
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per request
pub enum Reservation {
    /// Reserved: this request owns `N` now.
    Reserved(Reserved),
    /// Someone reserved `N` first (a concurrent copy): look it up again.
    Taken,
}

/// A receipt look-up (`GET /nullgate/receipt/{N}`, §6.7).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per look-up
pub enum ReceiptLookup {
    /// Nothing is known of `N`.
    Unknown,
    /// Reserved, not finished.
    Reserved,
    /// The receipt.
    Receipt(Receipt),
}

/// The nullifier store: a unique key on `N`, strongly consistent.
#[async_trait]
pub trait NullifierStore: Send + Sync {
    /// What is known of `N`.
    async fn lookup(&self, nullifier: &Fr) -> Result<Option<Known>, StoreError>;

    /// Reserves `N` for `verified` under `lease`, atomically with its retry-window record.
    async fn reserve(
        &self,
        verified: &Verified,
        lease: Duration,
    ) -> Result<Reservation, StoreError>;

    /// Takes over a reservation whose lease ran out (a retry of a request whose gateway
    /// died), renewing the lease; `None` if it is not expired or not reserved.
    async fn take_over(
        &self,
        nullifier: &Fr,
        lease: Duration,
    ) -> Result<Option<Reserved>, StoreError>;

    /// Persists the receipt and the response: the reservation becomes the final record.
    async fn finish(
        &self,
        receipted: &Receipted,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;

    /// Blocks `N` (an index of a note caught double spending); a no-op if `N` is known.
    async fn block(&self, nullifier: &Fr) -> Result<(), StoreError>;

    /// Records an exit's share at `N_n` through the same unique key as requests. `None`:
    /// recorded now; otherwise what was there first (the same exit again, or a request at
    /// that index: an understated exit).
    async fn record_exit(&self, nullifier: &Fr, share: &Share)
    -> Result<Option<Known>, StoreError>;

    /// Keeps the evidence of a double spend: the recovered secret of the note `commitment`.
    async fn keep_evidence(&self, commitment: &Fr, secret: &Fr) -> Result<(), StoreError>;

    /// Every kept `(commitment, secret)`, at most `limit` of them: what a restarted gateway
    /// re-checks, slashing the notes still in reach.
    async fn evidence(&self, limit: u32) -> Result<Vec<(Fr, Fr)>, StoreError>;

    /// The receipt look-up of §6.7.
    async fn receipt(&self, nullifier: &Fr) -> Result<ReceiptLookup, StoreError> {
        Ok(match self.lookup(nullifier).await? {
            None | Some(Known::Blocked | Known::Exit { .. }) => ReceiptLookup::Unknown,
            Some(Known::Reserved { .. }) => ReceiptLookup::Reserved,
            Some(Known::Final { receipt, .. }) => ReceiptLookup::Receipt(receipt),
        })
    }
}

/// Unix seconds by this gateway's clock.
pub(crate) fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The hour (Unix seconds / 3600) whose partition a reservation made now goes in.
pub(crate) fn current_hour() -> u32 {
    u32::try_from(now_seconds() / 3600).unwrap_or(u32::MAX)
}

/// The retry-window table of `hour`.
pub(crate) fn partition_name(hour: u32) -> String {
    format!("retained_{hour}")
}

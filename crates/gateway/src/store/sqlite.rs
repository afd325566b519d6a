//! The nullifier store in one SQLite file (`rusqlite`, bundled): WAL, `synchronous=FULL`
//! (a reservation is on disk before the upstream is called), `secure_delete` (a superseded
//! cell, such as a reservation's lease time, is zeroed rather than left in free space), every table `WITHOUT ROWID`
//! and keyed by `N`, so rows carry no sequence number, row id or timestamp.
//!
//! Tables (schema version 1):
//!
//! - `nullifiers (n, x, y, lease_until, receipt)`: a reservation has `receipt` NULL and its
//!   lease's end (Unix seconds, the only time value, gone once final); a final record has
//!   the receipt and no lease. A blocked index has `x = y = 0`, no lease and no receipt.
//! - `retained_<hour>`: for the retry window only, `(n, payload_digest, a_pub, class_cost,
//!   status, content_type, body)`; one table per hour of reservation, dropped whole when
//!   the window has passed, so the store never holds when a request came beyond its hour.
//! - `evidence (commitment, secret)`: the recovered secret of a note caught double spending.
//!
//! Durability: every write but one commits with `synchronous=FULL`, on disk before the
//! store returns. Concurrent reservations share one commit (group commit): whichever gets
//! the connection first writes every reservation waiting then, in one transaction and one
//! fsync, and each caller is answered once it is on disk. The final record (receipt and retry body) commits with `synchronous=NORMAL`,
//! so answering does not wait for a second fsync: in WAL mode it survives a crash of the
//! process at once, and reaches the disk with the next fsynced commit or the flusher's
//! `sync_data` of the WAL at most [`FLUSH_INTERVAL`] later. A power loss inside that window
//! leaves the reservation (durable, so `N` is still spent); a retry of that request then
//! takes over the expired lease and is answered afresh.

use std::{
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use nullgate_protocol::receipt::Receipt;
use nullgate_zk::{
    Fr,
    curve::Point,
    field::{fr_from_bytes, fr_to_bytes},
};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    Known, NullifierStore, Reservation, Reserved, Share, StoreError, StoredResponse, current_hour,
    now_seconds, partition_name,
};
use crate::{charge::Receipted, verify::Verified};

const SCHEMA_VERSION: i64 = 1;

/// How long a final record may stay in the OS's cache before the flusher syncs the WAL.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// The SQLite nullifier store.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Mutex<Inner>>,
    /// Reservations waiting for the next group commit (one per request in step 4, so
    /// bounded by the requests in flight).
    waiting: Arc<Mutex<Vec<WaitingReservation>>>,
    /// Set by a final record not yet fsynced; the flusher clears it.
    unsynced: Arc<AtomicBool>,
    retention_hours: u32,
}

struct Inner {
    connection: Connection,
    /// Existing partitions, newest first.
    partitions: Vec<u32>,
}

/// A reservation to write, and where its outcome goes once committed.
struct WaitingReservation {
    reserved: Reserved,
    digest: [u8; 32],
    until: i64,
    outcome: tokio::sync::oneshot::Sender<Result<Reservation, StoreError>>,
}

fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Database(error.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, keeping retry data `retention_hours`.
    pub fn open(path: &Path, retention_hours: u32) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(db)?;
        let store = Self::with_connection(connection, retention_hours)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        spawn_flusher(
            std::path::PathBuf::from(wal),
            Arc::downgrade(&store.inner),
            store.unsynced.clone(),
        )?;
        Ok(store)
    }

    fn with_connection(connection: Connection, retention_hours: u32) -> Result<Self, StoreError> {
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA secure_delete = ON;
                 CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS nullifiers (
                     n BLOB PRIMARY KEY NOT NULL,
                     x BLOB NOT NULL,
                     y BLOB NOT NULL,
                     lease_until INTEGER,
                     receipt BLOB
                 ) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS evidence (
                     commitment BLOB PRIMARY KEY NOT NULL,
                     secret BLOB NOT NULL
                 ) WITHOUT ROWID;",
            )
            .map_err(db)?;
        let version: Option<i64> = connection
            .query_row("SELECT max(version) FROM schema_version", [], |row| {
                row.get(0)
            })
            .map_err(db)?;
        match version {
            None => {
                connection
                    .execute(
                        "INSERT INTO schema_version (version) VALUES (?1)",
                        [SCHEMA_VERSION],
                    )
                    .map_err(db)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(other) => {
                return Err(StoreError::Database(format!(
                    "schema version {other}; this gateway knows version {SCHEMA_VERSION}"
                )));
            }
        }
        let mut partitions: Vec<u32> = {
            let mut statement = connection
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'retained_%'")
                .map_err(db)?;
            let names = statement
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(db)?;
            names
                .filter_map(|name| name.ok()?.strip_prefix("retained_")?.parse().ok())
                .collect()
        };
        partitions.sort_unstable_by(|a, b| b.cmp(a));
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                connection,
                partitions,
            })),
            waiting: Arc::default(),
            unsynced: Arc::default(),
            retention_hours,
        })
    }

    /// Runs `f` on the connection off the async threads.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Database(format!("store task: {e}")))?
    }

    /// Drops the partitions older than the retry window (also done on every new hour).
    pub async fn prune(&self) -> Result<(), StoreError> {
        let retention = self.retention_hours;
        self.with(move |inner| inner.prune(current_hour(), retention))
            .await
    }

    /// Every table name and its columns, for inspection (tests, operators).
    pub async fn schema(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        self.with(|inner| {
            let mut tables = Vec::new();
            let mut statement = inner
                .connection
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                .map_err(db)?;
            let names: Vec<String> = statement
                .query_map([], |row| row.get(0))
                .map_err(db)?
                .filter_map(Result::ok)
                .collect();
            for name in names {
                let mut info = inner
                    .connection
                    .prepare(&format!("PRAGMA table_info(\"{name}\")"))
                    .map_err(db)?;
                let columns = info
                    .query_map([], |row| row.get::<_, String>(1))
                    .map_err(db)?
                    .filter_map(Result::ok)
                    .collect();
                tables.push((name, columns));
            }
            Ok(tables)
        })
        .await
    }

    /// How many final records and reservations the store holds.
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.with(|inner| {
            inner
                .connection
                .query_row(
                    "SELECT count(receipt), count(*) - count(receipt) FROM nullifiers",
                    [],
                    |row| Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64)),
                )
                .map_err(db)
        })
        .await
    }
}

/// Syncs the WAL file every [`FLUSH_INTERVAL`] while a final record may be only in the
/// OS's cache; stops when the store is dropped.
fn spawn_flusher(
    wal: std::path::PathBuf,
    store: std::sync::Weak<Mutex<Inner>>,
    unsynced: Arc<AtomicBool>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("sqlite-flusher".into())
        .spawn(move || {
            while store.strong_count() > 0 {
                std::thread::sleep(FLUSH_INTERVAL);
                if !unsynced.swap(false, Ordering::AcqRel) {
                    continue;
                }
                let synced = std::fs::File::open(&wal).and_then(|file| file.sync_data());
                if let Err(error) = synced {
                    // Without a WAL file the records were checkpointed, and that synced them.
                    if error.kind() != std::io::ErrorKind::NotFound {
                        tracing::error!(%error, "syncing the nullifier store's WAL failed");
                        unsynced.store(true, Ordering::Release);
                    }
                }
            }
        })
        .map(drop)
        .map_err(|e| StoreError::Database(format!("starting the WAL flusher: {e}")))
}

impl Inner {
    fn ensure_partition(&mut self, hour: u32, retention: u32) -> Result<(), StoreError> {
        if self.partitions.first() == Some(&hour) || self.partitions.contains(&hour) {
            return Ok(());
        }
        self.connection
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} (
                     n BLOB PRIMARY KEY NOT NULL,
                     payload_digest BLOB NOT NULL,
                     a_pub BLOB NOT NULL,
                     class_cost INTEGER NOT NULL,
                     status INTEGER,
                     content_type TEXT,
                     body BLOB
                 ) WITHOUT ROWID;",
                partition_name(hour)
            ))
            .map_err(db)?;
        self.partitions.push(hour);
        self.partitions.sort_unstable_by(|a, b| b.cmp(a));
        self.prune(hour, retention)
    }

    /// The reservations of `batch` in one transaction: whether each was fresh.
    fn write_reservations(
        &mut self,
        batch: &[WaitingReservation],
        retention: u32,
    ) -> Result<Vec<bool>, StoreError> {
        for waiting in batch {
            self.ensure_partition(waiting.reserved.partition, retention)?;
        }
        let transaction = self.connection.transaction().map_err(db)?;
        let mut inserted = Vec::with_capacity(batch.len());
        for waiting in batch {
            let reserved = &waiting.reserved;
            let n = fr_to_bytes(&reserved.nullifier);
            let fresh = transaction
                .execute(
                    "INSERT INTO nullifiers (n, x, y, lease_until, receipt) VALUES (?1, ?2, ?3, ?4, NULL)
                     ON CONFLICT (n) DO NOTHING",
                    params![
                        n.as_slice(),
                        fr_to_bytes(&reserved.share.x).as_slice(),
                        fr_to_bytes(&reserved.share.y).as_slice(),
                        waiting.until
                    ],
                )
                .map_err(db)?
                > 0;
            if fresh {
                transaction
                    .execute(
                        &format!(
                            "INSERT OR REPLACE INTO {} (n, payload_digest, a_pub, class_cost) VALUES (?1, ?2, ?3, ?4)",
                            partition_name(reserved.partition)
                        ),
                        params![
                            n.as_slice(),
                            waiting.digest.as_slice(),
                            reserved.published_state.to_bytes().as_slice(),
                            reserved.class_cost as i64
                        ],
                    )
                    .map_err(db)?;
            }
            inserted.push(fresh);
        }
        transaction.commit().map_err(db)?;
        Ok(inserted)
    }

    /// Writes `batch` in one transaction (one fsync) and answers each: `Taken` where `N` is
    /// already there (also by an earlier one of the batch). A failure fails them all.
    fn reserve_all(&mut self, batch: Vec<WaitingReservation>, retention: u32) {
        let written = self.write_reservations(&batch, retention);
        match written {
            Ok(inserted) => {
                for (waiting, fresh) in batch.into_iter().zip(inserted) {
                    let outcome = if fresh {
                        Reservation::Reserved(waiting.reserved)
                    } else {
                        Reservation::Taken
                    };
                    let _ = waiting.outcome.send(Ok(outcome));
                }
            }
            Err(error) => {
                let message = error.to_string();
                for waiting in batch {
                    let _ = waiting
                        .outcome
                        .send(Err(StoreError::Database(message.clone())));
                }
            }
        }
    }

    fn prune(&mut self, hour: u32, retention: u32) -> Result<(), StoreError> {
        let keep_from = hour.saturating_sub(retention);
        let old: Vec<u32> = self
            .partitions
            .iter()
            .copied()
            .filter(|&p| p < keep_from)
            .collect();
        for partition in &old {
            self.connection
                .execute_batch(&format!(
                    "DROP TABLE IF EXISTS {}",
                    partition_name(*partition)
                ))
                .map_err(db)?;
        }
        self.partitions.retain(|p| *p >= keep_from);
        Ok(())
    }

    /// The retry-window record of `n`, from the newest partition holding it.
    fn retained(&self, n: &[u8]) -> Result<Option<(u32, Retained)>, StoreError> {
        for &partition in &self.partitions {
            let row = self
                .connection
                .query_row(
                    &format!(
                        "SELECT payload_digest, a_pub, class_cost, status, content_type, body FROM {} WHERE n = ?1",
                        partition_name(partition)
                    ),
                    [n],
                    |row| {
                        Ok(Retained {
                            payload_digest: row.get(0)?,
                            a_pub: row.get(1)?,
                            class_cost: row.get::<_, i64>(2)? as u64,
                            status: row.get(3)?,
                            content_type: row.get(4)?,
                            body: row.get(5)?,
                        })
                    },
                )
                .optional()
                .map_err(db)?;
            if let Some(row) = row {
                return Ok(Some((partition, row)));
            }
        }
        Ok(None)
    }
}

struct Retained {
    payload_digest: Vec<u8>,
    a_pub: Vec<u8>,
    class_cost: u64,
    status: Option<u16>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

/// The final record's one transaction: the receipt on `N`'s row, the response beside its
/// retry data.
fn finish_record(
    inner: &mut Inner,
    reserved: &Reserved,
    receipt: &[u8],
    response: &StoredResponse,
) -> Result<(), StoreError> {
    let n = fr_to_bytes(&reserved.nullifier);
    let transaction = inner.connection.transaction().map_err(db)?;
    let updated = transaction
        .execute(
            "UPDATE nullifiers SET lease_until = NULL, receipt = ?2 WHERE n = ?1 AND receipt IS NULL",
            params![n.as_slice(), receipt],
        )
        .map_err(db)?;
    if updated != 1 {
        return Err(StoreError::Database(
            "finishing a request that is not reserved".into(),
        ));
    }
    if inner.partitions.contains(&reserved.partition) {
        transaction
            .execute(
                &format!(
                    "UPDATE {} SET status = ?2, content_type = ?3, body = ?4 WHERE n = ?1",
                    partition_name(reserved.partition)
                ),
                params![
                    n.as_slice(),
                    response.status,
                    response.content_type,
                    response.body
                ],
            )
            .map_err(db)?;
    }
    transaction.commit().map_err(db)
}

fn digest_of(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

fn fr_of(bytes: &[u8], what: &'static str) -> Result<Fr, StoreError> {
    fr_from_bytes(bytes, what).map_err(|_| StoreError::Corrupt(what))
}

#[async_trait]
impl NullifierStore for SqliteStore {
    async fn lookup(&self, nullifier: &Fr) -> Result<Option<Known>, StoreError> {
        let n = fr_to_bytes(nullifier);
        self.with(move |inner| {
            let row = inner
                .connection
                .query_row(
                    "SELECT x, y, lease_until, receipt FROM nullifiers WHERE n = ?1",
                    [n.as_slice()],
                    |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, Vec<u8>>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                            row.get::<_, Option<Vec<u8>>>(3)?,
                        ))
                    },
                )
                .optional()
                .map_err(db)?;
            let Some((x, y, lease_until, receipt)) = row else {
                return Ok(None);
            };
            let share = Share {
                x: fr_of(&x, "x")?,
                y: fr_of(&y, "y")?,
            };
            let retained = inner.retained(&n)?.map(|(_, r)| r);
            let payload_digest = retained.as_ref().and_then(|r| digest_of(&r.payload_digest));
            Ok(Some(match (lease_until, receipt) {
                (_, Some(receipt)) => Known::Final {
                    share,
                    payload_digest,
                    receipt: Receipt::from_bytes(&receipt)
                        .map_err(|_| StoreError::Corrupt("receipt"))?,
                    response: retained.and_then(|r| {
                        Some(StoredResponse {
                            status: r.status?,
                            content_type: r.content_type,
                            body: r.body?,
                        })
                    }),
                },
                (Some(until), None) => Known::Reserved {
                    share,
                    payload_digest,
                    lease_expired: (until as u64) <= now_seconds(),
                },
                (None, None) => Known::settled_without_receipt(share),
            }))
        })
        .await
    }

    async fn reserve(
        &self,
        verified: &Verified,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let (outcome, answer) = tokio::sync::oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(WaitingReservation {
                reserved: Reserved::for_verified(verified),
                digest: verified.presented().payload_digest,
                until: now_seconds().saturating_add(lease.as_secs()) as i64,
                outcome,
            });
        let retention = self.retention_hours;
        let waiting = self.waiting.clone();
        // Whoever holds the connection first writes every reservation waiting then; this
        // one may already have been written by the time the connection is ours.
        self.with(move |inner| {
            let batch = std::mem::take(&mut *waiting.lock().unwrap_or_else(|e| e.into_inner()));
            if !batch.is_empty() {
                inner.reserve_all(batch, retention);
            }
            Ok(())
        })
        .await?;
        answer
            .await
            .map_err(|_| StoreError::Database("a reservation was not answered".into()))?
    }

    async fn take_over(
        &self,
        nullifier: &Fr,
        lease: Duration,
    ) -> Result<Option<Reserved>, StoreError> {
        let n = fr_to_bytes(nullifier);
        let now = now_seconds() as i64;
        let until = now_seconds().saturating_add(lease.as_secs()) as i64;
        self.with(move |inner| {
            let updated = inner
                .connection
                .execute(
                    "UPDATE nullifiers SET lease_until = ?2 WHERE n = ?1 AND receipt IS NULL AND lease_until IS NOT NULL AND lease_until <= ?3",
                    params![n.as_slice(), until, now],
                )
                .map_err(db)?;
            if updated == 0 {
                return Ok(None);
            }
            let (x, y): (Vec<u8>, Vec<u8>) = inner
                .connection
                .query_row("SELECT x, y FROM nullifiers WHERE n = ?1", [n.as_slice()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(db)?;
            let Some((partition, retained)) = inner.retained(&n)? else {
                // The retry data is gone: the request cannot be finished as it was sent.
                return Ok(None);
            };
            Ok(Some(Reserved {
                nullifier: fr_of(&n, "n")?,
                share: Share {
                    x: fr_of(&x, "x")?,
                    y: fr_of(&y, "y")?,
                },
                published_state: Point::from_bytes(&retained.a_pub, "a_pub")
                    .map_err(|_| StoreError::Corrupt("a_pub"))?,
                class_cost: retained.class_cost,
                partition,
            }))
        })
        .await
    }

    async fn finish(
        &self,
        receipted: &Receipted,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let reserved = receipted.reserved().clone();
        let receipt = receipted.receipt().to_bytes();
        let response = response.clone();
        let unsynced = self.unsynced.clone();
        self.with(move |inner| {
            inner
                .connection
                .execute_batch("PRAGMA synchronous = NORMAL")
                .map_err(db)?;
            let finished = finish_record(inner, &reserved, &receipt, &response);
            let restored = inner.connection.execute_batch("PRAGMA synchronous = FULL");
            unsynced.store(true, Ordering::Release);
            finished?;
            restored.map_err(db)
        })
        .await
    }

    async fn block(&self, nullifier: &Fr) -> Result<(), StoreError> {
        let n = fr_to_bytes(nullifier);
        self.with(move |inner| {
            inner
                .connection
                .execute(
                    "INSERT INTO nullifiers (n, x, y, lease_until, receipt) VALUES (?1, ?2, ?2, NULL, NULL)
                     ON CONFLICT (n) DO NOTHING",
                    params![n.as_slice(), [0u8; 32].as_slice()],
                )
                .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn record_exit(
        &self,
        nullifier: &Fr,
        share: &Share,
    ) -> Result<Option<Known>, StoreError> {
        let (n, x, y) = (
            fr_to_bytes(nullifier),
            fr_to_bytes(&share.x),
            fr_to_bytes(&share.y),
        );
        let inserted = self
            .with(move |inner| {
                inner
                    .connection
                    .execute(
                        "INSERT INTO nullifiers (n, x, y, lease_until, receipt) VALUES (?1, ?2, ?3, NULL, NULL)
                         ON CONFLICT (n) DO NOTHING",
                        params![n.as_slice(), x.as_slice(), y.as_slice()],
                    )
                    .map_err(db)
            })
            .await?;
        if inserted == 1 {
            return Ok(None);
        }
        self.lookup(nullifier).await
    }

    async fn keep_evidence(&self, commitment: &Fr, secret: &Fr) -> Result<(), StoreError> {
        let (c, k) = (fr_to_bytes(commitment), fr_to_bytes(secret));
        self.with(move |inner| {
            inner
                .connection
                .execute(
                    "INSERT INTO evidence (commitment, secret) VALUES (?1, ?2) ON CONFLICT (commitment) DO NOTHING",
                    params![c.as_slice(), k.as_slice()],
                )
                .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn evidence(&self, limit: u32) -> Result<Vec<(Fr, Fr)>, StoreError> {
        self.with(move |inner| {
            let mut statement = inner
                .connection
                .prepare("SELECT commitment, secret FROM evidence LIMIT ?1")
                .map_err(db)?;
            let rows = statement
                .query_map([limit], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?))
                })
                .map_err(db)?;
            rows.map(|row| {
                let (c, k) = row.map_err(db)?;
                Ok((fr_of(&c, "commitment")?, fr_of(&k, "secret")?))
            })
            .collect()
        })
        .await
    }
}

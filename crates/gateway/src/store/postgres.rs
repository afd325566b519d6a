//! The nullifier store in PostgreSQL (`tokio-postgres` through a `deadpool-postgres` pool),
//! shared by every gateway replica (PROTOCOL §6 step 4: "with several gateway replicas the
//! store is shared and strongly consistent"). Same tables and behaviour as
//! [`SqliteStore`](super::sqlite::SqliteStore):
//!
//! - `nullifiers (n, x, y, lease_until, receipt)`, primary key `n` and nothing else: a
//!   reservation has `receipt` NULL and its lease's end (Unix seconds by the database's
//!   clock, the only time value, cleared once final); a final record has the receipt and no
//!   lease; a blocked index has `x = y = 0`, no lease and no receipt.
//! - `retained_<hour>`: for the retry window only, `(n, payload_digest, a_pub, class_cost,
//!   status, content_type, body)`; one table per hour of reservation, dropped whole when the
//!   window has passed.
//! - `evidence (commitment, secret)`: the recovered secret of a note caught double spending.
//! - `schema_version (version)`: versioned migrations; a database at a newer version than
//!   this gateway knows is refused.
//!
//! Tables live in the connection's `current_schema()` (the first schema of `search_path`).
//!
//! Races between replicas: every transaction runs at READ COMMITTED, where the unique key
//! decides. Two `INSERT … ON CONFLICT DO NOTHING` of one `N` serialise on the key: one
//! inserts, the other waits for it to commit and inserts nothing (`Taken`). A take-over is
//! one `UPDATE … WHERE lease_until <= now`: a second one waits for the first, re-reads the
//! renewed lease and matches nothing. Partition DDL and migrations run under a transaction
//! advisory lock, so replicas creating or dropping the same table do not collide. Each
//! replica caches the partition list and re-reads it from the catalogue when a table it
//! named is gone or a row's retry data is not in the tables it knows.
//!
//! Durability: reservations, blocks and evidence commit with the server's
//! `synchronous_commit` (refused at connect if `off`), so a reservation is on disk before
//! the upstream is called. The final record commits with `synchronous_commit = off`, as
//! the SQLite store's final record commits with `synchronous=NORMAL`: the server's WAL
//! writer flushes it within three `wal_writer_delay` (200 ms by default). A server crash
//! inside that window leaves the reservation (`N` still spent) and a retry takes over the
//! expired lease and is answered afresh (§6.6).
//!
//! Row order: PostgreSQL stores rows in heap order and stamps each row version with the
//! transaction that wrote it (`xmin`), which together tell the order requests were
//! reserved and finished in. [`PostgresStore::rewrite_in_n_order`] rewrites the table in
//! `N` order under one transaction; an operator runs it periodically (§6.6).
//!
//! Connections are made without TLS: run the database on the gateway's private network or
//! a Unix socket (`host=/var/run/postgresql`).

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use nullgate_protocol::receipt::Receipt;
use nullgate_zk::{
    Fr,
    curve::Point,
    field::{fr_from_bytes, fr_to_bytes},
};
use tokio_postgres::{NoTls, Row, error::SqlState};

use super::{
    Known, NullifierStore, Reservation, Reserved, Share, StoreError, StoredResponse, current_hour,
    partition_name,
};
use crate::{charge::Receipted, verify::Verified};

/// Schema migrations, in order: entry `i` brings the store to version `i + 1`. Version 1 has
/// the SQLite store's version-1 tables; the hourly `retained_<hour>` tables are made as
/// their hours come.
const MIGRATIONS: &[&str] = &["CREATE TABLE nullifiers (
         n BYTEA PRIMARY KEY,
         x BYTEA NOT NULL,
         y BYTEA NOT NULL,
         lease_until BIGINT,
         receipt BYTEA
     );
     CREATE TABLE evidence (
         commitment BYTEA PRIMARY KEY,
         secret BYTEA NOT NULL
     );"];

/// The newest schema version this gateway knows.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Connections per store (per replica).
const POOL_SIZE: usize = 16;

/// How long to wait for a new connection, and for a free one from the pool, before the
/// request fails (500, nothing charged) rather than hangs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const POOL_WAIT: Duration = Duration::from_secs(30);

/// The database's clock in whole Unix seconds: every replica compares leases to one clock.
const NOW: &str = "floor(extract(epoch FROM now()))::bigint";

/// A transaction-scoped advisory lock for DDL, one per schema (the first key spells "nulg").
const DDL_LOCK: &str =
    "SELECT pg_advisory_xact_lock(1853189223, hashtext(coalesce(current_schema(), '')))";

/// The PostgreSQL nullifier store: one per gateway replica, all on one database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// Partitions this replica knows of, newest first (re-read from the catalogue on a miss).
    partitions: Arc<Mutex<Vec<u32>>>,
    retention_hours: u32,
}

impl fmt::Debug for PostgresStore {
    // The pool's configuration holds the password: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("retention_hours", &self.retention_hours)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgresql://user:password@host:port/database`,
    /// or `key=value` pairs), brings its schema to this gateway's version, and keeps retry
    /// data `retention_hours`. Refuses a database whose schema is newer than this gateway
    /// knows, and a server whose `synchronous_commit` is `off` (a reservation must be on
    /// disk before the upstream is called).
    pub async fn connect(url: &str, retention_hours: u32) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Database(format!("PostgreSQL connection string: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Database(format!("PostgreSQL pool: {e}")))?;
        let store = Self {
            pool,
            partitions: Arc::default(),
            retention_hours,
        };
        let mut client = store.client().await?;
        migrate(&mut client).await?;
        let synchronous: String = client
            .query_one("SELECT current_setting('synchronous_commit')", &[])
            .await
            .map_err(db)?
            .try_get(0)
            .map_err(|_| StoreError::Corrupt("synchronous_commit"))?;
        if synchronous == "off" {
            return Err(StoreError::Database(
                "the PostgreSQL server runs with synchronous_commit = off: a reservation could be lost after the upstream was called; set it to on".into(),
            ));
        }
        store.refresh_partitions(&client).await?;
        Ok(store)
    }

    /// Drops the partitions older than the retry window (also done on every new hour).
    pub async fn prune(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        self.prune_before(&mut client, current_hour()).await
    }

    /// Rewrites `nullifiers` in `N` order, so that neither where a row sits nor which
    /// transaction wrote it tells when its request came (PROTOCOL §6.6: "in PostgreSQL rows
    /// are periodically rewritten in `N` order"). An operator runs it periodically (daily,
    /// say) from one replica.
    ///
    /// In one transaction: copies the live rows in `N` order into a fresh table (so every
    /// row carries this transaction's id, and superseded row versions such as a lease's
    /// earlier end stay behind), swaps it in under the old name, and `CLUSTER`s it on its
    /// primary key. It holds an exclusive lock on `nullifiers` meanwhile: requests wait
    /// for it, so run it at a quiet hour. The old table's file is unlinked, not wiped.
    pub async fn rewrite_in_n_order(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(db)?;
        transaction.execute(DDL_LOCK, &[]).await.map_err(db)?;
        transaction
            .batch_execute(
                "LOCK TABLE nullifiers IN ACCESS EXCLUSIVE MODE;
                 DROP TABLE IF EXISTS nullifiers_rewrite;
                 CREATE TABLE nullifiers_rewrite (LIKE nullifiers INCLUDING ALL);
                 INSERT INTO nullifiers_rewrite SELECT * FROM nullifiers ORDER BY n;
                 DROP TABLE nullifiers;
                 ALTER TABLE nullifiers_rewrite RENAME TO nullifiers;
                 ALTER INDEX nullifiers_rewrite_pkey RENAME TO nullifiers_pkey;
                 CLUSTER nullifiers USING nullifiers_pkey;",
            )
            .await
            .map_err(db)?;
        transaction.commit().await.map_err(db)
    }

    /// Every table name and its columns (in order), for inspection (tests, operators).
    pub async fn schema(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT c.relname::text, array_agg(a.attname::text ORDER BY a.attnum)
                 FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
                 WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'p')
                   AND a.attnum > 0 AND NOT a.attisdropped
                 GROUP BY c.relname ORDER BY c.relname",
                &[],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get(0).map_err(|_| StoreError::Corrupt("table"))?,
                    row.try_get(1).map_err(|_| StoreError::Corrupt("columns"))?,
                ))
            })
            .collect()
    }

    /// How many final records and reservations the store holds.
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(receipt), count(*) - count(receipt) FROM nullifiers",
                &[],
            )
            .await
            .map_err(db)?;
        let count = |i: usize| -> Result<u64, StoreError> {
            let value: i64 = row.try_get(i).map_err(|_| StoreError::Corrupt("count"))?;
            u64::try_from(value).map_err(|_| StoreError::Corrupt("count"))
        };
        Ok((count(0)?, count(1)?))
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Database(format!("PostgreSQL pool: {e}")))
    }

    fn known_partitions(&self) -> Vec<u32> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads the partition list from the catalogue; whether it changed.
    async fn refresh_partitions(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<bool, StoreError> {
        let rows = client
            .query(
                "SELECT c.relname::text FROM pg_catalog.pg_class c
                 JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
                 WHERE s.nspname = current_schema() AND c.relkind = 'r'
                   AND c.relname LIKE 'retained\\_%'",
                &[],
            )
            .await
            .map_err(db)?;
        let mut found: Vec<u32> = rows
            .iter()
            .filter_map(|row| {
                let name: String = row.try_get(0).ok()?;
                name.strip_prefix("retained_")?.parse().ok()
            })
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        let mut partitions = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *partitions != found;
        *partitions = found;
        Ok(changed)
    }

    /// Makes `retained_<hour>` if this replica does not know it, then prunes.
    async fn ensure_partition(
        &self,
        client: &mut deadpool_postgres::Client,
        hour: u32,
    ) -> Result<(), StoreError> {
        if self.known_partitions().contains(&hour) {
            return Ok(());
        }
        let transaction = client.transaction().await.map_err(db)?;
        transaction.execute(DDL_LOCK, &[]).await.map_err(db)?;
        transaction
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} (
                     n BYTEA PRIMARY KEY,
                     payload_digest BYTEA NOT NULL,
                     a_pub BYTEA NOT NULL,
                     class_cost BIGINT NOT NULL,
                     status INTEGER,
                     content_type TEXT,
                     body BYTEA
                 )",
                partition_name(hour)
            ))
            .await
            .map_err(db)?;
        transaction.commit().await.map_err(db)?;
        self.prune_before(client, hour).await
    }

    /// Drops every partition older than `hour − retention`, whichever replica made it.
    async fn prune_before(
        &self,
        client: &mut deadpool_postgres::Client,
        hour: u32,
    ) -> Result<(), StoreError> {
        let keep_from = hour.saturating_sub(self.retention_hours);
        self.refresh_partitions(client).await?;
        let old: Vec<u32> = self
            .known_partitions()
            .into_iter()
            .filter(|&p| p < keep_from)
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        let transaction = client.transaction().await.map_err(db)?;
        transaction.execute(DDL_LOCK, &[]).await.map_err(db)?;
        for partition in &old {
            transaction
                .batch_execute(&format!(
                    "DROP TABLE IF EXISTS {}",
                    partition_name(*partition)
                ))
                .await
                .map_err(db)?;
        }
        transaction.commit().await.map_err(db)?;
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p| *p >= keep_from);
        Ok(())
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], or refuses a newer one.
async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    let transaction = client.transaction().await.map_err(db)?;
    transaction.execute(DDL_LOCK, &[]).await.map_err(db)?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        .await
        .map_err(db)?;
    let version: Option<i32> = transaction
        .query_one("SELECT max(version) FROM schema_version", &[])
        .await
        .map_err(db)?
        .try_get(0)
        .map_err(|_| StoreError::Corrupt("schema_version"))?;
    let version = version.unwrap_or(0);
    if version < 0 {
        return Err(StoreError::Corrupt("schema_version"));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Database(format!(
            "schema version {version}; this gateway knows versions up to {SCHEMA_VERSION}: run a gateway that knows it"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(migration).await.map_err(db)?;
        transaction
            .execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&(index as i32 + 1)],
            )
            .await
            .map_err(db)?;
    }
    transaction.commit().await.map_err(db)
}

/// A database error as the gateway may log it: the server's message and code, never its
/// `DETAIL`, which can quote a row's values (a nullifier).
fn db(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(e) => StoreError::Database(format!("{} (SQLSTATE {})", e.message(), e.code().code())),
        None => StoreError::Database(error.to_string()),
    }
}

/// A table this replica named was dropped (a partition pruned by another replica).
fn is_undefined_table(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNDEFINED_TABLE)
}

/// A lease in seconds for SQL (capped far beyond any sensible lease, so `now + lease` fits).
fn lease_seconds(lease: Duration) -> i64 {
    lease.as_secs().min(u64::from(u32::MAX)) as i64
}

/// The retry-window record of `$1` from the newest of `partitions` holding it, as columns
/// `part, payload_digest, a_pub, class_cost, status, content_type, body` (with no
/// partitions, no row; `$1` still named, so the statement takes the same parameter).
fn retained_query(partitions: &[u32]) -> String {
    if partitions.is_empty() {
        return "SELECT NULL::integer AS part, NULL::bytea AS payload_digest, NULL::bytea AS a_pub,
                NULL::bigint AS class_cost, NULL::integer AS status, NULL::text AS content_type,
                NULL::bytea AS body WHERE $1::bytea IS NULL AND false"
            .into();
    }
    let union = partitions
        .iter()
        .map(|p| {
            format!(
                "SELECT {p}::integer AS part, payload_digest, a_pub, class_cost, status, content_type, body FROM {} WHERE n = $1",
                partition_name(*p)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!("SELECT * FROM ({union}) AS u ORDER BY part DESC LIMIT 1")
}

struct Retained {
    partition: u32,
    payload_digest: [u8; 32],
    a_pub: Vec<u8>,
    class_cost: u64,
    status: Option<u16>,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
}

/// Decodes a [`retained_query`] record starting at column `at`; `None` if there is none.
fn retained_at(row: &Row, at: usize) -> Result<Option<Retained>, StoreError> {
    let Some(partition) = row
        .try_get::<_, Option<i32>>(at)
        .map_err(|_| StoreError::Corrupt("partition"))?
    else {
        return Ok(None);
    };
    let payload_digest: Vec<u8> = row
        .try_get(at + 1)
        .map_err(|_| StoreError::Corrupt("payload_digest"))?;
    let class_cost: i64 = row
        .try_get(at + 3)
        .map_err(|_| StoreError::Corrupt("class_cost"))?;
    let status: Option<i32> = row
        .try_get(at + 4)
        .map_err(|_| StoreError::Corrupt("status"))?;
    Ok(Some(Retained {
        partition: u32::try_from(partition).map_err(|_| StoreError::Corrupt("partition"))?,
        payload_digest: payload_digest
            .try_into()
            .map_err(|_| StoreError::Corrupt("payload_digest"))?,
        a_pub: row
            .try_get(at + 2)
            .map_err(|_| StoreError::Corrupt("a_pub"))?,
        class_cost: u64::try_from(class_cost).map_err(|_| StoreError::Corrupt("class_cost"))?,
        status: status
            .map(u16::try_from)
            .transpose()
            .map_err(|_| StoreError::Corrupt("status"))?,
        content_type: row
            .try_get(at + 5)
            .map_err(|_| StoreError::Corrupt("content_type"))?,
        body: row
            .try_get(at + 6)
            .map_err(|_| StoreError::Corrupt("body"))?,
    }))
}

fn fr_at(row: &Row, index: usize, what: &'static str) -> Result<Fr, StoreError> {
    let bytes: Vec<u8> = row.try_get(index).map_err(|_| StoreError::Corrupt(what))?;
    fr_from_bytes(&bytes, what).map_err(|_| StoreError::Corrupt(what))
}

/// What `lookup` reads of a nullifier row and its retry data, in one statement (one
/// snapshot).
fn decode_known(row: &Row) -> Result<(Known, bool), StoreError> {
    let share = Share {
        x: fr_at(row, 0, "x")?,
        y: fr_at(row, 1, "y")?,
    };
    let lease_until: Option<i64> = row
        .try_get(2)
        .map_err(|_| StoreError::Corrupt("lease_until"))?;
    let receipt: Option<Vec<u8>> = row.try_get(3).map_err(|_| StoreError::Corrupt("receipt"))?;
    let expired: Option<bool> = row
        .try_get(4)
        .map_err(|_| StoreError::Corrupt("lease_until"))?;
    let retained = retained_at(row, 5)?;
    let has_retained = retained.is_some();
    let payload_digest = retained.as_ref().map(|r| r.payload_digest);
    let known = match (lease_until, receipt) {
        (_, Some(receipt)) => Known::Final {
            share,
            payload_digest,
            receipt: Receipt::from_bytes(&receipt).map_err(|_| StoreError::Corrupt("receipt"))?,
            response: retained.and_then(|r| {
                Some(StoredResponse {
                    status: r.status?,
                    content_type: r.content_type,
                    body: r.body?,
                })
            }),
        },
        (Some(_), None) => Known::Reserved {
            share,
            payload_digest,
            lease_expired: expired.ok_or(StoreError::Corrupt("lease_until"))?,
        },
        (None, None) => Known::settled_without_receipt(share),
    };
    Ok((known, has_retained))
}

#[async_trait]
impl NullifierStore for PostgresStore {
    async fn lookup(&self, nullifier: &Fr) -> Result<Option<Known>, StoreError> {
        let n = fr_to_bytes(nullifier);
        let client = self.client().await?;
        let mut refreshed = false;
        loop {
            let sql = format!(
                "SELECT k.x, k.y, k.lease_until, k.receipt, k.lease_until <= {NOW},
                        r.part, r.payload_digest, r.a_pub, r.class_cost, r.status, r.content_type, r.body
                 FROM nullifiers AS k LEFT JOIN ({}) AS r ON true
                 WHERE k.n = $1",
                retained_query(&self.known_partitions())
            );
            let row = match client.query_opt(&sql, &[&n.as_slice()]).await {
                Ok(row) => row,
                Err(error) if is_undefined_table(&error) && !refreshed => {
                    self.refresh_partitions(&client).await?;
                    refreshed = true;
                    continue;
                }
                Err(error) => return Err(db(error)),
            };
            let Some(row) = row else {
                return Ok(None);
            };
            let (known, has_retained) = decode_known(&row)?;
            // Retry data missing from the partitions this replica knows may sit in one
            // another replica made since.
            let may_have_retained = !matches!(known, Known::Blocked | Known::Exit { .. });
            if !has_retained
                && may_have_retained
                && !refreshed
                && self.refresh_partitions(&client).await?
            {
                refreshed = true;
                continue;
            }
            return Ok(Some(known));
        }
    }

    async fn reserve(
        &self,
        verified: &Verified,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let presented = verified.presented();
        let reserved = Reserved::for_verified(verified);
        let n = fr_to_bytes(&reserved.nullifier);
        let x = fr_to_bytes(&reserved.share.x);
        let y = fr_to_bytes(&reserved.share.y);
        let a_pub = reserved.published_state.to_bytes();
        let class_cost = i64::try_from(reserved.class_cost)
            .map_err(|_| StoreError::Database("class cost out of range".into()))?;
        let lease = lease_seconds(lease);
        let mut client = self.client().await?;
        let mut retried = false;
        loop {
            self.ensure_partition(&mut client, reserved.partition)
                .await?;
            let transaction = client.transaction().await.map_err(db)?;
            let inserted = transaction
                .execute(
                    &format!(
                        "INSERT INTO nullifiers (n, x, y, lease_until, receipt)
                         VALUES ($1, $2, $3, {NOW} + $4, NULL)
                         ON CONFLICT (n) DO NOTHING"
                    ),
                    &[&n.as_slice(), &x.as_slice(), &y.as_slice(), &lease],
                )
                .await
                .map_err(db)?;
            if inserted == 0 {
                return Ok(Reservation::Taken);
            }
            let retained = transaction
                .execute(
                    &format!(
                        "INSERT INTO {} (n, payload_digest, a_pub, class_cost) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (n) DO UPDATE SET payload_digest = EXCLUDED.payload_digest,
                             a_pub = EXCLUDED.a_pub, class_cost = EXCLUDED.class_cost,
                             status = NULL, content_type = NULL, body = NULL",
                        partition_name(reserved.partition)
                    ),
                    &[
                        &n.as_slice(),
                        &presented.payload_digest.as_slice(),
                        &a_pub.as_slice(),
                        &class_cost,
                    ],
                )
                .await;
            match retained {
                Ok(_) => {}
                // This hour's partition was dropped under us (a replica whose clock is far
                // ahead pruned it): make it again, once.
                Err(error) if is_undefined_table(&error) && !retried => {
                    drop(transaction);
                    self.refresh_partitions(&client).await?;
                    retried = true;
                    continue;
                }
                Err(error) => return Err(db(error)),
            }
            transaction.commit().await.map_err(db)?;
            return Ok(Reservation::Reserved(reserved));
        }
    }

    async fn take_over(
        &self,
        nullifier: &Fr,
        lease: Duration,
    ) -> Result<Option<Reserved>, StoreError> {
        let n = fr_to_bytes(nullifier);
        let lease = lease_seconds(lease);
        let mut client = self.client().await?;
        let mut refreshed = false;
        loop {
            let partitions = self.known_partitions();
            let transaction = client.transaction().await.map_err(db)?;
            let Some(row) = transaction
                .query_opt(
                    &format!(
                        "UPDATE nullifiers SET lease_until = {NOW} + $2
                         WHERE n = $1 AND receipt IS NULL AND lease_until IS NOT NULL
                           AND lease_until <= {NOW}
                         RETURNING x, y"
                    ),
                    &[&n.as_slice(), &lease],
                )
                .await
                .map_err(db)?
            else {
                return Ok(None);
            };
            let retained = match transaction
                .query_opt(&retained_query(&partitions), &[&n.as_slice()])
                .await
            {
                Ok(Some(record)) => retained_at(&record, 0)?,
                Ok(None) => None,
                Err(error) if is_undefined_table(&error) && !refreshed => {
                    drop(transaction);
                    self.refresh_partitions(&client).await?;
                    refreshed = true;
                    continue;
                }
                Err(error) => return Err(db(error)),
            };
            let Some(retained) = retained else {
                drop(transaction);
                if !refreshed && self.refresh_partitions(&client).await? {
                    refreshed = true;
                    continue;
                }
                // The retry data is gone: the request cannot be finished as it was sent,
                // so the lease is left as it was (the transaction rolls back).
                return Ok(None);
            };
            let reserved = Reserved {
                nullifier: *nullifier,
                share: Share {
                    x: fr_at(&row, 0, "x")?,
                    y: fr_at(&row, 1, "y")?,
                },
                published_state: Point::from_bytes(&retained.a_pub, "a_pub")
                    .map_err(|_| StoreError::Corrupt("a_pub"))?,
                class_cost: retained.class_cost,
                partition: retained.partition,
            };
            transaction.commit().await.map_err(db)?;
            return Ok(Some(reserved));
        }
    }

    async fn finish(
        &self,
        receipted: &Receipted,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let reserved = receipted.reserved();
        let n = fr_to_bytes(&reserved.nullifier);
        let receipt = receipted.receipt().to_bytes();
        let status = i32::from(response.status);
        let mut client = self.client().await?;
        if !self.known_partitions().contains(&reserved.partition) {
            self.refresh_partitions(&client).await?;
        }
        let mut refreshed = false;
        loop {
            let transaction = client.transaction().await.map_err(db)?;
            // The final record may reach the disk a moment after the answer (module docs).
            transaction
                .batch_execute("SET LOCAL synchronous_commit = off")
                .await
                .map_err(db)?;
            let updated = transaction
                .execute(
                    "UPDATE nullifiers SET lease_until = NULL, receipt = $2 WHERE n = $1 AND receipt IS NULL",
                    &[&n.as_slice(), &receipt],
                )
                .await
                .map_err(db)?;
            if updated != 1 {
                return Err(StoreError::Database(
                    "finishing a request that is not reserved".into(),
                ));
            }
            if self.known_partitions().contains(&reserved.partition) {
                let kept = transaction
                    .execute(
                        &format!(
                            "UPDATE {} SET status = $2, content_type = $3, body = $4 WHERE n = $1",
                            partition_name(reserved.partition)
                        ),
                        &[
                            &n.as_slice(),
                            &status,
                            &response.content_type,
                            &response.body,
                        ],
                    )
                    .await;
                match kept {
                    Ok(_) => {}
                    // Pruned meanwhile: the receipt is kept, the body no longer.
                    Err(error) if is_undefined_table(&error) && !refreshed => {
                        drop(transaction);
                        self.refresh_partitions(&client).await?;
                        refreshed = true;
                        continue;
                    }
                    Err(error) => return Err(db(error)),
                }
            }
            return transaction.commit().await.map_err(db);
        }
    }

    async fn block(&self, nullifier: &Fr) -> Result<(), StoreError> {
        let n = fr_to_bytes(nullifier);
        let zero = [0u8; 32];
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO nullifiers (n, x, y, lease_until, receipt) VALUES ($1, $2, $2, NULL, NULL)
                 ON CONFLICT (n) DO NOTHING",
                &[&n.as_slice(), &zero.as_slice()],
            )
            .await
            .map_err(db)?;
        Ok(())
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
            .client()
            .await?
            .execute(
                "INSERT INTO nullifiers (n, x, y, lease_until, receipt) VALUES ($1, $2, $3, NULL, NULL)
                 ON CONFLICT (n) DO NOTHING",
                &[&n.as_slice(), &x.as_slice(), &y.as_slice()],
            )
            .await
            .map_err(db)?;
        if inserted == 1 {
            return Ok(None);
        }
        self.lookup(nullifier).await
    }

    async fn keep_evidence(&self, commitment: &Fr, secret: &Fr) -> Result<(), StoreError> {
        let (c, k) = (fr_to_bytes(commitment), fr_to_bytes(secret));
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO evidence (commitment, secret) VALUES ($1, $2) ON CONFLICT (commitment) DO NOTHING",
                &[&c.as_slice(), &k.as_slice()],
            )
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn evidence(&self, limit: u32) -> Result<Vec<(Fr, Fr)>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT commitment, secret FROM evidence LIMIT $1",
                &[&i64::from(limit)],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|row| Ok((fr_at(row, 0, "commitment")?, fr_at(row, 1, "secret")?)))
            .collect()
    }
}

/// `url` (URL or key-value form) with `schema` as its sessions' `search_path`: a store on
/// that connection string keeps its tables in `schema`.
pub fn with_search_path(url: &str, schema: &str) -> String {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-csearch_path%3D{schema}")
    } else {
        format!("{url} options='-csearch_path={schema}'")
    }
}

//! One behavioural suite for the nullifier store (PROTOCOL §6 steps 2, 4, 6), run against both
//! stores: SQLite (a file in a temporary directory) and PostgreSQL (a fresh schema per test on
//! the server at `NULLGATE_POSTGRES_URL`; marked ignored where that is not set at build time,
//! and `.ci/run` sets it). The credentials are real: proven with nullgate-zk and passed
//! through the gateway's verifier, the only maker of a `Verified`.

mod common;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::{VERIFIED_COUNT, VerifiedCredentials, postgres::Schema, verified_credentials};
use nullgate_gateway::{
    charge::{Receipted, StateSigner},
    dev::dev_state_key,
    store::{
        Known, NullifierStore, ReceiptLookup, Reservation, Reserved, Share, StoreError,
        StoredResponse, postgres::PostgresStore, sqlite::SqliteStore,
    },
    verify::Verified,
};
use nullgate_zk::{Fr, field::fr_to_bytes};

/// A lease that runs for the whole test.
const LEASE: Duration = Duration::from_secs(600);
/// A lease that has run out as soon as it is taken.
const EXPIRED: Duration = Duration::ZERO;
const RETENTION_HOURS: u32 = 24;

/// A column as the database declares it: table, name, type, default.
type Column = (String, String, String, Option<String>);

/// What a scenario needs of a backend beyond the trait.
trait Backend: Sized {
    /// The column types a store of this backend may declare.
    const COLUMN_TYPES: &'static [&'static str];

    /// An empty store of its own.
    async fn fresh() -> Self;
    /// The store.
    fn store(&self) -> Arc<dyn NullifierStore>;
    /// Another handle on the same data: a second replica where the backend has them.
    async fn replica(&self) -> Arc<dyn NullifierStore>;
    /// Opens the store again (after raw changes to its tables).
    async fn reopen(&mut self) -> Result<(), StoreError>;
    async fn prune(&self) -> Result<(), StoreError>;
    async fn schema(&self) -> Vec<(String, Vec<String>)>;
    async fn counts(&self) -> (u64, u64);
    /// Raw SQL on the store's tables, behind the store's back.
    async fn execute(&self, sql: &str);
    /// A raw `SELECT count(*) …`.
    async fn count(&self, sql: &str) -> i64;
    async fn columns(&self) -> Vec<Column>;
    async fn evidence(&self) -> Vec<(Vec<u8>, Vec<u8>)>;
}

// ---------------------------------------------------------------------------------------
// Scenarios.

/// Reserving `N` makes it known as reserved, with its share and payload digest, and no
/// other `N`.
async fn reserve_then_lookup_is_reserved<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let v = credential(0);
    assert!(store.lookup(&nullifier(v)).await.unwrap().is_none());
    assert_eq!(
        store.receipt(&nullifier(v)).await.unwrap(),
        ReceiptLookup::Unknown
    );

    let reserved = reserve(&*store, v, LEASE).await;
    assert_eq!(reserved.nullifier(), nullifier(v));
    assert_eq!(reserved.class_cost(), v.class_cost());
    assert_eq!(
        reserved.published_state(),
        &v.presented().credential.body.published_state
    );
    match store.lookup(&nullifier(v)).await.unwrap() {
        Some(Known::Reserved {
            share,
            payload_digest,
            lease_expired,
        }) => {
            assert_eq!(share.x, v.presented().share_x);
            assert_eq!(share.y, v.presented().credential.body.share_y);
            assert_eq!(payload_digest, Some(v.presented().payload_digest));
            assert!(!lease_expired, "a 600 s lease has not run out");
        }
        other => panic!("expected a reservation, got {other:?}"),
    }
    assert_eq!(
        store.receipt(&nullifier(v)).await.unwrap(),
        ReceiptLookup::Reserved
    );
    assert!(
        store
            .lookup(&nullifier(credential(1)))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(b.counts().await, (0, 1));
}

/// A second reservation of one `N`, on this store or another replica, is `Taken`.
async fn second_reserve_of_one_n_is_taken<B: Backend>() {
    let b = B::fresh().await;
    let (store, replica) = (b.store(), b.replica().await);
    let v = credential(0);
    reserve(&*store, v, LEASE).await;
    assert!(matches!(
        store.reserve(v, LEASE).await.unwrap(),
        Reservation::Taken
    ));
    assert!(matches!(
        replica.reserve(v, LEASE).await.unwrap(),
        Reservation::Taken
    ));
    assert_eq!(b.counts().await, (0, 1));
}

/// Finishing makes the final record: the receipt, the stored response and the payload
/// digest, read back the same by a retry's look-up on any replica; the lease is cleared and
/// `N` stays spent.
async fn finish_makes_the_final_record_a_retry_reads<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    // Made before any partition exists, so it must find the one made after.
    let replica = b.replica().await;
    let v = credential(0);
    let receipted = receipt(reserve(&*store, v, LEASE).await, 123);
    let sent = response("the answer");
    store.finish(&receipted, &sent).await.unwrap();

    for (name, handle) in [("store", &store), ("replica", &replica)] {
        match handle.lookup(&nullifier(v)).await.unwrap() {
            Some(Known::Final {
                share,
                payload_digest,
                receipt,
                response,
            }) => {
                assert_eq!(share.x, v.presented().share_x, "{name}");
                assert_eq!(share.y, v.presented().credential.body.share_y, "{name}");
                assert_eq!(payload_digest, Some(v.presented().payload_digest), "{name}");
                assert_eq!(&receipt, receipted.receipt(), "{name}");
                assert_eq!(receipt.charge, 123, "{name}");
                assert_eq!(response.as_ref(), Some(&sent), "{name}");
            }
            other => panic!("{name}: expected the final record, got {other:?}"),
        }
        assert_eq!(
            handle.receipt(&nullifier(v)).await.unwrap(),
            ReceiptLookup::Receipt(*receipted.receipt()),
            "{name}"
        );
    }
    assert_eq!(b.counts().await, (1, 0));
    assert_eq!(
        b.count("SELECT count(*) FROM nullifiers WHERE lease_until IS NOT NULL")
            .await,
        0,
        "a final record keeps no lease"
    );
    assert!(matches!(
        store.reserve(v, LEASE).await.unwrap(),
        Reservation::Taken
    ));
}

/// Finishing an `N` the store has not reserved is refused and stores nothing; so is a second
/// finish, which leaves the first receipt in place.
async fn finish_of_an_unreserved_n_is_refused<B: Backend>() {
    let reserving = B::fresh().await;
    let other = B::fresh().await;
    let v = credential(0);
    let reserved = reserve(&*reserving.store(), v, LEASE).await;
    let first = receipt(reserved.clone(), 100);

    let refused = other.store().finish(&first, &response("a")).await;
    assert!(
        matches!(refused, Err(StoreError::Database(_))),
        "{refused:?}"
    );
    assert!(other.store().lookup(&nullifier(v)).await.unwrap().is_none());
    assert_eq!(other.counts().await, (0, 0));

    let store = reserving.store();
    store.finish(&first, &response("a")).await.unwrap();
    let second = receipt(reserved, 200);
    let refused = store.finish(&second, &response("b")).await;
    assert!(
        matches!(refused, Err(StoreError::Database(_))),
        "{refused:?}"
    );
    match store.lookup(&nullifier(v)).await.unwrap() {
        Some(Known::Final {
            receipt, response, ..
        }) => {
            assert_eq!(&receipt, first.receipt());
            assert_eq!(response, Some(self::response("a")));
        }
        other => panic!("expected the first final record, got {other:?}"),
    }
}

/// `take_over` is refused while the lease runs, granted (to another replica) once it ran
/// out, renewing it, and refused once the record is final.
async fn take_over_after_the_lease_and_not_once_final<B: Backend>() {
    let b = B::fresh().await;
    let (store, replica) = (b.store(), b.replica().await);
    let running = credential(0);
    reserve(&*store, running, LEASE).await;
    assert!(
        replica
            .take_over(&nullifier(running), LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take_over(&nullifier(credential(2)), LEASE)
            .await
            .unwrap()
            .is_none(),
        "nothing to take over at an unknown N"
    );

    let v = credential(1);
    reserve(&*store, v, EXPIRED).await;
    assert!(matches!(
        store.lookup(&nullifier(v)).await.unwrap(),
        Some(Known::Reserved {
            lease_expired: true,
            ..
        })
    ));
    let taken = replica
        .take_over(&nullifier(v), LEASE)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(taken.nullifier(), nullifier(v));
    assert_eq!(taken.class_cost(), v.class_cost());
    assert_eq!(
        taken.published_state(),
        &v.presented().credential.body.published_state
    );
    assert!(matches!(
        store.lookup(&nullifier(v)).await.unwrap(),
        Some(Known::Reserved {
            lease_expired: false,
            ..
        })
    ));
    assert!(
        store
            .take_over(&nullifier(v), LEASE)
            .await
            .unwrap()
            .is_none(),
        "the renewed lease runs"
    );

    let receipted = receipt(taken, 50);
    replica
        .finish(&receipted, &response("taken over"))
        .await
        .unwrap();
    match store.lookup(&nullifier(v)).await.unwrap() {
        Some(Known::Final {
            receipt, response, ..
        }) => {
            assert_eq!(&receipt, receipted.receipt());
            assert_eq!(response, Some(self::response("taken over")));
        }
        other => panic!("expected the final record, got {other:?}"),
    }
    assert!(
        store
            .take_over(&nullifier(v), EXPIRED)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        replica
            .take_over(&nullifier(v), EXPIRED)
            .await
            .unwrap()
            .is_none()
    );
}

/// Many replicas racing to take over one expired lease: exactly one gets it.
async fn concurrent_take_overs_grant_one<B: Backend>() {
    let b = B::fresh().await;
    let stores = [b.store(), b.replica().await];
    let v = credential(0);
    reserve(&*stores[0], v, EXPIRED).await;
    let granted = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, granted, barrier) =
                (stores[i % 2].clone(), granted.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                if store
                    .take_over(&nullifier(v), LEASE)
                    .await
                    .unwrap()
                    .is_some()
                {
                    granted.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(granted.load(Ordering::SeqCst), 1);
}

/// An exit's share is recorded once through the unique key on `N`: asked again it reports
/// itself, a request cannot reserve its index, and an exit at an index a request used
/// reports the request (an understated exit).
async fn exit_shares_take_their_index_once<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let exit = Share {
        x: Fr::from(77u64),
        y: Fr::from(78u64),
    };
    let v = credential(0);
    assert!(
        store
            .record_exit(&nullifier(v), &exit)
            .await
            .unwrap()
            .is_none()
    );
    match store.record_exit(&nullifier(v), &exit).await.unwrap() {
        Some(Known::Exit { share }) => assert_eq!(share, exit),
        other => panic!("the same exit again reports itself, got {other:?}"),
    }
    assert!(matches!(
        store.lookup(&nullifier(v)).await.unwrap(),
        Some(Known::Exit { share }) if share == exit
    ));
    assert_eq!(
        store.receipt(&nullifier(v)).await.unwrap(),
        ReceiptLookup::Unknown
    );
    assert!(matches!(
        store.reserve(v, LEASE).await.unwrap(),
        Reservation::Taken
    ));
    assert!(
        store
            .take_over(&nullifier(v), EXPIRED)
            .await
            .unwrap()
            .is_none()
    );

    let used = credential(1);
    reserve(&*store, used, LEASE).await;
    match store.record_exit(&nullifier(used), &exit).await.unwrap() {
        Some(Known::Reserved { share, .. }) => assert_ne!(share, exit),
        other => panic!("an exit at a used index reports the request, got {other:?}"),
    }
}

/// A blocked `N` is known as blocked, has no receipt, cannot be reserved or taken over;
/// blocking a known `N` changes nothing.
async fn blocked_n_is_never_served<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let v = credential(0);
    store.block(&nullifier(v)).await.unwrap();
    store.block(&nullifier(v)).await.unwrap();
    assert!(matches!(
        store.lookup(&nullifier(v)).await.unwrap(),
        Some(Known::Blocked)
    ));
    assert_eq!(
        store.receipt(&nullifier(v)).await.unwrap(),
        ReceiptLookup::Unknown
    );
    assert!(matches!(
        store.reserve(v, LEASE).await.unwrap(),
        Reservation::Taken
    ));
    assert!(
        store
            .take_over(&nullifier(v), LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.lookup(&nullifier(v)).await.unwrap(),
        Some(Known::Blocked)
    ));

    let finished = credential(1);
    let receipted = receipt(reserve(&*store, finished, LEASE).await, 10);
    store.finish(&receipted, &response("kept")).await.unwrap();
    store.block(&nullifier(finished)).await.unwrap();
    assert_eq!(
        store.receipt(&nullifier(finished)).await.unwrap(),
        ReceiptLookup::Receipt(*receipted.receipt())
    );
    assert_eq!(b.counts().await, (1, 1));
}

/// Evidence is kept once per note: keeping it again, even with another secret, changes
/// nothing.
async fn evidence_is_kept_once<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let (commitment, secret) = (Fr::from(1_001u64), Fr::from(2_002u64));
    store.keep_evidence(&commitment, &secret).await.unwrap();
    store.keep_evidence(&commitment, &secret).await.unwrap();
    store
        .keep_evidence(&commitment, &Fr::from(3_003u64))
        .await
        .unwrap();
    let bytes = |f: &Fr| fr_to_bytes(f).to_vec();
    assert_eq!(
        b.evidence().await,
        vec![(bytes(&commitment), bytes(&secret))]
    );
    let other = Fr::from(4_004u64);
    store.keep_evidence(&other, &secret).await.unwrap();
    let mut kept = b.evidence().await;
    kept.sort();
    let mut expected = vec![
        (bytes(&commitment), bytes(&secret)),
        (bytes(&other), bytes(&secret)),
    ];
    expected.sort();
    assert_eq!(kept, expected);
    // What a restarted gateway reads back, bounded by its limit.
    let mut read = store.evidence(10).await.unwrap();
    read.sort_by_key(|(c, _)| fr_to_bytes(c));
    let mut pairs = vec![(commitment, secret), (other, secret)];
    pairs.sort_by_key(|(c, _)| fr_to_bytes(c));
    assert_eq!(read, pairs);
    assert_eq!(store.evidence(1).await.unwrap().len(), 1);
}

/// Fifty reservations of one `N` at once, from tasks on two replicas: exactly one wins.
async fn fifty_concurrent_reserves_one_wins<B: Backend>() {
    let b = B::fresh().await;
    let stores = [b.store(), b.replica().await];
    let v = credential(0);
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, barrier) = (stores[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.reserve(v, LEASE).await
            })
        })
        .collect();
    let (mut reserved, mut taken) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(Reservation::Reserved(_)) => reserved += 1,
            Ok(Reservation::Taken) => taken += 1,
            Err(error) => panic!("a reservation failed: {error}"),
        }
    }
    assert_eq!((reserved, taken), (1, 49));
    assert_eq!(b.counts().await, (0, 1));
}

/// Reservations of distinct `N` at once (SQLite writes them in one group commit), each
/// raced by copies of itself: every `N` is reserved exactly once, and all of them are.
async fn concurrent_reserves_of_distinct_n_each_win_once<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let copies = 4;
    let barrier = Arc::new(tokio::sync::Barrier::new(VERIFIED_COUNT * copies));
    let tasks: Vec<_> = (0..VERIFIED_COUNT * copies)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            let v = credential(i % VERIFIED_COUNT);
            tokio::spawn(async move {
                barrier.wait().await;
                (i % VERIFIED_COUNT, store.reserve(v, LEASE).await)
            })
        })
        .collect();
    let mut reserved = [0; VERIFIED_COUNT];
    for task in tasks {
        match task.await.unwrap() {
            (i, Ok(Reservation::Reserved(r))) => {
                assert_eq!(r.nullifier(), nullifier(credential(i)));
                reserved[i] += 1;
            }
            (_, Ok(Reservation::Taken)) => {}
            (_, Err(error)) => panic!("a reservation failed: {error}"),
        }
    }
    assert_eq!(reserved, [1; VERIFIED_COUNT]);
    assert_eq!(b.counts().await, (0, VERIFIED_COUNT as u64));
}

/// `prune` drops the partitions older than the retry window, and with them the payload
/// digest and the response; the receipt stays. Partitions inside the window stay.
async fn prune_drops_partitions_past_retention<B: Backend>() {
    let mut b = B::fresh().await;
    let old = credential(0);
    let old_receipt = receipt(reserve(&*b.store(), old, LEASE).await, 7);
    b.store()
        .finish(&old_receipt, &response("old"))
        .await
        .unwrap();
    let hour = only_partition(&b).await;
    b.execute(&format!(
        "ALTER TABLE retained_{hour} RENAME TO retained_{}",
        hour - 48
    ))
    .await;
    b.reopen().await.unwrap();
    assert_eq!(only_partition(&b).await, hour - 48);
    assert!(
        matches!(
            b.store().lookup(&nullifier(old)).await.unwrap(),
            Some(Known::Final {
                response: Some(_),
                payload_digest: Some(_),
                ..
            })
        ),
        "kept until pruned"
    );

    b.prune().await.unwrap();
    assert!(
        !b.schema()
            .await
            .iter()
            .any(|(table, _)| table.starts_with("retained_")),
        "the partition 48 hours back is dropped"
    );
    match b.store().lookup(&nullifier(old)).await.unwrap() {
        Some(Known::Final {
            receipt,
            payload_digest,
            response,
            ..
        }) => {
            assert_eq!(&receipt, old_receipt.receipt());
            assert_eq!(payload_digest, None);
            assert_eq!(response, None);
        }
        other => panic!("expected the final record, got {other:?}"),
    }

    let recent = credential(1);
    let recent_receipt = receipt(reserve(&*b.store(), recent, LEASE).await, 8);
    b.store()
        .finish(&recent_receipt, &response("recent"))
        .await
        .unwrap();
    let hour = only_partition(&b).await;
    b.execute(&format!(
        "ALTER TABLE retained_{hour} RENAME TO retained_{}",
        hour - 10
    ))
    .await;
    b.reopen().await.unwrap();
    b.prune().await.unwrap();
    assert_eq!(
        only_partition(&b).await,
        hour - 10,
        "10 hours back is inside the window"
    );
    match b.store().lookup(&nullifier(recent)).await.unwrap() {
        Some(Known::Final { response, .. }) => {
            assert_eq!(response, Some(self::response("recent")));
        }
        other => panic!("expected the final record, got {other:?}"),
    }
}

/// The store holds only §6's tables and columns: no sequence, timestamp or default, and no
/// lease once final.
async fn schema_holds_only_the_allowed_columns<B: Backend>() {
    let b = B::fresh().await;
    let store = b.store();
    let finished = receipt(reserve(&*store, credential(0), LEASE).await, 5);
    store.finish(&finished, &response("x")).await.unwrap();
    let open = reserve(&*store, credential(1), LEASE).await;
    store.block(&Fr::from(77u64)).await.unwrap();
    store
        .keep_evidence(&Fr::from(1u64), &Fr::from(2u64))
        .await
        .unwrap();

    let hour = only_partition(&b).await;
    let columns = |names: &[&str]| names.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    assert_eq!(
        b.schema().await,
        vec![
            ("evidence".into(), columns(&["commitment", "secret"])),
            (
                "nullifiers".into(),
                columns(&["n", "x", "y", "lease_until", "receipt"])
            ),
            (
                format!("retained_{hour}"),
                columns(&[
                    "n",
                    "payload_digest",
                    "a_pub",
                    "class_cost",
                    "status",
                    "content_type",
                    "body"
                ])
            ),
            ("schema_version".into(), columns(&["version"])),
        ]
    );
    for (table, column, kind, default) in b.columns().await {
        assert!(
            B::COLUMN_TYPES.contains(&kind.as_str()),
            "{table}.{column} is {kind}"
        );
        assert_eq!(default, None, "{table}.{column} has a default");
    }

    assert_eq!(
        b.count("SELECT count(*) FROM nullifiers WHERE lease_until IS NOT NULL")
            .await,
        1,
        "only the open reservation has a lease"
    );
    store
        .finish(&receipt(open, 6), &response("y"))
        .await
        .unwrap();
    assert_eq!(
        b.count("SELECT count(*) FROM nullifiers WHERE lease_until IS NOT NULL")
            .await,
        0
    );
}

/// A store whose schema is newer than this gateway knows is refused, and left as it was.
async fn a_newer_schema_version_is_refused<B: Backend>() {
    let mut b = B::fresh().await;
    let v = credential(0);
    reserve(&*b.store(), v, LEASE).await;
    b.execute("INSERT INTO schema_version (version) VALUES (2)")
        .await;
    match b.reopen().await {
        Err(StoreError::Database(message)) => {
            assert!(message.contains("schema version 2"), "{message}");
        }
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
    b.execute("DELETE FROM schema_version WHERE version = 2")
        .await;
    b.reopen().await.unwrap();
    assert!(matches!(
        b.store().lookup(&nullifier(v)).await.unwrap(),
        Some(Known::Reserved { .. })
    ));
}

macro_rules! on_both_stores {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario::<super::Sqlite>().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(nullgate_postgres),
                    ignore = "needs PostgreSQL: set NULLGATE_POSTGRES_URL (.ci/run starts one)"
                )]
                async fn $scenario() {
                    super::$scenario::<super::Postgres>().await;
                }
            )*
        }
    };
}

on_both_stores!(
    reserve_then_lookup_is_reserved,
    second_reserve_of_one_n_is_taken,
    finish_makes_the_final_record_a_retry_reads,
    finish_of_an_unreserved_n_is_refused,
    take_over_after_the_lease_and_not_once_final,
    concurrent_take_overs_grant_one,
    blocked_n_is_never_served,
    exit_shares_take_their_index_once,
    evidence_is_kept_once,
    fifty_concurrent_reserves_one_wins,
    concurrent_reserves_of_distinct_n_each_win_once,
    prune_drops_partitions_past_retention,
    schema_holds_only_the_allowed_columns,
    a_newer_schema_version_is_refused,
);

/// PostgreSQL only (SQLite's `WITHOUT ROWID` tables are B-trees in `N` order already):
/// after `rewrite_in_n_order` the heap holds the rows in `N` order, all written by one
/// transaction, and the store serves them as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(nullgate_postgres),
    ignore = "needs PostgreSQL: set NULLGATE_POSTGRES_URL (.ci/run starts one)"
)]
async fn postgres_rewrite_puts_rows_in_n_order() {
    let b = Postgres::fresh().await;
    let store = b.store();
    let finished = receipt(reserve(&*store, credential(0), LEASE).await, 9);
    store.finish(&finished, &response("r")).await.unwrap();
    reserve(&*store, credential(1), LEASE).await;
    // Blocked indices in an order unrelated to N, each its own transaction.
    let blocked: Vec<Fr> = (0..100u64)
        .map(|i| Fr::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 8))
        .collect();
    for n in &blocked {
        store.block(n).await.unwrap();
    }
    let heap_order = async || -> Vec<Vec<u8>> {
        b.schema
            .admin
            .query("SELECT n FROM nullifiers ORDER BY ctid", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect()
    };
    let writers = "SELECT count(DISTINCT xmin::text) FROM nullifiers";
    let before = heap_order().await;
    let mut sorted = before.clone();
    sorted.sort();
    assert_ne!(before, sorted, "the setup writes rows out of N order");
    assert!(b.count(writers).await > 1);

    b.store.rewrite_in_n_order().await.unwrap();

    assert_eq!(heap_order().await, sorted);
    assert_eq!(b.count(writers).await, 1);
    assert_eq!(
        b.count(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE c.relname = 'nullifiers_pkey' AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
               AND i.indisprimary AND i.indisclustered"
        )
        .await,
        1,
        "the primary key survives, as the cluster index"
    );
    assert_eq!(b.counts().await, (1, 101));
    assert_eq!(
        store.receipt(&nullifier(credential(0))).await.unwrap(),
        ReceiptLookup::Receipt(*finished.receipt())
    );
    assert!(matches!(
        store.lookup(&nullifier(credential(1))).await.unwrap(),
        Some(Known::Reserved { .. })
    ));
    assert!(matches!(
        store.lookup(&blocked[0]).await.unwrap(),
        Some(Known::Blocked)
    ));
    assert!(matches!(
        store.reserve(credential(0), LEASE).await.unwrap(),
        Reservation::Taken
    ));
    reserve(&*b.replica().await, credential(2), LEASE).await;
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn credentials() -> &'static VerifiedCredentials {
    verified_credentials()
}

fn credential(i: usize) -> &'static Verified {
    &credentials().verified[i]
}

fn nullifier(verified: &Verified) -> Fr {
    verified.presented().nullifier()
}

async fn reserve(store: &dyn NullifierStore, verified: &Verified, lease: Duration) -> Reserved {
    match store.reserve(verified, lease).await.unwrap() {
        Reservation::Reserved(reserved) => reserved,
        Reservation::Taken => panic!("N was already reserved"),
    }
}

/// A receipt for `reserved` charging `raw` (clamped to `[Δ_min, C_c]`).
fn receipt(reserved: Reserved, raw: u64) -> Receipted {
    let signer = StateSigner {
        number: 1,
        key: dev_state_key(),
    };
    reserved
        .charge(&credentials().prices, raw)
        .sign(&credentials().dom, &signer)
}

fn response(text: &str) -> StoredResponse {
    StoredResponse {
        status: 200,
        content_type: Some("application/json".into()),
        body: format!("{{\"answer\":\"{text}\"}}").into_bytes(),
    }
}

/// The hour of the one retry partition the store holds.
async fn only_partition(b: &impl Backend) -> u32 {
    let hours: Vec<u32> = b
        .schema()
        .await
        .iter()
        .filter_map(|(table, _)| table.strip_prefix("retained_")?.parse().ok())
        .collect();
    assert_eq!(hours.len(), 1, "one partition: {hours:?}");
    hours[0]
}

// ---------------------------------------------------------------------------------------
// Backends.

/// A SQLite store in a file of a temporary directory. Its replicas are the one store: a
/// SQLite file serves one gateway.
struct Sqlite {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
}

impl Sqlite {
    fn path(&self) -> PathBuf {
        self.dir.path().join("store.sqlite")
    }

    fn raw(&self) -> rusqlite::Connection {
        let connection = rusqlite::Connection::open(self.path()).unwrap();
        connection.busy_timeout(Duration::from_secs(10)).unwrap();
        connection
    }
}

impl Backend for Sqlite {
    const COLUMN_TYPES: &'static [&'static str] = &["BLOB", "INTEGER", "TEXT"];

    async fn fresh() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("store.sqlite"), RETENTION_HOURS).unwrap();
        Self {
            dir,
            store: Arc::new(store),
        }
    }

    fn store(&self) -> Arc<dyn NullifierStore> {
        self.store.clone()
    }

    async fn replica(&self) -> Arc<dyn NullifierStore> {
        self.store.clone()
    }

    async fn reopen(&mut self) -> Result<(), StoreError> {
        self.store = Arc::new(SqliteStore::open(&self.path(), RETENTION_HOURS)?);
        Ok(())
    }

    async fn prune(&self) -> Result<(), StoreError> {
        self.store.prune().await
    }

    async fn schema(&self) -> Vec<(String, Vec<String>)> {
        self.store.schema().await.unwrap()
    }

    async fn counts(&self) -> (u64, u64) {
        self.store.counts().await.unwrap()
    }

    async fn execute(&self, sql: &str) {
        self.raw().execute_batch(sql).unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        self.raw().query_row(sql, [], |row| row.get(0)).unwrap()
    }

    async fn columns(&self) -> Vec<Column> {
        let raw = self.raw();
        let mut columns = Vec::new();
        for (table, _) in self.schema().await {
            let mut info = raw
                .prepare(&format!("PRAGMA table_info(\"{table}\")"))
                .unwrap();
            let rows = info
                .query_map([], |row| {
                    Ok((
                        table.clone(),
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<String>>(4)?,
                    ))
                })
                .unwrap();
            columns.extend(rows.map(Result::unwrap));
        }
        columns
    }

    async fn evidence(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let raw = self.raw();
        let mut statement = raw
            .prepare("SELECT commitment, secret FROM evidence")
            .unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// A PostgreSQL store in a schema of its own (dropped at the end) on the server at
/// `NULLGATE_POSTGRES_URL`; each replica is a store of its own, with its own pool.
struct Postgres {
    schema: Schema,
    store: Arc<PostgresStore>,
}

impl Backend for Postgres {
    const COLUMN_TYPES: &'static [&'static str] = &["bytea", "bigint", "integer", "text"];

    async fn fresh() -> Self {
        let schema = Schema::fresh().await;
        let store = PostgresStore::connect(&schema.url, RETENTION_HOURS)
            .await
            .unwrap();
        Self {
            schema,
            store: Arc::new(store),
        }
    }

    fn store(&self) -> Arc<dyn NullifierStore> {
        self.store.clone()
    }

    async fn replica(&self) -> Arc<dyn NullifierStore> {
        Arc::new(
            PostgresStore::connect(&self.schema.url, RETENTION_HOURS)
                .await
                .unwrap(),
        )
    }

    async fn reopen(&mut self) -> Result<(), StoreError> {
        self.store = Arc::new(PostgresStore::connect(&self.schema.url, RETENTION_HOURS).await?);
        Ok(())
    }

    async fn prune(&self) -> Result<(), StoreError> {
        self.store.prune().await
    }

    async fn schema(&self) -> Vec<(String, Vec<String>)> {
        self.store.schema().await.unwrap()
    }

    async fn counts(&self) -> (u64, u64) {
        self.store.counts().await.unwrap()
    }

    async fn execute(&self, sql: &str) {
        self.schema.admin.batch_execute(sql).await.unwrap();
    }

    async fn count(&self, sql: &str) -> i64 {
        self.schema.admin.query_one(sql, &[]).await.unwrap().get(0)
    }

    async fn columns(&self) -> Vec<Column> {
        self.schema.admin
            .query(
                "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
                        pg_get_expr(d.adbin, d.adrelid)
                 FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind = 'r'
                   AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attidentity = '' AND a.attgenerated = ''
                 UNION ALL
                 SELECT c.relname::text, a.attname::text, 'identity or generated', NULL
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
                   AND (a.attidentity <> '' OR a.attgenerated <> '')
                 UNION ALL
                 SELECT c.relname::text, '', 'sequence', NULL FROM pg_class c
                 WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) AND c.relkind = 'S'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect()
    }

    async fn evidence(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.schema
            .admin
            .query("SELECT commitment, secret FROM evidence", &[])
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect()
    }
}

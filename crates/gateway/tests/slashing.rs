//! Slashing that survives faults (issue: the gateway under attack): evidence kept before a
//! crash is slashed by the restarted gateway, once, and a note already out of reach is left
//! alone.

mod common;

use std::{sync::Arc, time::Duration};

use common::Harness;
use nullgate_chain::{BlockRef, NoteStatus};
use nullgate_gateway::store::{NullifierStore, sqlite::SqliteStore};
use nullgate_zk::note;

#[tokio::test(flavor = "multi_thread")]
async fn evidence_kept_before_a_restart_is_slashed_after_it() {
    let h = Harness::start(2).await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("restarted.sqlite"), 24).unwrap());
    // As a gateway that crashed right after keeping the evidence would have left it.
    let secret = h.notes[0].secret;
    let commitment = note::commitment(&secret);
    store.keep_evidence(&commitment, &secret).await.unwrap();
    assert_eq!(
        h.dev
            .vault
            .note(&commitment, BlockRef::Latest)
            .await
            .unwrap()
            .status,
        NoteStatus::Active
    );

    let (gateway, _) = h.replica(store.clone() as Arc<dyn NullifierStore>).await;
    assert_eq!(
        h.wait_for(0, NoteStatus::Slashed).await,
        NoteStatus::Slashed,
        "the restarted gateway slashed it"
    );
    let text = gateway.metrics().render();
    assert!(
        text.contains("nullgate_gateway_slashes_submitted_total 1\n"),
        "{text}"
    );
    assert!(text.contains("nullgate_gateway_slashes_total 1\n"));

    // Restarting again submits nothing: the note is out of reach.
    let (again, _) = h.replica(store as Arc<dyn NullifierStore>).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        again
            .metrics()
            .render()
            .contains("nullgate_gateway_slashes_submitted_total 0\n")
    );
    let other = note::commitment(&h.notes[1].secret);
    assert_eq!(
        h.dev
            .vault
            .note(&other, BlockRef::Latest)
            .await
            .unwrap()
            .status,
        NoteStatus::Active,
        "only the note with evidence"
    );
}

//! Crash safety of a request (PROTOCOL §5 step 7, §9): the client is killed between the
//! journal write and the send, after the send before the receipt, and after answering
//! before the receipted state was written. On restart it re-sends
//! exactly the journalled bytes, ends with the right state, and never sends a different
//! request at that index. The gateway, chain and upstream are real; the network in between
//! is a recording transport that can lose one response (as a dropped connection would).
//!
//! The same harness checks the anonymity threshold (PROTOCOL §9): below it nothing is sent.
mod common;

use std::{path::Path, sync::atomic::Ordering, time::Duration};

use common::*;
use nullgate_client::{paid::PayError, wallet::Wallet};

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_journal_write_and_send() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let prepared = client.prepare(&chat()).await.unwrap();
    let journalled = prepared.request_bytes().to_vec();
    // Killed here: journalled, nothing sent.
    drop(prepared);
    let wallet = crash(client, dir.path()).await;
    assert!(world.network.sent.lock().unwrap().is_empty());
    assert_eq!(world.upstream.counters().chat_completions, 0);

    let restarted = client_after_restart(&world, wallet).await;
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        vec![journalled],
        "the journalled bytes, exactly, once"
    );
    assert_eq!(world.upstream.counters().chat_completions, 1);
    let note = restarted.notes()[0];
    assert_eq!(note.state.index, 1, "the index is settled by its receipt");
    assert_eq!(note.state.balance, 50_000 - restarted.stats().charged);
    assert!(restarted.stats().charged > 0);

    // The next call uses the next index.
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_send_before_the_receipt() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    world
        .network
        .lose_next_response
        .store(true, Ordering::SeqCst);
    let lost = client.pay_request(chat()).await;
    assert!(lost.is_err(), "the response was lost");
    // The gateway served it; the client never saw the receipt.
    assert_eq!(world.upstream.counters().chat_completions, 1);
    assert_eq!(client.notes()[0].state.index, 0);
    let wallet = crash(client, dir.path()).await;

    let restarted = client_after_restart(&world, wallet).await;
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0], sent[1],
        "a re-send is byte for byte the original, never a different request"
    );
    assert_eq!(
        world.upstream.counters().chat_completions,
        1,
        "the gateway answered the retry from its store"
    );
    let note = restarted.notes()[0];
    assert_eq!(note.state.index, 1);
    assert_eq!(note.state.balance, 50_000 - restarted.stats().charged);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
    assert_eq!(world.upstream.counters().chat_completions, 2);
}

/// The wallet's files (wallet, backup, journal slots) as they are now.
fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for name in ["wallet.json", "wallet.json.bak"] {
        files.push((dir.join(name), std::fs::read(dir.join(name)).unwrap()));
    }
    for entry in std::fs::read_dir(dir.join("journal")).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        files.push((path, bytes));
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_answering_before_the_state_was_written() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let prepared = client.prepare(&chat()).await.unwrap();
    // What the disk holds once the request is journalled and before its state is written.
    let journalled = snapshot(dir.path());
    let answered = client.send(prepared).await.unwrap();
    assert_eq!(answered.status, 200);
    client.settled(Duration::from_secs(10)).await;
    drop(crash(client, dir.path()).await);
    // Killed after the agent had its answer, before the wallet write: the disk as it was.
    for (path, bytes) in journalled {
        std::fs::write(path, bytes).unwrap();
    }
    let wallet = Wallet::open(dir.path()).unwrap().wallet;
    assert_eq!(wallet.notes()[0].state.index, 0);

    let restarted = client_after_restart(&world, wallet).await;
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1], "the journalled request, byte for byte");
    assert_eq!(
        world.upstream.counters().chat_completions,
        1,
        "the re-send is answered from the gateway's store"
    );
    let note = restarted.notes()[0];
    assert_eq!(note.state.index, 1, "settled by the same receipt");
    assert_eq!(note.state.balance, 50_000 - answered.receipt.charge);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn below_the_anonymity_threshold_nothing_is_spent() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::create(dir.path(), vault_id(&world).await).unwrap();
    let client = client_with_threshold(&world, wallet, 2).await;
    // Before the first sync the set is unknown, and nothing is spent either.
    assert_eq!(client.anonymity_set(), None);
    client.deposit(world.dev.operator, &[50_000]).await.unwrap();
    synced(&client).await;
    assert_eq!(client.anonymity_set(), Some(1));
    let error = client.prepare(&chat()).await.unwrap_err();
    assert!(
        matches!(error, PayError::TooFewNotes { active: 1, min: 2 }),
        "{error}"
    );
    assert!(error.to_string().contains("wait for more deposits"));
    assert!(world.network.sent.lock().unwrap().is_empty());
    assert_eq!(client.notes()[0].state.index, 0);

    // A second note in the vault: two to hide among, enough.
    client.deposit(world.dev.operator, &[50_000]).await.unwrap();
    synced(&client).await;
    assert_eq!(client.anonymity_set(), Some(2));
    client.pay_request(chat()).await.unwrap();
}

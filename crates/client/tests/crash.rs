//! Crash safety of a request (PROTOCOL §5 step 7, §9), one test per fault point: the client
//! is killed during the journal write, between it and the send, after the send before the
//! receipt, after answering before the receipted state was written, and in the middle of
//! that wallet write (the wallet's temporary torn; the wallet replaced but its backup
//! torn); and the wallet write fails outright while the client runs on. On restart it
//! re-sends exactly the journalled bytes, ends with the right state, and never sends a
//! different request at that index. The gateway, chain and upstream are real; the network
//! in between is a recording transport that can lose one response (as a dropped connection
//! would).
//!
//! The same harness checks the anonymity threshold (PROTOCOL §9): below it nothing is sent;
//! and the first-use delay (§3): a new note waits out its random delay before any request.
mod common;

use std::{path::Path, sync::atomic::Ordering, time::Duration};

use common::*;
use nullgate_client::{client::Client, paid::PayError, wallet::Wallet};

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
    settled_by_one_resend(&world, &restarted, restarted.stats().charged);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
    assert_eq!(world.upstream.counters().chat_completions, 2);
}

/// The one request was sent twice, the second time byte for byte the first (never a
/// different request at its index), answered from the gateway's store (one upstream call),
/// and its receipt settled the note at index 1, `charge` spent.
fn settled_by_one_resend(world: &World, client: &Client<Network>, charge: u64) {
    let sent = world.network.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0], sent[1],
        "a re-send is byte for byte the original, never a different request"
    );
    assert_eq!(
        world.upstream.counters().chat_completions,
        1,
        "the re-send is answered from the gateway's store"
    );
    let note = client.notes()[0];
    assert_eq!(note.state.index, 1, "settled by the same receipt");
    assert_eq!(note.state.balance, 50_000 - charge);
}

/// The wallet's files (wallet, backup, journal slots) as they are now.
fn snapshot(dir: &Path) -> Files {
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
    settled_by_one_resend(&world, &restarted, answered.receipt.charge);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_during_the_journal_write() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let prepared = client.prepare(&chat()).await.unwrap();
    // Killed before the write's fsync returned: only the first part of the record reached
    // the disk (nothing is sent before the fsync returns).
    let slot = dir.path().join("journal").join("0.req");
    let record = std::fs::read(&slot).unwrap();
    std::fs::write(&slot, &record[..record.len() / 2]).unwrap();
    drop(prepared);
    let wallet = crash(client, dir.path()).await;

    let restarted = client_after_restart(&world, wallet).await;
    assert!(
        world.network.sent.lock().unwrap().is_empty(),
        "a torn entry never left, so there is nothing to re-send"
    );
    assert_eq!(restarted.notes()[0].state.index, 0);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(world.network.sent.lock().unwrap().len(), 1);
    assert_eq!(world.upstream.counters().chat_completions, 1);
    assert_eq!(restarted.notes()[0].state.index, 1);
}

/// Runs one paid call, then puts the wallet's files back as `crashed` says a crash in the
/// middle of writing its receipted state would have left them, given the files after the
/// journal write and after the whole write. Returns the charge of the call.
async fn crash_during_the_wallet_write(
    world: &World,
    dir: &Path,
    crashed: impl FnOnce(&Path, Files, Files),
) -> u64 {
    let client = new_wallet(world, dir).await;
    let prepared = client.prepare(&chat()).await.unwrap();
    let journalled = snapshot(dir);
    let answered = client.send(prepared).await.unwrap();
    assert_eq!(answered.status, 200);
    client.settled(Duration::from_secs(10)).await;
    drop(crash(client, dir).await);
    crashed(dir, journalled, snapshot(dir));
    answered.receipt.charge
}

type Files = Vec<(std::path::PathBuf, Vec<u8>)>;

fn bytes_of(files: &Files, name: &str) -> Vec<u8> {
    files
        .iter()
        .find(|(path, _)| path.file_name().unwrap() == name)
        .unwrap()
        .1
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_while_writing_the_wallets_temporary() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let charge = crash_during_the_wallet_write(&world, dir.path(), |dir, before, after| {
        // The old files, and half of the new wallet in its temporary.
        for (path, bytes) in before {
            std::fs::write(path, bytes).unwrap();
        }
        let new = bytes_of(&after, "wallet.json");
        std::fs::write(dir.join("wallet.json.tmp"), &new[..new.len() / 2]).unwrap();
    })
    .await;
    let wallet = Wallet::open(dir.path()).unwrap().wallet;
    assert_eq!(wallet.notes()[0].state.index, 0, "the old state");
    assert!(!dir.path().join("wallet.json.tmp").exists());

    let restarted = client_after_restart(&world, wallet).await;
    settled_by_one_resend(&world, &restarted, charge);
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_wallet_was_replaced_while_writing_its_backup() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let charge = crash_during_the_wallet_write(&world, dir.path(), |dir, before, after| {
        // The new wallet; the old backup, half of the new one in its temporary; the journal
        // not cleared yet.
        for (path, bytes) in before {
            if path.file_name().unwrap() != "wallet.json" {
                std::fs::write(path, bytes).unwrap();
            }
        }
        let new = bytes_of(&after, "wallet.json.bak");
        std::fs::write(dir.join("wallet.json.bak.tmp"), &new[..new.len() / 2]).unwrap();
    })
    .await;
    let opened = Wallet::open(dir.path()).unwrap();
    assert!(opened.warning.is_none(), "wallet.json is whole");
    assert_eq!(opened.wallet.notes()[0].state.index, 1, "the new state");

    let restarted = client_after_restart(&world, opened.wallet).await;
    assert_eq!(
        world.network.sent.lock().unwrap().len(),
        1,
        "the journal entry is below the saved index: settled, not re-sent"
    );
    assert_eq!(restarted.notes()[0].state.index, 1);
    assert_eq!(restarted.notes()[0].state.balance, 50_000 - charge);
    restarted.pay_request(chat()).await.unwrap();
    restarted.settled(Duration::from_secs(10)).await;
    assert_eq!(restarted.notes()[0].state.index, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_wallet_write_holds_the_note_until_a_re_send_settles_it() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    // The fault: a directory where the wallet's temporary goes, so every wallet write fails
    // (as a full or read-only disk would), even for root.
    let blocker = dir.path().join("wallet.json.tmp");
    std::fs::create_dir(&blocker).unwrap();
    std::fs::write(blocker.join("in-the-way"), b"").unwrap();

    let answered = client.pay_request(chat()).await.unwrap();
    assert_eq!(answered.status, 200, "the agent has its answer");
    client.settled(Duration::from_secs(10)).await;
    assert_eq!(
        client.notes()[0].state.index,
        0,
        "the new state is not saved"
    );
    assert!(
        client.pay_request(chat()).await.is_err(),
        "the note is held: no second request at its index"
    );
    assert_eq!(world.network.sent.lock().unwrap().len(), 1);

    // The fault goes; the next sync re-sends the journalled request and saves its state.
    std::fs::remove_dir_all(&blocker).unwrap();
    client.sync().await.unwrap();
    client.settled(Duration::from_secs(10)).await;
    settled_by_one_resend(&world, &client, answered.receipt.charge);
    let wallet = crash(client, dir.path()).await;
    assert_eq!(wallet.notes()[0].state.index, 1, "and it is on disk");
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

#[tokio::test(flavor = "multi_thread")]
async fn a_new_note_waits_out_its_first_use_delay() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    drop(crash(client, dir.path()).await);
    // The note's delay ends two seconds from now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut wallet = Wallet::open(dir.path()).unwrap().wallet;
    wallet.update(0, |n| n.first_use = Some(now + 2)).unwrap();

    let client = client_after_restart(&world, wallet).await;
    let error = client.pay_request(chat()).await.unwrap_err();
    assert!(
        matches!(error, PayError::FirstUseDelay { seconds: 1..=2 }),
        "{error}"
    );
    assert!(!error.to_string().contains("  "), "one sentence: {error}");
    assert!(
        world.network.sent.lock().unwrap().is_empty(),
        "nothing sent"
    );
    assert_eq!(client.notes()[0].state.index, 0);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    client.pay_request(chat()).await.unwrap();
    client.settled(Duration::from_secs(10)).await;
    assert_eq!(client.notes()[0].state.index, 1);
}

//! Leaving the vault and restoring a note (PROTOCOL §8, §6.7), against the embedded chain and
//! a real gateway whose watcher follows it:
//!
//! - a crash left a sent request without receipt: the exit declares `n = m + 1` (only when
//!   the user accepts the cost), is finalised after the window, and the watcher does not
//!   slash it;
//! - an exit interrupted before or after it was sent is the same share, never slashable;
//! - a mutual close pays out at once;
//! - a note rebuilt from its secret alone, walking the gateway's receipts, reaches the
//!   balance and index the wallet had, and can pay again;
//! - no exit starts once the note's deadline (expiry plus grace) is too near or past.

mod common;

use std::{sync::atomic::Ordering, time::Duration};

use common::*;
use nullgate_chain::{Address, BlockRef, Bytes, DevChain, Ledger, NoteStatus as ChainStatus};
use nullgate_client::{
    journal::Journal,
    leave::{
        EXIT_MARGIN, ExitPlan, ExitStatement, LeaveError, ask_clearance, exit_deadline, plan_exit,
        restore_note, state_key_number, time_to_exit,
    },
    wallet::{NoteEntry, NoteStatus, Wallet},
};
use nullgate_gateway::dev::DEV_AUTHORITY;
use nullgate_protocol::deployment::Deployment;
use nullgate_zk::{Fr, note, schnorr::PublicKey};

const RECIPIENT: [u8; 20] = [0x42; 20];

async fn deployment(world: &World) -> Deployment {
    world
        .dev
        .vault
        .summary()
        .await
        .unwrap()
        .deployment()
        .unwrap()
}

/// The vault's registered state keys.
async fn state_keys(world: &World) -> Vec<(u32, PublicKey)> {
    world
        .dev
        .vault
        .live_parameters(BlockRef::Latest)
        .await
        .unwrap()
        .keys
        .into_iter()
        .map(|k| (k.number, k.key))
        .collect()
}

fn max_class(deployment: &Deployment) -> u64 {
    *deployment.cost_classes.last().unwrap()
}

async fn prove(world: &World, note: &NoteEntry, plan: &ExitPlan) -> ExitStatement {
    let deployment = deployment(world).await;
    let keys = state_keys(world).await;
    let number = state_key_number(note, deployment.current_key.0);
    let key = keys.iter().find(|(n, _)| *n == number).unwrap().1;
    ExitStatement::prove(
        &world.exit_key,
        &deployment,
        (number, &key),
        note,
        plan,
        RECIPIENT,
    )
    .unwrap()
}

async fn chain_status(world: &World, secret: &Fr) -> ChainStatus {
    world
        .dev
        .vault
        .note(&note::commitment(secret), BlockRef::Latest)
        .await
        .unwrap()
        .status
}

async fn metric(world: &World, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", world.gateway_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// Credit units paid to [`RECIPIENT`] by `during`.
async fn paid_to_recipient(world: &World, during: impl std::future::Future<Output = ()>) -> u64 {
    let recipient = Address::from(RECIPIENT);
    let before = world.dev.ledger.balance(recipient).await.unwrap();
    during.await;
    let after = world.dev.ledger.balance(recipient).await.unwrap();
    let unit = world.dev.vault.summary().await.unwrap().unit_size;
    u64::try_from((after - before) / unit).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exit_after_a_lost_receipt_declares_one_more_request_and_is_not_slashed() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    world
        .network
        .lose_next_response
        .store(true, Ordering::SeqCst);
    assert!(
        client.pay_request(chat()).await.is_err(),
        "the response was lost"
    );
    let mut wallet = crash(client, dir.path()).await;
    let journal = Journal::open(wallet.journal_dir()).unwrap();
    let journalled = journal
        .read(0)
        .unwrap()
        .expect("the request stays journalled");
    let note = wallet.notes()[0];
    assert_eq!(note.state.index, 0);
    let deployment = deployment(&world).await;
    let c_max = max_class(&deployment);

    // Without the user's consent the exit refuses to pay C_max for the lost receipt.
    let refused = plan_exit(0, &note, Some(&journalled), c_max, None, false).unwrap_err();
    assert!(
        matches!(refused, LeaveError::Unreceipted { index: 0, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("--give-up-on-receipt"));
    // Nor more than the statement allows.
    let greedy = plan_exit(0, &note, Some(&journalled), c_max, Some(50_000), true).unwrap_err();
    assert!(matches!(greedy, LeaveError::PayoutTooLarge { most, .. } if most == 50_000 - c_max));

    let plan = plan_exit(0, &note, Some(&journalled), c_max, None, true).unwrap();
    assert_eq!(
        plan.count, 1,
        "n = m + 1: the lost request is declared paid"
    );
    assert_eq!(plan.payout, 50_000 - c_max);
    let statement = prove(&world, &note, &plan).await;
    wallet.set_status(0, NoteStatus::Exiting).unwrap();
    world
        .dev
        .vault
        .initiate_exit(world.dev.operator, &statement.chain_args())
        .await
        .expect("the chain accepts the exit");
    for _ in 0..200 {
        if metric(&world, "nullgate_gateway_exits_recorded_total").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        metric(&world, "nullgate_gateway_exits_recorded_total").await,
        1
    );
    assert_eq!(
        metric(&world, "nullgate_gateway_slashes_submitted_total").await,
        0
    );
    assert_eq!(
        chain_status(&world, &note.secret).await,
        ChainStatus::Exiting
    );

    let window = world.dev.vault.summary().await.unwrap().exit_window;
    world.dev.ledger.advance_time(window + 1).await.unwrap();
    let paid = paid_to_recipient(&world, async {
        world
            .dev
            .vault
            .finalize_exit(world.dev.operator, &note::commitment(&note.secret))
            .await
            .expect("the exit is final after its window");
    })
    .await;
    assert_eq!(paid, plan.payout);
    assert_eq!(
        chain_status(&world, &note.secret).await,
        ChainStatus::Closed
    );
    assert_eq!(
        metric(&world, "nullgate_gateway_slashes_submitted_total").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mutual_close_pays_out_at_once() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    client.pay_request(chat()).await.unwrap();
    let wallet = crash(client, dir.path()).await;
    let note = wallet.notes()[0];
    assert_eq!(note.state.index, 1);
    assert!(
        note.state.signature.is_some(),
        "a signed state, not genesis"
    );
    let plan = plan_exit(
        0,
        &note,
        None,
        max_class(&deployment(&world).await),
        None,
        false,
    )
    .unwrap();
    assert_eq!(plan.count, 1, "n = m");
    assert_eq!(plan.payout, note.state.balance);
    let statement = prove(&world, &note, &plan).await;
    let clearance = ask_clearance(&world.network, DEV_AUTHORITY, &statement)
        .await
        .unwrap();
    let paid = paid_to_recipient(&world, async {
        world
            .dev
            .vault
            .close_with_clearance(
                world.dev.operator,
                &statement.chain_args(),
                Bytes::from(clearance.0.to_vec()),
            )
            .await
            .expect("the clearance closes the note");
    })
    .await;
    assert_eq!(paid, note.state.balance, "paid at once");
    assert_eq!(
        chain_status(&world, &note.secret).await,
        ChainStatus::Closed
    );

    // The clearance cannot close the note twice.
    assert!(
        world
            .dev
            .vault
            .close_with_clearance(
                world.dev.operator,
                &statement.chain_args(),
                Bytes::from(clearance.0.to_vec()),
            )
            .await
            .is_err(),
        "a closed note pays nothing more"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_note_restored_from_its_secret_alone_reaches_its_balance_and_pays_again() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    for _ in 0..3 {
        client.pay_request(chat()).await.unwrap();
        client.settled(Duration::from_secs(10)).await;
    }
    let wallet = crash(client, dir.path()).await;
    let before = wallet.notes()[0];
    let vault = wallet.vault();
    drop(wallet);
    assert_eq!(before.state.index, 3);

    let deployment = deployment(&world).await;
    let keys = state_keys(&world).await;
    let record = world
        .dev
        .vault
        .note(&note::commitment(&before.secret), BlockRef::Latest)
        .await
        .unwrap();
    let restored = restore_note(
        &world.network,
        DEV_AUTHORITY,
        &deployment,
        &keys,
        before.secret,
        &record,
        None,
        Duration::from_millis(20),
    )
    .await
    .unwrap();
    assert_eq!(restored, before, "the same note, the same state");

    // The restored wallet pays at the next index.
    let fresh = tempfile::tempdir().unwrap();
    let mut wallet = Wallet::create(fresh.path(), vault).unwrap();
    wallet.add_note(restored).unwrap();
    let client = client_after_restart(&world, wallet).await;
    client.pay_request(chat()).await.unwrap();
    client.settled(Duration::from_secs(10)).await;
    assert_eq!(client.notes()[0].state.index, 4);

    // A secret that was never deposited restores nothing.
    let unknown = Fr::from(7u64);
    let record = world
        .dev
        .vault
        .note(&note::commitment(&unknown), BlockRef::Latest)
        .await
        .unwrap();
    let error = restore_note(
        &world.network,
        DEV_AUTHORITY,
        &deployment,
        &keys,
        unknown,
        &record,
        None,
        Duration::ZERO,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, LeaveError::NoDeposit), "{error}");
}

/// Fault points of an exit: killed after marking the note Exiting and before the chain took
/// the exit, the same command again proves the same share (`x_e` is constant), the chain takes
/// it and the watcher does not slash; killed after the chain took it, nothing is sent twice.
#[tokio::test(flavor = "multi_thread")]
async fn an_exit_interrupted_before_or_after_sending_is_never_slashable() {
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    client.pay_request(chat()).await.unwrap();
    let mut wallet = crash(client, dir.path()).await;
    let c_max = max_class(&deployment(&world).await);
    let note = wallet.notes()[0];
    let plan = plan_exit(0, &note, None, c_max, None, false).unwrap();
    let first = prove(&world, &note, &plan).await;
    wallet.set_status(0, NoteStatus::Exiting).unwrap();
    // Killed here: Exiting in the wallet, nothing sent.
    drop(wallet);
    let wallet = Wallet::open(dir.path()).unwrap().wallet;
    let note = wallet.notes()[0];
    assert_eq!(note.status, NoteStatus::Exiting);
    let again = plan_exit(0, &note, None, c_max, None, false).unwrap();
    assert_eq!(again, plan, "the same journal gives the same n");
    let second = prove(&world, &note, &again).await;
    assert_eq!(
        (second.public.nullifier, second.public.exit_y),
        (first.public.nullifier, first.public.exit_y),
        "the same share, never a second one at another x"
    );
    world
        .dev
        .vault
        .initiate_exit(world.dev.operator, &second.chain_args())
        .await
        .unwrap();
    // Killed after the send: the chain already holds the exit, and refuses it again.
    assert!(
        world
            .dev
            .vault
            .initiate_exit(world.dev.operator, &first.chain_args())
            .await
            .is_err(),
        "an Exiting note takes no second exit"
    );
    for _ in 0..200 {
        if metric(&world, "nullgate_gateway_exits_recorded_total").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        metric(&world, "nullgate_gateway_exits_recorded_total").await,
        1
    );
    assert_eq!(
        metric(&world, "nullgate_gateway_slashes_submitted_total").await,
        0
    );
    assert_eq!(
        chain_status(&world, &note.secret).await,
        ChainStatus::Exiting
    );
}

#[test]
fn no_exit_starts_too_near_or_past_the_deadline() {
    let grace = 14 * 24 * 3600;
    let note = NoteEntry {
        expiry: Some(500_000),
        status: NoteStatus::Active,
        ..NoteEntry::new(Fr::from(5u64), 10_000)
    };
    let deadline = exit_deadline(500_000, grace);
    assert_eq!(deadline, 500_000 * 3600 + grace);
    assert_eq!(
        time_to_exit(0, &note, grace, deadline - 7200).unwrap(),
        Duration::from_secs(7200) - EXIT_MARGIN
    );
    for now in [deadline - 100, deadline, deadline + 1] {
        let error = time_to_exit(0, &note, grace, now).unwrap_err();
        assert!(matches!(error, LeaveError::PastDeadline { .. }), "{error}");
        assert!(error.to_string().contains("treasury"), "{error}");
    }
    let pending = NoteEntry::new(Fr::from(6u64), 10_000);
    assert!(matches!(
        time_to_exit(0, &pending, grace, 0),
        Err(LeaveError::NotFinal)
    ));
}

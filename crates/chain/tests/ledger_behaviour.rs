//! One behavioural suite, run against both ledgers: the embedded `revm` chain and anvil over
//! JSON-RPC (skipped with a message when anvil is not installed; CI requires it).

mod common;

use alloy::primitives::{Address, Bytes, U256, address};
use common::{Harness, deploy, genesis_exit, secret};
use nullgate_chain::{
    AnonymitySet, BlockRef, ChainError, NoteStatus, TreeSync, Vault, bindings::NoteVault,
    dev_signers, digest, events::Deposit,
};
use nullgate_zk::{Fr, derive, note::Note, rln, tree::NoteTree};

/// Where exits are paid: an address that never sends, so its balance moves only by payouts.
const RECIPIENT: Address = address!("0x00000000000000000000000000000000000b0b01");

/// TARGETS.md's gas ceilings (native ETH), checked on every such transaction of this suite.
const DEPOSIT_GAS_TARGET: u64 = 80_000;
const INITIATE_EXIT_GAS_TARGET: u64 = 350_000;
const SLASH_GAS_TARGET: u64 = 100_000;

/// Deposits `amount` under `secret(seed)` from account 1 and returns the note as its owner
/// knows it.
async fn deposit(h: &Harness, vault: &Vault, seed: u64, amount: u64) -> Note {
    let k = secret(seed);
    let commitment = nullgate_zk::note::commitment(&k);
    let receipt = vault
        .deposit(h.account(1), &commitment, amount)
        .await
        .expect("deposit");
    assert!(
        receipt.gas_used <= DEPOSIT_GAS_TARGET,
        "[{}] deposit used {} gas (TARGETS.md: ≤ {DEPOSIT_GAS_TARGET})",
        h.name,
        receipt.gas_used
    );
    let stored = vault
        .note(&commitment, BlockRef::Latest)
        .await
        .expect("reading the note");
    Note {
        secret: k,
        note_id: stored.note_id,
        deposit: stored.amount,
        expiry: stored.expiry,
    }
}

async fn status(vault: &Vault, note: &Note) -> NoteStatus {
    vault
        .note(&note.commitment(), BlockRef::Latest)
        .await
        .expect("reading the note")
        .status
}

fn revert_name(result: Result<impl std::fmt::Debug, ChainError>) -> String {
    match result {
        Err(error) => error
            .revert_name()
            .unwrap_or("not a vault revert")
            .to_string(),
        Ok(value) => panic!("expected a revert, got {value:?}"),
    }
}

/// deposit → exit of the untouched note → finalize after the window pays `P` to the
/// recipient and credits `D − P` to the treasury.
async fn exit_then_finalize_pays(h: Harness) {
    let vault = deploy(&h).await;
    let note = deposit(&h, &vault, 1, 5_000).await;
    let (exit, _) = genesis_exit(vault.dom().await.unwrap(), note, 3_000, RECIPIENT, 0);
    assert_eq!(anonymity(&h, &vault, note.expiry - 1).await, 1);

    // The same proof for another recipient or payout is refused.
    let mut other = exit.clone();
    other.recipient = address!("0x00000000000000000000000000000000000b0b02");
    assert_eq!(
        revert_name(vault.initiate_exit(h.account(2), &other).await),
        "InvalidExitProof"
    );
    let mut other = exit.clone();
    other.payout = 2_999;
    assert_eq!(
        revert_name(vault.initiate_exit(h.account(2), &other).await),
        "InvalidExitProof"
    );
    let mut tampered = exit.clone();
    tampered.proof[0] ^= U256::from(1u64);
    assert_eq!(
        revert_name(vault.initiate_exit(h.account(2), &tampered).await),
        "InvalidExitProof"
    );

    let receipt = vault
        .initiate_exit(h.account(2), &exit)
        .await
        .expect("initiateExit");
    eprintln!("[{}] initiateExit gas {}", h.name, receipt.gas_used);
    // An exiting note no longer hides a spend.
    assert_eq!(anonymity(&h, &vault, note.expiry - 1).await, 0);
    assert!(
        receipt.gas_used <= INITIATE_EXIT_GAS_TARGET,
        "[{}] initiateExit used {} gas (TARGETS.md: ≤ {INITIATE_EXIT_GAS_TARGET})",
        h.name,
        receipt.gas_used
    );
    assert_eq!(status(&vault, &note).await, NoteStatus::Exiting);
    assert_eq!(
        revert_name(vault.finalize_exit(h.account(2), &note.commitment()).await),
        "ExitWindowOpen"
    );

    h.dev.advance_time(3_601).await.unwrap();
    let before = h.ledger.balance(RECIPIENT).await.unwrap();
    vault
        .finalize_exit(h.account(2), &note.commitment())
        .await
        .expect("finalizeExit");
    let paid = h.ledger.balance(RECIPIENT).await.unwrap() - before;
    assert_eq!(paid, U256::from(3_000u64) * vault.unit_size());
    assert_eq!(vault.treasury_credit().await.unwrap(), U256::from(2_000u64));
    assert_eq!(status(&vault, &note).await, NoteStatus::Closed);
    assert_eq!(
        revert_name(vault.finalize_exit(h.account(2), &note.commitment()).await),
        "WrongNoteStatus"
    );
}

/// A mutual close with the clearance signer's EIP-712 signature pays at once; a signature
/// by anyone else, or for another nullifier, is refused.
async fn close_with_clearance_pays_at_once(h: Harness) {
    use alloy::signers::SignerSync;
    let vault = deploy(&h).await;
    let note = deposit(&h, &vault, 5, 3_000).await;
    let (exit, _) = genesis_exit(vault.dom().await.unwrap(), note, 2_500, RECIPIENT, 0);
    let sign = |signer: &alloy::signers::local::PrivateKeySigner, digest| {
        Bytes::from(signer.sign_hash_sync(&digest).unwrap().as_bytes().to_vec())
    };
    let signers = dev_signers(2);
    let digest = vault.clearance_digest(&exit.nullifier).await.unwrap();
    let stranger = sign(&signers[1], digest);
    assert_eq!(
        revert_name(
            vault
                .close_with_clearance(h.account(1), &exit, stranger)
                .await
        ),
        "InvalidClearance"
    );
    let other_digest = vault.clearance_digest(&Fr::from(1u64)).await.unwrap();
    let wrong_nullifier = sign(&signers[0], other_digest);
    assert_eq!(
        revert_name(
            vault
                .close_with_clearance(h.account(1), &exit, wrong_nullifier)
                .await
        ),
        "InvalidClearance"
    );

    let before = h.ledger.balance(RECIPIENT).await.unwrap();
    vault
        .close_with_clearance(h.account(1), &exit, sign(&signers[0], digest))
        .await
        .expect("closeWithClearance");
    assert_eq!(anonymity(&h, &vault, note.expiry - 1).await, 0);
    assert_eq!(
        h.ledger.balance(RECIPIENT).await.unwrap() - before,
        U256::from(2_500u64) * vault.unit_size()
    );
    assert_eq!(status(&vault, &note).await, NoteStatus::Closed);
    assert_eq!(vault.treasury_credit().await.unwrap(), U256::from(500u64));
}

/// The anonymity set at `hour` over everything final.
async fn anonymity(h: &Harness, vault: &Vault, hour: u32) -> usize {
    h.finalize_all().await;
    let head = h.ledger.finalized().await.unwrap().number;
    AnonymitySet::of(&vault.events(0, head).await.unwrap()).size_at(hour)
}

/// deposit → slash with the secret credits all of `D` to the treasury, which withdraws it.
async fn slash_credits_treasury(h: Harness) {
    let vault = deploy(&h).await;
    let note = deposit(&h, &vault, 2, 4_000).await;
    let other = deposit(&h, &vault, 3, 4_000).await;
    // Both hide a spend until they expire.
    assert_eq!(anonymity(&h, &vault, note.expiry - 1).await, 2);
    assert_eq!(anonymity(&h, &vault, note.expiry).await, 0);
    assert_eq!(
        revert_name(vault.slash(h.account(3), &secret(999)).await),
        "UnknownNote"
    );
    let receipt = vault
        .slash(h.account(3), &note.secret)
        .await
        .expect("slash");
    assert!(
        receipt.gas_used <= SLASH_GAS_TARGET,
        "[{}] slash used {} gas (TARGETS.md: ≤ {SLASH_GAS_TARGET})",
        h.name,
        receipt.gas_used
    );
    assert_eq!(status(&vault, &note).await, NoteStatus::Slashed);
    // A slashed note hides nothing any more.
    assert_eq!(anonymity(&h, &vault, other.expiry - 1).await, 1);
    assert_eq!(vault.treasury_credit().await.unwrap(), U256::from(4_000u64));
    assert_eq!(
        revert_name(vault.slash(h.account(3), &note.secret).await),
        "WrongNoteStatus"
    );

    // Only the treasury (account 0) withdraws, and it gets exactly the credit.
    assert_eq!(
        revert_name(vault.withdraw_treasury(h.account(3)).await),
        "NotTreasury"
    );
    let treasury = h.account(0);
    let before = h.ledger.balance(treasury).await.unwrap();
    let receipt = vault
        .withdraw_treasury(treasury)
        .await
        .expect("withdrawTreasury");
    let after = h.ledger.balance(treasury).await.unwrap();
    assert_eq!(
        after + receipt.fee - before,
        U256::from(4_000u64) * vault.unit_size()
    );
    assert_eq!(vault.treasury_credit().await.unwrap(), U256::ZERO);
}

/// A client that made a request at index 0 and then exits declaring 0 requests reveals two
/// shares at one index: the watcher recovers `k` from the `ExitInitiated` event and slashes
/// within the window; the exit then never pays.
async fn understated_exit_is_slashed(h: Harness) {
    let vault = deploy(&h).await;
    let dom = vault.dom().await.unwrap();
    let note = deposit(&h, &vault, 3, 6_000).await;

    // The share the gateway stored for the request at index 0 (nullifier N_0).
    let request_key = derive::request_signing_key(&note.secret, 0);
    let slope = rln::slope(&dom, &note.secret, 0);
    let seen = rln::share(
        &note.secret,
        &slope,
        derive::share_x(&request_key.verifying_key()),
    );
    let seen_nullifier = rln::nullifier(&slope);

    let (exit, _) = genesis_exit(dom, note, 6_000, RECIPIENT, 0);
    let receipt = vault
        .initiate_exit(h.account(1), &exit)
        .await
        .expect("initiateExit");

    // The watcher: read the exit from the chain, match its nullifier, recover, slash.
    let events = vault.events(receipt.block, receipt.block).await.unwrap();
    let Some(NoteVault::NoteVaultEvents::ExitInitiated(event)) = events
        .iter()
        .map(|e| e.event.clone())
        .find(|e| matches!(e, NoteVault::NoteVaultEvents::ExitInitiated(_)))
    else {
        panic!("no ExitInitiated event");
    };
    let nullifier = nullgate_chain::vault::fr_from_u256(&event.nullifier, "nullifier").unwrap();
    assert_eq!(nullifier, seen_nullifier, "the exit declares index 0");
    let exit_share = rln::Share {
        x: derive::exit_x(&dom),
        y: nullgate_chain::vault::fr_from_u256(&event.share, "share").unwrap(),
    };
    let (k, _) = rln::recover(&seen, &exit_share).expect("two shares at one index");
    assert_eq!(k, note.secret);
    vault
        .slash(h.account(4), &k)
        .await
        .expect("slash during the exit window");

    h.dev.advance_time(3_601).await.unwrap();
    assert_eq!(
        revert_name(vault.finalize_exit(h.account(1), &note.commitment()).await),
        "WrongNoteStatus"
    );
    assert_eq!(h.ledger.balance(RECIPIENT).await.unwrap(), U256::ZERO);
    assert_eq!(vault.treasury_credit().await.unwrap(), U256::from(6_000u64));
}

/// An Active note is claimable by the treasury from `3600·expiry + G_exp`, not before.
async fn expired_note_is_claimed(h: Harness) {
    let vault = deploy(&h).await;
    let note = deposit(&h, &vault, 4, 2_000).await;
    assert_eq!(
        revert_name(vault.claim_expired(h.account(2), &note.commitment()).await),
        "NotYetExpired"
    );
    let now = h.ledger.latest().await.unwrap().timestamp;
    let claimable = u64::from(note.expiry) * 3_600 + 86_400;
    h.dev.advance_time(claimable - now + 1).await.unwrap();
    // Past the deadline an exit is refused as well.
    let (exit, _) = genesis_exit(vault.dom().await.unwrap(), note, 1, RECIPIENT, 0);
    assert_eq!(
        revert_name(vault.initiate_exit(h.account(1), &exit).await),
        "ExitDeadlinePassed"
    );
    vault
        .claim_expired(h.account(2), &note.commitment())
        .await
        .expect("claimExpired");
    assert_eq!(status(&vault, &note).await, NoteStatus::Expired);
    // Claimed: gone from the set even for an hour before its expiry.
    assert_eq!(anonymity(&h, &vault, note.expiry - 1).await, 0);
    assert_eq!(vault.treasury_credit().await.unwrap(), U256::from(2_000u64));
}

/// A leaf list is used only if it matches `(depositCount, depositsDigest)` exactly.
async fn leaf_list_checked_against_digest(h: Harness) {
    let vault = deploy(&h).await;
    let notes: Vec<(Fr, u64)> = (10..13)
        .map(|seed| (nullgate_zk::note::commitment(&secret(seed)), 1_000 + seed))
        .collect();
    let receipt = vault
        .deposit_many(h.account(1), &notes)
        .await
        .expect("depositMany");
    deposit(&h, &vault, 13, 1_500).await;
    h.finalize_all().await;
    let finalized = h.ledger.finalized().await.unwrap().number;
    let list: Vec<Deposit> = vault
        .events(receipt.block, finalized)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| e.deposit())
        .collect();
    let (count, onchain) = vault
        .deposit_state(BlockRef::Number(finalized))
        .await
        .unwrap();
    assert_eq!(count, 4);
    digest::check_list(&list, count, &onchain).expect("the true list matches");

    let mut tampered = list.clone();
    tampered[1].amount += 1;
    assert!(matches!(
        digest::check_list(&tampered, count, &onchain),
        Err(ChainError::DigestMismatch(_))
    ));
    assert!(digest::check_list(&list[..3], count, &onchain).is_err());
    let mut reordered = list.clone();
    reordered.swap(0, 1);
    assert!(digest::check_list(&reordered, count, &onchain).is_err());
}

/// The tree is built from finalised deposits only, and equals the tree of the notes' leaves.
async fn tree_syncs_from_finalized_events(h: Harness) {
    let vault = deploy(&h).await;
    let deployed = h.ledger.latest().await.unwrap().number;
    let mut sync = TreeSync::new(deployed);
    let first = deposit(&h, &vault, 20, 1_000).await;

    let step = sync.sync(&vault).await.expect("sync");
    assert_eq!(step.added, 0, "a deposit {} blocks deep is not final", 0);
    h.finalize_all().await;
    let step = sync.sync(&vault).await.expect("sync");
    assert_eq!(step.added, 1);

    let second = deposit(&h, &vault, 21, 2_000).await;
    let third = deposit(&h, &vault, 22, 3_000).await;
    assert_eq!(sync.sync(&vault).await.unwrap().added, 0);
    h.finalize_all().await;
    let step = sync.sync(&vault).await.expect("sync");
    assert_eq!(step.added, 2);

    let mut expected = NoteTree::new();
    let root = expected
        .extend(&[first.leaf(), second.leaf(), third.leaf()])
        .unwrap();
    assert_eq!(step.root, root);
    assert_eq!(sync.tree().root(), root);
    assert_eq!(sync.deposits().len(), 3);
}

macro_rules! on_both_ledgers {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Harness::embedded()).await;
                }
            )*
        }
        mod anvil {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(nullgate_anvil),
                    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
                )]
                async fn $scenario() {
                    super::$scenario(super::Harness::anvil()).await;
                }
            )*
        }
    };
}

on_both_ledgers!(
    exit_then_finalize_pays,
    close_with_clearance_pays_at_once,
    slash_credits_treasury,
    understated_exit_is_slashed,
    expired_note_is_claimed,
    leaf_list_checked_against_digest,
    tree_syncs_from_finalized_events,
);

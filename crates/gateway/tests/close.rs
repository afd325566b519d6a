//! Mutual close (PROTOCOL §8) against the embedded chain: an exit proof verified by the
//! gateway gets a clearance, the same share asked again the same one, and
//! `closeWithClearance` pays out at once; a request at the closed index is refused; an exit
//! that understates a note's requests is caught and the note slashed; a broken statement
//! gets nothing.

mod common;

use common::{Harness, chat};
use nullgate_chain::{Address, Bytes, ExitArgs, Ledger, NoteStatus};
use nullgate_protocol::{
    close::{CLOSE_PATH, Clearance, CloseRequest},
    rejection::Problem,
};
use nullgate_zk::{circuit::exit::ExitPublic, groth16::Proof};

use common::RECIPIENT;

fn close_request(public: &ExitPublic, proof: &Proof) -> CloseRequest {
    CloseRequest {
        commitment: public.commitment,
        key_number: 1,
        payout: public.payout,
        recipient: public.recipient,
        nullifier: public.nullifier,
        exit_y: public.exit_y,
        proof: proof.clone(),
    }
}

async fn ask(h: &Harness, request: &CloseRequest) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{CLOSE_PATH}", h.url))
        .header("content-type", "application/json")
        .body(request.to_json())
        .send()
        .await
        .unwrap()
}

async fn problem(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let problem: Problem = response.json().await.unwrap();
    (status, problem.code().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mutual_close_is_cleared_once_and_pays_out_at_once() {
    let h = Harness::start(1).await;
    let (public, proof) = h.genesis_exit(0, 0, 2_500);
    let request = close_request(&public, &proof);

    let answer = ask(&h, &request).await;
    assert_eq!(answer.status(), 200);
    let clearance = Clearance::parse(&answer.bytes().await.unwrap()).unwrap();
    let again = ask(&h, &request).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        Clearance::parse(&again.bytes().await.unwrap()).unwrap(),
        clearance,
        "the same share gets the same clearance"
    );

    let recipient = Address::from(RECIPIENT);
    let before = h.dev.ledger.balance(recipient).await.unwrap();
    h.dev
        .vault
        .close_with_clearance(
            h.dev.operator,
            &ExitArgs::new(&public, 1, &proof),
            Bytes::from(clearance.0.to_vec()),
        )
        .await
        .expect("closeWithClearance accepts the gateway's clearance");
    assert!(
        h.dev.ledger.balance(recipient).await.unwrap() > before,
        "paid at once"
    );
    assert_eq!(h.status_of(0).await, NoteStatus::Closed);

    // The closed note's index 0 is the exit's: a request there is refused.
    let witness = h.genesis(0);
    let body = chat("after the close", false);
    let credential = h.sign(h.prove(&witness, 0, h.hour().await), &witness, &body);
    let refused = h
        .post_chat(Some(&credential.to_authorization()), &body)
        .await;
    assert_eq!(problem(refused).await, (409, "double-spend".into()));
    assert_eq!(h.upstream.counters().chat_completions, 0);
    // A closed note gets no second clearance.
    let (public, proof) = h.genesis_exit(0, 1, 100);
    assert_eq!(
        problem(ask(&h, &close_request(&public, &proof)).await).await,
        (409, "cannot-close".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_understated_exit_is_slashed_and_a_broken_one_gets_nothing() {
    let h = Harness::start(2).await;
    // Note 0 spends index 0, then asks to close declaring no request at all.
    let response = h
        .pay(&h.genesis(0), 0, common::CHAT, &chat("one request", false))
        .await;
    assert_eq!(response.status(), 200);
    let (public, proof) = h.genesis_exit(0, 0, 90_000);
    assert_eq!(
        problem(ask(&h, &close_request(&public, &proof)).await).await,
        (409, "double-spend".into())
    );
    assert_eq!(
        h.wait_for(0, NoteStatus::Slashed).await,
        NoteStatus::Slashed,
        "k recovered from the two shares"
    );

    // Note 1: a statement that is not the one proven, and a payout above the deposit.
    let (public, proof) = h.genesis_exit(1, 0, 2_000);
    let before = h.stored().await;
    let mut forged = close_request(&public, &proof);
    forged.payout = 3_000;
    assert_eq!(
        problem(ask(&h, &forged).await).await,
        (401, "invalid-proof".into())
    );
    forged.payout = h.notes[1].deposit + 1;
    assert_eq!(
        problem(ask(&h, &forged).await).await,
        (409, "cannot-close".into())
    );
    let mut unknown = close_request(&public, &proof);
    unknown.commitment = nullgate_zk::Fr::from(5u64);
    assert_eq!(
        problem(ask(&h, &unknown).await).await,
        (409, "cannot-close".into())
    );
    let garbage = reqwest::Client::new()
        .post(format!("{}{CLOSE_PATH}", h.url))
        .body("{\"commitment\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(garbage).await.0, 400);
    assert_eq!(h.stored().await, before, "nothing recorded");
    assert_eq!(h.status_of(1).await, NoteStatus::Active);
    // The honest statement still clears.
    assert_eq!(ask(&h, &close_request(&public, &proof)).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_clearance_once_the_vault_names_another_clearance_signer() {
    let h = Harness::start(1).await;
    let (public, proof) = h.genesis_exit(0, 0, 2_500);
    h.dev
        .vault
        .set_clearance_signer(h.dev.operator, Address::repeat_byte(0x77))
        .await
        .unwrap();
    // The watcher reads the change within a poll or two; a clearance signed before it
    // would be refused on chain all the same.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let answer = ask(&h, &close_request(&public, &proof)).await;
        if answer.status() != 200 {
            assert_eq!(problem(answer).await, (409, "cannot-close".to_owned()));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still cleared");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

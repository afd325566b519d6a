//! Exits seen on chain (PROTOCOL §8): the watcher records each `ExitInitiated` share in the
//! nullifier store. An exit that understates the note's requests (its `N_n` already used
//! by a request) reveals `k` and the note is slashed within the exit window; a request at an
//! honest exit's index is refused, and slashed while the note is Exiting.

mod common;

use std::time::Duration;

use common::{Harness, chat, metric};
use nullgate_chain::{ExitArgs, NoteStatus};
use nullgate_protocol::rejection::Problem;

async fn exits_recorded(h: &Harness) -> u64 {
    metric(&h.url, "nullgate_gateway_exits_recorded_total").await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_understated_exit_on_chain_is_slashed_within_its_window() {
    let h = Harness::start(1).await;
    let paid = h
        .pay(&h.genesis(0), 0, common::CHAT, &chat("one request", false))
        .await;
    assert_eq!(paid.status(), 200);
    // The client declares no request at all: n = 0, whose N_0 the request above used.
    let (public, proof) = h.genesis_exit(0, 0, 90_000);
    h.dev
        .vault
        .initiate_exit(h.dev.operator, &ExitArgs::new(&public, 1, &proof))
        .await
        .expect("the chain cannot tell the exit understates");
    assert_eq!(
        h.wait_for(0, NoteStatus::Slashed).await,
        NoteStatus::Slashed,
        "the watcher recovered k from the exit's share and the request's"
    );
    assert_eq!(exits_recorded(&h).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_at_an_exits_index_is_refused_and_slashed() {
    let h = Harness::start(1).await;
    let (public, proof) = h.genesis_exit(0, 0, 50_000);
    h.dev
        .vault
        .initiate_exit(h.dev.operator, &ExitArgs::new(&public, 1, &proof))
        .await
        .unwrap();
    for _ in 0..100 {
        if exits_recorded(&h).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(exits_recorded(&h).await, 1);
    assert_eq!(
        h.wait_for(0, NoteStatus::Exiting).await,
        NoteStatus::Exiting
    );
    // A request at index 0 after the exit: the second share on the line.
    let response = h
        .pay(
            &h.genesis(0),
            0,
            common::CHAT,
            &chat("after the exit", false),
        )
        .await;
    assert_eq!(response.status(), 409);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code(), Some("double-spend"));
    assert_eq!(h.upstream.counters().chat_completions, 0);
    assert_eq!(
        h.wait_for(0, NoteStatus::Slashed).await,
        NoteStatus::Slashed
    );
}

//! Step 3 at load: concurrent proofs are checked together, a failing batch is checked again
//! proof by proof (the honest ones still pass), and after a failure proofs are checked
//! alone, so an invalid proof costs one verification.

mod common;

use std::sync::Arc;

use common::{CHAT, Harness, chat, metric, sign_with};
use nullgate_gateway::{
    metrics::Metrics,
    verify::{Presented, Verifier},
};
use nullgate_protocol::rejection::Rejection;
use nullgate_zk::{Fr, derive};

/// `Presented` for a signed chat request.
fn presented(h: &Harness, authorization: &str, body: &str) -> Presented {
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    Presented::parse(
        Some(authorization.as_bytes()),
        "POST",
        CHAT,
        &headers,
        body.as_bytes(),
        &h.dev.price_list,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_are_checked_together_and_a_failing_batch_proof_by_proof() {
    let h = Harness::start(3).await;
    let hour = h.hour().await;
    let honest: Vec<Presented> = (0..3)
        .map(|i| {
            let witness = h.genesis(i);
            let body = chat(&format!("batched {i}"), false);
            let credential = h.sign(h.prove(&witness, 0, hour), &witness, &body);
            presented(&h, &credential.to_authorization(), &body)
        })
        .collect();
    // Note 0's proof under another nullifier: signed properly, only the proof is wrong.
    let forged = {
        let witness = h.genesis(0);
        let mut unsigned = h.prove(&witness, 0, hour);
        unsigned.nullifier = Fr::from(424_242u64);
        let body = chat("forged", false);
        let esk = derive::request_signing_key(&witness.note.secret, 0);
        presented(
            &h,
            &sign_with(unsigned, &esk, &body).to_authorization(),
            &body,
        )
    };
    let view = h.tree_view().await;
    let deployment = h.gateway.deployment().clone();
    let metrics = Arc::new(Metrics::default());
    let verifier = Verifier::new(h.dev.request_key.verifier_key(), 1_000, metrics.clone());
    let run = |credentials: Vec<Presented>| {
        verifier.verify_many(
            &deployment,
            &h.dev.price_list,
            credentials
                .into_iter()
                .map(|p| (p, view.as_ref()))
                .collect(),
        )
    };

    // Three honest proofs: one check of three.
    let results = run(honest.clone());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!((metrics.batches(), metrics.proofs_checked()), (1, 3));

    // A forged one among them: the batch fails, each is checked alone, the honest pass.
    let mixed = vec![honest[0].clone(), forged.clone(), honest[2].clone()];
    let results = run(mixed);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(results[1].as_ref().unwrap_err(), &Rejection::InvalidProof);
    assert_eq!((metrics.batches(), metrics.proofs_checked()), (5, 9));

    // Right after a failure proofs are checked alone: a forged one costs one verification.
    let results = run(vec![forged.clone(), honest[1].clone()]);
    assert_eq!(results[0].as_ref().unwrap_err(), &Rejection::InvalidProof);
    assert!(results[1].is_ok());
    assert_eq!((metrics.batches(), metrics.proofs_checked()), (7, 11));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_batches() {
    const REQUESTS: usize = 24;
    let h = Harness::start(REQUESTS).await;
    let hour = h.hour().await;
    let requests: Vec<(String, String)> = (0..REQUESTS)
        .map(|i| {
            let witness = h.genesis(i);
            let body = chat(&format!("concurrent {i}"), false);
            let credential = h.sign(h.prove(&witness, 0, hour), &witness, &body);
            (credential.to_authorization(), body)
        })
        .collect();
    let batches_before = metric(&h.url, "nullgate_gateway_verification_batch_size_count").await;
    let proofs_before = metric(&h.url, "nullgate_gateway_verification_batch_size_sum").await;
    let client = reqwest::Client::new();
    let endpoint = format!("{}{CHAT}", h.url);
    let sent: Vec<_> = requests
        .into_iter()
        .map(|(auth, body)| {
            let request = client
                .post(&endpoint)
                .header("content-type", "application/json")
                .header("authorization", auth)
                .body(body);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    for task in sent {
        assert_eq!(task.await.unwrap(), 200);
    }
    let batches =
        metric(&h.url, "nullgate_gateway_verification_batch_size_count").await - batches_before;
    let proofs =
        metric(&h.url, "nullgate_gateway_verification_batch_size_sum").await - proofs_before;
    eprintln!("{REQUESTS} concurrent requests verified in {batches} checks");
    assert_eq!(proofs, REQUESTS as u64, "each proof checked once");
    assert!(
        batches < REQUESTS as u64,
        "some proofs were checked together ({batches} checks)"
    );
}

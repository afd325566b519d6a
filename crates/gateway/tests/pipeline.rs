//! The gateway's pipeline (PROTOCOL §6) with real credentials: retries, second payloads,
//! double spends, every refusal before reservation storing nothing, streamed receipts.

mod common;

use common::{Harness, chat, receipt_of, sign_with, stream_receipt};
use nullgate_chain::NoteStatus;
use nullgate_protocol::rejection::Problem;
use nullgate_zk::{derive, note, schnorr::PublicKey};

fn state_key() -> PublicKey {
    nullgate_gateway::dev::dev_state_key().public_key()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paid_call_a_retry_and_a_second_payload() {
    let h = Harness::start(1).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;
    let unsigned = h.prove(&witness, 1, hour);
    let body = chat("What is the capital of France?", false);
    let credential = h.sign(unsigned.clone(), &witness, &body);
    let auth = credential.to_authorization();

    let first = h.post_chat(Some(&auth), &body).await;
    assert_eq!(first.status(), 200);
    let receipt = receipt_of(&first);
    let answer: serde_json::Value = first.json().await.unwrap();
    let usage = &answer["usage"];
    let expected =
        usage["prompt_tokens"].as_u64().unwrap() + 4 * usage["completion_tokens"].as_u64().unwrap();
    assert_eq!(
        receipt.charge, expected,
        "charged exactly the usage priced by the list"
    );
    receipt
        .check(
            &h.dom,
            &unsigned.nullifier,
            &unsigned.published_state,
            2_000,
            &[(1, state_key())],
        )
        .unwrap();
    assert_eq!(h.upstream.counters().chat_completions, 1);

    // A retry: the same receipt and body, and no second upstream call.
    let retry = h.post_chat(Some(&auth), &body).await;
    assert_eq!(retry.status(), 200);
    assert_eq!(receipt_of(&retry), receipt);
    let again: serde_json::Value = retry.json().await.unwrap();
    assert_eq!(again, answer);
    assert_eq!(h.upstream.counters().chat_completions, 1);

    // Another payload at the same index (same derived key): 409 with the stored receipt.
    let other = chat("Something else entirely", false);
    let second = h.sign(unsigned, &witness, &other);
    let conflict = h.post_chat(Some(&second.to_authorization()), &other).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(receipt_of(&conflict), receipt);
    let problem: Problem = conflict.json().await.unwrap();
    assert_eq!(problem.code(), Some("index-used"));
    assert_eq!(h.upstream.counters().chat_completions, 1);
    assert_eq!(h.stored().await, (1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_request_keys_at_one_index_slash_the_note() {
    let h = Harness::start(1).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;
    let body = chat("first", false);
    let honest = h.prove(&witness, 0, hour);
    let response = h
        .post_chat(
            Some(&h.sign(honest.clone(), &witness, &body).to_authorization()),
            &body,
        )
        .await;
    assert_eq!(response.status(), 200);

    // A cheater's second credential at the same index with another request key: the proof
    // would not matter (N is looked up first), but make it a full credential anyway.
    let mut cheat = honest;
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    cheat.request_key = other_key.verifying_key();
    cheat.share_y = nullgate_zk::rln::share(
        &witness.note.secret,
        &nullgate_zk::rln::slope(&h.dom, &witness.note.secret, 0),
        derive::share_x(&other_key.verifying_key()),
    )
    .y;
    let body2 = chat("second", false);
    let response = h
        .post_chat(
            Some(&sign_with(cheat, &other_key, &body2).to_authorization()),
            &body2,
        )
        .await;
    assert_eq!(response.status(), 409);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.code(), Some("double-spend"));

    assert_eq!(
        h.wait_for(0, NoteStatus::Slashed).await,
        NoteStatus::Slashed,
        "k recovered and slash(k) submitted"
    );
    assert_eq!(h.upstream.counters().chat_completions, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_before_reservation_store_nothing() {
    let h = Harness::start(1).await;
    let body = chat("hello", false);

    let missing = h.post_chat(None, &body).await;
    assert_eq!(missing.status(), 402);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("NullGate ")
    );
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Problem = missing.json().await.unwrap();
    assert_eq!(problem.well_known.as_deref(), Some("/.well-known/nullgate"));

    let malformed = h.post_chat(Some("NullGate AAAA"), &body).await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(
        malformed.json::<Problem>().await.unwrap().code(),
        Some("malformed-credential")
    );

    // A real credential whose proof was made for another class (the gateway's public inputs
    // differ): 401 with the challenge.
    let witness = h.genesis(0);
    let hour = h.hour().await;
    let mut unsigned = h.prove(&witness, 0, hour);
    unsigned.class_index = 1;
    let forged = h.sign(unsigned, &witness, &body);
    let invalid = h.post_chat(Some(&forged.to_authorization()), &body).await;
    assert_eq!(invalid.status(), 401);
    assert!(
        invalid.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid-proof")
    );

    // A valid proof with a signature over another payload: 401.
    let unsigned = h.prove(&witness, 0, hour);
    let signed_other = h.sign(unsigned, &witness, &chat("another payload", false));
    let bad_signature = h
        .post_chat(Some(&signed_other.to_authorization()), &body)
        .await;
    assert_eq!(bad_signature.status(), 401);

    assert_eq!(h.stored().await, (0, 0), "nothing stored by any refusal");
    assert_eq!(h.upstream.counters().chat_completions, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_hour_is_refused_with_a_floor_fee_receipt() {
    let h = Harness::start(1).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;
    let body = chat("late", false);
    let unsigned = h.prove(&witness, 0, hour - 3);
    let response = h
        .post_chat(
            Some(&h.sign(unsigned, &witness, &body).to_authorization()),
            &body,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(receipt_of(&response).charge, 5);
    assert_eq!(h.upstream.counters().chat_completions, 0);
    assert_eq!(h.stored().await, (1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_call_relays_events_and_ends_with_the_receipt() {
    let h = Harness::start(1).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;
    let body = chat("Tell me a story about a lighthouse", true);
    let unsigned = h.prove(&witness, 1, hour);
    let response = h
        .post_chat(
            Some(&h.sign(unsigned.clone(), &witness, &body).to_authorization()),
            &body,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = response.text().await.unwrap();
    // The usage chunk the gateway asked for is dropped: the client did not ask for it.
    assert!(!text.contains("\"usage\":{"), "{text}");
    let receipt = stream_receipt(&text);
    receipt
        .check(
            &h.dom,
            &unsigned.nullifier,
            &unsigned.published_state,
            2_000,
            &[(1, state_key())],
        )
        .unwrap();
    let counters = h.upstream.counters();
    assert_eq!(
        receipt.charge,
        counters.prompt_tokens + 4 * counters.completion_tokens
    );
    assert!(text.contains("data: [DONE]"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_over_its_cap_is_cut_off_at_it() {
    let h = Harness::start(1).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;
    // Class 0 pays 500 credits; the prompt alone is about 450 and the answer adds 4 per token.
    let body = serde_json::json!({
        "model": "nullgate-example-1",
        "messages": [{"role": "user", "content": "word ".repeat(450)}],
        "max_tokens": 400,
        "stream": true,
    })
    .to_string();
    let unsigned = h.prove(&witness, 0, hour);
    let response = h
        .post_chat(
            Some(&h.sign(unsigned, &witness, &body).to_authorization()),
            &body,
        )
        .await;
    let text = response.text().await.unwrap();
    assert!(text.contains("event: nullgate-cutoff"), "{text}");
    let receipt = stream_receipt(&text);
    assert_eq!(receipt.charge, 500, "never above the class cap");
}

#[tokio::test(flavor = "multi_thread")]
async fn well_known_tree_receipt_and_metrics_endpoints() {
    use nullgate_protocol::{tree::decode_leaves, well_known::WellKnown};
    let h = Harness::start(2).await;
    let http = reqwest::Client::new();

    let doc = http
        .get(format!("{}/.well-known/nullgate", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(doc.status(), 200);
    let (doc, prices) = WellKnown::parse(&doc.bytes().await.unwrap()).unwrap();
    assert_eq!(prices, h.dev.price_list);
    assert!(doc.dev_keys);
    assert_eq!(doc.current_key, 1);

    let tree = http
        .get(format!("{}/nullgate/tree", h.url))
        .send()
        .await
        .unwrap();
    let etag = tree.headers()["etag"].clone();
    let leaves = decode_leaves(&tree.bytes().await.unwrap(), 16).unwrap();
    assert_eq!(leaves.len(), 2);
    assert_eq!(leaves[1].commitment, note::commitment(&h.notes[1].secret));
    let unchanged = http
        .get(format!("{}/nullgate/tree", h.url))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    let witness = h.genesis(1);
    let body = chat("receipt lookup", false);
    let unsigned = h.prove(&witness, 0, h.hour().await);
    let nullifier = hex::encode(nullgate_zk::field::fr_to_bytes(&unsigned.nullifier));
    let lookup = |n: String| {
        let http = http.clone();
        let url = format!("{}/nullgate/receipt/{n}", h.url);
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(lookup(nullifier.clone()).await["status"], "unknown");
    let paid = h
        .post_chat(
            Some(&h.sign(unsigned, &witness, &body).to_authorization()),
            &body,
        )
        .await;
    let receipt = receipt_of(&paid);
    let found = lookup(nullifier).await;
    assert_eq!(found["status"], "receipt");
    assert_eq!(found["receipt"], receipt.to_header());
    let bad = http
        .get(format!("{}/nullgate/receipt/zz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let metrics = http
        .get(format!("{}/metrics", h.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("nullgate_gateway_paid_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "nullgate_gateway_credits_charged_total {}",
        receipt.charge
    )));
    // The embedded chain finalises at once: the watcher is level with it.
    assert!(
        metrics.contains(
            "nullgate_gateway_watcher_lag_blocks 0
"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "nullgate_gateway_watcher_alarm 0
"
    ));
    // An unpriced route with a credential-less request: 402 first (the challenge), and a
    // priced-route check only once a credential is there.
    let unpriced = http
        .get(format!("{}/v1/unknown", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unpriced.status(), 402);
}

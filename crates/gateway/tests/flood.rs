//! An invalid-proof flood while honest requests continue (issue: the gateway under attack):
//! every honest request is answered, the flood is refused, no invalid proof costs more than
//! one verification, nothing of the flood is stored, and memory stays bounded.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, chat, metric, sign_with};
use nullgate_gateway::verify::MAX_BATCH;
use nullgate_zk::{Fr, derive};

/// Requests in the flood.
const FLOOD: usize = 1_000;

/// Honest requests sent while it runs (one note each).
const HONEST: usize = 5;

/// The process's resident set, kB (`/proc/self/status`).
fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalid_proof_flood_is_refused_while_honest_requests_are_served() {
    let h = Harness::start(HONEST + 1).await;
    let hour = h.hour().await;
    let client = reqwest::Client::new();

    // The flood: note 0's genesis proof under a thousand made-up nullifiers. Each is signed
    // properly by the request key it names, and its root is real: only the proof is wrong,
    // and only verifying it can tell.
    let template = h.genesis(0);
    let base = h.prove(&template, 0, hour);
    let esk = derive::request_signing_key(&template.note.secret, 0);
    let flood: Vec<(String, String)> = (0..FLOOD)
        .map(|i| {
            let mut forged = base.clone();
            forged.nullifier = Fr::from(1_000_003u64 + i as u64);
            let body = chat(&format!("flood {i}"), false);
            (sign_with(forged, &esk, &body).to_authorization(), body)
        })
        .collect();
    let honest: Vec<(String, String)> = (1..=HONEST)
        .map(|note| {
            let witness = h.genesis(note);
            let body = chat(&format!("honest question {note}"), false);
            let credential = h.sign(h.prove(&witness, 0, hour), &witness, &body);
            (credential.to_authorization(), body)
        })
        .collect();
    let checked_before = metric(&h.url, "nullgate_gateway_proofs_verified_total").await;
    let resident_before = resident_kb();

    let endpoint = format!("{}{}", h.url, common::CHAT);
    let post = move |auth: String, body: String| {
        let request = client
            .post(&endpoint)
            .header("content-type", "application/json")
            .header("authorization", auth)
            .body(body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let flooding: Vec<_> = flood
        .into_iter()
        .map(|(auth, body)| tokio::spawn(post(auth, body)))
        .collect();
    // The honest requests go out while the flood is in flight; each re-sends its same bytes
    // after a refusal that says "later" (429, 503), as a journalled request is re-sent.
    let answering: Vec<_> = honest
        .into_iter()
        .map(|(auth, body)| {
            let post = post.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                loop {
                    let status = post(auth.clone(), body.clone()).await;
                    if !matches!(status, 429 | 503) || started.elapsed() > Duration::from_secs(60) {
                        return status;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        })
        .collect();
    let mut flood_statuses = Vec::new();
    for task in flooding {
        flood_statuses.push(task.await.unwrap());
    }
    let resident_after = resident_kb();
    let mut honest_statuses = Vec::new();
    for task in answering {
        honest_statuses.push(task.await.unwrap());
    }

    assert_eq!(
        honest_statuses, [200; HONEST],
        "every honest request served"
    );
    assert!(
        flood_statuses.iter().all(|&s| s == 401 || s == 429),
        "the flood is refused (invalid proof, or rate-limited): {:?}",
        flood_statuses
            .iter()
            .filter(|&&s| s != 401 && s != 429)
            .collect::<Vec<_>>()
    );
    let invalid = flood_statuses.iter().filter(|&&s| s == 401).count() as u64;
    let checked = metric(&h.url, "nullgate_gateway_proofs_verified_total").await - checked_before;
    // A proof counts once per check it is in. The batches the flood spoils before the
    // verifier turns to checking alone (at most one per slot, both cores) are checked
    // twice; from then on each proof once.
    let spoiled = (2 * MAX_BATCH) as u64;
    assert!(
        checked <= invalid + HONEST as u64 + spoiled,
        "{checked} verifications for {invalid} invalid proofs and {HONEST} honest ones"
    );
    assert!(invalid > 0, "some of the flood reached verification");
    assert_eq!(
        h.stored().await,
        (HONEST as u64, 0),
        "nothing of the flood is stored"
    );
    assert_eq!(h.upstream.counters().chat_completions, HONEST as u64);
    let grown_mb = resident_after.saturating_sub(resident_before) / 1024;
    eprintln!(
        "flood of {FLOOD}: {invalid} verified and refused 401, {} refused 429; {checked} \
         verifications; resident memory +{grown_mb} MB",
        FLOOD as u64 - invalid
    );
    // Both sides' buffers for a thousand connections open at once are most of it.
    assert!(
        grown_mb < 96,
        "resident memory grew {grown_mb} MB during the flood"
    );
}

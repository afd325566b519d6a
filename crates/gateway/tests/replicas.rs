//! Two gateway replicas on one PostgreSQL store (PROTOCOL §6 step 4: the store is shared and
//! strongly consistent): a cheater racing 100 request keys at one index over both gets one
//! upstream call and a slashed note; an honest wallet copied to a second device gets one
//! call executed and the other answered 409 with its receipt, and nothing slashed.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Harness, chat, postgres::Schema, receipt_of, sign_for};
use nullgate_chain::{BlockRef, NoteStatus};
use nullgate_gateway::{
    Gateway,
    config::Limits,
    store::{NullifierStore, postgres::PostgresStore},
};
use nullgate_protocol::rejection::Problem;
use nullgate_zk::note;

/// The lease in the take-over test.
const LEASE: Duration = Duration::from_secs(3);

/// How many submissions race at the index.
const RACERS: usize = 100;

/// Two replicas, each with a store (and a connection pool) of its own on one database; the
/// gateways serve while they are kept.
async fn two_replicas(h: &Harness, schema: &Schema) -> (Vec<Gateway>, [String; 2]) {
    let mut gateways = Vec::new();
    let mut urls = Vec::new();
    for _ in 0..2 {
        let store = PostgresStore::connect(&schema.url, 24).await.unwrap();
        let (gateway, url) = h.replica(Arc::new(store) as Arc<dyn NullifierStore>).await;
        gateways.push(gateway);
        urls.push(url);
    }
    (gateways, [urls[0].clone(), urls[1].clone()])
}

async fn send(url: &str, authorization: String, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{url}{}", common::CHAT))
        .header("content-type", "application/json")
        .header("authorization", authorization)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(nullgate_postgres),
    ignore = "needs PostgreSQL: set NULLGATE_POSTGRES_URL (.ci/run starts one)"
)]
async fn a_hundred_request_keys_racing_at_one_index_over_two_replicas_get_one_call_and_a_slash() {
    let h = Harness::start(1).await;
    let schema = Schema::fresh().await;
    let (_gateways, replicas) = two_replicas(&h, &schema).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;

    // A hundred valid credentials at index 0, each for a request key of its own.
    let keys: Vec<ed25519_dalek::SigningKey> = (0..RACERS)
        .map(|i| ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32]))
        .collect();
    let credentials: Vec<(String, String)> = std::thread::scope(|scope| {
        let per_thread = RACERS.div_ceil(2);
        let workers: Vec<_> = keys
            .chunks(per_thread)
            .map(|chunk| {
                let (h, witness) = (&h, &witness);
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|key| {
                            let body = chat(&format!("racer {:?}", key.as_bytes()[0]), false);
                            let unsigned = h.prove_with_key(witness, 0, hour, key);
                            let credential = sign_for(unsigned, key, common::CHAT, &body);
                            (credential.to_authorization(), body)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let distinct: std::collections::HashSet<_> = credentials.iter().map(|(a, _)| a).collect();
    assert_eq!(distinct.len(), RACERS, "a hundred distinct credentials");

    let racing = credentials
        .into_iter()
        .enumerate()
        .map(|(i, (auth, body))| {
            let url = replicas[i % 2].clone();
            tokio::spawn(async move { send(&url, auth, body).await.status().as_u16() })
        })
        .collect::<Vec<_>>();
    let mut statuses = Vec::new();
    for task in racing {
        statuses.push(task.await.unwrap());
    }
    let served = statuses.iter().filter(|&&s| s == 200).count();
    assert_eq!(served, 1, "exactly one served: {statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 409),
        "every other racer is caught as a double spend: {statuses:?}"
    );
    assert_eq!(
        h.upstream.counters().chat_completions,
        1,
        "one upstream call"
    );
    assert_eq!(
        h.wait_for(0, NoteStatus::Slashed).await,
        NoteStatus::Slashed,
        "k recovered and the note slashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(nullgate_postgres),
    ignore = "needs PostgreSQL: set NULLGATE_POSTGRES_URL (.ci/run starts one)"
)]
async fn an_honest_wallet_on_two_devices_gets_one_call_and_a_409_with_the_receipt() {
    let h = Harness::start(1).await;
    let schema = Schema::fresh().await;
    let (_gateways, replicas) = two_replicas(&h, &schema).await;
    let witness = h.genesis(0);
    let hour = h.hour().await;
    // Both devices derive the same request key and prove the same index; their payloads
    // differ.
    let unsigned = h.prove(&witness, 0, hour);
    let devices: Vec<(String, String)> = ["from the laptop", "from the phone"]
        .into_iter()
        .map(|text| {
            let body = chat(text, false);
            let credential = h.sign(unsigned.clone(), &witness, &body);
            (credential.to_authorization(), body)
        })
        .collect();
    let racing: Vec<_> = devices
        .iter()
        .cloned()
        .zip(replicas.iter().cloned())
        .map(|((auth, body), url)| tokio::spawn(async move { send(&url, auth, body).await }))
        .collect();
    let mut answers = Vec::new();
    for task in racing {
        answers.push(task.await.unwrap());
    }
    // The one that lost may have found the other still running (503): it re-sends the same
    // bytes, as the client's journal does, and then gets its 409.
    for (i, answer) in answers.iter_mut().enumerate() {
        for _ in 0..50 {
            if answer.status() != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            let (auth, body) = devices[i].clone();
            *answer = send(&replicas[i], auth, body).await;
        }
    }
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409]);
    let receipts: Vec<_> = answers.iter().map(receipt_of).collect();
    assert_eq!(
        receipts[0], receipts[1],
        "the 409 carries the served call's receipt"
    );
    let conflict = answers.into_iter().find(|a| a.status() == 409).unwrap();
    let problem: Problem = conflict.json().await.unwrap();
    assert_eq!(problem.code(), Some("index-used"));
    assert_eq!(h.upstream.counters().chat_completions, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.dev
            .vault
            .note(&note::commitment(&witness.note.secret), BlockRef::Latest)
            .await
            .unwrap()
            .status,
        NoteStatus::Active,
        "nothing slashed"
    );
}

/// An upstream that accepts connections and never answers: the replica in front of it
/// stops mid-request, holding its reservation, as a killed one would.
async fn silent_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(nullgate_postgres),
    ignore = "needs PostgreSQL: set NULLGATE_POSTGRES_URL (.ci/run starts one)"
)]
async fn a_lease_left_by_a_stopped_replica_is_finished_by_the_other_as_a_retry() {
    let h = Harness::start(1).await;
    let schema = Schema::fresh().await;
    let limits = Limits {
        poll_ms: 50,
        lease_seconds: LEASE.as_secs(),
        ..Limits::default()
    };
    let store = || async { Arc::new(PostgresStore::connect(&schema.url, 24).await.unwrap()) };
    let (_stuck, stuck_url) = h
        .replica_with(store().await, &silent_upstream().await, limits.clone())
        .await;
    let (_live, live_url) = h
        .replica_with(store().await, &h.upstream.base_url(), limits)
        .await;
    let witness = h.genesis(0);
    let body = chat("a request whose first replica stops", false);
    let unsigned = h.prove(&witness, 0, h.hour().await);
    let auth = h.sign(unsigned, &witness, &body).to_authorization();

    // The first replica reserves N and never finishes; the client gives up on it.
    let reserved = std::time::Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let lost = client
        .post(format!("{stuck_url}{}", common::CHAT))
        .header("content-type", "application/json")
        .header("authorization", &auth)
        .body(body.clone())
        .send()
        .await;
    assert!(lost.is_err(), "the stopped replica never answers");

    // Inside the lease the other replica says the original is still running (checked when
    // this machine was fast enough to ask inside it).
    let early = send(&live_url, auth.clone(), body.clone()).await;
    if reserved.elapsed() < LEASE - Duration::from_millis(500) {
        assert_eq!(early.status(), 503);
        assert_eq!(h.upstream.counters().chat_completions, 0);
    }

    // Once the lease expired, the journal's re-send is finished there as a retry: the
    // stopped replica had forwarded it, so it is not run a second time; the floor fee is
    // charged and the wallet advances.
    tokio::time::sleep(LEASE.saturating_sub(reserved.elapsed()) + Duration::from_millis(300)).await;
    let finished = send(&live_url, auth.clone(), body.clone()).await;
    assert_eq!(finished.status(), 502);
    let receipt = receipt_of(&finished);
    assert_eq!(receipt.charge, h.dev.price_list.floor_fee());
    let problem: serde_json::Value = finished.json().await.unwrap();
    assert!(
        problem["type"].as_str().unwrap().ends_with("interrupted"),
        "{problem}"
    );
    assert_eq!(h.upstream.counters().chat_completions, 0);
    // And from then on it is a plain retry, on either replica's store.
    let again = send(&live_url, auth, body).await;
    assert_eq!(again.status(), 502);
    assert_eq!(receipt_of(&again), receipt);
    assert_eq!(h.upstream.counters().chat_completions, 0);
}

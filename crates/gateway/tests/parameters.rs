//! The watcher follows the vault's key and parameter changes (PROTOCOL §2, §6 opening):
//! service stops while the vault pins a price list, OHTTP keys or a state key the gateway
//! does not serve, and resumes when they match again; requests verify under the registered
//! keys not revoked, and a gateway whose key is no longer current stops an hour after the
//! new key's activation.

mod common;

use std::time::{Duration, Instant};

use common::{CHAT, Harness, chat, metric};
use nullgate_chain::{B256, DevChain, Ledger};
use nullgate_protocol::rejection::Problem;
use nullgate_zk::{curve::Scalar, schnorr::SecretKey};

/// A request without a credential: 402 while serving, 503 with the reason while stopped.
async fn probe(h: &Harness) -> (u16, String) {
    let answer = h.post_chat(None, &chat("probe", false)).await;
    let status = answer.status().as_u16();
    let problem: Problem = answer.json().await.unwrap();
    (status, problem.title)
}

/// Probes until the status is `status` (the watcher polls every 50 ms), at most 10 s.
async fn until(h: &Harness, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, title) = probe(h).await;
        if got == status || Instant::now() > deadline {
            assert_eq!(got, status, "{title}");
            return title;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn well_known(h: &Harness) -> serde_json::Value {
    reqwest::get(format!("{}/.well-known/nullgate", h.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_price_list_change_stops_service_when_it_takes_effect() {
    let h = Harness::start(1).await;
    until(&h, 402).await;
    h.dev
        .vault
        .set_price_list_hash(h.dev.operator, B256::repeat_byte(7))
        .await
        .unwrap();
    // Announced, not in effect for W (one hour on a DEV vault): still serving, paid too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = h.pay(&h.genesis(0), 0, CHAT, &chat("before", false)).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        metric(&h.url, "nullgate_gateway_parameters_mismatch").await,
        0
    );

    h.dev.ledger.advance_time(3_601).await.unwrap();
    h.dev.ledger.mine(1).await.unwrap();
    let title = until(&h, 503).await;
    assert!(title.contains("price list"), "{title}");
    assert_eq!(
        metric(&h.url, "nullgate_gateway_parameters_mismatch").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn other_ohttp_keys_stop_service_at_once_and_the_served_ones_resume_it() {
    let h = Harness::start(1).await;
    let served = B256::from(h.gateway.deployment().ohttp_keys_hash);
    h.dev
        .vault
        .set_ohttp_keys_hash(h.dev.operator, B256::repeat_byte(9))
        .await
        .unwrap();
    let title = until(&h, 503).await;
    assert!(title.contains("OHTTP keys"), "{title}");
    h.dev
        .vault
        .set_ohttp_keys_hash(h.dev.operator, served)
        .await
        .unwrap();
    until(&h, 402).await;
    assert_eq!(
        metric(&h.url, "nullgate_gateway_parameters_mismatch").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_key_is_followed_and_revoking_the_gateways_key_stops_service() {
    let h = Harness::start(1).await;
    // A key may be registered 30 days after the last, active W + G_exp later at the earliest.
    h.dev.ledger.advance_time(30 * 86_400 + 1).await.unwrap();
    h.dev.ledger.mine(1).await.unwrap();
    let now = h.dev.ledger.latest().await.unwrap().timestamp;
    let second = SecretKey::from_scalar(Scalar::from(99u64))
        .unwrap()
        .public_key();
    h.dev
        .vault
        .register_key(h.dev.operator, &second, now + 3_600 + 86_400 + 60)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while well_known(&h).await["state_keys"].as_array().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "the new key never showed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Registered, not yet current: the gateway still serves with key 1.
    assert_eq!(well_known(&h).await["current_key"], 1);
    until(&h, 402).await;

    // Key 2 current from its activation: within the hour clients accept either key, so
    // the gateway still serves with key 1; past it, it stops.
    h.dev
        .ledger
        .advance_time(3_600 + 86_400 + 120)
        .await
        .unwrap();
    h.dev.ledger.mine(1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    until(&h, 402).await;
    assert_eq!(well_known(&h).await["current_key"], 2);
    h.dev.ledger.advance_time(3_600).await.unwrap();
    h.dev.ledger.mine(1).await.unwrap();
    let title = until(&h, 503).await;
    assert!(title.contains("current state key"), "{title}");

    // Key 1 revoked: this gateway (key 1) stops for that reason.
    h.dev.vault.revoke_key(h.dev.operator, 1, 0).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, title) = probe(&h).await;
        assert_eq!(status, 503, "{title}");
        if title.contains("revoked") {
            break;
        }
        assert!(Instant::now() < deadline, "{title}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let document = well_known(&h).await;
    assert_eq!(document["current_key"], 2);
    let numbers: Vec<u64> = document["state_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [2], "a revoked key verifies no request");
}

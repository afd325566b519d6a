//! The directory authority on 127.0.0.1: signed key announcements in, a signed directory per
//! epoch out, and every refusal.

mod common;

use std::time::Duration;

use ed25519_dalek::SigningKey;
use nullgate_net::{
    NetError,
    mixnet::{
        authority::{
            AuthorityConfig, KEYS_PATH, KeyAnnouncement, NodeRecord, announce_key,
            authority_router, fetch_directory,
        },
        epoch::{EpochClock, KeySchedule},
    },
};

struct Node {
    record: NodeRecord,
    identity: SigningKey,
    keys: KeySchedule,
}

fn nodes() -> Vec<Node> {
    (0..3u8)
        .map(|i| {
            let identity = SigningKey::from_bytes(&[i + 1; 32]);
            Node {
                record: NodeRecord {
                    layer: usize::from(i),
                    address: [i + 10; 32],
                    endpoint: format!("127.0.0.1:{}", 7100 + u16::from(i)),
                    link_key: [i + 20; 32],
                    identity: identity.verifying_key().to_bytes(),
                },
                identity,
                keys: KeySchedule::new([i + 30; 32]),
            }
        })
        .collect()
}

#[tokio::test]
async fn nodes_announce_keys_and_clients_get_a_signed_directory() {
    let nodes = nodes();
    let authority = SigningKey::from_bytes(&[99; 32]);
    let clock = EpochClock {
        genesis: EpochClock::now() - Duration::from_secs(30),
        length: Duration::from_secs(3600),
    };
    let epoch = clock.epoch_at(EpochClock::now());
    let address = common::serve(authority_router(AuthorityConfig {
        signing: authority.clone(),
        clock,
        nodes: nodes.iter().map(|n| n.record.clone()).collect(),
    }))
    .await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let announce = |node: &Node, epoch: u64| {
        KeyAnnouncement::sign(
            &node.identity,
            node.record.address,
            epoch,
            node.keys.public(epoch),
        )
    };

    // Until every layer has a node with a key, there is no directory.
    announce_key(&http, &base, &announce(&nodes[0], epoch))
        .await
        .unwrap();
    let early = fetch_directory(&http, &base, &authority.verifying_key()).await;
    assert!(matches!(early, Err(NetError::Unexpected { detail, .. }) if detail.contains("503")));

    for node in &nodes {
        for e in [epoch, epoch + 1] {
            announce_key(&http, &base, &announce(node, e))
                .await
                .unwrap();
        }
    }
    // Repeating an announcement is harmless.
    announce_key(&http, &base, &announce(&nodes[1], epoch))
        .await
        .unwrap();
    let directory = fetch_directory(&http, &base, &authority.verifying_key())
        .await
        .unwrap();
    assert_eq!(directory.epoch, epoch);
    for (layer, node) in directory.layers.iter().zip(&nodes) {
        assert_eq!(layer.len(), 1);
        assert_eq!(layer[0].key, node.keys.public(epoch));
        assert_eq!(layer[0].next_key, node.keys.public(epoch + 1));
        assert_eq!(layer[0].link_key, node.record.link_key);
    }
    // Signed by the authority: another key does not verify it.
    let other = SigningKey::from_bytes(&[98; 32]).verifying_key();
    assert!(fetch_directory(&http, &base, &other).await.is_err());
}

#[tokio::test]
async fn bad_announcements_are_refused_and_change_nothing() {
    let nodes = nodes();
    let clock = EpochClock {
        genesis: EpochClock::now() - Duration::from_secs(30),
        length: Duration::from_secs(3600),
    };
    let epoch = clock.epoch_at(EpochClock::now());
    let address = common::serve(authority_router(AuthorityConfig {
        signing: SigningKey::from_bytes(&[99; 32]),
        clock,
        nodes: nodes.iter().map(|n| n.record.clone()).collect(),
    }))
    .await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let status_of = |result: Result<(), NetError>| match result {
        Err(NetError::Unexpected { detail, .. }) => detail[7..10].to_string(),
        other => format!("{other:?}"),
    };
    let node = &nodes[0];
    let good = KeyAnnouncement::sign(&node.identity, node.record.address, epoch, [1; 32]);

    // Signed by another node's identity.
    let forged = KeyAnnouncement::sign(&nodes[1].identity, node.record.address, epoch, [1; 32]);
    assert_eq!(status_of(announce_key(&http, &base, &forged).await), "403");
    // A tampered key under a valid signature.
    let mut tampered = good.clone();
    tampered.key[0] ^= 1;
    assert_eq!(
        status_of(announce_key(&http, &base, &tampered).await),
        "403"
    );
    // An unknown node.
    let stranger = KeyAnnouncement::sign(&node.identity, [0xee; 32], epoch, [1; 32]);
    assert_eq!(
        status_of(announce_key(&http, &base, &stranger).await),
        "403"
    );
    // Too far ahead, or in the past.
    let ahead = KeyAnnouncement::sign(&node.identity, node.record.address, epoch + 3, [1; 32]);
    assert_eq!(status_of(announce_key(&http, &base, &ahead).await), "422");
    if epoch > 0 {
        let past = KeyAnnouncement::sign(&node.identity, node.record.address, epoch - 1, [1; 32]);
        assert_eq!(status_of(announce_key(&http, &base, &past).await), "422");
    }
    // The first key for an epoch stands; another one is a conflict.
    announce_key(&http, &base, &good).await.unwrap();
    let other = KeyAnnouncement::sign(&node.identity, node.record.address, epoch, [2; 32]);
    assert_eq!(status_of(announce_key(&http, &base, &other).await), "409");
    // Malformed bodies.
    let answer = http
        .post(format!("{base}{KEYS_PATH}"))
        .header("content-type", "application/json")
        .body("{\"address\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
}

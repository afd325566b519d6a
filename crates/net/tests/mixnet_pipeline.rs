//! The whole path of one call through the mixnet's sans-IO parts, in one process: the
//! client seals an OHTTP request, fragments it into Sphinx packets over a stratified route,
//! three mix layers peel them, the exit reassembles the sealed request for the gateway, and
//! the sealed answer comes back in the client's reply blocks. No mix node ever holds the
//! plaintext request or response.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use http::{HeaderMap, Method, StatusCode};
use nullgate_net::{
    HttpRequest, HttpResponse,
    mixnet::{
        directory::{Directory, NodeEntry},
        fragment::{Reassembler, fragment},
        node::EpochState,
        packet::{Hop, Opened, PacketFormat, Sphinx},
        timing::hop_delays,
    },
    ohttp::{KeyRing, OhttpTransport},
};
use rand::SeedableRng;
use x25519_dalek::{PublicKey, StaticSecret};

const PAYLOAD: usize = 2048;
/// Plaintext a packet carries: the payload less Sphinx's 17 bytes of overhead.
const FRAGMENT: usize = PAYLOAD - 17;
const EXIT: [u8; 32] = [0xe0; 32];
const CLIENT: [u8; 32] = [0xc0; 32];

struct Mix {
    address: [u8; 32],
    state: EpochState<Sphinx>,
}

#[test]
fn one_call_through_three_layers_and_back() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let format = Sphinx::new(PAYLOAD);

    // Nine nodes in three layers, published in a signed directory.
    let secrets: Vec<StaticSecret> = (1..=9u8).map(|i| StaticSecret::from([i; 32])).collect();
    let entry = |i: usize| NodeEntry {
        address: [i as u8 + 1; 32],
        endpoint: format!("127.0.0.1:{}", 7000 + i),
        link_key: [i as u8 + 100; 32],
        key: PublicKey::from(&secrets[i]).to_bytes(),
        next_key: [0; 32],
    };
    let directory = Directory {
        epoch: 1,
        valid_from: 0,
        valid_until: u64::MAX,
        layers: (0..3)
            .map(|l| (0..3).map(|n| entry(3 * l + n)).collect())
            .collect(),
    };
    let authority = SigningKey::from_bytes(&[3; 32]);
    let directory = Directory::verify(
        &directory.sign(&authority).unwrap(),
        &authority.verifying_key(),
        10,
    )
    .unwrap();
    let mut mixes: Vec<Mix> = (0..9)
        .map(|i| Mix {
            address: [i as u8 + 1; 32],
            state: EpochState::new(format, secrets[i].clone()),
        })
        .collect();

    // The gateway's OHTTP key; the client seals its request to it.
    let keys = KeyRing::derive(
        1,
        b"pipeline test key, 32 bytes ikm!",
        Duration::from_secs(60),
    )
    .unwrap();
    let client = OhttpTransport::new(
        "http://127.0.0.1:9/".parse().unwrap(),
        &keys.served_body().unwrap(),
        Some(&keys.served_hash().unwrap()),
    )
    .unwrap();
    let mut request = HttpRequest::new(Method::POST, "https", "gw.example:443", "/v1/chat");
    let secret_prompt = b"my medical question, which no mix node may read".repeat(60);
    request.body = Bytes::from(secret_prompt.clone());
    let sealed = client.seal(&request).unwrap();

    // Forward: fragments with parity, each in its own packet over its own route.
    let fragments = fragment(&sealed.bytes, FRAGMENT, 2).unwrap();
    assert!(
        fragments.len() > 3,
        "the sealed request spans several packets"
    );
    let mut exit = Reassembler::new(16);
    let mut at_exit = None;
    for fragment in &fragments {
        let route = directory.route(&mut rng);
        let delays = hop_delays(
            &mut rng,
            3,
            Duration::from_millis(5),
            Duration::from_millis(50),
        );
        let packet = format.create(fragment, &route, EXIT, &delays).unwrap();
        let delivered = carry(&mut mixes, &route[0].address, packet);
        if let Some(message) = exit.push(&format.plaintext(&delivered).unwrap()).unwrap() {
            at_exit = Some(message);
        }
    }
    let at_exit = at_exit.expect("the exit rebuilds the sealed request");
    // What the exit holds is the sealed request, not the prompt.
    assert_eq!(at_exit, sealed.bytes);
    assert!(!contains(&at_exit, b"medical question"));

    // The gateway opens it and seals its answer.
    let (inner, sealer) = keys.open(&at_exit, Instant::now()).unwrap();
    assert_eq!(HttpRequest::from_bhttp(&inner).unwrap().body, request.body);
    let answer = HttpResponse {
        status: StatusCode::OK,
        headers: HeaderMap::new(),
        body: Bytes::from(b"the private answer ".repeat(100)),
        trailers: HeaderMap::new(),
    };
    let sealed_answer = sealer.seal(&answer).unwrap();

    // Back: the exit fragments the sealed answer into the client's reply blocks.
    let answer_fragments = fragment(&sealed_answer, FRAGMENT, 1).unwrap();
    let mut blocks = Vec::new();
    for _ in 0..answer_fragments.len() {
        let mut back: Vec<Hop> = directory.route(&mut rng);
        back.reverse();
        blocks.push(
            format
                .reply_block(&back, CLIENT, &[Duration::ZERO; 3])
                .unwrap(),
        );
    }
    let mut at_client = Reassembler::new(16);
    let mut response = None;
    for (piece, (block, opener)) in answer_fragments.iter().zip(&blocks) {
        let (first_hop, packet) = format.use_reply_block(block, piece).unwrap();
        let delivered = carry(&mut mixes, &first_hop, packet);
        assert!(!contains(&delivered, b"private answer"));
        if let Some(message) = at_client.push(&opener.open(&delivered).unwrap()).unwrap() {
            response = Some(message);
        }
    }
    let response = sealed.open_response(&response.expect("the client rebuilds the answer"));
    assert_eq!(response.unwrap(), answer);
}

/// Hands `packet` from mix to mix until the last hop delivers; returns the payload.
fn carry(mixes: &mut [Mix], first: &[u8; 32], mut packet: Vec<u8>) -> Vec<u8> {
    let mut at = *first;
    loop {
        let mix = mixes
            .iter_mut()
            .find(|m| m.address == at)
            .expect("routes use listed nodes");
        assert!(
            !contains(&packet, b"medical question") && !contains(&packet, b"private answer"),
            "no mix sees plaintext"
        );
        match mix.state.process(&packet).expect("honest packets open") {
            Opened::Forward {
                next, packet: p, ..
            } => {
                at = next;
                packet = p;
            }
            Opened::Deliver { payload, .. } => return payload,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

//! Committed test vectors of the version-1 layouts (`crates/protocol/vectors/`): the values
//! below must encode to exactly the committed bytes and decode back. A change of layout
//! changes the vectors, and `docs/spec/PROTOCOL.md` §11, in the same commit.
//!
//! `NULLGATE_WRITE_VECTORS=1 cargo test -p nullgate-protocol --test vectors` rewrites them.

use ark_ec::{AffineRepr, CurveGroup};
use nullgate_protocol::{
    WireError,
    credential::{CREDENTIAL_LEN, Credential, UnsignedCredential},
    payload::{payload_digest, signed_headers},
    price::{MethodPrices, PriceList, Pricing, Route, TokenApi, TokenPrices},
    receipt::{RECEIPT_LEN, Receipt, ReceiptError},
};
use nullgate_zk::{
    Fr,
    curve::{Point, Scalar, generator_g, mul},
    derive,
    groth16::Proof,
    schnorr::SecretKey,
};
use rand::SeedableRng;

fn vector_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vectors")
        .join(name)
}

/// Compares `bytes` with the committed vector `name` (hex, one line), or writes it.
fn check_vector(name: &str, bytes: &[u8]) {
    let path = vector_path(name);
    let encoded = format!("{}\n", hex::encode(bytes));
    if std::env::var_os("NULLGATE_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &encoded).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (write it with NULLGATE_WRITE_VECTORS=1)",
            path.display()
        )
    });
    assert_eq!(
        committed, encoded,
        "{name} differs from the committed vector"
    );
}

fn point(scalar: u64) -> Point {
    let p = mul(&generator_g(), &Scalar::from(scalar));
    Point::from_coordinates(p.x, p.y, "test point").unwrap()
}

fn sample_price_list() -> PriceList {
    PriceList::new(
        vec![100, 1_000, 10_000, 100_000],
        10,
        vec!["content-type".into()],
        vec![
            Route {
                method: "POST".into(),
                path: "/v1/chat/completions".into(),
                pricing: Pricing::Tokens(TokenPrices {
                    api: TokenApi::OpenAiChat,
                    input: 1,
                    output: 4,
                }),
            },
            Route {
                method: "POST".into(),
                path: "/v1/messages".into(),
                pricing: Pricing::Tokens(TokenPrices {
                    api: TokenApi::Anthropic,
                    input: 3,
                    output: 15,
                }),
            },
            Route {
                method: "POST".into(),
                path: "/v1/responses".into(),
                pricing: Pricing::Tokens(TokenPrices {
                    api: TokenApi::OpenAiResponses,
                    input: 2,
                    output: 8,
                }),
            },
            Route {
                method: "POST".into(),
                path: "/rpc".into(),
                pricing: Pricing::JsonRpc(
                    MethodPrices::new(vec![
                        ("eth_blockNumber".into(), 1),
                        ("eth_call".into(), 20),
                        ("eth_getBalance".into(), 2),
                    ])
                    .unwrap(),
                ),
            },
            Route {
                method: "GET".into(),
                path: "/v1/models".into(),
                pricing: Pricing::Fixed { credits: 10 },
            },
        ],
    )
    .unwrap()
}

fn sample_digest(nullifier: &Fr) -> [u8; 32] {
    let allow = sample_price_list().signed_headers().to_vec();
    let headers = signed_headers(&allow, [("Content-Type", b"application/json".as_slice())]);
    payload_digest(
        nullifier,
        "POST",
        "/v1/chat/completions",
        &headers,
        br#"{"model":"nullgate-example-1","messages":[{"role":"user","content":"hi"}]}"#,
    )
}

fn sample_credential() -> Credential {
    let secret = Fr::from(99u64);
    let esk = derive::request_signing_key(&secret, 4);
    let g1 = ark_bn254::G1Affine::generator();
    let g2 = ark_bn254::G2Affine::generator();
    let proof = Proof {
        a: (g1 * ark_bn254::Fr::from(3u64)).into_affine(),
        b: (g2 * ark_bn254::Fr::from(5u64)).into_affine(),
        c: (g1 * ark_bn254::Fr::from(7u64)).into_affine(),
    };
    let nullifier = Fr::from(13u64);
    UnsignedCredential {
        root: Fr::from(11u64),
        key_number: 1,
        class_index: 2,
        hour: 490_000,
        nullifier,
        share_y: Fr::from(17u64),
        published_state: point(5),
        proof,
        request_key: esk.verifying_key(),
    }
    .sign(&esk, &sample_digest(&nullifier))
}

fn sample_receipt() -> (Receipt, SecretKey) {
    let key = SecretKey::from_scalar(Scalar::from(1234u64)).unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(0);
    let dom = derive::dom(31337, &[7u8; 20]);
    let receipt = Receipt::issue(&dom, Fr::from(13u64), &point(5), 321, 1, &key, &mut rng);
    (receipt, key)
}

#[test]
fn credential_vector() {
    let credential = sample_credential();
    let bytes = credential.to_bytes();
    assert_eq!(bytes.len(), CREDENTIAL_LEN);
    check_vector("credential-v1.hex", &bytes);
    assert_eq!(Credential::from_bytes(&bytes).unwrap(), credential);
    let header = credential.to_authorization();
    assert!(header.starts_with("NullGate "));
    assert_eq!(
        Credential::from_authorization(header.as_bytes()).unwrap(),
        credential
    );
}

#[test]
fn receipt_vector_and_check() {
    let (receipt, key) = sample_receipt();
    let bytes = receipt.to_bytes();
    assert_eq!(bytes.len(), RECEIPT_LEN);
    check_vector("receipt-v1.hex", &bytes);
    assert_eq!(Receipt::from_bytes(&bytes).unwrap(), receipt);
    assert_eq!(
        Receipt::from_header(receipt.to_header().as_bytes()).unwrap(),
        receipt
    );

    let dom = derive::dom(31337, &[7u8; 20]);
    let keys = [(1, key.public_key())];
    let n = Fr::from(13u64);
    receipt.check(&dom, &n, &point(5), 1_000, &keys).unwrap();
    // Each check rejects on its own.
    assert_eq!(
        receipt.check(&dom, &Fr::from(14u64), &point(5), 1_000, &keys),
        Err(ReceiptError::WrongNullifier)
    );
    assert!(matches!(
        receipt.check(&dom, &n, &point(5), 320, &keys),
        Err(ReceiptError::OverCap { .. })
    ));
    assert_eq!(
        receipt.check(&dom, &n, &point(6), 1_000, &keys),
        Err(ReceiptError::WrongState)
    );
    assert_eq!(
        receipt.check(&dom, &n, &point(5), 1_000, &[(2, key.public_key())]),
        Err(ReceiptError::WrongKey(1))
    );
    let other = SecretKey::from_scalar(Scalar::from(4321u64)).unwrap();
    assert_eq!(
        receipt.check(&dom, &n, &point(5), 1_000, &[(1, other.public_key())]),
        Err(ReceiptError::BadSignature)
    );
    let other_dom = derive::dom(31337, &[8u8; 20]);
    assert_eq!(
        receipt.check(&other_dom, &n, &point(5), 1_000, &keys),
        Err(ReceiptError::BadSignature)
    );
}

#[test]
fn payload_digest_and_price_list_vectors() {
    check_vector("payload-digest.hex", &sample_digest(&Fr::from(13u64)));
    let list = sample_price_list();
    let path = vector_path("price-list-v1.txt");
    if std::env::var_os("NULLGATE_WRITE_VECTORS").is_some() {
        std::fs::write(&path, list.to_bytes()).unwrap();
    }
    let committed = std::fs::read(&path).unwrap();
    assert_eq!(committed, list.to_bytes());
    assert_eq!(PriceList::parse(&committed).unwrap(), list);
    check_vector("price-list-v1.sha256", &list.hash());
}

#[test]
fn decoding_rejects_each_broken_field() {
    let good = sample_credential().to_bytes();
    let mut wrong_version = good.clone();
    wrong_version[0] = 2;
    assert!(matches!(
        Credential::from_bytes(&wrong_version),
        Err(WireError::Version { version: 2, .. })
    ));
    assert!(matches!(
        Credential::from_bytes(&good[..good.len() - 1]),
        Err(WireError::Length { .. })
    ));
    assert!(matches!(
        Credential::from_bytes(&[]),
        Err(WireError::Length { .. })
    ));
    let mut long = good.clone();
    long.push(0);
    assert!(Credential::from_bytes(&long).is_err());
    // root ≥ p
    let mut bad_root = good.clone();
    bad_root[1..33].fill(0xff);
    assert!(matches!(
        Credential::from_bytes(&bad_root),
        Err(WireError::Value(_))
    ));
    // A_pub off the curve
    let mut bad_point = good.clone();
    bad_point[106 + 63] ^= 1;
    assert!(matches!(
        Credential::from_bytes(&bad_point),
        Err(WireError::Value(_))
    ));
    // proof garbage
    let mut bad_proof = good.clone();
    bad_proof[170..298].fill(0x5a);
    assert!(matches!(
        Credential::from_bytes(&bad_proof),
        Err(WireError::Value(_))
    ));
    // a small-order Ed25519 key (the identity point's encoding)
    let mut weak = good.clone();
    weak[298..330].copy_from_slice(&{
        let mut identity = [0u8; 32];
        identity[0] = 1;
        identity
    });
    assert_eq!(Credential::from_bytes(&weak), Err(WireError::RequestKey));
    // header scheme and size
    assert_eq!(
        Credential::from_authorization(b"Bearer abc"),
        Err(WireError::Scheme)
    );
    assert!(Credential::from_authorization(&[b'a'; 4096]).is_err());
    assert!(Credential::from_authorization(b"NullGate !!!").is_err());

    let (receipt, _) = sample_receipt();
    let bytes = receipt.to_bytes();
    let mut wrong = bytes.clone();
    wrong[0] = 0;
    assert!(matches!(
        Receipt::from_bytes(&wrong),
        Err(WireError::Version { .. })
    ));
    assert!(Receipt::from_bytes(&bytes[..100]).is_err());
    let mut bad_state = bytes.clone();
    bad_state[45 + 10] ^= 0x40;
    assert!(Receipt::from_bytes(&bad_state).is_err());
}

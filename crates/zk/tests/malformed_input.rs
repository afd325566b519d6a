//! Bytes from outside the process never panic a decoder: random and mutated inputs to every
//! parser of `nullgate-zk` return a typed error or a checked value.

use nullgate_zk::{
    curve::{Point, generator_g, scalar_from_bytes},
    field::fr_from_bytes,
    groth16::{CircuitKind, VerifierKey, key_file_kind, proof_from_bytes},
    keys::load_prover_key,
    schnorr::{PublicKey, Signature},
};
use rand::{Rng, SeedableRng};

fn random_inputs(seed: u64) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    (0..2_000).map(move |_| {
        let len = match rng.gen_range(0..4) {
            0 => rng.gen_range(0..200),
            1 => 32,
            2 => 64,
            _ => 128,
        };
        (0..len).map(|_| rng.r#gen()).collect()
    })
}

#[test]
fn random_bytes_are_rejected_or_checked() {
    for bytes in random_inputs(1) {
        let _ = fr_from_bytes(&bytes, "fuzz");
        let _ = scalar_from_bytes(&bytes, "fuzz");
        if let Ok(point) = Point::from_bytes(&bytes, "fuzz") {
            // Anything accepted round-trips exactly.
            assert_eq!(point.to_bytes().as_slice(), bytes.as_slice());
        }
        let _ = PublicKey::from_bytes(&bytes);
        let _ = Signature::from_bytes(&bytes);
        let _ = proof_from_bytes(&bytes);
        let _ = VerifierKey::from_bytes(CircuitKind::Exit, &bytes);
        let _ = key_file_kind(&bytes);
        assert!(load_prover_key(&bytes, None).is_err());
    }
}

#[test]
fn mutated_points_are_rejected_or_round_trip() {
    let g = Point::from_bytes(
        &{
            let mut out = [0u8; 64];
            let g = generator_g();
            out[..32].copy_from_slice(&nullgate_zk::field::fr_to_bytes(&g.x));
            out[32..].copy_from_slice(&nullgate_zk::field::fr_to_bytes(&g.y));
            out
        },
        "G",
    )
    .expect("G is valid");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    for _ in 0..2_000 {
        let mut bytes = g.to_bytes();
        let i = rng.gen_range(0..64);
        bytes[i] ^= 1 << rng.gen_range(0..8);
        if let Ok(point) = Point::from_bytes(&bytes, "fuzz") {
            assert_eq!(point.to_bytes(), bytes);
        }
        let mut signature = [0u8; 96];
        signature[..64].copy_from_slice(&bytes);
        let _ = Signature::from_bytes(&signature);
    }
}

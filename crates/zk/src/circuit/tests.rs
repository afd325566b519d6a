//! Circuit tests: honest witnesses satisfy, native and circuit agree, and for every item of
//! PROTOCOL §7 and §8 a witness that breaks it is rejected.

use ark_ec::AffineRepr;
use rand::SeedableRng;

use super::{
    constraint_count,
    exit::{ExitCircuit, ExitWitness},
    is_satisfied,
    request::{RequestCircuit, RequestWitness},
};
use crate::{
    Fr,
    curve::{self, AffinePoint, Scalar, scalar_to_fr},
    derive,
    schnorr::{PublicKey, SecretKey},
    state::{self, StateValue},
    tree::NoteTree,
};

type Rng = rand_chacha::ChaCha20Rng;
use crate::sample::SampleVault as Fixture;

fn satisfied(circuit: RequestCircuit) -> bool {
    is_satisfied(circuit).unwrap()
}

fn exit_satisfied(circuit: ExitCircuit) -> bool {
    is_satisfied(circuit).unwrap()
}

#[test]
fn honest_requests_satisfy_and_agree_with_native() {
    let mut fixture = Fixture::new(1);
    let genesis = fixture.genesis();
    let (circuit, public) = RequestCircuit::new(
        fixture.dom,
        fixture.tree.root(),
        &fixture.public_key,
        100,
        450_000,
        Fr::from(42u64),
        &genesis,
    )
    .unwrap();
    assert!(satisfied(circuit));
    // Native values: N, y, A_pub.
    let k = fixture.note.secret;
    let slope = crate::rln::slope(&fixture.dom, &k, 0);
    assert_eq!(public.nullifier, crate::rln::nullifier(&slope));
    assert_eq!(public.share_y, k + slope * Fr::from(42u64));
    let commitment = state::commit(&genesis.state, &Scalar::from(0u64));
    assert_eq!(
        public.published_state,
        state::rerandomise(&commitment, &derive::rerandomiser(&k, 0))
    );
    let signed = fixture.signed(7_000, 12);
    assert!(satisfied(fixture.request(&signed, 7_000)));
}

#[test]
fn circuit_agrees_with_native_on_random_states() {
    use ark_std::UniformRand;
    let mut fixture = Fixture::new(2);
    for _ in 0..3 {
        let balance = u64::rand(&mut fixture.rng) >> 1;
        let index = u32::rand(&mut fixture.rng) >> 1;
        let mut witness = fixture.signed(balance, index);
        witness.blinding = Scalar::rand(&mut fixture.rng);
        let commitment = state::commit(&witness.state, &witness.blinding);
        witness.signature = Some(fixture.key.sign(
            &derive::state_hash(&fixture.dom, &commitment),
            &mut fixture.rng,
        ));
        assert!(satisfied(fixture.request(&witness, balance / 2)));
    }
}

/// Changes one value of an honest request assignment and expects the circuit to reject it.
fn rejects(fixture: &mut Fixture, signed: bool, tamper: impl FnOnce(&mut RequestCircuit)) {
    let witness = if signed {
        fixture.signed(7_000, 12)
    } else {
        fixture.genesis()
    };
    let mut circuit = fixture.request(&witness, 100);
    assert!(
        satisfied(circuit.clone()),
        "the honest witness must satisfy"
    );
    tamper(&mut circuit);
    assert!(!satisfied(circuit), "the tampered witness must not satisfy");
}

#[test]
fn item_1_secret_commitment_leaf_and_path() {
    let mut fixture = Fixture::new(3);
    // k = 0 with everything else consistent with it: only k ≠ 0 breaks.
    let mut zero = Fixture::new(3);
    zero.note.secret = Fr::from(0u64);
    let leaves: Vec<Fr> = (0..3).map(|i| Fr::from(i as u64 + 1)).collect();
    zero.tree = NoteTree::new();
    zero.tree.extend(&leaves).unwrap();
    zero.tree.extend(&[zero.note.leaf()]).unwrap();
    let witness = zero.genesis();
    assert!(!satisfied(zero.request(&witness, 100)));
    // A sibling off the path, another root, another deposit or expiry in the leaf.
    rejects(&mut fixture, false, |c| {
        c.assignment.siblings[5] += Fr::from(1u64)
    });
    rejects(&mut fixture, false, |c| c.assignment.root += Fr::from(1u64));
    rejects(&mut fixture, true, |c| {
        c.assignment.expiry += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.secret += Fr::from(1u64)
    });
}

#[test]
fn item_2_expiry_not_before_t() {
    let mut fixture = Fixture::new(4);
    rejects(&mut fixture, false, |c| {
        c.assignment.hour = c.assignment.expiry + Fr::from(1u64)
    });
}

#[test]
fn item_3_state_opening() {
    let mut fixture = Fixture::new(5);
    // Another balance, index or blinding than the signed state's.
    rejects(&mut fixture, true, |c| {
        c.assignment.state.balance += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.state.index += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.state.blinding += Fr::from(1u64)
    });
    // Another note_id: the packed v and the path both change.
    rejects(&mut fixture, true, |c| {
        c.assignment.note_id += Fr::from(1u64)
    });
}

#[test]
fn item_4_genesis_or_signature() {
    let mut fixture = Fixture::new(6);
    // is_genesis must be boolean.
    rejects(&mut fixture, false, |c| {
        c.assignment.state.is_genesis = Fr::from(2u64)
    });
    // A genesis state must have m = 0, B = D, r = 0 — each checked with a witness whose
    // A_pub is recomputed so that only the genesis rule breaks.
    for field in 0..3 {
        let mut genesis = fixture.genesis();
        match field {
            0 => genesis.state = StateValue::new(genesis.note.deposit, 1, 3).unwrap(),
            1 => genesis.state = StateValue::new(genesis.note.deposit - 1, 0, 3).unwrap(),
            _ => genesis.blinding = Scalar::from(9u64),
        }
        let signed = fixture.signed(7_000, 12);
        let mut circuit = fixture.request(&signed, 100);
        replace_state(&mut circuit, &genesis, Fr::from(1u64));
        assert!(!satisfied(circuit), "genesis rule {field}");
    }
    // Claiming genesis for a signed state is refused (B ≠ D, m ≠ 0).
    rejects(&mut fixture, true, |c| {
        c.assignment.state.is_genesis = Fr::from(1u64)
    });
    // A signature under another key, a tampered s, an R off the curve.
    rejects(&mut fixture, true, |c| {
        c.assignment.public_key = curve::mul(&curve::generator_g(), &Scalar::from(5u64))
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.state.signature_s += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.state.signature_r.y += Fr::from(1u64)
    });
    // s ≥ l: s + l gives the same point s·G but is out of range.
    rejects(&mut fixture, true, |c| {
        c.assignment.state.signature_s += scalar_modulus()
    });
}

/// Puts `witness`'s state into `circuit` with the given genesis flag, recomputing `A_pub`
/// and the RLN values so that they stay consistent with it.
fn replace_state(circuit: &mut RequestCircuit, witness: &RequestWitness, is_genesis: Fr) {
    let a = &mut circuit.assignment;
    let k = witness.note.secret;
    let index = witness.state.index();
    a.state.balance = Fr::from(witness.state.balance());
    a.state.index = Fr::from(index);
    a.state.blinding = scalar_to_fr(&witness.blinding);
    a.state.is_genesis = is_genesis;
    let epsilon = derive::rerandomiser(&k, index);
    a.epsilon = scalar_to_fr(&epsilon);
    a.published_state =
        state::rerandomise(&state::commit(&witness.state, &witness.blinding), &epsilon);
    let slope = crate::rln::slope(&a.dom, &k, index);
    a.nullifier = crate::rln::nullifier(&slope);
    a.share_y = k + slope * a.share_x;
}

fn scalar_modulus() -> Fr {
    use ark_ff::PrimeField;
    Fr::from_bigint(
        <Fr as PrimeField>::BigInt::try_from(num_bigint::BigUint::from(
            <Scalar as PrimeField>::MODULUS,
        ))
        .unwrap(),
    )
    .unwrap()
}

#[test]
fn item_5_ranges() {
    let mut fixture = Fixture::new(7);
    // B < C_c.
    let witness = fixture.signed(7_000, 12);
    let mut circuit = fixture.request(&witness, 7_000);
    assert!(satisfied(circuit.clone()));
    circuit.assignment.class_cost += Fr::from(1u64);
    assert!(!satisfied(circuit));
    // C_c ≥ 2^64 (with B large enough in the field sense).
    rejects(&mut fixture, true, |c| {
        c.assignment.class_cost = Fr::from(u64::MAX) + Fr::from(1u64)
    });
    // D ≥ 2^64 in a genesis state whose B = D (the leaf changes too, so the tree must
    // contain it: build one).
    let mut big = Fixture::new(7);
    let mut circuit = big.request(&big.genesis(), 100);
    circuit.assignment.deposit += Fr::from(u64::MAX) + Fr::from(1u64);
    assert!(!satisfied(circuit));
    // m = 2^32 − 1 is refused (no carry into note_id).
    let top = fixture.signed(7_000, u32::MAX - 1);
    assert!(satisfied(fixture.request(&top, 100)));
    let mut circuit = fixture.request(&top, 100);
    let mut over = top.clone();
    over.state = StateValue::new(7_000, u32::MAX, 3).unwrap();
    over.blinding = top.blinding;
    let commitment = state::commit(&over.state, &over.blinding);
    over.signature = Some(
        big.key
            .sign(&derive::state_hash(&fixture.dom, &commitment), &mut big.rng),
    );
    circuit.assignment.public_key = big.public_key.0.affine();
    let signature = over.signature.unwrap();
    circuit.assignment.state.signature_r = signature.r.affine();
    circuit.assignment.state.signature_s = scalar_to_fr(&signature.s);
    replace_state(&mut circuit, &over, Fr::from(0u64));
    assert!(!satisfied(circuit));
    // t ≥ 2^32 with expiry as large: only the 32-bit range of t breaks.
    rejects(&mut fixture, true, |c| {
        c.assignment.hour = Fr::from(1u64 << 32);
        c.assignment.expiry = Fr::from(1u64 << 32);
    });
}

#[test]
fn item_6_rerandomisation() {
    let mut fixture = Fixture::new(8);
    rejects(&mut fixture, true, |c| {
        c.assignment.epsilon += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.published_state = (c.assignment.published_state + curve::generator_h()).into()
    });
}

#[test]
fn item_7_nullifier_and_share() {
    let mut fixture = Fixture::new(9);
    rejects(&mut fixture, true, |c| {
        c.assignment.nullifier += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.share_y += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| {
        c.assignment.share_x += Fr::from(1u64)
    });
    rejects(&mut fixture, true, |c| c.assignment.dom += Fr::from(1u64));
}

#[test]
fn constructor_refuses_inconsistent_witnesses() {
    let mut fixture = Fixture::new(10);
    let witness = fixture.signed(7_000, 12);
    let epk = Fr::from(1u64);
    let build = |w: &RequestWitness, cost: u64, key: &PublicKey| {
        RequestCircuit::new(fixture.dom, fixture.tree.root(), key, cost, 450_000, epk, w)
    };
    assert!(build(&witness, 7_001, &fixture.public_key).is_err());
    let other = SecretKey::from_scalar(Scalar::from(3u64))
        .unwrap()
        .public_key();
    assert!(build(&witness, 1, &other).is_err());
    let mut fake_genesis = witness.clone();
    fake_genesis.signature = None;
    assert!(build(&fake_genesis, 1, &fixture.public_key).is_err());
}

#[test]
fn pinned_constraint_counts() {
    let mut fixture = Fixture::new(11);
    let signed = fixture.signed(7_000, 12);
    let request = fixture.request(&signed, 100);
    let exit = exit_circuit(&mut fixture, 12, 13, 1_000).0;
    // Any change to the circuits shows here; update deliberately (a new shape needs new
    // keys, a new verifier contract and new pinned hashes on chain).
    use crate::groth16::ConstraintMatrices;
    let shape = |m: ConstraintMatrices| hex::encode(m.circuit_hash());
    assert_eq!(
        shape(ConstraintMatrices::of(request.clone()).unwrap()),
        REQUEST_SHAPE
    );
    assert_eq!(
        shape(ConstraintMatrices::of(exit.clone()).unwrap()),
        EXIT_SHAPE
    );
    assert_eq!(constraint_count(request).unwrap(), REQUEST_CONSTRAINTS);
    assert_eq!(constraint_count(exit).unwrap(), EXIT_CONSTRAINTS);
}

/// SHA-256 of the circuits' constraint matrices.
const REQUEST_SHAPE: &str = "e8976119be2d9b2496ea22fa01b63db438ff11d7cde5618dbd17ca126e9dde86";
const EXIT_SHAPE: &str = "3690620dfcfc1ed4668b65775ef384f36ab4a3314c41ba60e1ad18d27908c3e0";

/// Pinned constraint counts.
pub(crate) const REQUEST_CONSTRAINTS: usize = 13_915;
pub(crate) const EXIT_CONSTRAINTS: usize = 6_471;

fn exit_circuit(
    fixture: &mut Fixture,
    index: u32,
    count: u32,
    payout: u64,
) -> (ExitCircuit, super::exit::ExitPublic) {
    fixture.exit(index, count, payout)
}

#[test]
fn exit_honest_and_agrees_with_native() {
    let mut fixture = Fixture::new(12);
    let (circuit, public) = exit_circuit(&mut fixture, 12, 12, 7_000);
    assert!(exit_satisfied(circuit));
    let k = fixture.note.secret;
    let slope = crate::rln::slope(&fixture.dom, &k, 12);
    assert_eq!(public.nullifier, crate::rln::nullifier(&slope));
    assert_eq!(public.exit_x, derive::exit_x(&fixture.dom));
    assert_eq!(public.exit_y, k + slope * public.exit_x);
    assert_eq!(public.commitment, fixture.note.commitment());
    // n = m + 1 pays for the unreceipted request at C_max.
    assert!(exit_satisfied(exit_circuit(&mut fixture, 12, 13, 2_000).0));
    // Genesis exit.
    let genesis = fixture.genesis();
    let (circuit, _) = ExitCircuit::new(
        fixture.dom,
        &fixture.public_key,
        5_000,
        genesis.note.deposit,
        [1; 20],
        &ExitWitness {
            note: genesis.note,
            state: genesis.state,
            blinding: genesis.blinding,
            signature: None,
            request_count: 0,
        },
    )
    .unwrap();
    assert!(exit_satisfied(circuit));
}

fn exit_rejects(fixture: &mut Fixture, tamper: impl FnOnce(&mut ExitCircuit)) {
    let (mut circuit, _) = exit_circuit(fixture, 12, 13, 1_000);
    assert!(
        exit_satisfied(circuit.clone()),
        "the honest witness must satisfy"
    );
    tamper(&mut circuit);
    assert!(
        !exit_satisfied(circuit),
        "the tampered witness must not satisfy"
    );
}

#[test]
fn exit_negative_tests() {
    let mut fixture = Fixture::new(13);
    let f = &mut fixture;
    // k ≠ 0 and C = H(T_ID, k).
    exit_rejects(f, |c| c.assignment.secret = Fr::from(0u64));
    exit_rejects(f, |c| c.assignment.commitment += Fr::from(1u64));
    // The state: opening, signature, note_id, genesis flag.
    exit_rejects(f, |c| c.assignment.state.balance += Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.state.signature_s += Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.note_id += Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.state.is_genesis = Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.state.is_genesis = Fr::from(2u64));
    exit_rejects(f, |c| c.assignment.public_key = AffinePoint::generator());
    // n ≥ m: n = m − 1.
    exit_rejects(f, |c| c.assignment.request_count = Fr::from(11u64));
    // n < 2^32.
    exit_rejects(f, |c| c.assignment.request_count = Fr::from(1u64 << 32));
    // P ≤ B − (n − m)·C_max: 7000 − 5000 = 2000 is the most; 2001 breaks it.
    exit_rejects(f, |c| c.assignment.payout = Fr::from(2_001u64));
    // P ≤ D with D small (the bound above holds).
    exit_rejects(f, |c| {
        c.assignment.deposit = Fr::from(999u64);
    });
    // C_max larger: the owed part grows past B.
    exit_rejects(f, |c| c.assignment.max_class_cost = Fr::from(6_001u64));
    // The share at n: N_n, y_e, x_e, dom.
    exit_rejects(f, |c| c.assignment.nullifier += Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.exit_y += Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.exit_x += Fr::from(1u64));
    exit_rejects(f, |c| c.assignment.dom += Fr::from(1u64));
    // The constructor refuses a payout over the bound.
    assert!(
        ExitCircuit::new(
            f.dom,
            &f.public_key,
            5_000,
            2_001,
            [0; 20],
            &ExitWitness {
                note: f.note,
                state: StateValue::new(7_000, 12, 3).unwrap(),
                blinding: Scalar::from(0u64),
                signature: None,
                request_count: 13,
            }
        )
        .is_err()
    );
}

mod proving {
    use super::*;
    use crate::groth16::{CircuitKind, ProverKey, VerifierKey, proof_from_bytes, proof_to_bytes};

    fn request_key(fixture: &mut Fixture) -> ProverKey {
        let witness = fixture.genesis();
        ProverKey::dev_setup(CircuitKind::Request, fixture.request(&witness, 1), [1; 32]).unwrap()
    }

    #[test]
    fn request_proofs_verify_and_tampered_inputs_fail() {
        let mut fixture = Fixture::new(20);
        let key = request_key(&mut fixture);
        let verifier = key.verifier_key();
        let witness = fixture.signed(7_000, 12);
        let epk = derive::request_signing_key(&witness.note.secret, 12);
        let (circuit, public) = RequestCircuit::new(
            fixture.dom,
            fixture.tree.root(),
            &fixture.public_key,
            500,
            450_000,
            derive::share_x(&epk.verifying_key()),
            &witness,
        )
        .unwrap();
        let inputs = public.to_field_elements();
        assert_eq!(inputs.len(), super::super::request::RequestPublic::LEN);
        let proof = key.prove(circuit.clone(), &mut fixture.rng).unwrap();
        assert_eq!(verifier.verify(&inputs, &proof), Ok(()));
        let uncached = key.prove_uncached(circuit, &mut fixture.rng).unwrap();
        assert_eq!(verifier.verify(&inputs, &uncached), Ok(()));
        // Every public input is bound: changing any one fails verification.
        for i in 0..inputs.len() {
            let mut tampered = inputs.clone();
            tampered[i] += Fr::from(1u64);
            assert!(verifier.verify(&tampered, &proof).is_err(), "input {i}");
        }
        assert!(verifier.verify(&inputs[..10], &proof).is_err());
        // Wire round trip, and malformed bytes are refused.
        let bytes = proof_to_bytes(&proof);
        assert_eq!(proof_from_bytes(&bytes).unwrap(), proof);
        assert!(proof_from_bytes(&bytes[..127]).is_err());
        assert!(proof_from_bytes(&[0xff; 128]).is_err());
        let mut flipped = bytes;
        flipped[3] ^= 0x40;
        assert!(
            proof_from_bytes(&flipped)
                .map(|p| verifier.verify(&inputs, &p).is_err())
                .unwrap_or(true)
        );
        // An unsatisfied witness is refused before proving.
        let mut bad = fixture.request(&witness, 500);
        bad.assignment.nullifier += Fr::from(1u64);
        assert!(matches!(
            key.prove(bad, &mut fixture.rng),
            Err(crate::Error::Unsatisfied("request"))
        ));
    }

    #[test]
    fn batch_verification_finds_the_bad_proof() {
        let mut fixture = Fixture::new(21);
        let key = request_key(&mut fixture);
        let verifier = key.verifier_key();
        let mut items = Vec::new();
        for index in 0..4u32 {
            let witness = fixture.signed(7_000, index + 1);
            let circuit = fixture.request(&witness, 100);
            let inputs = {
                let epk = derive::request_signing_key(&witness.note.secret, index + 1);
                RequestCircuit::new(
                    fixture.dom,
                    fixture.tree.root(),
                    &fixture.public_key,
                    100,
                    450_000,
                    derive::share_x(&epk.verifying_key()),
                    &witness,
                )
                .unwrap()
                .1
                .to_field_elements()
            };
            items.push((inputs, key.prove(circuit, &mut fixture.rng).unwrap()));
        }
        let batch: Vec<(&[Fr], _)> = items.iter().map(|(i, p)| (i.as_slice(), p)).collect();
        assert_eq!(verifier.verify_batch(&batch, &mut fixture.rng), Ok(()));
        // Swap one proof's inputs for another's: exactly that one is reported.
        let mut wrong = items[2].0.clone();
        wrong[6] += Fr::from(1u64);
        let mut batch = batch;
        batch[2].0 = &wrong;
        assert_eq!(
            verifier.verify_batch(&batch, &mut fixture.rng),
            Err(vec![2])
        );
    }

    #[test]
    fn key_files_round_trip_and_reject_bad_keys() {
        let mut fixture = Fixture::new(22);
        let key = request_key(&mut fixture);
        let sample = fixture.request(&fixture.genesis(), 1);
        let file = key.to_file_bytes();
        assert!(file.starts_with(b"NULLGATE-KEY v1 proving request DEV"));
        let checked = ProverKey::from_file_bytes(&file, sample.clone(), None).unwrap();
        assert_eq!(
            checked.verifier_key().key_hash(),
            key.verifier_key().key_hash()
        );
        let header_end = file.iter().position(|b| *b == b'\n').unwrap() + 1;
        let pinned: [u8; 32] = file[header_end + 32..header_end + 64].try_into().unwrap();
        assert!(ProverKey::from_file_bytes(&file, sample.clone(), Some(&pinned)).is_ok());
        // Another pinned hash, a corrupted body, a truncated file, another circuit, junk.
        assert!(ProverKey::from_file_bytes(&file, sample.clone(), Some(&[0; 32])).is_err());
        let mut corrupted = file.clone();
        let last = corrupted.len() - 1;
        corrupted[last] ^= 1;
        assert!(ProverKey::from_file_bytes(&corrupted, sample.clone(), None).is_err());
        assert!(
            ProverKey::from_file_bytes(&file[..header_end + 10], sample.clone(), None).is_err()
        );
        let (exit, _) = exit_circuit(&mut fixture, 1, 1, 1);
        assert!(ProverKey::from_file_bytes(&file, exit, None).is_err());
        assert!(ProverKey::from_file_bytes(b"hello\nworld", sample, None).is_err());
        // Verifying keys decode with checks; garbage is refused.
        let mut vk_bytes = Vec::new();
        ark_serialize::CanonicalSerialize::serialize_compressed(key.verifying_key(), &mut vk_bytes)
            .unwrap();
        assert!(VerifierKey::from_bytes(CircuitKind::Request, &vk_bytes).is_ok());
        assert!(VerifierKey::from_bytes(CircuitKind::Request, &vk_bytes[..100]).is_err());
        // A coordinate at or above the base field modulus is not a point.
        vk_bytes[..31].fill(0xff);
        assert!(VerifierKey::from_bytes(CircuitKind::Request, &vk_bytes).is_err());
    }

    #[test]
    fn exit_proofs_bind_recipient_and_payout() {
        let mut fixture = Fixture::new(23);
        let (sample, _) = exit_circuit(&mut fixture, 1, 1, 1);
        let key = ProverKey::dev_setup(CircuitKind::Exit, sample, [2; 32]).unwrap();
        let verifier = key.verifier_key();
        let (circuit, public) = exit_circuit(&mut fixture, 12, 12, 6_000);
        let proof = key.prove(circuit, &mut fixture.rng).unwrap();
        assert_eq!(verifier.verify(&public.to_field_elements(), &proof), Ok(()));
        let mut other = public;
        other.recipient[19] ^= 1;
        assert!(verifier.verify(&other.to_field_elements(), &proof).is_err());
        let mut other = public;
        other.payout -= 1;
        assert!(verifier.verify(&other.to_field_elements(), &proof).is_err());
        let mut other = public;
        other.note_id += 1;
        assert!(verifier.verify(&other.to_field_elements(), &proof).is_err());
        assert_eq!(
            public.to_field_elements().len(),
            super::super::exit::ExitPublic::LEN
        );
    }

    #[test]
    fn rln_reference_proves() {
        let circuit = crate::sample::rln_reference();
        assert!(is_satisfied(circuit.clone()).unwrap());
        let key =
            ProverKey::dev_setup(CircuitKind::RlnReference, circuit.clone(), [3; 32]).unwrap();
        let mut rng = Rng::seed_from_u64(5);
        let proof = key.prove(circuit.clone(), &mut rng).unwrap();
        let mut inputs = circuit.public_inputs();
        assert_eq!(key.verifier_key().verify(&inputs, &proof), Ok(()));
        inputs[4] += Fr::from(1u64);
        assert!(key.verifier_key().verify(&inputs, &proof).is_err());
    }
}

//! A plain RLN statement at depth 20, the same-run benchmark reference of TARGETS.md.
//!
//! It proves what circom-rln's RLNv2 circuit proves (as in zerokit `rln`): the identity
//! commitment `poseidon([k])` with a message limit hashed into a rate commitment is a leaf of
//! a depth-20 tree of `poseidon([left, right])` nodes; `message_id < limit` (16 bits);
//! `a1 = poseidon([k, external_nullifier, message_id])`, `nullifier = poseidon([a1])`,
//! `y = k + a1·x`. It is never used for credits; it only calibrates the benchmark machine.

use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use crate::{
    Fr,
    gadget::{FrVar, bits::enforce_bits, poseidon::poseidon},
    poseidon::poseidon as native_poseidon,
};

/// Tree depth of the reference statement.
pub const DEPTH: usize = 20;

/// The reference circuit with a full assignment.
#[derive(Clone, Debug)]
pub struct RlnReferenceCircuit {
    secret: Fr,
    limit: u64,
    message_id: u64,
    siblings: [Fr; DEPTH],
    position: u32,
    public: [Fr; 5],
}

impl RlnReferenceCircuit {
    /// An honest instance from a seed-derived secret; returns it with its public inputs
    /// `(x, external_nullifier, y, root, nullifier)`.
    pub fn sample(secret: Fr, position: u32, siblings: [Fr; DEPTH], x: Fr) -> Self {
        let limit = 100u64;
        let message_id = 7u64;
        let external_nullifier = Fr::from(0xe0u64);
        let leaf = native_poseidon(&[native_poseidon(&[secret]), Fr::from(limit)]);
        let mut root = leaf;
        for (level, sibling) in siblings.iter().enumerate() {
            root = if (position >> level) & 1 == 0 {
                native_poseidon(&[root, *sibling])
            } else {
                native_poseidon(&[*sibling, root])
            };
        }
        let a1 = native_poseidon(&[secret, external_nullifier, Fr::from(message_id)]);
        let y = secret + a1 * x;
        let nullifier = native_poseidon(&[a1]);
        Self {
            secret,
            limit,
            message_id,
            siblings,
            position,
            public: [x, external_nullifier, y, root, nullifier],
        }
    }

    /// The public inputs `(x, external_nullifier, y, root, nullifier)`.
    pub fn public_inputs(&self) -> Vec<Fr> {
        self.public.to_vec()
    }
}

impl ConstraintSynthesizer<Fr> for RlnReferenceCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let input = |value: Fr| FrVar::new_input(cs.clone(), || Ok(value));
        let witness = |value: Fr| FrVar::new_witness(cs.clone(), || Ok(value));
        let [x, external_nullifier, y, root, nullifier] = self.public.map(input);
        let (x, external_nullifier, y, root, nullifier) =
            (x?, external_nullifier?, y?, root?, nullifier?);
        let secret = witness(self.secret)?;
        let limit = witness(Fr::from(self.limit))?;
        let message_id = witness(Fr::from(self.message_id))?;
        let position = witness(Fr::from(self.position))?;

        enforce_bits(&limit, 16)?;
        enforce_bits(&message_id, 16)?;
        enforce_bits(&(&limit - &message_id - Fr::from(1u64)), 16)?;
        let identity = poseidon(std::slice::from_ref(&secret))?;
        let mut current = poseidon(&[identity, limit])?;
        let bits = enforce_bits(&position, DEPTH)?;
        for (bit, sibling) in bits.iter().zip(self.siblings) {
            let sibling = witness(sibling)?;
            let delta = FrVar::from(bit.clone()) * (&sibling - &current);
            current = poseidon(&[&current + &delta, sibling - &delta])?;
        }
        current.enforce_equal(&root)?;
        let a1 = poseidon(&[secret.clone(), external_nullifier, message_id])?;
        poseidon(std::slice::from_ref(&a1))?.enforce_equal(&nullifier)?;
        a1.mul_equals(&x, &(y - secret))?;
        Ok(())
    }
}

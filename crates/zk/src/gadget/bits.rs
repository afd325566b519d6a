//! Decompositions of field elements into an exact number of bits.
//!
//! `enforce_bits(value, n)` proves `value < 2^n` as an integer: it allocates `n` boolean
//! witnesses whose weighted sum must equal `value`. With `n < 254` the sum cannot wrap modulo
//! `p`, so a value at or above `2^n` (including a "negative" difference) has no satisfying
//! assignment. Each bit costs one constraint.

use ark_ff::{BigInteger, PrimeField};
use ark_r1cs_std::{GR1CSVar, alloc::AllocVar, boolean::Boolean, eq::EqGadget};
use ark_relations::gr1cs::SynthesisError;

use super::FrVar;
use crate::Fr;

/// Little-endian bits of `value`, exactly `n` of them, with `value < 2^n` enforced.
///
/// # Panics
/// If `n ≥ 254` (the sum could wrap; a programming error).
pub fn enforce_bits(value: &FrVar, n: usize) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    assert!(
        n < Fr::MODULUS_BIT_SIZE as usize,
        "{n} bits could wrap modulo p"
    );
    let bits = alloc_bits(value, n)?;
    Boolean::le_bits_to_fp(&bits)?.enforce_equal(value)?;
    Ok(bits)
}

/// Allocates the low `n` bits of `value` as booleans without tying them to it.
pub(crate) fn alloc_bits(value: &FrVar, n: usize) -> Result<Vec<Boolean<Fr>>, SynthesisError> {
    let native = value.value().ok().map(|v| v.into_bigint().to_bits_le());
    (0..n)
        .map(|i| {
            Boolean::new_witness(value.cs(), || {
                native
                    .as_ref()
                    .map(|bits| bits.get(i).copied().unwrap_or(false))
                    .ok_or(SynthesisError::AssignmentMissing)
            })
        })
        .collect()
}

/// The field element with the given little-endian bits (a linear combination, no constraint).
pub fn from_bits(bits: &[Boolean<Fr>]) -> Result<FrVar, SynthesisError> {
    Boolean::le_bits_to_fp(bits)
}

/// Enforces `value < bound` for a constant `bound ≤ 2^n`, given `value < 2^n` already:
/// `bound − 1 − value` must fit in `n` bits.
pub fn enforce_below(value: &FrVar, bound: u128, n: usize) -> Result<(), SynthesisError> {
    let slack = FrVar::constant(Fr::from(bound - 1)) - value;
    enforce_bits(&slack, n).map(|_| ())
}

use ark_r1cs_std::fields::FieldVar;

#[cfg(test)]
mod tests {
    use super::*;
    use ark_relations::gr1cs::ConstraintSystem;

    fn satisfied(value: Fr, n: usize) -> bool {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let var = FrVar::new_witness(cs.clone(), || Ok(value)).unwrap();
        enforce_bits(&var, n).unwrap();
        cs.is_satisfied().unwrap()
    }

    #[test]
    fn boundaries() {
        assert!(satisfied(Fr::from(0u64), 8));
        assert!(satisfied(Fr::from(255u64), 8));
        assert!(!satisfied(Fr::from(256u64), 8));
        assert!(!satisfied(-Fr::from(1u64), 64));
        assert!(satisfied(Fr::from(u64::MAX), 64));
        assert!(!satisfied(Fr::from(u64::MAX) + Fr::from(1u64), 64));
    }

    #[test]
    fn below_a_bound() {
        for (value, ok) in [(9u64, true), (10, false), (0, true)] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let var = FrVar::new_witness(cs.clone(), || Ok(Fr::from(value))).unwrap();
            enforce_bits(&var, 8).unwrap();
            enforce_below(&var, 10, 8).unwrap();
            assert_eq!(cs.is_satisfied().unwrap(), ok, "{value} < 10");
        }
    }
}

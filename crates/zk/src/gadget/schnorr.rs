//! Schnorr verification in-circuit: twin of [`crate::schnorr::verify`].

use ark_r1cs_std::{boolean::Boolean, eq::EqGadget};
use ark_relations::gr1cs::SynthesisError;

use super::{
    FrVar,
    bits::{alloc_bits, enforce_below, enforce_bits, from_bits},
    ecc::{FixedBase, PointVar, fixed_base_sum},
    poseidon::hash,
};
use crate::{
    Fr,
    constants::{CHALLENGE_BITS, SCALAR_BITS, T_SIG},
    schnorr::{field_high_limb, scalar_high_limb},
};

/// A signature as circuit variables.
pub struct SignatureVar {
    /// `R`, chosen by the prover: checked on the curve here.
    pub r: PointVar,
    /// `s` as an integer below `l`.
    pub s: FrVar,
}

/// Enforces, when `enabled` holds, that `signature` verifies under `public_key` on `message`:
/// `s·G == R + c·PK` with `c` the low 128 bits of the canonical decomposition of
/// `H(T_SIG, R.x, R.y, PK.x, PK.y, h)`, `R` on the curve and `s < l`.
///
/// The range and curve checks hold whether or not `enabled` does (an honest prover with no
/// signature supplies `R = (0, 1)`, `s = 0`).
pub fn verify(
    public_key: &PointVar,
    message: &FrVar,
    signature: &SignatureVar,
    enabled: &Boolean<Fr>,
) -> Result<(), SynthesisError> {
    let SignatureVar { r, s } = signature;
    r.enforce_on_curve()?;

    // The challenge: low 128 bits of the hash, from its canonical decomposition. The high
    // limb is bounded strictly below ⌊p/2^128⌋, so the 254 bits are below p: unique.
    let digest = hash(
        T_SIG,
        &[
            r.x.clone(),
            r.y.clone(),
            public_key.x.clone(),
            public_key.y.clone(),
            message.clone(),
        ],
    )?;
    let digest_bits = alloc_bits(&digest, FR_BITS)?;
    let (challenge_bits, high_bits) = digest_bits.split_at(CHALLENGE_BITS);
    let high = from_bits(high_bits)?;
    (from_bits(challenge_bits)? + &high * Fr::from(1u128 << 64) * Fr::from(1u128 << 64))
        .enforce_equal(&digest)?;
    enforce_below(&high, field_high_limb(), FR_BITS - CHALLENGE_BITS)?;

    // s < l: 251 bits with the high limb strictly below ⌊l/2^128⌋.
    let s_bits = enforce_bits(s, SCALAR_BITS)?;
    enforce_below(
        &from_bits(&s_bits[CHALLENGE_BITS..])?,
        scalar_high_limb(),
        SCALAR_BITS - CHALLENGE_BITS,
    )?;

    let left = fixed_base_sum(None, &[(FixedBase::g(), &s_bits)])?;
    let right = r.add(&public_key.scalar_mul(challenge_bits)?)?;
    left.conditional_enforce_equal(&right, enabled)
}

/// Bits in the canonical decomposition of an `Fr` element.
const FR_BITS: usize = 254;

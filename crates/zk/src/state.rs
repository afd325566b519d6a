//! The private state of a note and its commitment (PROTOCOL §4).
//!
//! Balance `B`, next request index `m` and the note's position `note_id` are packed into one
//! 120-bit value `v = B + 2^64·m + 2^96·note_id` and committed with one blinding:
//! `A = v·G + r·H`. The gateway lowers `B` by `Δ` and raises `m` by one without learning
//! either: `A' = A_pub − Δ·G + 2^64·G`.

use ark_ff::PrimeField;

use crate::{
    Error, Fr,
    constants::TREE_DEPTH,
    curve::{self, AffinePoint, Point, Scalar},
};

/// The three fields of a note's private state, packed into `v`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateValue {
    balance: u64,
    index: u32,
    note_id: u32,
}

impl StateValue {
    /// A state value; `note_id` must be below `2^24` (the tree's size).
    pub fn new(balance: u64, index: u32, note_id: u32) -> Result<Self, Error> {
        if note_id >= 1 << TREE_DEPTH {
            return Err(Error::Tree("note_id must be below 2^24"));
        }
        Ok(Self {
            balance,
            index,
            note_id,
        })
    }

    /// The balance `B`, in credit units.
    pub fn balance(&self) -> u64 {
        self.balance
    }

    /// The next request index `m`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The note's position in the tree.
    pub fn note_id(&self) -> u32 {
        self.note_id
    }

    /// `v = B + 2^64·m + 2^96·note_id` as an integer (120 bits).
    pub fn packed(&self) -> u128 {
        u128::from(self.balance) | (u128::from(self.index) << 64) | (u128::from(self.note_id) << 96)
    }

    /// `v` as a Baby-JubJub scalar.
    pub fn packed_scalar(&self) -> Scalar {
        Scalar::from(self.packed())
    }

    /// `v` as a field element.
    pub fn packed_fr(&self) -> Fr {
        Fr::from(self.packed())
    }

    /// The state after a charge of `delta`: `B − Δ`, `m + 1`. `None` if `Δ > B` or `m` would
    /// reach `2^32 − 1` (the circuit requires `m < 2^32 − 1`).
    pub fn charged(&self, delta: u64) -> Option<Self> {
        let balance = self.balance.checked_sub(delta)?;
        let index = self.index.checked_add(1).filter(|m| *m < u32::MAX)?;
        Some(Self {
            balance,
            index,
            note_id: self.note_id,
        })
    }
}

/// `A = v·G + r·H`.
pub fn commit(value: &StateValue, blinding: &Scalar) -> AffinePoint {
    curve::add(
        &curve::mul_g(&value.packed_scalar()),
        &curve::mul(&curve::generator_h(), blinding),
    )
}

/// `A_pub = A + ε·H`: the commitment shown with a request, unlinkable to `A`.
pub fn rerandomise(commitment: &AffinePoint, epsilon: &Scalar) -> AffinePoint {
    curve::add(commitment, &curve::mul(&curve::generator_h(), epsilon))
}

/// The gateway's blind update `A' = A_pub − Δ·G + 2^64·G`: charges `Δ` and advances `m`.
pub fn charge(published: &AffinePoint, delta: u64) -> AffinePoint {
    let shift = Scalar::from(1u128 << 64) - Scalar::from(delta);
    curve::add(published, &curve::mul_g(&shift))
}

/// [`charge`] of a checked point: the result stays in the subgroup, so it needs no second
/// subgroup check. `None` if it is the identity.
pub fn charge_point(published: &Point, delta: u64) -> Option<Point> {
    Point::from_subgroup(charge(&published.affine(), delta), "A'").ok()
}

/// Whether `value` is the integer of a scalar `< 2^bits` (used for range reasoning in tests).
pub fn scalar_fits(value: &Scalar, bits: u32) -> bool {
    use ark_ff::BigInteger;
    value.into_bigint().num_bits() <= bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_and_charging() {
        let value = StateValue::new(1000, 3, 5).unwrap();
        assert_eq!(value.packed(), 1000 + (3u128 << 64) + (5u128 << 96));
        assert!(StateValue::new(0, 0, 1 << 24).is_err());
        assert_eq!(value.charged(1001), None);
        assert_eq!(
            StateValue::new(0, u32::MAX - 1, 0).unwrap().charged(0),
            None
        );
        let after = value.charged(400).unwrap();
        assert_eq!(
            (after.balance(), after.index(), after.note_id()),
            (600, 4, 5)
        );
    }

    #[test]
    fn gateway_update_matches_the_charged_state() {
        let value = StateValue::new(1000, 3, 5).unwrap();
        let r = Scalar::from(77u64);
        let epsilon = Scalar::from(1234567u64);
        let a = commit(&value, &r);
        let a_pub = rerandomise(&a, &epsilon);
        assert_ne!(a, a_pub);
        assert_eq!(a_pub, commit(&value, &(r + epsilon)));
        let updated = charge(&a_pub, 400);
        assert_eq!(
            updated,
            commit(&value.charged(400).unwrap(), &(r + epsilon))
        );
    }
}

//! Fixed-base scalar multiplication: a table of multiples of one point made once, so that
//! `x·P` costs one table addition per byte of `x` instead of a double-and-add. Used for `G`
//! on Baby Jubjub (state signatures and charges) and for the Groth16 input points.

use ark_ec::CurveGroup;
use ark_ff::{BigInteger, PrimeField};

/// Bits per window: one window per byte of the scalar.
const WINDOW_BITS: usize = 8;

/// `rows[w][d] = d · 2^(8w) · P` for every byte `d` of a little-endian scalar.
pub(crate) struct FixedBase<G: CurveGroup> {
    rows: Vec<Vec<G::Affine>>,
}

impl<G: CurveGroup> FixedBase<G> {
    /// The table of `point` (256 affine points per byte of a scalar).
    pub(crate) fn new(point: G) -> Self {
        let windows = (G::ScalarField::MODULUS_BIT_SIZE as usize).div_ceil(WINDOW_BITS);
        let mut base = point;
        let rows = (0..windows)
            .map(|_| {
                let mut row = Vec::with_capacity(1 << WINDOW_BITS);
                let mut acc = G::zero();
                for _ in 0..1 << WINDOW_BITS {
                    row.push(acc);
                    acc += base;
                }
                base = acc;
                G::normalize_batch(&row)
            })
            .collect();
        Self { rows }
    }

    /// `scalar · P`. Not constant time, like arkworks' own double-and-add.
    pub(crate) fn mul(&self, scalar: &G::ScalarField) -> G {
        let bytes = scalar.into_bigint().to_bytes_le();
        let mut acc = G::zero();
        for (row, digit) in self.rows.iter().zip(bytes) {
            if digit != 0 {
                acc += row[usize::from(digit)];
            }
        }
        acc
    }
}

//! Baby-JubJub points in-circuit, in EIP-2494 coordinates: twin of [`crate::curve`].
//!
//! Twisted Edwards addition with `a` a square and `d` a non-square is complete, so no case
//! analysis is needed: the identity `(0, 1)` and doubling go through the same formula.
//! Costs: addition 6 constraints (3 when one operand is constant), doubling 5, a 3-bit window
//! of a fixed-base multiplication 9 (a 3-constraint table lookup plus an addition), a bit of
//! a variable-base multiplication 13.

use std::sync::OnceLock;

use ark_ec::CurveGroup;
use ark_ff::{Field, Zero};
use ark_r1cs_std::{GR1CSVar, alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use super::FrVar;
use crate::{
    Fr,
    curve::{AffinePoint, COEFF_A, COEFF_D, ProjectivePoint, generator_g, generator_h},
};

/// A point as two field variables. No validity is implied: use
/// [`PointVar::enforce_on_curve`] for points the prover chooses.
#[derive(Clone, Debug)]
pub struct PointVar {
    /// The `x` coordinate.
    pub x: FrVar,
    /// The `y` coordinate.
    pub y: FrVar,
}

impl PointVar {
    /// A constant point (free).
    pub fn constant(point: &AffinePoint) -> Self {
        Self {
            x: FrVar::constant(point.x),
            y: FrVar::constant(point.y),
        }
    }

    /// The identity `(0, 1)`.
    pub fn identity() -> Self {
        Self {
            x: FrVar::zero(),
            y: FrVar::one(),
        }
    }

    /// Allocates a point as witness coordinates (no check).
    pub fn witness(
        cs: ConstraintSystemRef<Fr>,
        point: Option<AffinePoint>,
    ) -> Result<Self, SynthesisError> {
        Ok(Self {
            x: FrVar::new_witness(cs.clone(), || {
                point.map(|p| p.x).ok_or(SynthesisError::AssignmentMissing)
            })?,
            y: FrVar::new_witness(cs, || {
                point.map(|p| p.y).ok_or(SynthesisError::AssignmentMissing)
            })?,
        })
    }

    /// Allocates a point as two public inputs, `x` then `y` (no check: the verifier supplies it).
    pub fn input(cs: ConstraintSystemRef<Fr>, point: AffinePoint) -> Result<Self, SynthesisError> {
        Ok(Self {
            x: FrVar::new_input(cs.clone(), || Ok(point.x))?,
            y: FrVar::new_input(cs, || Ok(point.y))?,
        })
    }

    /// The native value, where known.
    pub fn value(&self) -> Option<AffinePoint> {
        Some(AffinePoint::new_unchecked(
            self.x.value().ok()?,
            self.y.value().ok()?,
        ))
    }

    /// Enforces `a·x² + y² = 1 + d·x²·y²` (3 constraints).
    pub fn enforce_on_curve(&self) -> Result<(), SynthesisError> {
        let xx = self.x.square()?;
        let yy = self.y.square()?;
        let lhs = &xx * COEFF_A + &yy - Fr::from(1u64);
        (xx * COEFF_D).mul_equals(&yy, &lhs)
    }

    /// Complete addition (EIP-2494 formulas, as circomlib's `BabyAdd`).
    pub fn add(&self, other: &Self) -> Result<Self, SynthesisError> {
        let beta = &self.x * &other.y;
        let gamma = &self.y * &other.x;
        let delta = (&self.y - &self.x * COEFF_A) * (&other.x + &other.y);
        let tau = &beta * &gamma;
        let x_num = &beta + &gamma;
        let x_den = &tau * COEFF_D + Fr::from(1u64);
        let y_num = &delta + &beta * COEFF_A - &gamma;
        let y_den = FrVar::one() - &tau * COEFF_D;
        Ok(Self {
            x: divide(&x_num, &x_den)?,
            y: divide(&y_num, &y_den)?,
        })
    }

    /// Doubling (5 constraints).
    pub fn double(&self) -> Result<Self, SynthesisError> {
        let xx = self.x.square()?;
        let yy = self.y.square()?;
        let xy = &self.x * &self.y;
        let axx = &xx * COEFF_A;
        let x_den = &axx + &yy;
        let y_den = FrVar::constant(Fr::from(2u64)) - &axx - &yy;
        Ok(Self {
            x: divide(&xy.double()?, &x_den)?,
            y: divide(&(&yy - &axx), &y_den)?,
        })
    }

    /// `bit ? self : identity` (2 constraints, free for a constant point and bit).
    pub fn select_or_identity(&self, bit: &Boolean<Fr>) -> Self {
        let bit = FrVar::from(bit.clone());
        Self {
            x: &bit * &self.x,
            y: &bit * (&self.y - Fr::from(1u64)) + Fr::from(1u64),
        }
    }

    /// Enforces equality with `other` when `condition` holds (2 constraints).
    pub fn conditional_enforce_equal(
        &self,
        other: &Self,
        condition: &Boolean<Fr>,
    ) -> Result<(), SynthesisError> {
        self.x.conditional_enforce_equal(&other.x, condition)?;
        self.y.conditional_enforce_equal(&other.y, condition)
    }

    /// Enforces equality with `other`.
    pub fn enforce_equal(&self, other: &Self) -> Result<(), SynthesisError> {
        self.x.enforce_equal(&other.x)?;
        self.y.enforce_equal(&other.y)
    }

    /// `scalar·self` for a variable point and little-endian scalar bits, by double-and-add
    /// from the top bit.
    pub fn scalar_mul(&self, bits: &[Boolean<Fr>]) -> Result<Self, SynthesisError> {
        let mut acc = Self::identity();
        for (i, bit) in bits.iter().rev().enumerate() {
            if i > 0 {
                acc = acc.double()?;
            }
            acc = acc.add(&self.select_or_identity(bit))?;
        }
        Ok(acc)
    }
}

/// A fixed base with its precomputed 3-bit window tables: `table[i][j] = j·8^i·base`.
pub struct FixedBase {
    tables: Vec<[AffinePoint; 8]>,
}

impl FixedBase {
    /// Tables for scalars of up to `bits` bits.
    pub fn new(base: &AffinePoint, bits: usize) -> Self {
        let windows = bits.div_ceil(WINDOW);
        let mut tables = Vec::with_capacity(windows);
        let mut window_base = ProjectivePoint::from(*base);
        for _ in 0..windows {
            let mut row = [ProjectivePoint::zero(); 8];
            for j in 1..8 {
                row[j] = row[j - 1] + window_base;
            }
            let affine = ProjectivePoint::normalize_batch(&row);
            tables.push(affine.try_into().expect("8 points"));
            for _ in 0..WINDOW {
                window_base = window_base + window_base;
            }
        }
        Self { tables }
    }

    /// `G` with tables for 251-bit scalars, built once.
    pub fn g() -> &'static Self {
        static G: OnceLock<FixedBase> = OnceLock::new();
        G.get_or_init(|| Self::new(&generator_g(), crate::constants::SCALAR_BITS))
    }

    /// `H` with tables for 251-bit scalars, built once.
    pub fn h() -> &'static Self {
        static H: OnceLock<FixedBase> = OnceLock::new();
        H.get_or_init(|| Self::new(&generator_h(), crate::constants::SCALAR_BITS))
    }

    /// The point `bits[3i..3i+3]·8^i·base` for window `i` (3 constraints).
    fn lookup(&self, window: usize, bits: &[Boolean<Fr>]) -> Result<PointVar, SynthesisError> {
        let table = &self.tables[window];
        let bit = |i: usize| bits.get(i).cloned().unwrap_or(Boolean::FALSE);
        let (b0, b1, b2) = (bit(0), bit(1), bit(2));
        let b01 = FrVar::from(b0.clone() & b1.clone());
        let (b0, b1) = (FrVar::from(b0), FrVar::from(b1));
        let b2 = FrVar::from(b2);
        // Multilinear interpolation over (b0, b1) of table[4·b2 + 2·b1 + b0].
        let coordinate = |f: &dyn Fn(&AffinePoint) -> Fr| -> Result<FrVar, SynthesisError> {
            let low = interpolate(&[0, 1, 2, 3].map(|j| f(&table[j])), &b0, &b1, &b01);
            let high = interpolate(&[4, 5, 6, 7].map(|j| f(&table[j])), &b0, &b1, &b01);
            Ok(&low + &b2 * (high - &low))
        };
        Ok(PointVar {
            x: coordinate(&|p| p.x)?,
            y: coordinate(&|p| p.y)?,
        })
    }

    /// Accumulates `Σ bits_i·base_i` into `acc` (or starts from the first window).
    fn accumulate(
        &self,
        bits: &[Boolean<Fr>],
        acc: Option<PointVar>,
    ) -> Result<PointVar, SynthesisError> {
        assert!(
            bits.len() <= self.tables.len() * WINDOW,
            "scalar wider than the precomputed tables"
        );
        let mut acc = acc;
        for (window, chunk) in bits.chunks(WINDOW).enumerate() {
            let point = self.lookup(window, chunk)?;
            acc = Some(match acc {
                None => point,
                Some(sum) => sum.add(&point)?,
            });
        }
        Ok(acc.unwrap_or_else(PointVar::identity))
    }
}

const WINDOW: usize = 3;

/// `start + Σ scalar_i·base_i` over fixed bases, all windows in one running sum (`start`
/// defaults to the identity, which costs nothing).
pub fn fixed_base_sum(
    start: Option<PointVar>,
    terms: &[(&FixedBase, &[Boolean<Fr>])],
) -> Result<PointVar, SynthesisError> {
    let mut acc = start;
    for (base, bits) in terms {
        acc = Some(base.accumulate(bits, acc)?);
    }
    Ok(acc.unwrap_or_else(PointVar::identity))
}

/// `f(b0, b1)` for the table `[f00, f10, f01, f11]`, as a linear combination of
/// `1, b0, b1, b0·b1`.
fn interpolate(table: &[Fr; 4], b0: &FrVar, b1: &FrVar, b01: &FrVar) -> FrVar {
    let [f00, f10, f01, f11] = *table;
    FrVar::constant(f00) + b0 * (f10 - f00) + b1 * (f01 - f00) + b01 * (f11 - f10 - f01 + f00)
}

/// `numerator / denominator` as a fresh witness with one constraint; the denominators of the
/// complete formulas are never zero for points on the curve.
fn divide(numerator: &FrVar, denominator: &FrVar) -> Result<FrVar, SynthesisError> {
    if let (FrVar::Constant(n), FrVar::Constant(d)) = (numerator, denominator) {
        return Ok(FrVar::constant(
            *n * d.inverse().ok_or(SynthesisError::DivisionByZero)?,
        ));
    }
    let cs = numerator.cs().or(denominator.cs());
    let quotient = FrVar::new_witness(cs, || {
        let d = denominator.value()?;
        Ok(numerator.value()? * d.inverse().ok_or(SynthesisError::DivisionByZero)?)
    })?;
    quotient.mul_equals(denominator, numerator)?;
    Ok(quotient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::{self, Scalar};
    use crate::gadget::bits::enforce_bits;
    use ark_ff::PrimeField;
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::SeedableRng;

    fn witness_scalar(cs: &ConstraintSystemRef<Fr>, scalar: &Scalar, n: usize) -> Vec<Boolean<Fr>> {
        let value = FrVar::new_witness(cs.clone(), || Ok(curve::scalar_to_fr(scalar))).unwrap();
        enforce_bits(&value, n).unwrap()
    }

    #[test]
    fn arithmetic_matches_native() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let cs = ConstraintSystem::<Fr>::new_ref();
        let p = curve::mul(&generator_g(), &Scalar::rand(&mut rng));
        let q = curve::mul(&generator_h(), &Scalar::rand(&mut rng));
        let pv = PointVar::witness(cs.clone(), Some(p)).unwrap();
        let qv = PointVar::witness(cs.clone(), Some(q)).unwrap();
        pv.enforce_on_curve().unwrap();
        assert_eq!(pv.add(&qv).unwrap().value(), Some(curve::add(&p, &q)));
        assert_eq!(pv.double().unwrap().value(), Some(curve::add(&p, &p)));
        assert_eq!(pv.add(&PointVar::identity()).unwrap().value(), Some(p));
        // Fixed base, boundaries and random scalars.
        for scalar in [
            Scalar::from(0u64),
            Scalar::from(1u64),
            Scalar::from(7u64),
            Scalar::from(8u64),
            -Scalar::from(1u64),
            Scalar::rand(&mut rng),
        ] {
            let bits = witness_scalar(&cs, &scalar, 251);
            let sum = fixed_base_sum(None, &[(FixedBase::g(), &bits)]).unwrap();
            assert_eq!(sum.value(), Some(curve::mul(&generator_g(), &scalar)));
            let product = pv.scalar_mul(&bits[..128]).unwrap();
            let low = Scalar::from_bigint(<Scalar as PrimeField>::BigInt::from_bits_le(
                &scalar.into_bigint().to_bits_le()[..128],
            ))
            .unwrap();
            assert_eq!(product.value(), Some(curve::mul(&p, &low)));
        }
        // Two bases in one sum.
        let (a, b) = (Scalar::rand(&mut rng), Scalar::from(12345u64));
        let bits_a = witness_scalar(&cs, &a, 251);
        let bits_b = witness_scalar(&cs, &b, 120);
        let sum = fixed_base_sum(
            None,
            &[(FixedBase::g(), &bits_b), (FixedBase::h(), &bits_a)],
        )
        .unwrap();
        assert_eq!(
            sum.value(),
            Some(curve::add(
                &curve::mul(&generator_g(), &b),
                &curve::mul(&generator_h(), &a)
            ))
        );
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn off_curve_point_is_unsatisfied() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        let g = generator_g();
        let bad = AffinePoint::new_unchecked(g.x, g.y + Fr::from(1u64));
        PointVar::witness(cs.clone(), Some(bad))
            .unwrap()
            .enforce_on_curve()
            .unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    use ark_ff::BigInteger;
}

//! Baby-JubJub in EIP-2494 coordinates, its generators `G` and `H`, and checked points.
//!
//! EIP-2494 writes the curve as `168700·x² + y² = 1 + 168696·x²·y²` over BN254's scalar field.
//! `ark-ed-on-bn254` uses an isomorphic curve with `a = 1` (a scaled `x`) and another generator,
//! so this module defines its own curve configuration with EIP-2494's `a`, `d` and circomlib's
//! `Base8` as generator; points here are bit-for-bit those of circomlib (PROTOCOL §1).

use std::sync::OnceLock;

use ark_ec::{
    AffineRepr, CurveConfig, CurveGroup,
    twisted_edwards::{Affine, MontCurveConfig, Projective, TECurveConfig},
};
use ark_ff::{Field, MontFp, PrimeField};
use sha2::{Digest, Sha256};

use crate::{
    Error, Fr,
    field::{fr_from_bytes, fr_to_bytes},
    fixed_base::FixedBase,
};

/// A Baby-JubJub scalar: an integer modulo the prime subgroup order `l`.
pub type Scalar = ark_ed_on_bn254::Fr;

/// The curve configuration of EIP-2494 (`a = 168700`, `d = 168696`, generator `Base8`).
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Eip2494;

/// An affine point of [`Eip2494`] with no validity guarantee (arithmetic results, internal use).
pub type AffinePoint = Affine<Eip2494>;
/// A projective point of [`Eip2494`].
pub type ProjectivePoint = Projective<Eip2494>;

impl CurveConfig for Eip2494 {
    type BaseField = Fr;
    type ScalarField = Scalar;
    const COFACTOR: &'static [u64] = &[8];
    const COFACTOR_INV: Scalar =
        MontFp!("2394026564107420727433200628387514462817212225638746351800188703329891451411");
}

impl TECurveConfig for Eip2494 {
    const COEFF_A: Fr = MontFp!("168700");
    const COEFF_D: Fr = MontFp!("168696");
    const GENERATOR: AffinePoint = AffinePoint::new_unchecked(BASE8_X, BASE8_Y);
    type MontCurveConfig = Eip2494;
}

impl MontCurveConfig for Eip2494 {
    const COEFF_A: Fr = MontFp!("168698");
    const COEFF_B: Fr = MontFp!("1");
    type TECurveConfig = Eip2494;
}

/// `a` of the EIP-2494 curve equation.
pub const COEFF_A: Fr = <Eip2494 as TECurveConfig>::COEFF_A;
/// `d` of the EIP-2494 curve equation.
pub const COEFF_D: Fr = <Eip2494 as TECurveConfig>::COEFF_D;

const BASE8_X: Fr =
    MontFp!("5299619240641551281634865583518297030282874472190772894086521144482721001553");
const BASE8_Y: Fr =
    MontFp!("16950150798460657717958625567821834550301663161624707787222815936182638968203");

/// A point that is on the curve, in the prime-order subgroup and not the identity.
///
/// Every point read from outside is decoded into this type through [`Point::from_bytes`],
/// so holding one means the checks of PROTOCOL §1 passed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Point(AffinePoint);

impl Point {
    /// Decodes `x ‖ y` (64 bytes, each a canonical big-endian field element) and checks
    /// that the point is on the curve, in the subgroup and not the identity.
    pub fn from_bytes(bytes: &[u8], what: &'static str) -> Result<Self, Error> {
        if bytes.len() != 64 {
            return Err(Error::Length {
                what,
                expected: 64,
                got: bytes.len(),
            });
        }
        let x = fr_from_bytes(&bytes[..32], what)?;
        let y = fr_from_bytes(&bytes[32..], what)?;
        Self::from_coordinates(x, y, what)
    }

    /// Checks coordinates as [`Point::from_bytes`] does.
    pub fn from_coordinates(x: Fr, y: Fr, what: &'static str) -> Result<Self, Error> {
        let point = AffinePoint::new_unchecked(x, y);
        if !point.is_on_curve() {
            return Err(Error::NotOnCurve(what));
        }
        if !point.is_in_correct_subgroup_assuming_on_curve() {
            return Err(Error::NotInSubgroup(what));
        }
        if point.is_zero() {
            return Err(Error::Identity(what));
        }
        Ok(Self(point))
    }

    /// Accepts an arithmetic result as a point if it is not the identity (a point computed
    /// from subgroup points stays in the subgroup).
    pub(crate) fn from_subgroup(point: AffinePoint, what: &'static str) -> Result<Self, Error> {
        if point.is_zero() {
            Err(Error::Identity(what))
        } else {
            Ok(Self(point))
        }
    }

    /// Encodes the point as `x ‖ y`, 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&fr_to_bytes(&self.0.x));
        out[32..].copy_from_slice(&fr_to_bytes(&self.0.y));
        out
    }

    /// The `x` coordinate.
    pub fn x(&self) -> Fr {
        self.0.x
    }

    /// The `y` coordinate.
    pub fn y(&self) -> Fr {
        self.0.y
    }

    /// The underlying affine point.
    pub fn affine(&self) -> AffinePoint {
        self.0
    }
}

/// `G`: circomlib's `Base8`, the generator of the prime-order subgroup.
pub fn generator_g() -> AffinePoint {
    Eip2494::GENERATOR
}

/// `H`: the nothing-up-my-sleeve generator of PROTOCOL §11, derived once and cached.
pub fn generator_h() -> AffinePoint {
    static H: OnceLock<AffinePoint> = OnceLock::new();
    *H.get_or_init(derive_h)
}

/// Derives `H` exactly as PROTOCOL §11 says: hash a counter to `y`, solve for `x`, take the
/// smaller root, multiply by the cofactor 8, skip failures.
fn derive_h() -> AffinePoint {
    for i in 0u32.. {
        let digest = Sha256::new()
            .chain_update(b"nullgate/v1/H")
            .chain_update(i.to_be_bytes())
            .finalize();
        let Ok(y) = fr_from_bytes(&digest, "H candidate") else {
            continue;
        };
        let y2 = y.square();
        let Some(denominator) = (COEFF_A - COEFF_D * y2).inverse() else {
            continue;
        };
        let Some(x) = ((Fr::from(1u64) - y2) * denominator).sqrt() else {
            continue;
        };
        let x = if x.into_bigint() < (-x).into_bigint() {
            x
        } else {
            -x
        };
        let candidate = AffinePoint::new_unchecked(x, y);
        let h = candidate.mul_by_cofactor();
        if !h.is_zero() {
            return h;
        }
    }
    unreachable!("the counter space is never exhausted")
}

/// `scalar · G` from a table of multiples of `G` made once: 32 additions instead of a
/// 251-bit double-and-add, for the state signatures and charges on every paid call. Like
/// [`mul`] (arkworks' double-and-add), not constant time.
pub fn mul_g(scalar: &Scalar) -> AffinePoint {
    g_table().mul(scalar).into_affine()
}

fn g_table() -> &'static FixedBase<ProjectivePoint> {
    static TABLE: OnceLock<FixedBase<ProjectivePoint>> = OnceLock::new();
    TABLE.get_or_init(|| FixedBase::new(generator_g().into()))
}

/// `scalar · point` in the subgroup.
pub fn mul(point: &AffinePoint, scalar: &Scalar) -> AffinePoint {
    (*point * scalar).into_affine()
}

/// `a + b`.
pub fn add(a: &AffinePoint, b: &AffinePoint) -> AffinePoint {
    (ProjectivePoint::from(*a) + b).into_affine()
}

/// `a - b`.
pub fn sub(a: &AffinePoint, b: &AffinePoint) -> AffinePoint {
    (ProjectivePoint::from(*a) - b).into_affine()
}

/// Reads a 64-byte big-endian string as an integer and reduces it modulo `l` (wide reduction,
/// no bias): the scalar derivation of PROTOCOL §11.
pub fn scalar_from_wide(bytes: &[u8; 64]) -> Scalar {
    Scalar::from_be_bytes_mod_order(bytes)
}

/// Encodes a scalar as 32 bytes, big-endian.
pub fn scalar_to_bytes(scalar: &Scalar) -> [u8; 32] {
    use ark_ff::BigInteger;
    let mut out = [0u8; 32];
    out.copy_from_slice(&scalar.into_bigint().to_bytes_be());
    out
}

/// Decodes 32 big-endian bytes as a scalar, rejecting values `≥ l`.
pub fn scalar_from_bytes(bytes: &[u8], what: &'static str) -> Result<Scalar, Error> {
    let value = fr_from_bytes(bytes, what)?;
    Scalar::from_bigint(value.into_bigint()).ok_or(Error::NonCanonicalScalar(what))
}

/// Converts a scalar's integer into `Fr` (always fits: `l < p`).
pub fn scalar_to_fr(scalar: &Scalar) -> Fr {
    Fr::from_bigint(scalar.into_bigint()).expect("l < p")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon::vectors::fr;
    use ark_std::UniformRand;

    #[test]
    fn mul_g_matches_double_and_add() {
        let g = generator_g();
        let mut rng = rand::thread_rng();
        let mut scalars = vec![
            Scalar::from(0u64),
            Scalar::from(1u64),
            Scalar::from(255u64),
            Scalar::from(256u64),
            Scalar::from(1u128 << 64),
            -Scalar::from(1u64),
        ];
        scalars.extend((0..20).map(|_| Scalar::rand(&mut rng)));
        for scalar in &scalars {
            assert_eq!(mul_g(scalar), mul(&g, scalar), "scalar {scalar}");
        }
    }

    #[test]
    fn g_is_circomlib_base8() {
        let g = generator_g();
        assert!(g.is_on_curve());
        assert!(g.is_in_correct_subgroup_assuming_on_curve());
        // circomlib's Base8 is 8·Generator with Generator = (995203…, 5472060…).
        let generator = AffinePoint::new_unchecked(
            MontFp!("995203441582195749578291179787384436505546430278305826713579947235728471134"),
            MontFp!("5472060717959818805561601436314318772137091100104008585924551046643952123905"),
        );
        assert!(generator.is_on_curve());
        assert_eq!(generator.mul_by_cofactor(), g);
    }

    #[test]
    fn h_is_pinned_valid_and_reproducible() {
        let h = generator_h();
        assert!(h.is_on_curve());
        assert!(h.is_in_correct_subgroup_assuming_on_curve());
        assert!(!h.is_zero());
        assert_ne!(h, generator_g());
        assert_eq!(derive_h(), h);
        assert_eq!(
            Point::from_subgroup(h, "H").unwrap().to_bytes().to_vec(),
            [fr_to_bytes(&fr(H_X)), fr_to_bytes(&fr(H_Y))].concat()
        );
    }

    /// `H`'s coordinates, pinned: any change to the derivation fails here.
    const H_X: &str = "17aea643b865ab2a6bc246167b6cbb563a4f4321aa1903d220faec8be2eb5b3f";
    const H_Y: &str = "1212063ec78a2ba1f2e982c30428f7d7d70dbae7046b0e01816514f37acbf23b";

    #[test]
    fn decoding_rejects_bad_points() {
        let g = Point::from_subgroup(generator_g(), "G").unwrap();
        assert_eq!(Point::from_bytes(&g.to_bytes(), "p"), Ok(g));
        // Off the curve.
        let mut bytes = g.to_bytes();
        bytes[63] ^= 1;
        assert_eq!(Point::from_bytes(&bytes, "p"), Err(Error::NotOnCurve("p")));
        // The identity (0, 1).
        let identity = [fr_to_bytes(&Fr::from(0u64)), fr_to_bytes(&Fr::from(1u64))].concat();
        assert_eq!(Point::from_bytes(&identity, "p"), Err(Error::Identity("p")));
        // A point of order 2, (0, -1): on the curve, outside the subgroup.
        let order_two = [fr_to_bytes(&Fr::from(0u64)), fr_to_bytes(&-Fr::from(1u64))].concat();
        assert_eq!(
            Point::from_bytes(&order_two, "p"),
            Err(Error::NotInSubgroup("p"))
        );
        // G plus a point of order 2 is on the curve but not in the subgroup.
        let mixed = add(
            &generator_g(),
            &AffinePoint::new_unchecked(Fr::from(0u64), -Fr::from(1u64)),
        );
        let bytes = [fr_to_bytes(&mixed.x), fr_to_bytes(&mixed.y)].concat();
        assert_eq!(
            Point::from_bytes(&bytes, "p"),
            Err(Error::NotInSubgroup("p"))
        );
        // Non-canonical coordinate and wrong length.
        let mut bytes = g.to_bytes();
        bytes[..32].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            Point::from_bytes(&bytes, "p"),
            Err(Error::NonCanonicalField("p"))
        );
        assert!(matches!(
            Point::from_bytes(&[0u8; 63], "p"),
            Err(Error::Length { .. })
        ));
    }

    #[test]
    fn scalars_reject_values_at_or_above_l() {
        let l_minus_one = -Scalar::from(1u64);
        let bytes = scalar_to_bytes(&l_minus_one);
        assert_eq!(scalar_from_bytes(&bytes, "s"), Ok(l_minus_one));
        use ark_ff::BigInteger;
        let l = Scalar::MODULUS.to_bytes_be();
        assert_eq!(
            scalar_from_bytes(&l, "s"),
            Err(Error::NonCanonicalScalar("s"))
        );
    }
}

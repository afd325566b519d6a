//! R1CS gadgets, each the twin of a native function of the same name.
//!
//! - [`poseidon`]: the circom Poseidon permutation and the tagged hash `H`.
//! - [`bits`]: decompositions to an exact bit length (range checks without wrap-around).
//! - [`ecc`]: Baby-JubJub points in EIP-2494 coordinates: complete addition, doubling,
//!   windowed fixed-base and double-and-add variable-base multiplication.

pub mod bits;
pub mod ecc;
pub mod merkle;
pub mod poseidon;
pub mod schnorr;

/// The constraint field of every gadget.
pub type FrVar = ark_r1cs_std::fields::fp::FpVar<crate::Fr>;

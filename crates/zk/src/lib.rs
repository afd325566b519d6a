//! # nullgate-zk: the credit cryptography
//!
//! Everything a nullgate credential is made of, natively and as Groth16 circuits over BN254:
//!
//! - [`poseidon`]: Poseidon with circom/iden3 parameters and a domain tag as first input
//!   (PROTOCOL §1, §11), natively and as an R1CS gadget ([`gadget::poseidon`]).
//! - [`curve`]: Baby-JubJub in EIP-2494 coordinates, the generators `G` (circomlib `Base8`) and
//!   the nothing-up-my-sleeve `H`, and point decoding with curve, subgroup and identity checks.
//! - [`state`]: the packed private state `v = B + 2^64·m + 2^96·note_id`, its commitment
//!   `A = v·G + r·H`, rerandomisation and the gateway's blind update (PROTOCOL §4).
//! - [`schnorr`]: the state-signing Schnorr scheme with a 128-bit challenge (PROTOCOL §1).
//! - [`derive`]: `dom`, `x_e`, the per-request Ed25519 key, `x` and `ε` (PROTOCOL §2, §5).
//! - [`tree`]: the depth-24 sparse note tree with root history (PROTOCOL §3).
//! - [`rln`]: rate-limiting shares, nullifiers and secret recovery (PROTOCOL §5.3, §6.2).
//! - [`circuit`]: the request circuit (§7), the exit circuit (§8), and a plain depth-20 RLN
//!   circuit used only as a benchmark reference.
//! - [`groth16`]: deterministic DEV setup, proving with cached constraint matrices,
//!   verification, batch verification with bisection, and key files with a pinned hash.
//!
//! The crate does no I/O: it takes bytes and returns typed values, so that it is easy to test
//! and to fuzz. Files, progress bars and networking belong to the callers.
//!
//! ## Design notes
//!
//! Constraints are spent where PROTOCOL requires them and nowhere else: a tag widens a Poseidon
//! permutation by one element instead of costing a second permutation; fixed-base
//! multiplications by `G` and `H` use 3-bit windows over precomputed tables; the packed 120-bit
//! state value costs one fixed-base multiplication instead of three; the 24 bits of `note_id`
//! that enter `v` are the very bits that steer the Merkle path.
//!
//! Deliberately left out: a multi-party setup ceremony (dev keys are labelled DEV everywhere),
//! and any proof system other than Groth16 (the circuit logic is written against
//! `ark-relations`, not against Groth16).

pub mod circuit;
pub mod constants;
pub mod curve;
pub mod derive;
mod error;
pub mod field;
mod fixed_base;
pub mod gadget;
pub mod groth16;
pub mod keys;
pub mod note;
pub mod poseidon;
pub mod rln;
pub mod sample;
pub mod schnorr;
pub mod state;
pub mod tree;

pub use error::Error;
pub use field::Fr;

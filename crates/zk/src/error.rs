//! The errors of this crate.

/// Everything that can go wrong in `nullgate-zk`.
///
/// Malformed input (bytes from the network or from a file) is reported with what was wrong,
/// so that callers can turn it into a clear message; nothing here ever panics on such input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Input bytes did not have the expected length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A field element was not below the BN254 scalar modulus `p`.
    #[error("{0}: not a canonical field element (must be below the BN254 modulus)")]
    NonCanonicalField(&'static str),
    /// A Baby-JubJub scalar was not below the subgroup order `l`.
    #[error("{0}: not a canonical scalar (must be below the Baby-JubJub subgroup order)")]
    NonCanonicalScalar(&'static str),
    /// A point was not on Baby-JubJub.
    #[error("{0}: point is not on the Baby-JubJub curve")]
    NotOnCurve(&'static str),
    /// A point was on the curve but outside the prime-order subgroup.
    #[error("{0}: point is not in the prime-order subgroup")]
    NotInSubgroup(&'static str),
    /// A point was the identity, which is never a valid key or commitment.
    #[error("{0}: point is the identity")]
    Identity(&'static str),
    /// A signature did not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A secret key was zero or not below the subgroup order.
    #[error("secret key must be in [1, l)")]
    BadSecretKey,
    /// The note tree is full or was asked for a position it does not hold.
    #[error("note tree: {0}")]
    Tree(&'static str),
    /// Two RLN shares could not yield a secret (same `x`).
    #[error("the two shares have the same x: nothing can be recovered")]
    SameShareX,
    /// A witness does not satisfy the circuit (the statement is false).
    #[error("the witness does not satisfy the {0} circuit")]
    Unsatisfied(&'static str),
    /// A proof did not verify.
    #[error("proof does not verify")]
    BadProof,
    /// A key file was malformed, for another circuit, or had the wrong hash.
    #[error("key: {0}")]
    Key(String),
    /// Proof or key bytes could not be deserialised (with subgroup checks).
    #[error("{what}: malformed encoding ({detail})")]
    Encoding {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        detail: String,
    },
    /// The proving system failed for a reason other than a false statement.
    #[error("proving system: {0}")]
    Synthesis(String),
}

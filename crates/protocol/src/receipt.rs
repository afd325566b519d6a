//! The gateway's receipt for one request (PROTOCOL §6 step 6), and the client's check of it.
//!
//! Layout, version 1, fixed length [`RECEIPT_LEN`] (integers big-endian):
//!
//! | offset | bytes | field |
//! | --- | --- | --- |
//! | 0 | 1 | version = 1 |
//! | 1 | 32 | `N`, the nullifier it settles |
//! | 33 | 8 | `Δ`, the charge in credit units |
//! | 41 | 4 | key number of the key that signed |
//! | 45 | 64 | `A' = A_pub − Δ·G + 2^64·G` |
//! | 109 | 96 | Schnorr signature `σ'` on `H(T_STATE, dom, A'.x, A'.y)` (`R ‖ s`) |
//!
//! It travels in the `NullGate-Receipt` header (base64url), or for a streamed response in
//! the trailer of that name and a final `event: nullgate-receipt`.

use nullgate_zk::{
    Fr,
    curve::{AffinePoint, Point},
    derive,
    field::{fr_from_bytes, fr_to_bytes},
    schnorr::{self, PublicKey, SIGNATURE_LEN, SecretKey, Signature},
    state,
};

use crate::{WireError, credential::Reader};

/// The only receipt layout this implementation speaks.
pub const RECEIPT_VERSION: u8 = 1;

/// Length of a version-1 receipt in bytes.
pub const RECEIPT_LEN: usize = 1 + 32 + 8 + 4 + 64 + SIGNATURE_LEN;

/// The header (and trailer) that carries a receipt.
pub const RECEIPT_HEADER: &str = "nullgate-receipt";

/// A receipt: the charge for one request and the gateway's signature on the new state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Receipt {
    /// `N` of the request it settles.
    pub nullifier: Fr,
    /// `Δ`, the charge.
    pub charge: u64,
    /// The number of the state key that signed `A'`.
    pub key_number: u32,
    /// `A'`, the new state commitment.
    pub new_state: Point,
    /// `σ'` on `H(T_STATE, dom, A'.x, A'.y)`.
    pub signature: Signature,
}

/// Why a client refuses a receipt (§6, end). Any of these is shown loudly and the journal
/// entry is kept, so that the note can still exit safely.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The receipt settles another nullifier than the request's.
    #[error("the receipt is for another request (nullifier differs)")]
    WrongNullifier,
    /// `Δ` exceeds the request's cost class.
    #[error("the receipt charges {charge}, above the request's class cap {cap}")]
    OverCap {
        /// The charge.
        charge: u64,
        /// `C_c`.
        cap: u64,
    },
    /// `A' ≠ A_pub − Δ·G + 2^64·G`.
    #[error("the receipt's new state is not the request's state charged by Δ")]
    WrongState,
    /// Signed by a key the client does not accept now.
    #[error("the receipt is signed by key {0}, which is not the current state key")]
    WrongKey(u32),
    /// The signature does not verify.
    #[error("the receipt's signature does not verify")]
    BadSignature,
}

impl Receipt {
    /// The gateway's side: charges `published_state` by `charge` and signs the result with
    /// the current key `key` (number `key_number`).
    ///
    /// The caller has checked `Δ ≤ C_c` just before (PROTOCOL §4); this is asserted again
    /// here in debug builds only because the type cannot know `C_c`.
    pub fn issue(
        dom: &Fr,
        nullifier: Fr,
        published_state: &Point,
        charge: u64,
        key_number: u32,
        key: &SecretKey,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Self {
        let new_state = state::charge_point(published_state, charge)
            .expect("A_pub − Δ·G + 2^64·G is not the identity for an honest A_pub");
        let signature = key.sign(&derive::state_hash(dom, &new_state.affine()), rng);
        Self {
            nullifier,
            charge,
            key_number,
            new_state,
            signature,
        }
    }

    /// The client's check (§6, end): `N` is the request's, `Δ ≤ C_c`,
    /// `A' == A_pub − Δ·G + 2^64·G`, and `σ'` verifies under one of `accepted_keys` (the
    /// current key; within an hour of an activation, either key).
    pub fn check(
        &self,
        dom: &Fr,
        nullifier: &Fr,
        published_state: &Point,
        class_cost: u64,
        accepted_keys: &[(u32, PublicKey)],
    ) -> Result<(), ReceiptError> {
        if &self.nullifier != nullifier {
            return Err(ReceiptError::WrongNullifier);
        }
        if self.charge > class_cost {
            return Err(ReceiptError::OverCap {
                charge: self.charge,
                cap: class_cost,
            });
        }
        let expected: AffinePoint = state::charge(&published_state.affine(), self.charge);
        if expected != self.new_state.affine() {
            return Err(ReceiptError::WrongState);
        }
        let key = accepted_keys
            .iter()
            .find(|(number, _)| *number == self.key_number)
            .map(|(_, key)| key)
            .ok_or(ReceiptError::WrongKey(self.key_number))?;
        schnorr::verify(
            key,
            &derive::state_hash(dom, &self.new_state.affine()),
            &self.signature,
        )
        .map_err(|_| ReceiptError::BadSignature)
    }

    /// The version-1 encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECEIPT_LEN);
        out.push(RECEIPT_VERSION);
        out.extend_from_slice(&fr_to_bytes(&self.nullifier));
        out.extend_from_slice(&self.charge.to_be_bytes());
        out.extend_from_slice(&self.key_number.to_be_bytes());
        out.extend_from_slice(&self.new_state.to_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
        debug_assert_eq!(out.len(), RECEIPT_LEN);
        out
    }

    /// Decodes a receipt, checking every value (it says nothing of the signature: that is
    /// [`Receipt::check`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "receipt";
        let version = *bytes.first().ok_or(WireError::Length {
            what: WHAT,
            expected: RECEIPT_LEN,
            got: 0,
        })?;
        if version != RECEIPT_VERSION {
            return Err(WireError::Version {
                what: WHAT,
                version,
            });
        }
        if bytes.len() != RECEIPT_LEN {
            return Err(WireError::Length {
                what: WHAT,
                expected: RECEIPT_LEN,
                got: bytes.len(),
            });
        }
        let mut reader = Reader { bytes, at: 1 };
        Ok(Self {
            nullifier: fr_from_bytes(reader.take(32), "receipt nullifier")?,
            charge: u64::from_be_bytes(reader.array()),
            key_number: u32::from_be_bytes(reader.array()),
            new_state: Point::from_bytes(reader.take(64), "receipt A'")?,
            signature: Signature::from_bytes(reader.take(SIGNATURE_LEN))?,
        })
    }

    /// The header value: base64url of the encoding.
    pub fn to_header(&self) -> String {
        crate::base64url(&self.to_bytes())
    }

    /// Decodes a header value, refusing an oversized one before decoding.
    pub fn from_header(value: &[u8]) -> Result<Self, WireError> {
        let max = (RECEIPT_LEN * 4).div_ceil(3);
        if value.len() > max {
            return Err(WireError::Length {
                what: "receipt header",
                expected: max,
                got: value.len(),
            });
        }
        let text = std::str::from_utf8(value).map_err(|_| WireError::Base64("receipt"))?;
        Self::from_bytes(&crate::from_base64url(text.trim(), "receipt")?)
    }
}

//! The credential of one request (PROTOCOL §5, §11), as it travels in
//! `Authorization: NullGate <base64url(credential)>`.
//!
//! Layout, version 1, fixed length [`CREDENTIAL_LEN`] (integers big-endian):
//!
//! | offset | bytes | field |
//! | --- | --- | --- |
//! | 0 | 1 | version = 1 |
//! | 1 | 32 | `root` (field element) |
//! | 33 | 4 | key number `i` of `PK_i` (absolute) |
//! | 37 | 1 | class index `c` (0 = `C_1`) |
//! | 38 | 4 | `t`, hours since the Unix epoch |
//! | 42 | 32 | `N` |
//! | 74 | 32 | `y` |
//! | 106 | 64 | `A_pub` (`x ‖ y`) |
//! | 170 | 128 | Groth16 proof, compressed |
//! | 298 | 32 | `epk`, the request's Ed25519 public key |
//! | 330 | 64 | Ed25519 signature by `esk` over the payload digest |
//!
//! `x` never travels: the gateway computes it from `epk`.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use nullgate_zk::{
    Fr,
    circuit::request::{RequestCircuit, RequestPublic, RequestWitness},
    curve::Point,
    derive,
    field::{fr_from_bytes, fr_to_bytes},
    groth16::ProverKey,
    groth16::{PROOF_LEN, Proof, proof_from_bytes, proof_to_bytes},
    schnorr::PublicKey,
};

use crate::WireError;

/// The only credential layout this implementation speaks.
pub const CREDENTIAL_VERSION: u8 = 1;

/// Length of a version-1 credential in bytes.
pub const CREDENTIAL_LEN: usize = 1 + 32 + 4 + 1 + 4 + 32 + 32 + 64 + PROOF_LEN + 32 + 64;

/// The authentication scheme name (`Authorization`, `WWW-Authenticate`).
pub const SCHEME: &str = "NullGate";

/// Longest `Authorization` value accepted: the scheme, a space and the base64url of one
/// credential. Anything longer is refused before decoding.
pub const MAX_AUTHORIZATION_LEN: usize = SCHEME.len() + 1 + (CREDENTIAL_LEN * 4).div_ceil(3);

/// Steps 1–5 of §5 done: everything of a credential but the signature over the payload.
///
/// A client pre-generates one of these per note in the background; on a request only
/// [`UnsignedCredential::sign`] remains.
#[derive(Clone, PartialEq, Debug)]
pub struct UnsignedCredential {
    /// A finalised root of the note tree.
    pub root: Fr,
    /// The number `i` of the state key `PK_i` the state is signed under.
    pub key_number: u32,
    /// Index of the cost class `C_c` in the vault's classes.
    pub class_index: u8,
    /// `t`: the hour of the newest finalised block when proven.
    pub hour: u32,
    /// `N`: the nullifier of this index.
    pub nullifier: Fr,
    /// `y = k + a·x`.
    pub share_y: Fr,
    /// `A_pub = A + ε·H`.
    pub published_state: Point,
    /// The request proof.
    pub proof: Proof,
    /// `epk_m`, the request key's public half.
    pub request_key: VerifyingKey,
}

/// A complete credential: an [`UnsignedCredential`] with the request key's signature over
/// the payload digest.
#[derive(Clone, PartialEq, Debug)]
pub struct Credential {
    /// Everything but the signature.
    pub body: UnsignedCredential,
    /// Ed25519 signature by `esk_m` over the payload digest (§11).
    pub signature: Signature,
}

/// The public values a request proof is made for (PROTOCOL §5 step 5), besides the
/// witness: chosen by the client from the chain and the price list.
#[derive(Clone, Copy, Debug)]
pub struct ProofContext<'a> {
    /// `dom`.
    pub dom: Fr,
    /// The newest finalised root.
    pub root: Fr,
    /// The state key the state is signed under (the current key for genesis), and its number.
    pub state_key: (u32, &'a PublicKey),
    /// The class index and `C_c`.
    pub class: (u8, u64),
    /// `t`, the hour of the newest finalised block.
    pub hour: u32,
}

impl UnsignedCredential {
    /// Steps 2–5 of §5 for the witness's note at index `m = witness.state.index()`: derives
    /// the request key, `x`, the share and `A_pub`, and proves. Refuses a witness that does
    /// not satisfy the circuit (it would never verify). CPU-bound: hundreds of milliseconds.
    pub fn prove(
        key: &ProverKey,
        context: &ProofContext<'_>,
        witness: &RequestWitness,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Result<(Self, RequestPublic), nullgate_zk::Error> {
        let request_key = derive::request_signing_key(&witness.note.secret, witness.state.index());
        let (circuit, public) = RequestCircuit::new(
            context.dom,
            context.root,
            context.state_key.1,
            context.class.1,
            context.hour,
            derive::share_x(&request_key.verifying_key()),
            witness,
        )?;
        let proof = key.prove(circuit, rng)?;
        let published_state =
            Point::from_coordinates(public.published_state.x, public.published_state.y, "A_pub")?;
        Ok((
            Self {
                root: context.root,
                key_number: context.state_key.0,
                class_index: context.class.0,
                hour: context.hour,
                nullifier: public.nullifier,
                share_y: public.share_y,
                published_state,
                proof,
                request_key: request_key.verifying_key(),
            },
            public,
        ))
    }

    /// Signs the payload digest with `esk_m` (§5 step 6). The caller derives `esk_m` from
    /// the note's secret and index; it must be the key whose public half is `request_key`.
    pub fn sign(self, request_key: &SigningKey, payload_digest: &[u8; 32]) -> Credential {
        debug_assert_eq!(request_key.verifying_key(), self.request_key);
        Credential {
            signature: request_key.sign(payload_digest),
            body: self,
        }
    }
}

impl Credential {
    /// The version-1 encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let b = &self.body;
        let mut out = Vec::with_capacity(CREDENTIAL_LEN);
        out.push(CREDENTIAL_VERSION);
        out.extend_from_slice(&fr_to_bytes(&b.root));
        out.extend_from_slice(&b.key_number.to_be_bytes());
        out.push(b.class_index);
        out.extend_from_slice(&b.hour.to_be_bytes());
        out.extend_from_slice(&fr_to_bytes(&b.nullifier));
        out.extend_from_slice(&fr_to_bytes(&b.share_y));
        out.extend_from_slice(&b.published_state.to_bytes());
        out.extend_from_slice(&proof_to_bytes(&b.proof));
        out.extend_from_slice(b.request_key.as_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
        debug_assert_eq!(out.len(), CREDENTIAL_LEN);
        out
    }

    /// Decodes a credential, checking every value (field elements below `p`, `A_pub` on the
    /// curve and in the subgroup, the proof's points with subgroup checks, `epk` a valid
    /// Ed25519 key of full order). Key number and class index are checked by the gateway
    /// against the vault.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "credential";
        let version = *bytes.first().ok_or(WireError::Length {
            what: WHAT,
            expected: CREDENTIAL_LEN,
            got: 0,
        })?;
        if version != CREDENTIAL_VERSION {
            return Err(WireError::Version {
                what: WHAT,
                version,
            });
        }
        if bytes.len() != CREDENTIAL_LEN {
            return Err(WireError::Length {
                what: WHAT,
                expected: CREDENTIAL_LEN,
                got: bytes.len(),
            });
        }
        let mut reader = Reader { bytes, at: 1 };
        let root = fr_from_bytes(reader.take(32), "credential root")?;
        let key_number = u32::from_be_bytes(reader.array());
        let class_index = reader.take(1)[0];
        let hour = u32::from_be_bytes(reader.array());
        let nullifier = fr_from_bytes(reader.take(32), "credential nullifier")?;
        let share_y = fr_from_bytes(reader.take(32), "credential share y")?;
        let published_state = Point::from_bytes(reader.take(64), "credential A_pub")?;
        let proof = proof_from_bytes(reader.take(PROOF_LEN))?;
        let request_key =
            VerifyingKey::from_bytes(&reader.array()).map_err(|_| WireError::RequestKey)?;
        if request_key.is_weak() {
            return Err(WireError::RequestKey);
        }
        let signature = Signature::from_bytes(&reader.array());
        Ok(Self {
            body: UnsignedCredential {
                root,
                key_number,
                class_index,
                hour,
                nullifier,
                share_y,
                published_state,
                proof,
                request_key,
            },
            signature,
        })
    }

    /// The `Authorization` header value: `NullGate <base64url(credential)>`.
    pub fn to_authorization(&self) -> String {
        format!("{SCHEME} {}", crate::base64url(&self.to_bytes()))
    }

    /// Decodes an `Authorization` header value, refusing an oversized one before decoding.
    pub fn from_authorization(value: &[u8]) -> Result<Self, WireError> {
        if value.len() > MAX_AUTHORIZATION_LEN {
            return Err(WireError::Length {
                what: "authorization header",
                expected: MAX_AUTHORIZATION_LEN,
                got: value.len(),
            });
        }
        let text = std::str::from_utf8(value).map_err(|_| WireError::Scheme)?;
        let (scheme, token) = text.split_once(' ').ok_or(WireError::Scheme)?;
        if !scheme.eq_ignore_ascii_case(SCHEME) {
            return Err(WireError::Scheme);
        }
        Self::from_bytes(&crate::from_base64url(token.trim(), "credential")?)
    }
}

/// Reads fixed-size fields from a buffer whose length was checked once up front.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, len: usize) -> &'a [u8] {
        let out = &self.bytes[self.at..self.at + len];
        self.at += len;
        out
    }

    pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N));
        out
    }
}

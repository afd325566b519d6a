//! Schnorr signatures over Baby-JubJub with a 128-bit Poseidon challenge (PROTOCOL §1).
//!
//! The gateway signs state hashes `h = H(T_STATE, dom, A.x, A.y)`; the request and exit
//! circuits verify the signature. The challenge is the low 128 bits of
//! `H(T_SIG, R.x, R.y, PK.x, PK.y, h)` from its canonical 254-bit decomposition, which halves
//! the in-circuit variable-base multiplication `c·PK`.
//!
//! Circuit completeness: the circuit proves `s < l` and the canonical decomposition with two
//! cheap bounds on the high limbs (`s_hi < ⌊l/2^128⌋`, `e_hi < ⌊p/2^128⌋`). [`SecretKey::sign`]
//! therefore never outputs a signature outside them (it draws a new nonce; the chance of
//! needing to is about 2^-122), and [`verify`] accepts exactly what PROTOCOL §1 specifies.

use ark_ff::{BigInteger, PrimeField, UniformRand, Zero};
use sha2::{Digest, Sha512};

use crate::{
    Error, Fr,
    constants::{CHALLENGE_BITS, T_SIG},
    curve::{self, AffinePoint, Point, Scalar, scalar_from_wide, scalar_to_bytes},
    field::fr_to_bytes,
    poseidon::hash,
};

/// A state-signing secret key `sk ∈ [1, l)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(Scalar);

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A public key `PK = sk·G`, a checked point.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey(pub Point);

/// A signature `(R, s)`, with `R` a checked point and `s < l`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature {
    /// The commitment `R = n·G`.
    pub r: Point,
    /// The response `s = n + c·sk mod l`.
    pub s: Scalar,
}

/// Encoded size of a signature: `R.x ‖ R.y ‖ s`.
pub const SIGNATURE_LEN: usize = 96;

impl SecretKey {
    /// A key from a scalar; zero is refused.
    pub fn from_scalar(scalar: Scalar) -> Result<Self, Error> {
        if scalar.is_zero() {
            Err(Error::BadSecretKey)
        } else {
            Ok(Self(scalar))
        }
    }

    /// A key from 32 big-endian bytes, `1 ≤ sk < l`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let scalar =
            curve::scalar_from_bytes(bytes, "secret key").map_err(|_| Error::BadSecretKey)?;
        Self::from_scalar(scalar)
    }

    /// A fresh random key.
    pub fn random(rng: &mut (impl rand::RngCore + rand::CryptoRng)) -> Self {
        loop {
            if let Ok(key) = Self::from_scalar(Scalar::rand(rng)) {
                return key;
            }
        }
    }

    /// The key's 32-byte big-endian encoding (secret: store it, never log it).
    pub fn to_bytes(&self) -> [u8; 32] {
        scalar_to_bytes(&self.0)
    }

    /// `PK = sk·G`.
    pub fn public_key(&self) -> PublicKey {
        let point = curve::mul_g(&self.0);
        PublicKey(Point::from_subgroup(point, "public key").expect("sk is not zero mod l"))
    }

    /// Signs `h` with a nonce drawn from the key, `h` and 32 bytes of fresh randomness.
    pub fn sign(
        &self,
        message: &Fr,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Signature {
        loop {
            let mut randomness = [0u8; 32];
            rng.fill_bytes(&mut randomness);
            if let Some(signature) = self.sign_with_randomness(message, &randomness) {
                return signature;
            }
        }
    }

    /// Signs `h` with the given 32 nonce-randomness bytes. `None` in the (≈2^-122) case where
    /// this randomness gives a signature the circuits cannot prove; draw new randomness.
    /// Exposed so that test vectors are reproducible.
    pub fn sign_with_randomness(&self, message: &Fr, randomness: &[u8; 32]) -> Option<Signature> {
        let digest: [u8; 64] = Sha512::new()
            .chain_update(b"nullgate/v1/nonce")
            .chain_update(scalar_to_bytes(&self.0))
            .chain_update(fr_to_bytes(message))
            .chain_update(randomness)
            .finalize()
            .into();
        let nonce = scalar_from_wide(&digest);
        let r = Point::from_subgroup(curve::mul_g(&nonce), "R").ok()?;
        let public_key = self.public_key();
        let digest = challenge_hash(&r.affine(), &public_key, message);
        if !circuit_provable_challenge(&digest) {
            return None;
        }
        let s = nonce + challenge_from_hash(&digest) * self.0;
        if !circuit_provable_response(&s) {
            return None;
        }
        Some(Signature { r, s })
    }
}

impl PublicKey {
    /// Decodes a public key (64 bytes, checked point).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Point::from_bytes(bytes, "public key").map(Self)
    }

    /// The 64-byte encoding `x ‖ y`.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl Signature {
    /// Encodes `R.x ‖ R.y ‖ s`.
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out[..64].copy_from_slice(&self.r.to_bytes());
        out[64..].copy_from_slice(&scalar_to_bytes(&self.s));
        out
    }

    /// Decodes a signature, checking `R` and `s < l`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != SIGNATURE_LEN {
            return Err(Error::Length {
                what: "signature",
                expected: SIGNATURE_LEN,
                got: bytes.len(),
            });
        }
        Ok(Self {
            r: Point::from_bytes(&bytes[..64], "signature R")?,
            s: curve::scalar_from_bytes(&bytes[64..], "signature s")?,
        })
    }
}

/// Verifies `s·G == R + c·PK` (PROTOCOL §1); `s < l` and `R`'s validity hold by type.
pub fn verify(public_key: &PublicKey, message: &Fr, signature: &Signature) -> Result<(), Error> {
    let c = challenge(&signature.r.affine(), public_key, message);
    let left = curve::mul_g(&signature.s);
    let right = curve::add(
        &signature.r.affine(),
        &curve::mul(&public_key.0.affine(), &c),
    );
    if left == right {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

/// `H(T_SIG, R.x, R.y, PK.x, PK.y, h)`, the hash the challenge is taken from.
pub fn challenge_hash(r: &AffinePoint, public_key: &PublicKey, message: &Fr) -> Fr {
    hash(
        T_SIG,
        &[r.x, r.y, public_key.0.x(), public_key.0.y(), *message],
    )
}

/// The challenge `c`: the low 128 bits of [`challenge_hash`].
pub fn challenge(r: &AffinePoint, public_key: &PublicKey, message: &Fr) -> Scalar {
    challenge_from_hash(&challenge_hash(r, public_key, message))
}

fn challenge_from_hash(digest: &Fr) -> Scalar {
    let bits = digest.into_bigint().to_bits_le();
    Scalar::from_bigint(<Scalar as PrimeField>::BigInt::from_bits_le(
        &bits[..CHALLENGE_BITS],
    ))
    .expect("128 bits are below l")
}

/// `⌊p / 2^128⌋`: the circuit bounds the challenge hash's high limb strictly below it.
pub(crate) fn field_high_limb() -> u128 {
    high_limb(&Fr::MODULUS.to_bytes_be())
}

/// `⌊l / 2^128⌋`: the circuit bounds `s`'s high limb strictly below it.
pub(crate) fn scalar_high_limb() -> u128 {
    high_limb(&Scalar::MODULUS.to_bytes_be())
}

fn high_limb(be: &[u8]) -> u128 {
    let mut limb = [0u8; 16];
    limb.copy_from_slice(&be[..16]);
    u128::from_be_bytes(limb)
}

fn circuit_provable_challenge(digest: &Fr) -> bool {
    high_limb(&digest.into_bigint().to_bytes_be()) < field_high_limb()
}

fn circuit_provable_response(s: &Scalar) -> bool {
    high_limb(&s.into_bigint().to_bytes_be()) < scalar_high_limb()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(42)
    }

    #[test]
    fn sign_verify_and_reject() {
        let mut rng = rng();
        let key = SecretKey::random(&mut rng);
        let public_key = key.public_key();
        let message = Fr::from(99u64);
        let signature = key.sign(&message, &mut rng);
        assert_eq!(verify(&public_key, &message, &signature), Ok(()));
        // Another message, another key, a tampered s, a tampered R all fail.
        assert_eq!(
            verify(&public_key, &Fr::from(100u64), &signature),
            Err(Error::BadSignature)
        );
        let other = SecretKey::random(&mut rng).public_key();
        assert_eq!(
            verify(&other, &message, &signature),
            Err(Error::BadSignature)
        );
        let mut tampered = signature;
        tampered.s += Scalar::from(1u64);
        assert_eq!(
            verify(&public_key, &message, &tampered),
            Err(Error::BadSignature)
        );
        let mut tampered = signature;
        tampered.r = public_key.0;
        assert_eq!(
            verify(&public_key, &message, &tampered),
            Err(Error::BadSignature)
        );
        // Round trip through bytes.
        assert_eq!(Signature::from_bytes(&signature.to_bytes()), Ok(signature));
    }

    #[test]
    fn decoding_rejects_bad_signatures() {
        let mut rng = rng();
        let key = SecretKey::random(&mut rng);
        let signature = key.sign(&Fr::from(1u64), &mut rng);
        let mut bytes = signature.to_bytes();
        bytes[64..].copy_from_slice(&Scalar::MODULUS.to_bytes_be());
        assert_eq!(
            Signature::from_bytes(&bytes),
            Err(Error::NonCanonicalScalar("signature s"))
        );
        let mut bytes = signature.to_bytes();
        bytes[10] ^= 1;
        assert!(Signature::from_bytes(&bytes).is_err());
        assert!(matches!(
            Signature::from_bytes(&bytes[..95]),
            Err(Error::Length { .. })
        ));
        assert_eq!(SecretKey::from_bytes(&[0u8; 32]), Err(Error::BadSecretKey));
    }

    /// Committed vectors: key 0x…2a, message 7, randomness [9; 32].
    #[test]
    fn pinned_vector() {
        let key = SecretKey::from_scalar(Scalar::from(42u64)).unwrap();
        let signature = key
            .sign_with_randomness(&Fr::from(7u64), &[9u8; 32])
            .unwrap();
        assert_eq!(hex::encode(key.public_key().to_bytes()), VECTOR_PK);
        assert_eq!(hex::encode(signature.to_bytes()), VECTOR_SIG);
        let signature = Signature::from_bytes(&hex::decode(VECTOR_SIG).unwrap()).unwrap();
        let public_key = PublicKey::from_bytes(&hex::decode(VECTOR_PK).unwrap()).unwrap();
        assert_eq!(verify(&public_key, &Fr::from(7u64), &signature), Ok(()));
    }

    const VECTOR_PK: &str = "06184da392a17823e9c1d38cb50980b17150ffa411965b03f0b0200d9557daa9244a710118db92636e46e3f97bd80093ba7026ff97ca32d387145337e250549c";
    const VECTOR_SIG: &str = "0959274fdc99042d23a495e67cfe1217a1b04421c70cb8a4a7ce6827e19c18cb1523f73f2cee715f589d7117fcca32aca76f6e861daefa06f1f0bd3350a7252b056ffbf961e31ba3520c545d6f27186a4a8dd5b5c7e466f070132ea1e31fb8ad";
}

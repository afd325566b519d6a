//! The BN254 scalar field `Fr` and its byte encoding (PROTOCOL §11).

use ark_ff::{BigInteger, PrimeField};

use crate::Error;

/// The BN254 scalar field, the field every circuit and Poseidon hash works in.
pub type Fr = ark_bn254::Fr;

/// Encodes a field element as 32 bytes, big-endian.
pub fn fr_to_bytes(value: &Fr) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&value.into_bigint().to_bytes_be());
    out
}

/// Decodes 32 big-endian bytes into a field element, rejecting values `≥ p`.
pub fn fr_from_bytes(bytes: &[u8], what: &'static str) -> Result<Fr, Error> {
    let bytes: &[u8; 32] = bytes.try_into().map_err(|_| Error::Length {
        what,
        expected: 32,
        got: bytes.len(),
    })?;
    let mut limbs = [0u64; 4];
    for (i, limb) in limbs.iter_mut().enumerate() {
        let start = 32 - 8 * (i + 1);
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[start..start + 8]);
        *limb = u64::from_be_bytes(chunk);
    }
    Fr::from_bigint(ark_ff::BigInt::new(limbs)).ok_or(Error::NonCanonicalField(what))
}

/// Reads a 20-byte Ethereum address as a big-endian integer in `Fr` (PROTOCOL §11).
pub fn fr_from_address(address: &[u8; 20]) -> Fr {
    Fr::from_be_bytes_mod_order(address)
}

/// Reads a big-endian 128-bit integer into `Fr`.
pub fn fr_from_u128(value: u128) -> Fr {
    Fr::from(value)
}

/// Whether a field element's canonical integer is below `2^bits`.
pub fn fits_in_bits(value: &Fr, bits: usize) -> bool {
    value.into_bigint().num_bits() as usize <= bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::Field;

    #[test]
    fn round_trip_and_rejects_non_canonical() {
        let value = Fr::from(123456789u64).pow([7u64]);
        assert_eq!(fr_from_bytes(&fr_to_bytes(&value), "x"), Ok(value));
        // p itself and the all-ones string are not canonical.
        let p = Fr::MODULUS.to_bytes_be();
        assert_eq!(fr_from_bytes(&p, "x"), Err(Error::NonCanonicalField("x")));
        assert_eq!(
            fr_from_bytes(&[0xff; 32], "x"),
            Err(Error::NonCanonicalField("x"))
        );
        // p - 1 is the largest canonical value.
        let minus_one = -Fr::from(1u64);
        assert_eq!(fr_from_bytes(&fr_to_bytes(&minus_one), "x"), Ok(minus_one));
        assert!(matches!(
            fr_from_bytes(&[0u8; 31], "x"),
            Err(Error::Length { .. })
        ));
    }

    #[test]
    fn address_is_big_endian() {
        let mut address = [0u8; 20];
        address[19] = 1;
        address[18] = 2;
        assert_eq!(fr_from_address(&address), Fr::from(0x0201u64));
    }
}

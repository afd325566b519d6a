//! The leaf list of `GET /nullgate/tree` (PROTOCOL §3): every deposit, in `note_id` order,
//! so that a client downloads the whole list and never reveals which path it needs.
//!
//! Compact binary, [`LEAF_RECORD_LEN`] bytes per deposit, no header (the count is the length
//! divided by the record size): `C` (32, field element) ‖ `D` (8) ‖ `expiry` (4), integers
//! big-endian; `note_id` is the record's position. These are exactly the values
//! `depositsDigest` hashes, so a client checks the list against the chain before use.

use nullgate_zk::{
    Fr,
    field::{fr_from_bytes, fr_to_bytes},
};

use crate::WireError;

/// Bytes per deposit in the list.
pub const LEAF_RECORD_LEN: usize = 32 + 8 + 4;

/// The media type of the list.
pub const TREE_MEDIA_TYPE: &str = "application/vnd.nullgate.tree";

/// One deposit as the list carries it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LeafRecord {
    /// `C = H(T_ID, k)`.
    pub commitment: Fr,
    /// `D`, credit units.
    pub deposit: u64,
    /// Expiry hour.
    pub expiry: u32,
}

/// Encodes the list.
pub fn encode_leaves(records: &[LeafRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * LEAF_RECORD_LEN);
    for record in records {
        out.extend_from_slice(&fr_to_bytes(&record.commitment));
        out.extend_from_slice(&record.deposit.to_be_bytes());
        out.extend_from_slice(&record.expiry.to_be_bytes());
    }
    out
}

/// Decodes a list of at most `max_records` deposits.
pub fn decode_leaves(bytes: &[u8], max_records: usize) -> Result<Vec<LeafRecord>, WireError> {
    if !bytes.len().is_multiple_of(LEAF_RECORD_LEN) {
        return Err(WireError::syntax(
            "tree",
            format!(
                "{} bytes is not a whole number of {LEAF_RECORD_LEN}-byte records",
                bytes.len()
            ),
        ));
    }
    if bytes.len() / LEAF_RECORD_LEN > max_records {
        return Err(WireError::syntax(
            "tree",
            format!("more than {max_records} records"),
        ));
    }
    bytes
        .chunks_exact(LEAF_RECORD_LEN)
        .map(|chunk| {
            Ok(LeafRecord {
                commitment: fr_from_bytes(&chunk[..32], "tree commitment")?,
                deposit: u64::from_be_bytes(chunk[32..40].try_into().expect("8 bytes")),
                expiry: u32::from_be_bytes(chunk[40..44].try_into().expect("4 bytes")),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_lengths() {
        let records = vec![
            LeafRecord {
                commitment: Fr::from(7u64),
                deposit: 5,
                expiry: 9,
            },
            LeafRecord {
                commitment: Fr::from(8u64),
                deposit: u64::MAX,
                expiry: u32::MAX,
            },
        ];
        let bytes = encode_leaves(&records);
        assert_eq!(decode_leaves(&bytes, 2).unwrap(), records);
        assert!(decode_leaves(&bytes, 1).is_err());
        assert!(decode_leaves(&bytes[1..], 2).is_err());
        assert!(decode_leaves(&[0xff; LEAF_RECORD_LEN], 2).is_err());
    }
}

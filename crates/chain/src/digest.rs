//! The running `depositsDigest` of PROTOCOL §3/§11, recomputed from a leaf list so a client
//! can check a list against the vault before using it.

use alloy::primitives::{B256, keccak256};

use crate::ChainError;
use crate::events::Deposit;

/// `keccak256(digest ‖ uint32 note_id ‖ uint256 C ‖ uint64 D ‖ uint32 expiry)`, packed.
pub fn extend(digest: &B256, deposit: &Deposit) -> B256 {
    let mut packed = [0u8; 32 + 4 + 32 + 8 + 4];
    packed[..32].copy_from_slice(digest.as_slice());
    packed[32..36].copy_from_slice(&deposit.note_id.to_be_bytes());
    packed[36..68].copy_from_slice(&deposit.commitment.to_be_bytes::<32>());
    packed[68..76].copy_from_slice(&deposit.amount.to_be_bytes());
    packed[76..80].copy_from_slice(&deposit.expiry.to_be_bytes());
    keccak256(packed)
}

/// The digest of a whole list, starting from zero.
pub fn of_list(deposits: &[Deposit]) -> B256 {
    deposits
        .iter()
        .fold(B256::ZERO, |digest, deposit| extend(&digest, deposit))
}

/// Accepts a leaf list only if it has exactly `count` entries, numbered `0..count` in order,
/// and hashes to `digest` (what a client reads from the vault at its finalised block).
pub fn check_list(deposits: &[Deposit], count: u32, digest: &B256) -> Result<(), ChainError> {
    if deposits.len() != count as usize {
        return Err(ChainError::DigestMismatch(format!(
            "{} deposits listed, the vault has {count}",
            deposits.len()
        )));
    }
    if let Some((position, deposit)) = deposits
        .iter()
        .enumerate()
        .find(|(position, deposit)| deposit.note_id as usize != *position)
    {
        return Err(ChainError::DigestMismatch(format!(
            "entry {position} has note_id {}",
            deposit.note_id
        )));
    }
    if of_list(deposits) != *digest {
        return Err(ChainError::DigestMismatch(
            "the list's digest differs from depositsDigest".into(),
        ));
    }
    Ok(())
}

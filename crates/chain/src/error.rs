//! What can go wrong talking to a chain, as one enum.

use alloy::primitives::{Address, Bytes};
use alloy::sol_types::SolInterface;

use crate::bindings::NoteVault::NoteVaultErrors;

/// Errors of the chain layer.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The contract reverted; `reason` names the vault's custom error when it is one.
    #[error("{call} reverted: {reason}")]
    Reverted {
        /// The vault function called.
        call: &'static str,
        /// The decoded revert (e.g. `ExitWindowOpen(…)`), or the raw data in hex.
        reason: String,
        /// The raw revert data.
        data: Bytes,
    },
    /// The node answered with an error, or could not be reached.
    #[error("JSON-RPC: {0}")]
    Rpc(String),
    /// The in-process EVM failed (not a revert: an invalid transaction or a database error).
    #[error("embedded EVM: {0}")]
    Evm(String),
    /// A value from the chain did not decode as the ABI says.
    #[error("decoding {what}: {detail}")]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// Why it failed.
        detail: String,
    },
    /// The ledger holds no key for this sender.
    #[error("no signing key for {0}: pass its private key to the ledger")]
    UnknownSender(Address),
    /// State at this block is no longer kept (the embedded chain keeps recent blocks only).
    #[error("state at block {block} is not available (oldest kept: {oldest})")]
    BlockPruned {
        /// The block asked for.
        block: u64,
        /// The oldest block whose state is kept.
        oldest: u64,
    },
    /// A block that does not exist yet.
    #[error("block {0} is in the future")]
    FutureBlock(u64),
    /// A dev-chain control (`evm_increaseTime`, mining) the node does not offer.
    #[error("this chain does not support {0}: it is a dev-only control")]
    NotADevChain(&'static str),
    /// The events read do not match the vault's `(depositCount, depositsDigest)`.
    #[error("deposit list does not match the vault: {0}")]
    DigestMismatch(String),
    /// Reading or writing a snapshot file.
    #[error("snapshot {path}: {detail}")]
    Snapshot {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// A local key could not sign (a clearance).
    #[error("signing: {0}")]
    Signer(String),
    /// The zero-knowledge layer refused (e.g. building an exit proof).
    #[error(transparent)]
    Zk(#[from] nullgate_zk::Error),
}

impl ChainError {
    /// A revert of `call` with `data`, decoded against the vault's custom errors.
    pub fn reverted(call: &'static str, data: Bytes) -> Self {
        let reason = match NoteVaultErrors::abi_decode(&data) {
            Ok(error) => format!("{error:?}"),
            Err(_) if data.is_empty() => "no revert data".to_string(),
            Err(_) => format!("0x{}", alloy::hex::encode(&data)),
        };
        Self::Reverted { call, reason, data }
    }

    /// The vault's custom error name if this is a revert with one (e.g. `"ExitWindowOpen"`).
    pub fn revert_name(&self) -> Option<&str> {
        match self {
            Self::Reverted { reason, .. } => {
                let name = reason.split('(').next().unwrap_or(reason);
                (!name.starts_with("0x") && !name.contains(' ')).then_some(name)
            }
            _ => None,
        }
    }
}

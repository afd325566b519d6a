//! The chain primitives both ledgers offer; the vault's operations are built on them once
//! ([`crate::Vault`]), so an embedded chain and a real node run identical calls.

use alloy::primitives::{Address, B256, Bytes, Log, U256};
use async_trait::async_trait;

use crate::ChainError;

/// A block's number and time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlockInfo {
    /// Block number.
    pub number: u64,
    /// Block timestamp, seconds since the Unix epoch.
    pub timestamp: u64,
}

/// Which state a read sees.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlockRef {
    /// The newest block.
    Latest,
    /// The state after this block.
    Number(u64),
}

/// What a mined transaction left behind.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Receipt {
    /// The block it was included in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
    /// What the sender paid for the gas, in wei (zero on the embedded chain).
    pub fee: U256,
    /// The transaction hash (the embedded chain numbers its transactions instead).
    pub tx_hash: B256,
    /// The address of a contract it created.
    pub contract: Option<Address>,
}

/// A log with the block it was emitted in.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockLog {
    /// The block.
    pub block: u64,
    /// The log.
    pub log: Log,
}

/// An Ethereum chain as nullgate uses it: a few accounts it can sign for, transactions,
/// calls at a block, logs, and the newest finalised block.
///
/// A transaction that would revert is refused with [`ChainError::Reverted`] before anything
/// is mined (both ledgers simulate first), so a failed call changes nothing.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The chain id (31337 for the embedded chain and anvil).
    async fn chain_id(&self) -> Result<u64, ChainError>;

    /// The accounts this ledger can send from.
    fn accounts(&self) -> Vec<Address>;

    /// Sends a transaction from `from` to `to` (or creates a contract when `to` is `None`)
    /// and waits until it is mined. `call` names it in errors.
    async fn transact(
        &self,
        call: &'static str,
        from: Address,
        to: Option<Address>,
        value: U256,
        data: Bytes,
    ) -> Result<Receipt, ChainError>;

    /// Runs a read-only call against the state at `block`.
    async fn call(
        &self,
        call: &'static str,
        to: Address,
        data: Bytes,
        block: BlockRef,
    ) -> Result<Bytes, ChainError>;

    /// The logs `address` emitted in blocks `from..=to`, in chain order.
    async fn logs(&self, address: Address, from: u64, to: u64)
    -> Result<Vec<BlockLog>, ChainError>;

    /// The newest block.
    async fn latest(&self) -> Result<BlockInfo, ChainError>;

    /// The newest finalised block: the only state nullgate builds trees and roots from.
    async fn finalized(&self) -> Result<BlockInfo, ChainError>;

    /// An account's balance in wei at the newest block.
    async fn balance(&self, account: Address) -> Result<U256, ChainError>;
}

//! Controls only a development chain has (moving its clock, mining empty blocks), and its
//! well-known accounts.

use alloy::signers::local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use async_trait::async_trait;

use crate::ChainError;

/// The mnemonic anvil and Hardhat derive their funded accounts from. Public: for local
/// chains only.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// How many dev accounts a dev chain funds.
pub const DEV_ACCOUNTS: u32 = 10;

/// The first `count` dev accounts (the same ones anvil funds), as signers.
pub fn dev_signers(count: u32) -> Vec<PrivateKeySigner> {
    (0..count)
        .map(|index| {
            MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(index)
                .and_then(|builder| builder.build())
                .expect("the dev mnemonic and index are valid")
        })
        .collect()
}

/// A chain whose clock and blocks a test or demo can drive: the embedded chain, or anvil.
#[async_trait]
pub trait DevChain: Send + Sync {
    /// Moves the chain's clock forward by `seconds` (the next block is at least that late).
    async fn advance_time(&self, seconds: u64) -> Result<(), ChainError>;

    /// Mines `count` empty blocks.
    async fn mine(&self, count: u64) -> Result<(), ChainError>;
}

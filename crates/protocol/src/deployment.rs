//! The deployment parameters both sides read from the chain (PROTOCOL §2), typed.
//!
//! `nullgate-chain` reads them from the vault (`VaultSummary::deployment`); the gateway
//! serves them in `/.well-known/nullgate`; the client compares every value it uses with the
//! chain's. [`Deployment::check_derived`] recomputes `dom` and `x_e`, which a client must do
//! before trusting a vault.

use nullgate_zk::{Fr, derive, schnorr::PublicKey};

use crate::WireError;

/// One vault's parameters as the chain reports them now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Deployment {
    /// The chain id.
    pub chain_id: u64,
    /// The vault's address.
    pub vault: [u8; 20],
    /// `dom` as the vault stores it.
    pub dom: Fr,
    /// The cost classes `C_1 < … < C_max`.
    pub cost_classes: Vec<u64>,
    /// `Δ_min`.
    pub floor_fee: u64,
    /// Whether the keys come from a DEV setup: anyone can forge proofs under them.
    pub dev_keys: bool,
    /// The current state key and its number.
    pub current_key: (u32, PublicKey),
    /// SHA-256 of the request proving key.
    pub request_proving_key_hash: [u8; 32],
    /// SHA-256 of the request verifying key.
    pub request_verifying_key_hash: [u8; 32],
    /// SHA-256 of the exit proving key.
    pub exit_proving_key_hash: [u8; 32],
    /// SHA-256 of the exit verifying key.
    pub exit_verifying_key_hash: [u8; 32],
    /// `priceListHash` in effect.
    pub price_list_hash: [u8; 32],
    /// `ohttpKeysHash`.
    pub ohttp_keys_hash: [u8; 32],
    /// Notes deposited so far.
    pub deposit_count: u32,
}

impl Deployment {
    /// `x_e = H(T_EXIT, dom)`.
    pub fn exit_x(&self) -> Fr {
        derive::exit_x(&self.dom)
    }

    /// Refuses a vault whose stored `dom` differs from `H(T_DOM, chain_id, vault, 1)`
    /// computed here (PROTOCOL §2): a client must not use such a vault.
    pub fn check_derived(&self) -> Result<(), WireError> {
        if derive::dom(self.chain_id, &self.vault) != self.dom {
            return Err(WireError::syntax(
                "vault",
                "its stored dom differs from H(T_DOM, chain_id, vault, 1): refusing it",
            ));
        }
        Ok(())
    }
}

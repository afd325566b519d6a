//! A deployed vault's parameters, read back from the chain (what an operator prints after
//! deploying, and what a client compares `/.well-known/nullgate` against).

use alloy::primitives::{Address, B256, U256};
use serde::Serialize;

use crate::ChainError;
use crate::bindings::NoteVault;
use crate::ledger::BlockRef;
use crate::vault::Vault;

/// Every parameter of PROTOCOL §2 as the vault reports it now.
#[derive(Clone, Debug, Serialize)]
pub struct VaultSummary {
    /// The vault's address.
    pub address: Address,
    /// The chain id.
    pub chain_id: u64,
    /// `dom` (hex, big-endian).
    pub dom: U256,
    /// The exit verifier contract.
    pub exit_verifier: Address,
    /// The asset; the zero address for native ETH.
    pub asset: Address,
    /// Token base units per credit unit.
    pub unit_size: U256,
    /// The smallest deposit, credit units.
    pub min_deposit: u64,
    /// `C_1 < … < C_max`.
    pub cost_classes: Vec<u64>,
    /// `Δ_min`.
    pub floor_fee: u64,
    /// `W`, seconds.
    pub exit_window: u64,
    /// `G_exp`, seconds.
    pub expiry_grace: u64,
    /// `TTL`, seconds.
    pub note_lifetime: u64,
    /// Pinned SHA-256 of the request proving key.
    pub request_proving_key_hash: B256,
    /// Pinned SHA-256 of the exit proving key.
    pub exit_proving_key_hash: B256,
    /// Pinned SHA-256 of the request verifying key.
    pub request_verifying_key_hash: B256,
    /// Pinned SHA-256 of the exit verifying key.
    pub exit_verifying_key_hash: B256,
    /// Whether the keys are DEV keys.
    pub dev_keys: bool,
    /// The current state key's number.
    pub current_key: u32,
    /// Its coordinates (EIP-2494).
    pub current_key_point: (U256, U256),
    /// The operator.
    pub operator: Address,
    /// The treasury.
    pub treasury: Address,
    /// The clearance signer.
    pub clearance_signer: Address,
    /// The price list hash in effect.
    pub price_list_hash: B256,
    /// The OHTTP key configurations hash.
    pub ohttp_keys_hash: B256,
    /// Notes deposited so far.
    pub deposit_count: u32,
    /// Whether deposits are paused.
    pub deposits_paused: bool,
}

impl Vault {
    /// Reads every parameter at the newest block.
    pub async fn summary(&self) -> Result<VaultSummary, ChainError> {
        let at = BlockRef::Latest;
        let current_key = self.read(NoteVault::currentKeyNumberCall {}, at).await?;
        let key = self
            .read(
                NoteVault::stateKeyCall {
                    number: current_key,
                },
                at,
            )
            .await?;
        Ok(VaultSummary {
            address: self.address(),
            chain_id: self.ledger().chain_id().await?,
            dom: self.read(NoteVault::domCall {}, at).await?,
            exit_verifier: self.read(NoteVault::exitVerifierCall {}, at).await?,
            asset: self.read(NoteVault::assetCall {}, at).await?,
            unit_size: self.unit_size(),
            min_deposit: self.read(NoteVault::minDepositCall {}, at).await?,
            cost_classes: self.read(NoteVault::costClassesCall {}, at).await?,
            floor_fee: self.read(NoteVault::floorFeeCall {}, at).await?,
            exit_window: self.read(NoteVault::exitWindowCall {}, at).await?,
            expiry_grace: self.read(NoteVault::expiryGraceCall {}, at).await?,
            note_lifetime: self.read(NoteVault::noteLifetimeCall {}, at).await?,
            request_proving_key_hash: self
                .read(NoteVault::requestProvingKeyHashCall {}, at)
                .await?,
            exit_proving_key_hash: self.read(NoteVault::exitProvingKeyHashCall {}, at).await?,
            request_verifying_key_hash: self
                .read(NoteVault::requestVerifyingKeyHashCall {}, at)
                .await?,
            exit_verifying_key_hash: self
                .read(NoteVault::exitVerifyingKeyHashCall {}, at)
                .await?,
            dev_keys: self.read(NoteVault::devKeysCall {}, at).await?,
            current_key,
            current_key_point: (key.x, key.y),
            operator: self.read(NoteVault::operatorCall {}, at).await?,
            treasury: self.read(NoteVault::treasuryCall {}, at).await?,
            clearance_signer: self.read(NoteVault::clearanceSignerCall {}, at).await?,
            price_list_hash: self.read(NoteVault::priceListHashCall {}, at).await?,
            ohttp_keys_hash: self.read(NoteVault::ohttpKeysHashCall {}, at).await?,
            deposit_count: self.read(NoteVault::depositCountCall {}, at).await?,
            deposits_paused: self.read(NoteVault::depositsPausedCall {}, at).await?,
        })
    }
}

impl VaultSummary {
    /// The typed deployment parameters both sides use (`nullgate-protocol`).
    pub fn deployment(&self) -> Result<nullgate_protocol::deployment::Deployment, ChainError> {
        let (x, y) = self.current_key_point;
        let point = nullgate_zk::curve::Point::from_coordinates(
            crate::vault::fr_from_u256(&x, "state key x")?,
            crate::vault::fr_from_u256(&y, "state key y")?,
            "current state key",
        )?;
        Ok(nullgate_protocol::deployment::Deployment {
            chain_id: self.chain_id,
            vault: self.address.into_array(),
            dom: crate::vault::fr_from_u256(&self.dom, "dom")?,
            cost_classes: self.cost_classes.clone(),
            floor_fee: self.floor_fee,
            dev_keys: self.dev_keys,
            current_key: (self.current_key, nullgate_zk::schnorr::PublicKey(point)),
            request_proving_key_hash: self.request_proving_key_hash.0,
            request_verifying_key_hash: self.request_verifying_key_hash.0,
            exit_proving_key_hash: self.exit_proving_key_hash.0,
            exit_verifying_key_hash: self.exit_verifying_key_hash.0,
            price_list_hash: self.price_list_hash.0,
            ohttp_keys_hash: self.ohttp_keys_hash.0,
            deposit_count: self.deposit_count,
        })
    }
}

/// A registered state key as the vault holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateKeyRecord {
    /// Its number (from 1).
    pub number: u32,
    /// The key.
    pub key: nullgate_zk::schnorr::PublicKey,
    /// When it becomes current (Unix seconds), unless revoked.
    pub activation: u64,
    /// `Some(depositCount)` once revoked: exits under it stay valid only for notes with a
    /// lower `note_id`; requests are refused.
    pub revoked_at: Option<u32>,
}

/// The parameters of PROTOCOL §2 that change after deployment, as of one block: what a
/// gateway serves under and re-reads whenever the vault announces a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveParameters {
    /// Every registered state key, by number.
    pub keys: Vec<StateKeyRecord>,
    /// The current state key's number.
    pub current_key: u32,
    /// The price list hash in effect.
    pub price_list_hash: B256,
    /// A price list hash change announced and not yet in effect, and when it takes effect.
    pub pending_price_list: Option<(B256, u64)>,
    /// The OHTTP key configurations hash.
    pub ohttp_keys_hash: B256,
    /// The clearance signer.
    pub clearance_signer: Address,
}

impl LiveParameters {
    /// The earliest time after `now` at which these change without a transaction: a key's
    /// activation or a pending price list taking effect.
    pub fn next_change_after(&self, now: u64) -> Option<u64> {
        self.keys
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| k.activation)
            .chain(self.pending_price_list.map(|(_, at)| at))
            .filter(|&at| at > now)
            .min()
    }
}

impl Vault {
    /// Reads `ohttpKeysHash` at `block`: what a long-lived client checks its gateway key
    /// against (one call, cheap enough for every sync).
    pub async fn ohttp_keys_hash(&self, block: BlockRef) -> Result<B256, ChainError> {
        self.read(NoteVault::ohttpKeysHashCall {}, block).await
    }

    /// Reads the parameters that change after deployment, at `block`.
    pub async fn live_parameters(&self, block: BlockRef) -> Result<LiveParameters, ChainError> {
        let count = self.read(NoteVault::keyCountCall {}, block).await?;
        let mut keys = Vec::with_capacity(count as usize);
        for number in 1..=count {
            let key = self.read(NoteVault::stateKeyCall { number }, block).await?;
            let point = nullgate_zk::curve::Point::from_coordinates(
                crate::vault::fr_from_u256(&key.x, "state key x")?,
                crate::vault::fr_from_u256(&key.y, "state key y")?,
                "state key",
            )?;
            keys.push(StateKeyRecord {
                number,
                key: nullgate_zk::schnorr::PublicKey(point),
                activation: key.activation,
                revoked_at: key.revoked.then_some(key.depositCountAtRevocation),
            });
        }
        let pending = self
            .read(NoteVault::pendingPriceListHashCall {}, block)
            .await?;
        Ok(LiveParameters {
            keys,
            current_key: self.read(NoteVault::currentKeyNumberCall {}, block).await?,
            price_list_hash: self.read(NoteVault::priceListHashCall {}, block).await?,
            pending_price_list: (pending.effectiveAt != 0)
                .then_some((pending.value, pending.effectiveAt)),
            ohttp_keys_hash: self.read(NoteVault::ohttpKeysHashCall {}, block).await?,
            clearance_signer: self.read(NoteVault::clearanceSignerCall {}, block).await?,
        })
    }
}

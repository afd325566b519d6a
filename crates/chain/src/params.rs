//! A vault's deployment parameters (PROTOCOL §2), as the operator chooses them.

use alloy::primitives::{Address, B256, U256};
use nullgate_zk::{
    Error as ZkError,
    groth16::{ProverKey, key_file_hash, key_hash},
    schnorr::PublicKey,
};

use crate::bindings::NoteVault::Deployment;

/// The pinned hashes of the four Groth16 keys (PROTOCOL §11).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KeyHashes {
    /// SHA-256 of the request proving key.
    pub request_proving: [u8; 32],
    /// SHA-256 of the exit proving key.
    pub exit_proving: [u8; 32],
    /// SHA-256 of the request verifying key.
    pub request_verifying: [u8; 32],
    /// SHA-256 of the exit verifying key.
    pub exit_verifying: [u8; 32],
}

impl KeyHashes {
    /// The hashes of a request and an exit proving key (and their verifying keys).
    pub fn of(request: &ProverKey, exit: &ProverKey) -> Result<Self, ZkError> {
        Ok(Self {
            request_proving: key_file_hash(&request.to_file_bytes())?,
            exit_proving: key_file_hash(&exit.to_file_bytes())?,
            request_verifying: key_hash(request.verifying_key()),
            exit_verifying: key_hash(exit.verifying_key()),
        })
    }
}

/// Everything fixed or initial at deployment. Amounts are credit units; times are seconds.
#[derive(Clone, Debug)]
pub struct VaultParams {
    /// The asset: `None` for native ETH, or an ERC-20 token.
    pub asset: Option<Address>,
    /// Token base units (wei for ETH) per credit unit.
    pub unit_size: U256,
    /// The smallest deposit.
    pub min_deposit: u64,
    /// The cost classes `C_1 < … < C_max` (at most 8).
    pub cost_classes: Vec<u64>,
    /// The floor fee `Δ_min ≤ C_1`.
    pub floor_fee: u64,
    /// The exit window `W`.
    pub exit_window: u64,
    /// The expiry grace `G_exp ≥ W`.
    pub expiry_grace: u64,
    /// The note lifetime `TTL`.
    pub note_lifetime: u64,
    /// The pinned key hashes.
    pub keys: KeyHashes,
    /// Whether the keys come from a DEV setup (accepted only on chain ids 31337 and 1337).
    pub dev_keys: bool,
    /// The first state key `PK_1`.
    pub state_key: PublicKey,
    /// The operator (key registration, parameters, pause).
    pub operator: Address,
    /// The treasury (receives slashed, expired and unspent credit).
    pub treasury: Address,
    /// The clearance signer of mutual closes (§8).
    pub clearance_signer: Address,
    /// SHA-256 of the price list as served.
    pub price_list_hash: B256,
    /// SHA-256 of the gateway's `application/ohttp-keys` body.
    pub ohttp_keys_hash: B256,
}

impl VaultParams {
    /// A native-ETH vault with small demo figures (1 credit = 1 gwei, classes 1/10/100/1000,
    /// `W` one hour, `G_exp` one day, notes living 30 days) and DEV keys.
    pub fn dev(keys: KeyHashes, state_key: PublicKey, operator: Address) -> Self {
        Self {
            asset: None,
            unit_size: U256::from(1_000_000_000u64),
            min_deposit: 1_000,
            cost_classes: vec![1, 10, 100, 1_000],
            floor_fee: 1,
            exit_window: 3_600,
            expiry_grace: 86_400,
            note_lifetime: 30 * 86_400,
            keys,
            dev_keys: true,
            state_key,
            operator,
            treasury: operator,
            clearance_signer: operator,
            price_list_hash: B256::ZERO,
            ohttp_keys_hash: B256::ZERO,
        }
    }

    /// `C_max`, the largest cost class.
    pub fn max_class_cost(&self) -> u64 {
        self.cost_classes.last().copied().unwrap_or(0)
    }

    /// The constructor argument, with the exit verifier's address.
    pub(crate) fn deployment(&self, exit_verifier: Address) -> Deployment {
        let key = self.state_key.0.affine();
        Deployment {
            exitVerifier: exit_verifier,
            asset: self.asset.unwrap_or(Address::ZERO),
            unitSize: self.unit_size,
            minDeposit: self.min_deposit,
            costClasses: self.cost_classes.clone(),
            floorFee: self.floor_fee,
            exitWindow: self.exit_window,
            expiryGrace: self.expiry_grace,
            noteLifetime: self.note_lifetime,
            requestProvingKeyHash: B256::from(self.keys.request_proving),
            exitProvingKeyHash: B256::from(self.keys.exit_proving),
            requestVerifyingKeyHash: B256::from(self.keys.request_verifying),
            exitVerifyingKeyHash: B256::from(self.keys.exit_verifying),
            devKeys: self.dev_keys,
            stateKeyX: crate::vault::fr_to_u256(&key.x),
            stateKeyY: crate::vault::fr_to_u256(&key.y),
            operator: self.operator,
            treasury: self.treasury,
            clearanceSigner: self.clearance_signer,
            priceListHash: self.price_list_hash,
            ohttpKeysHash: self.ohttp_keys_hash,
        }
    }
}

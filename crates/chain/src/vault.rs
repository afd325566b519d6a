//! `NoteVault`'s operations, typed, over any [`Ledger`]: calls are encoded here once, so the
//! embedded chain and a node run the same calldata against the same bytecode.

use std::sync::Arc;

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::{SolCall, SolConstructor};
use nullgate_zk::{
    Fr,
    circuit::exit::ExitPublic,
    field::{fr_from_bytes, fr_to_bytes},
    groth16::{Proof, proof_to_evm_words},
    schnorr::PublicKey,
};

use crate::ChainError;
use crate::bindings::{ExitVerifier, NoteVault};
use crate::events::LoggedEvent;
use crate::ledger::{BlockRef, Ledger, Receipt};
use crate::params::VaultParams;

/// Most blocks one log query spans (providers commonly cap `eth_getLogs` at a few
/// thousand blocks).
pub const MAX_LOG_RANGE: u64 = 2_000;

/// `[from, to]` cut into consecutive ranges of at most [`MAX_LOG_RANGE`] blocks.
pub fn log_ranges(from: u64, to: u64) -> impl Iterator<Item = (u64, u64)> {
    let mut next = Some(from).filter(|&from| from <= to);
    std::iter::from_fn(move || {
        let start = next?;
        let end = start.saturating_add(MAX_LOG_RANGE - 1).min(to);
        next = end.checked_add(1).filter(|&n| n <= to);
        Some((start, end))
    })
}

/// A field element as the vault takes it (`uint256`, big-endian value `< p`).
pub fn fr_to_u256(value: &Fr) -> U256 {
    U256::from_be_bytes(fr_to_bytes(value))
}

/// A `uint256` from the vault as a field element; values `≥ p` are refused.
pub fn fr_from_u256(value: &U256, what: &'static str) -> Result<Fr, ChainError> {
    Ok(fr_from_bytes(&value.to_be_bytes::<32>(), what)?)
}

/// A note's state on chain (PROTOCOL §8's state machine).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NoteStatus {
    /// No note has this commitment.
    None,
    /// Deposited; spendable, exitable.
    Active,
    /// An exit is pending until its deadline.
    Exiting,
    /// Paid out by an exit or a mutual close.
    Closed,
    /// Slashed: its deposit went to the treasury.
    Slashed,
    /// Claimed by the treasury after expiry.
    Expired,
}

impl NoteStatus {
    fn from_abi(value: u8) -> Result<Self, ChainError> {
        Ok(match value {
            0 => Self::None,
            1 => Self::Active,
            2 => Self::Exiting,
            3 => Self::Closed,
            4 => Self::Slashed,
            5 => Self::Expired,
            other => {
                return Err(ChainError::Decode {
                    what: "note status",
                    detail: format!("unknown status {other}"),
                });
            }
        })
    }
}

/// A note as the vault stores it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NoteRecord {
    /// The note's position.
    pub note_id: u32,
    /// `D`, credit units.
    pub amount: u64,
    /// Hours since the Unix epoch.
    pub expiry: u32,
    /// Where it is in its life.
    pub status: NoteStatus,
    /// When a pending exit can be finalised (seconds; zero unless Exiting).
    pub exit_deadline: u64,
}

/// The arguments of `initiateExit` and `closeWithClearance`: an exit statement and its proof.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExitArgs {
    /// The note's commitment `C`.
    pub commitment: Fr,
    /// The absolute number of the state key the proof uses.
    pub key_number: u32,
    /// The payout `P`, credit units.
    pub payout: u64,
    /// Who is paid.
    pub recipient: Address,
    /// `N_n`.
    pub nullifier: Fr,
    /// `y_e`.
    pub share: Fr,
    /// The proof as the verifier takes it.
    pub proof: [U256; 8],
}

impl ExitArgs {
    /// The arguments for an exit proof of `public` under state key number `key_number`.
    pub fn new(public: &ExitPublic, key_number: u32, proof: &Proof) -> Self {
        Self {
            commitment: public.commitment,
            key_number,
            payout: public.payout,
            recipient: Address::from(public.recipient),
            nullifier: public.nullifier,
            share: public.exit_y,
            proof: proof_to_evm_words(proof).map(U256::from_be_bytes),
        }
    }
}

/// A deployed `NoteVault` on a ledger.
#[derive(Clone)]
pub struct Vault {
    ledger: Arc<dyn Ledger>,
    address: Address,
    unit_size: U256,
    native: bool,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("address", &self.address)
            .field("unit_size", &self.unit_size)
            .field("native", &self.native)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Deploys the generated exit verifier and a vault using it, both from `from`.
    pub async fn deploy(
        ledger: Arc<dyn Ledger>,
        from: Address,
        params: &VaultParams,
    ) -> Result<Self, ChainError> {
        let verifier = ledger
            .transact(
                "deploy ExitVerifier",
                from,
                None,
                U256::ZERO,
                ExitVerifier::BYTECODE.clone(),
            )
            .await?;
        let verifier = verifier.contract.ok_or(ChainError::Decode {
            what: "verifier deployment receipt",
            detail: "no contract address".into(),
        })?;
        Self::deploy_with_verifier(ledger, from, verifier, params).await
    }

    /// Deploys a vault that uses an already deployed exit verifier.
    pub async fn deploy_with_verifier(
        ledger: Arc<dyn Ledger>,
        from: Address,
        verifier: Address,
        params: &VaultParams,
    ) -> Result<Self, ChainError> {
        let constructor = NoteVault::constructorCall {
            d: params.deployment(verifier),
        };
        let mut code = NoteVault::BYTECODE.to_vec();
        code.extend_from_slice(&constructor.abi_encode());
        let receipt = ledger
            .transact("deploy NoteVault", from, None, U256::ZERO, code.into())
            .await?;
        let address = receipt.contract.ok_or(ChainError::Decode {
            what: "vault deployment receipt",
            detail: "no contract address".into(),
        })?;
        Self::at(ledger, address).await
    }

    /// The vault at `address` (its unit size and asset are read once).
    pub async fn at(ledger: Arc<dyn Ledger>, address: Address) -> Result<Self, ChainError> {
        let mut vault = Self {
            ledger,
            address,
            unit_size: U256::ZERO,
            native: true,
        };
        vault.unit_size = vault
            .read(NoteVault::unitSizeCall {}, BlockRef::Latest)
            .await?;
        vault.native = vault
            .read(NoteVault::assetCall {}, BlockRef::Latest)
            .await?
            == Address::ZERO;
        Ok(vault)
    }

    /// Waits until the vault exists in the newest finalised block. A vault deployed moments
    /// ago is final only some blocks later (minutes on Ethereum), and until then every read
    /// at the finalised block finds no contract there. `waiting` is told the finalised block
    /// once, if there is a wait.
    pub async fn wait_until_final(
        &self,
        poll: std::time::Duration,
        mut waiting: impl FnMut(u64),
    ) -> Result<(), ChainError> {
        let mut told = false;
        loop {
            let finalized = self.ledger.finalized().await?;
            let block = BlockRef::Number(finalized.number);
            let data = self
                .ledger
                .call(
                    NoteVault::unitSizeCall::SIGNATURE,
                    self.address,
                    NoteVault::unitSizeCall {}.abi_encode().into(),
                    block,
                )
                .await?;
            // No code at that block answers with no bytes at all.
            if !data.is_empty() {
                return Ok(());
            }
            if !told {
                waiting(finalized.number);
                told = true;
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// The vault's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The ledger it lives on.
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    /// Token base units per credit unit.
    pub fn unit_size(&self) -> U256 {
        self.unit_size
    }

    async fn send<C: SolCall>(
        &self,
        from: Address,
        call: C,
        value: U256,
    ) -> Result<Receipt, ChainError> {
        self.ledger
            .transact(
                C::SIGNATURE,
                from,
                Some(self.address),
                value,
                call.abi_encode().into(),
            )
            .await
    }

    /// Runs a view function at `block`.
    pub async fn read<C: SolCall>(
        &self,
        call: C,
        block: BlockRef,
    ) -> Result<C::Return, ChainError> {
        let data = self
            .ledger
            .call(C::SIGNATURE, self.address, call.abi_encode().into(), block)
            .await?;
        C::abi_decode_returns(&data).map_err(|error| ChainError::Decode {
            what: C::SIGNATURE,
            detail: error.to_string(),
        })
    }

    /// The ETH to send with a deposit of `credits` (none for an ERC-20 vault, which pulls
    /// the tokens with `transferFrom`).
    fn payment(&self, credits: u128) -> U256 {
        if self.native {
            U256::from(credits) * self.unit_size
        } else {
            U256::ZERO
        }
    }

    // ------------------------------------------------------------------ deposits (§3)

    /// Deposits one note of `amount` credit units under `commitment`.
    pub async fn deposit(
        &self,
        from: Address,
        commitment: &Fr,
        amount: u64,
    ) -> Result<Receipt, ChainError> {
        let call = NoteVault::depositCall {
            commitment: fr_to_u256(commitment),
            amount,
        };
        self.send(from, call, self.payment(u128::from(amount)))
            .await
    }

    /// Deposits several notes in one transaction.
    pub async fn deposit_many(
        &self,
        from: Address,
        notes: &[(Fr, u64)],
    ) -> Result<Receipt, ChainError> {
        let total: u128 = notes.iter().map(|(_, amount)| u128::from(*amount)).sum();
        let call = NoteVault::depositManyCall {
            commitments: notes.iter().map(|(c, _)| fr_to_u256(c)).collect(),
            amounts: notes.iter().map(|(_, amount)| *amount).collect(),
        };
        self.send(from, call, self.payment(total)).await
    }

    // ------------------------------------------------------------------ leaving (§8)

    /// Starts an exit; `finalize_exit` pays after the exit window.
    pub async fn initiate_exit(
        &self,
        from: Address,
        exit: &ExitArgs,
    ) -> Result<Receipt, ChainError> {
        let call = NoteVault::initiateExitCall {
            commitment: fr_to_u256(&exit.commitment),
            keyNumber: exit.key_number,
            payout: exit.payout,
            recipient: exit.recipient,
            nullifier: fr_to_u256(&exit.nullifier),
            share: fr_to_u256(&exit.share),
            proof: exit.proof,
        };
        self.send(from, call, U256::ZERO).await
    }

    /// Pays an exit whose window has passed.
    pub async fn finalize_exit(
        &self,
        from: Address,
        commitment: &Fr,
    ) -> Result<Receipt, ChainError> {
        let call = NoteVault::finalizeExitCall {
            commitment: fr_to_u256(commitment),
        };
        self.send(from, call, U256::ZERO).await
    }

    /// Mutual close with the clearance signer's 65-byte EIP-712 signature; pays at once.
    pub async fn close_with_clearance(
        &self,
        from: Address,
        exit: &ExitArgs,
        clearance: Bytes,
    ) -> Result<Receipt, ChainError> {
        let call = NoteVault::closeWithClearanceCall {
            commitment: fr_to_u256(&exit.commitment),
            keyNumber: exit.key_number,
            payout: exit.payout,
            recipient: exit.recipient,
            nullifier: fr_to_u256(&exit.nullifier),
            share: fr_to_u256(&exit.share),
            proof: exit.proof,
            clearance,
        };
        self.send(from, call, U256::ZERO).await
    }

    /// Slashes the note of secret `k` (recovered from two shares at one index).
    pub async fn slash(&self, from: Address, secret: &Fr) -> Result<Receipt, ChainError> {
        let call = NoteVault::slashCall {
            k: fr_to_u256(secret),
        };
        self.send(from, call, U256::ZERO).await
    }

    /// Credits an expired Active note to the treasury.
    pub async fn claim_expired(
        &self,
        from: Address,
        commitment: &Fr,
    ) -> Result<Receipt, ChainError> {
        let call = NoteVault::claimExpiredCall {
            commitment: fr_to_u256(commitment),
        };
        self.send(from, call, U256::ZERO).await
    }

    /// The treasury withdraws its credit (only the treasury may).
    pub async fn withdraw_treasury(&self, from: Address) -> Result<Receipt, ChainError> {
        self.send(from, NoteVault::withdrawTreasuryCall {}, U256::ZERO)
            .await
    }

    // ------------------------------------------------------------------ operator (§2)

    /// Registers the next state key, current from `activation`.
    pub async fn register_key(
        &self,
        from: Address,
        key: &PublicKey,
        activation: u64,
    ) -> Result<Receipt, ChainError> {
        let point = key.0.affine();
        let call = NoteVault::registerKeyCall {
            x: fr_to_u256(&point.x),
            y: fr_to_u256(&point.y),
            activation,
        };
        self.send(from, call, U256::ZERO).await
    }

    /// Revokes key `number`; `successor` becomes current if `number` was.
    pub async fn revoke_key(
        &self,
        from: Address,
        number: u32,
        successor: u32,
    ) -> Result<Receipt, ChainError> {
        let call = NoteVault::revokeKeyCall { number, successor };
        self.send(from, call, U256::ZERO).await
    }

    /// Announces a new price list hash (effective after `W`).
    pub async fn set_price_list_hash(
        &self,
        from: Address,
        value: B256,
    ) -> Result<Receipt, ChainError> {
        self.send(from, NoteVault::setPriceListHashCall { value }, U256::ZERO)
            .await
    }

    /// Sets the OHTTP key configurations hash.
    pub async fn set_ohttp_keys_hash(
        &self,
        from: Address,
        value: B256,
    ) -> Result<Receipt, ChainError> {
        self.send(from, NoteVault::setOhttpKeysHashCall { value }, U256::ZERO)
            .await
    }

    /// Sets the treasury address.
    pub async fn set_treasury(&self, from: Address, value: Address) -> Result<Receipt, ChainError> {
        self.send(from, NoteVault::setTreasuryCall { value }, U256::ZERO)
            .await
    }

    /// Sets the clearance signer.
    pub async fn set_clearance_signer(
        &self,
        from: Address,
        value: Address,
    ) -> Result<Receipt, ChainError> {
        self.send(
            from,
            NoteVault::setClearanceSignerCall { value },
            U256::ZERO,
        )
        .await
    }

    /// Pauses or resumes deposits.
    pub async fn set_deposits_paused(
        &self,
        from: Address,
        paused: bool,
    ) -> Result<Receipt, ChainError> {
        self.send(
            from,
            NoteVault::setDepositsPausedCall { paused },
            U256::ZERO,
        )
        .await
    }

    // ------------------------------------------------------------------ reads

    /// The note with `commitment` at `block` (status `None` when there is none).
    pub async fn note(&self, commitment: &Fr, block: BlockRef) -> Result<NoteRecord, ChainError> {
        let call = NoteVault::noteOfCall {
            commitment: fr_to_u256(commitment),
        };
        let note = self.read(call, block).await?;
        Ok(NoteRecord {
            note_id: note.noteId.to::<u32>(),
            amount: note.amount,
            expiry: note.expiry,
            status: NoteStatus::from_abi(note.status)?,
            exit_deadline: note.exitDeadline,
        })
    }

    /// `(depositCount, depositsDigest)` at `block` (PROTOCOL §3).
    pub async fn deposit_state(&self, block: BlockRef) -> Result<(u32, B256), ChainError> {
        let count = self.read(NoteVault::depositCountCall {}, block).await?;
        let digest = self.read(NoteVault::depositsDigestCall {}, block).await?;
        Ok((count, digest))
    }

    /// The EIP-712 digest the clearance signer signs to allow a mutual close (§8).
    pub async fn clearance_digest(&self, nullifier: &Fr) -> Result<B256, ChainError> {
        let call = NoteVault::clearanceDigestCall {
            nullifier: fr_to_u256(nullifier),
        };
        self.read(call, BlockRef::Latest).await
    }

    /// The clearance for `nullifier`: the vault's clearance digest signed by `signer`, as
    /// the 65 bytes `r ‖ s ‖ v` that `closeWithClearance` takes. The signature is
    /// deterministic (RFC 6979), so one nullifier always gets the same clearance.
    pub async fn clearance(
        &self,
        signer: &alloy::signers::local::PrivateKeySigner,
        nullifier: &Fr,
    ) -> Result<[u8; 65], ChainError> {
        use alloy::signers::SignerSync;
        let digest = self.clearance_digest(nullifier).await?;
        let signature = signer
            .sign_hash_sync(&digest)
            .map_err(|e| ChainError::Signer(e.to_string()))?;
        Ok(signature.as_bytes())
    }

    /// The vault's `dom`.
    pub async fn dom(&self) -> Result<Fr, ChainError> {
        let dom = self.read(NoteVault::domCall {}, BlockRef::Latest).await?;
        fr_from_u256(&dom, "dom")
    }

    /// The treasury's withdrawable credit, in credit units.
    pub async fn treasury_credit(&self) -> Result<U256, ChainError> {
        self.read(NoteVault::treasuryCreditCall {}, BlockRef::Latest)
            .await
    }

    /// The vault's events in blocks `from..=to`.
    pub async fn events(&self, from: u64, to: u64) -> Result<Vec<LoggedEvent>, ChainError> {
        let mut events = Vec::new();
        // Real providers refuse (or time out on) unbounded log queries: one range at a time.
        for (start, end) in log_ranges(from, to) {
            for log in self.ledger.logs(self.address, start, end).await? {
                events.push(LoggedEvent::decode(&log)?);
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_queries_span_bounded_ranges() {
        let ranges: Vec<_> = log_ranges(10, 4_500).collect();
        assert_eq!(ranges, [(10, 2_009), (2_010, 4_009), (4_010, 4_500)]);
        assert_eq!(log_ranges(7, 7).collect::<Vec<_>>(), [(7, 7)]);
        assert_eq!(log_ranges(8, 7).count(), 0);
        assert_eq!(
            log_ranges(u64::MAX - 1, u64::MAX).collect::<Vec<_>>(),
            [(u64::MAX - 1, u64::MAX)]
        );
        assert!(log_ranges(0, 1_000_000).all(|(a, b)| b - a < MAX_LOG_RANGE));
    }
}

//! [`EmbeddedLedger`]: an Ethereum chain in this process, on `revm`, running the committed
//! vault bytecode. One transaction per block, funded dev accounts, a clock the caller can
//! move, a configurable finality depth, and snapshots to a file.
//!
//! Gas is metered as on any chain but costs nothing (base fee and gas price are zero), so
//! balances change only by the values transactions move.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256, Bytes, Log, U256, keccak256};
use async_trait::async_trait;
use revm::{
    Context, DatabaseCommit, DatabaseRef, ExecuteEvm, MainBuilder, MainContext,
    bytecode::Bytecode,
    context::{BlockEnv, TxEnv, result::ExecutionResult},
    database::{CacheDB, EmptyDB},
    primitives::TxKind,
    state::AccountInfo,
};
use serde::{Deserialize, Serialize};

use crate::ChainError;
use crate::dev::{DEV_ACCOUNTS, DevChain, dev_signers};
use crate::ledger::{BlockInfo, BlockLog, BlockRef, Ledger, Receipt};

/// The chain id of the embedded chain (a dev chain id: the vault accepts DEV keys on it).
pub const EMBEDDED_CHAIN_ID: u64 = 31337;

/// Gas limit of every block (a mainnet-sized block).
const BLOCK_GAS_LIMIT: u64 = 36_000_000;

/// Gas limit of every transaction: the per-transaction cap of EIP-7825 (Osaka).
const TX_GAS_LIMIT: u64 = 1 << 24;

/// How many recent blocks keep their state for reads at a block (like a non-archive node).
const STATE_HISTORY: usize = 256;

/// How an embedded chain starts.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    /// The chain id.
    pub chain_id: u64,
    /// A block is finalised once this many blocks follow it (0: at once). Tests use 2, as
    /// anvil does with `--slots-in-an-epoch 1`.
    pub finality_depth: u64,
    /// Wei given to each dev account at genesis.
    pub funding: U256,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            chain_id: EMBEDDED_CHAIN_ID,
            finality_depth: 0,
            // 10,000 ETH, as anvil funds its accounts.
            funding: U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18u64)),
        }
    }
}

/// An in-process chain on `revm`.
pub struct EmbeddedLedger {
    chain: Mutex<Chain>,
    accounts: Vec<Address>,
}

struct Chain {
    chain_id: u64,
    finality_depth: u64,
    db: CacheDB<EmptyDB>,
    blocks: Vec<BlockInfo>,
    /// State after each of the most recent blocks, oldest first.
    history: VecDeque<(u64, CacheDB<EmptyDB>)>,
    logs: Vec<BlockLog>,
    /// Seconds added to the wall clock by [`DevChain::advance_time`].
    clock_offset: u64,
    /// The earliest timestamp of the next block (set by [`DevChain::advance_time`]).
    not_before: u64,
}

impl EmbeddedLedger {
    /// A new chain with the default configuration (chain id 31337, instant finality).
    pub fn new() -> Self {
        Self::with_config(EmbeddedConfig::default())
    }

    /// A new chain whose genesis funds the dev accounts.
    pub fn with_config(config: EmbeddedConfig) -> Self {
        let accounts: Vec<Address> = dev_signers(DEV_ACCOUNTS)
            .iter()
            .map(|signer| signer.address())
            .collect();
        let mut db = CacheDB::new(EmptyDB::default());
        for account in &accounts {
            db.insert_account_info(
                *account,
                AccountInfo {
                    balance: config.funding,
                    ..Default::default()
                },
            );
        }
        let genesis = BlockInfo {
            number: 0,
            timestamp: wall_clock(),
        };
        let mut history = VecDeque::new();
        history.push_back((0, db.clone()));
        Self {
            chain: Mutex::new(Chain {
                chain_id: config.chain_id,
                finality_depth: config.finality_depth,
                db,
                blocks: vec![genesis],
                history,
                logs: Vec::new(),
                clock_offset: 0,
                not_before: 0,
            }),
            accounts,
        }
    }

    fn chain(&self) -> MutexGuard<'_, Chain> {
        // A panic while holding the lock cannot leave a half-applied block (state is
        // committed in one step), so a poisoned lock is still consistent.
        self.chain
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the current state (accounts, code, storage), blocks and logs to `path`.
    pub fn save_snapshot(&self, path: &Path) -> Result<(), ChainError> {
        let snapshot = self.chain().snapshot();
        let error = |detail: String| ChainError::Snapshot {
            path: path.display().to_string(),
            detail,
        };
        let json = serde_json::to_vec(&snapshot).map_err(|e| error(e.to_string()))?;
        std::fs::write(path, json).map_err(|e| error(e.to_string()))
    }

    /// A chain restored from a snapshot file (its state history starts at the saved block).
    pub fn load_snapshot(path: &Path) -> Result<Self, ChainError> {
        let error = |detail: String| ChainError::Snapshot {
            path: path.display().to_string(),
            detail,
        };
        let bytes = std::fs::read(path).map_err(|e| error(e.to_string()))?;
        let snapshot: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
        let accounts = dev_signers(DEV_ACCOUNTS)
            .iter()
            .map(|s| s.address())
            .collect();
        Ok(Self {
            chain: Mutex::new(Chain::restore(snapshot).map_err(error)?),
            accounts,
        })
    }
}

impl Default for EmbeddedLedger {
    fn default() -> Self {
        Self::new()
    }
}

fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

impl Chain {
    fn head(&self) -> BlockInfo {
        *self.blocks.last().expect("genesis always exists")
    }

    /// The next block: one second after the head at least, and no earlier than the clock.
    fn next_block(&self) -> BlockInfo {
        let head = self.head();
        BlockInfo {
            number: head.number + 1,
            timestamp: (head.timestamp + 1)
                .max(wall_clock() + self.clock_offset)
                .max(self.not_before),
        }
    }

    fn block_env(&self, block: BlockInfo) -> BlockEnv {
        BlockEnv {
            number: U256::from(block.number),
            timestamp: U256::from(block.timestamp),
            gas_limit: BLOCK_GAS_LIMIT,
            basefee: 0,
            ..Default::default()
        }
    }

    fn tx_env(
        &self,
        from: Address,
        to: Option<Address>,
        value: U256,
        data: Bytes,
        nonce: u64,
    ) -> TxEnv {
        TxEnv {
            caller: from,
            kind: to.map_or(TxKind::Create, TxKind::Call),
            value,
            data,
            gas_limit: TX_GAS_LIMIT,
            gas_price: 0,
            nonce,
            chain_id: Some(self.chain_id),
            ..Default::default()
        }
    }

    fn transact(
        &mut self,
        call: &'static str,
        from: Address,
        to: Option<Address>,
        value: U256,
        data: Bytes,
    ) -> Result<Receipt, ChainError> {
        let block = self.next_block();
        let nonce = self
            .db
            .basic_ref(from)
            .map_err(|e| ChainError::Evm(e.to_string()))?
            .map_or(0, |info| info.nonce);
        let tx = self.tx_env(from, to, value, data.clone(), nonce);
        let block_env = self.block_env(block);
        let chain_id = self.chain_id;
        let outcome = {
            let mut evm = Context::mainnet()
                .with_db(&mut self.db)
                .with_block(block_env)
                .modify_cfg_chained(|cfg| cfg.chain_id = chain_id)
                .build_mainnet();
            evm.transact(tx)
                .map_err(|e| ChainError::Evm(e.to_string()))?
        };
        let (gas_used, logs, created) = match outcome.result {
            ExecutionResult::Success {
                gas, logs, output, ..
            } => (gas.tx_gas_used(), logs, output.address().copied()),
            ExecutionResult::Revert { output, .. } => {
                return Err(ChainError::reverted(call, output));
            }
            ExecutionResult::Halt { reason, .. } => {
                return Err(ChainError::Reverted {
                    call,
                    reason: format!("halted: {reason:?}"),
                    data: Bytes::new(),
                });
            }
        };
        self.db.commit(outcome.state);
        self.blocks.push(block);
        self.logs.extend(logs.into_iter().map(|log| BlockLog {
            block: block.number,
            log,
        }));
        self.remember_state(block.number);
        let tx_hash = keccak256(
            [
                from.as_slice(),
                &nonce.to_be_bytes(),
                &block.number.to_be_bytes(),
                data.as_ref(),
            ]
            .concat(),
        );
        Ok(Receipt {
            block: block.number,
            gas_used,
            fee: U256::ZERO,
            tx_hash,
            contract: created,
        })
    }

    fn remember_state(&mut self, number: u64) {
        self.history.push_back((number, self.db.clone()));
        while self.history.len() > STATE_HISTORY {
            self.history.pop_front();
        }
    }

    fn state_at(&self, block: BlockRef) -> Result<&CacheDB<EmptyDB>, ChainError> {
        let number = match block {
            BlockRef::Latest => return Ok(&self.db),
            BlockRef::Number(number) => number,
        };
        if number > self.head().number {
            return Err(ChainError::FutureBlock(number));
        }
        self.history
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, db)| db)
            .ok_or(ChainError::BlockPruned {
                block: number,
                oldest: self.history.front().map_or(0, |(n, _)| *n),
            })
    }

    fn call(
        &self,
        call: &'static str,
        to: Address,
        data: Bytes,
        block: BlockRef,
    ) -> Result<Bytes, ChainError> {
        let state = self.state_at(block)?;
        let info = match block {
            BlockRef::Latest => self.head(),
            BlockRef::Number(number) => self.blocks[number as usize],
        };
        // Calls run on a throw-away overlay of that block's state, from the zero address.
        let mut overlay = CacheDB::new(state);
        let tx = self.tx_env(Address::ZERO, Some(to), U256::ZERO, data, 0);
        let chain_id = self.chain_id;
        let mut evm = Context::mainnet()
            .with_db(&mut overlay)
            .with_block(self.block_env(info))
            .modify_cfg_chained(|cfg| {
                cfg.chain_id = chain_id;
                cfg.disable_nonce_check = true;
            })
            .build_mainnet();
        let outcome = evm
            .transact(tx)
            .map_err(|e| ChainError::Evm(e.to_string()))?;
        match outcome.result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data()),
            ExecutionResult::Revert { output, .. } => Err(ChainError::reverted(call, output)),
            ExecutionResult::Halt { reason, .. } => Err(ChainError::Reverted {
                call,
                reason: format!("halted: {reason:?}"),
                data: Bytes::new(),
            }),
        }
    }

    fn mine_empty(&mut self) {
        let block = self.next_block();
        self.blocks.push(block);
        self.remember_state(block.number);
    }

    fn snapshot(&self) -> Snapshot {
        let accounts = self
            .db
            .cache
            .accounts
            .iter()
            .filter_map(|(address, account)| {
                let info = account.info()?;
                let code = info
                    .code
                    .as_ref()
                    .map(|code| code.original_bytes())
                    .or_else(|| {
                        self.db
                            .cache
                            .contracts
                            .get(&info.code_hash)
                            .map(|c| c.original_bytes())
                    })
                    .unwrap_or_default();
                Some(SavedAccount {
                    address: *address,
                    balance: info.balance,
                    nonce: info.nonce,
                    code,
                    storage: account.storage.iter().map(|(k, v)| (*k, *v)).collect(),
                })
            })
            .collect();
        Snapshot {
            chain_id: self.chain_id,
            finality_depth: self.finality_depth,
            clock_offset: self.clock_offset,
            blocks: self
                .blocks
                .iter()
                .map(|b| (b.number, b.timestamp))
                .collect(),
            logs: self
                .logs
                .iter()
                .map(|entry| SavedLog {
                    block: entry.block,
                    address: entry.log.address,
                    topics: entry.log.topics().to_vec(),
                    data: entry.log.data.data.clone(),
                })
                .collect(),
            accounts,
        }
    }

    fn restore(snapshot: Snapshot) -> Result<Self, String> {
        let mut db = CacheDB::new(EmptyDB::default());
        for account in snapshot.accounts {
            let mut info = AccountInfo {
                balance: account.balance,
                nonce: account.nonce,
                ..Default::default()
            };
            if !account.code.is_empty() {
                info = info.with_code(Bytecode::new_raw(account.code));
            }
            db.insert_account_info(account.address, info);
            for (slot, value) in account.storage {
                db.insert_account_storage(account.address, slot, value)
                    .map_err(|e| e.to_string())?;
            }
        }
        let blocks: Vec<BlockInfo> = snapshot
            .blocks
            .into_iter()
            .map(|(number, timestamp)| BlockInfo { number, timestamp })
            .collect();
        if blocks.is_empty() || blocks.iter().enumerate().any(|(i, b)| b.number != i as u64) {
            return Err("blocks must be numbered from 0 without gaps".into());
        }
        let logs = snapshot
            .logs
            .into_iter()
            .map(|saved| {
                Log::new(saved.address, saved.topics, saved.data)
                    .map(|log| BlockLog {
                        block: saved.block,
                        log,
                    })
                    .ok_or_else(|| "a log has more than four topics".to_string())
            })
            .collect::<Result<_, _>>()?;
        let head = blocks.last().map_or(0, |b| b.number);
        let mut history = VecDeque::new();
        history.push_back((head, db.clone()));
        Ok(Self {
            chain_id: snapshot.chain_id,
            finality_depth: snapshot.finality_depth,
            db,
            blocks,
            history,
            logs,
            clock_offset: snapshot.clock_offset,
            not_before: 0,
        })
    }
}

/// The file form of an embedded chain.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    chain_id: u64,
    finality_depth: u64,
    clock_offset: u64,
    blocks: Vec<(u64, u64)>,
    logs: Vec<SavedLog>,
    accounts: Vec<SavedAccount>,
}

#[derive(Serialize, Deserialize)]
struct SavedLog {
    block: u64,
    address: Address,
    topics: Vec<B256>,
    data: Bytes,
}

#[derive(Serialize, Deserialize)]
struct SavedAccount {
    address: Address,
    balance: U256,
    nonce: u64,
    code: Bytes,
    storage: Vec<(U256, U256)>,
}

#[async_trait]
impl Ledger for EmbeddedLedger {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        Ok(self.chain().chain_id)
    }

    fn accounts(&self) -> Vec<Address> {
        self.accounts.clone()
    }

    async fn transact(
        &self,
        call: &'static str,
        from: Address,
        to: Option<Address>,
        value: U256,
        data: Bytes,
    ) -> Result<Receipt, ChainError> {
        self.chain().transact(call, from, to, value, data)
    }

    async fn call(
        &self,
        call: &'static str,
        to: Address,
        data: Bytes,
        block: BlockRef,
    ) -> Result<Bytes, ChainError> {
        self.chain().call(call, to, data, block)
    }

    async fn logs(
        &self,
        address: Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<BlockLog>, ChainError> {
        Ok(self
            .chain()
            .logs
            .iter()
            .filter(|entry| entry.log.address == address && (from..=to).contains(&entry.block))
            .cloned()
            .collect())
    }

    async fn latest(&self) -> Result<BlockInfo, ChainError> {
        Ok(self.chain().head())
    }

    async fn finalized(&self) -> Result<BlockInfo, ChainError> {
        let chain = self.chain();
        let head = chain.head().number;
        Ok(chain.blocks[head.saturating_sub(chain.finality_depth) as usize])
    }

    async fn balance(&self, account: Address) -> Result<U256, ChainError> {
        Ok(self
            .chain()
            .db
            .basic_ref(account)
            .map_err(|e| ChainError::Evm(e.to_string()))?
            .map_or(U256::ZERO, |info| info.balance))
    }
}

#[async_trait]
impl DevChain for EmbeddedLedger {
    async fn advance_time(&self, seconds: u64) -> Result<(), ChainError> {
        let mut chain = self.chain();
        chain.clock_offset += seconds;
        // Blocks made faster than one a second run ahead of the wall clock: the next block
        // is `seconds` after the head at least, whatever the wall clock says.
        chain.not_before = chain.head().timestamp + seconds;
        Ok(())
    }

    async fn mine(&self, count: u64) -> Result<(), ChainError> {
        let mut chain = self.chain();
        for _ in 0..count {
            chain.mine_empty();
        }
        Ok(())
    }
}

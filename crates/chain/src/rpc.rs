//! [`RpcLedger`]: any Ethereum node over JSON-RPC (anvil locally, an L2 or mainnet in
//! production), with local signing keys. Trees and roots come from the node's `finalized`
//! block (PROTOCOL §3); a chain without that tag needs an explicit confirmation depth.

use std::{borrow::Cow, net::SocketAddr, sync::Arc};

use alloy::{
    eips::{BlockId, BlockNumberOrTag},
    network::{EthereumWallet, TransactionBuilder},
    primitives::{Address, Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::{
        client::RpcClient,
        types::{Filter, TransactionRequest},
    },
    signers::local::PrivateKeySigner,
    transports::{RpcError, TransportErrorKind, http::reqwest},
};
use async_trait::async_trait;

use crate::ChainError;
use crate::carried::{CarrierTransport, RpcCarrier};
use crate::dev::DevChain;
use crate::ledger::{BlockInfo, BlockLog, BlockRef, Ledger, Receipt};

/// How an RPC ledger decides that a block is final.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Finality {
    /// The node's `finalized` block tag (Ethereum since the merge, the major L2s, anvil).
    FinalizedTag,
    /// For chains without the tag only: a block is final `n` blocks below the head.
    Confirmations(u64),
}

/// A ledger over a JSON-RPC endpoint.
pub struct RpcLedger {
    provider: DynProvider,
    accounts: Vec<Address>,
    finality: Finality,
}

/// How a ledger reaches its JSON-RPC endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RpcRoute {
    /// A plain connection: the node sees this machine's address.
    Direct,
    /// Through a SOCKS5 proxy (Tor's `SocksPort`, Nym's socks5 client), which also resolves
    /// the node's name, so no DNS lookup leaves this machine. Every read shares one SOCKS
    /// username, kept apart from the paid calls' circuits.
    Socks5(SocketAddr),
}

/// The SOCKS username chain reads use: Tor's `IsolateSOCKSAuth` gives them a circuit of
/// their own, never one a paid call uses.
pub const CHAIN_SOCKS_USER: &str = "nullgate-chain";

impl RpcLedger {
    /// Connects to `url`, signing locally with `signers` (transactions may be sent from any
    /// of them).
    pub fn connect(
        url: &str,
        signers: Vec<PrivateKeySigner>,
        finality: Finality,
    ) -> Result<Self, ChainError> {
        let accounts: Vec<Address> = signers.iter().map(|s| s.address()).collect();
        let mut signers = signers.into_iter();
        let first = signers
            .next()
            .ok_or_else(|| ChainError::Rpc("at least one signing key is needed".into()))?;
        let mut wallet = EthereumWallet::new(first);
        for signer in signers {
            wallet.register_signer(signer);
        }
        let (client, url) = http_client(url, RpcRoute::Direct)?;
        let provider = ProviderBuilder::new()
            .wallet(wallet)
            .connect_reqwest(client, url)
            .erased();
        Ok(Self {
            provider,
            accounts,
            finality,
        })
    }

    /// A ledger that only reads (a wallet following the chain): no signing key, so every
    /// [`Ledger::transact`] is refused with [`ChainError::UnknownSender`].
    pub fn read_only(url: &str, finality: Finality, route: RpcRoute) -> Result<Self, ChainError> {
        let (client, url) = http_client(url, route)?;
        let provider = ProviderBuilder::new().connect_reqwest(client, url).erased();
        Ok(Self {
            provider,
            accounts: Vec::new(),
            finality,
        })
    }

    /// A read-only ledger whose JSON-RPC calls `carrier` takes to the node (the mixnet,
    /// through an exit that serves that endpoint): nothing leaves on a connection of the
    /// ledger's own.
    pub fn read_only_through(carrier: Arc<dyn RpcCarrier>, finality: Finality) -> Self {
        let client = RpcClient::new(CarrierTransport(carrier), false);
        let provider = ProviderBuilder::new().connect_client(client).erased();
        Self {
            provider,
            accounts: Vec::new(),
            finality,
        }
    }

    async fn block(&self, tag: BlockNumberOrTag) -> Result<Option<BlockInfo>, ChainError> {
        let block = self.provider.get_block_by_number(tag).await.map_err(rpc)?;
        Ok(block.map(|block| BlockInfo {
            number: block.header.number,
            timestamp: block.header.timestamp,
        }))
    }

    fn request(
        &self,
        from: Address,
        to: Option<Address>,
        value: U256,
        data: Bytes,
    ) -> TransactionRequest {
        let request = TransactionRequest::default()
            .with_from(from)
            .with_value(value);
        match to {
            Some(to) => request.with_to(to).with_input(data),
            None => request.with_deploy_code(data),
        }
    }
}

/// The HTTP client and parsed URL for `url` over `route`.
fn http_client(url: &str, route: RpcRoute) -> Result<(reqwest::Client, reqwest::Url), ChainError> {
    let parsed: reqwest::Url = url
        .parse()
        .map_err(|e| ChainError::Rpc(format!("bad RPC URL {url:?}: {e}")))?;
    let builder = reqwest::Client::builder();
    let builder = match route {
        RpcRoute::Direct => builder,
        RpcRoute::Socks5(proxy) => {
            // `socks5h`: the proxy resolves the name; the URL's user is the SOCKS username.
            let proxy = reqwest::Proxy::all(format!("socks5h://{CHAIN_SOCKS_USER}:x@{proxy}"))
                .map_err(|e| ChainError::Rpc(format!("SOCKS5 proxy {proxy}: {e}")))?;
            builder.proxy(proxy)
        }
    };
    let client = builder
        .build()
        .map_err(|e| ChainError::Rpc(format!("building the RPC client: {e}")))?;
    Ok((client, parsed))
}

fn rpc(error: RpcError<TransportErrorKind>) -> ChainError {
    ChainError::Rpc(error.to_string())
}

/// A revert if the node answered with revert data, an RPC error otherwise.
fn revert_or_rpc(call: &'static str, error: RpcError<TransportErrorKind>) -> ChainError {
    match error
        .as_error_resp()
        .and_then(|payload| payload.as_revert_data())
    {
        Some(data) => ChainError::reverted(call, data),
        None => rpc(error),
    }
}

#[async_trait]
impl Ledger for RpcLedger {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        self.provider.get_chain_id().await.map_err(rpc)
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
        if !self.accounts.contains(&from) {
            return Err(ChainError::UnknownSender(from));
        }
        let request = self.request(from, to, value, data);
        // Simulate first: a revert is reported with its reason and nothing is sent.
        self.provider
            .call(request.clone())
            .await
            .map_err(|e| revert_or_rpc(call, e))?;
        let pending = self
            .provider
            .send_transaction(request)
            .await
            .map_err(|e| revert_or_rpc(call, e))?;
        let receipt = pending
            .get_receipt()
            .await
            .map_err(|e| ChainError::Rpc(format!("waiting for the receipt of {call}: {e}")))?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                call,
                reason: "reverted when mined (the state changed since the simulation)".into(),
                data: Bytes::new(),
            });
        }
        Ok(Receipt {
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
            fee: U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price),
            tx_hash: receipt.transaction_hash,
            contract: receipt.contract_address,
        })
    }

    async fn call(
        &self,
        call: &'static str,
        to: Address,
        data: Bytes,
        block: BlockRef,
    ) -> Result<Bytes, ChainError> {
        let request = TransactionRequest::default().with_to(to).with_input(data);
        let block = match block {
            BlockRef::Latest => BlockId::latest(),
            BlockRef::Number(number) => BlockId::number(number),
        };
        self.provider
            .call(request)
            .block(block)
            .await
            .map_err(|e| revert_or_rpc(call, e))
    }

    async fn logs(
        &self,
        address: Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<BlockLog>, ChainError> {
        let filter = Filter::new().address(address).from_block(from).to_block(to);
        let logs = self.provider.get_logs(&filter).await.map_err(rpc)?;
        logs.into_iter()
            .map(|log| {
                let block = log.block_number.ok_or(ChainError::Decode {
                    what: "log",
                    detail: "a mined log without a block number".into(),
                })?;
                Ok(BlockLog {
                    block,
                    log: log.inner,
                })
            })
            .collect()
    }

    async fn latest(&self) -> Result<BlockInfo, ChainError> {
        self.block(BlockNumberOrTag::Latest)
            .await?
            .ok_or_else(|| ChainError::Rpc("the node has no latest block".into()))
    }

    async fn finalized(&self) -> Result<BlockInfo, ChainError> {
        match self.finality {
            Finality::FinalizedTag => {
                self.block(BlockNumberOrTag::Finalized)
                    .await?
                    .ok_or_else(|| {
                        ChainError::Rpc(
                            "the node reports no finalized block; for a chain without the tag, \
                     configure a confirmation depth"
                                .into(),
                        )
                    })
            }
            Finality::Confirmations(depth) => {
                let head = self.latest().await?.number;
                self.block(BlockNumberOrTag::Number(head.saturating_sub(depth)))
                    .await?
                    .ok_or_else(|| ChainError::Rpc("the node lost a block below its head".into()))
            }
        }
    }

    async fn balance(&self, account: Address) -> Result<U256, ChainError> {
        self.provider.get_balance(account).await.map_err(rpc)
    }
}

#[async_trait]
impl DevChain for RpcLedger {
    async fn advance_time(&self, seconds: u64) -> Result<(), ChainError> {
        self.provider
            .raw_request::<_, serde_json::Value>(Cow::Borrowed("evm_increaseTime"), (seconds,))
            .await
            .map_err(|_| ChainError::NotADevChain("evm_increaseTime"))?;
        Ok(())
    }

    async fn mine(&self, count: u64) -> Result<(), ChainError> {
        self.provider
            .raw_request::<_, serde_json::Value>(Cow::Borrowed("anvil_mine"), (count,))
            .await
            .map_err(|_| ChainError::NotADevChain("anvil_mine"))?;
        Ok(())
    }
}

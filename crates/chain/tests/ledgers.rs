//! Behaviour of each ledger that the vault suite does not reach: the embedded chain's
//! snapshots, pruned history and finality; the RPC ledger's refusals.

mod common;
#[path = "../../net/tests/common/socks_server.rs"]
mod socks_server;

use std::sync::{Arc, Mutex};

use alloy::primitives::{U256, address};
use alloy::sol_types::SolEvent;
use common::{Harness, deploy, secret};
use nullgate_chain::{
    BlockRef, CHAIN_SOCKS_USER, Carried, ChainError, DevChain, EmbeddedLedger, Finality, Ledger,
    RpcCarrier, RpcLedger, RpcRoute, Vault, dev_signers, embedded::EmbeddedConfig,
};
use socks_server::{Tunnels, socks_server};

#[tokio::test]
async fn snapshot_restores_state_blocks_and_logs() {
    let h = Harness::embedded();
    let vault = deploy(&h).await;
    let commitment = nullgate_zk::note::commitment(&secret(1));
    vault
        .deposit(h.account(1), &commitment, 1_234)
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("nullgate-snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chain.json");
    let saved = h.ledger.latest().await.unwrap();
    h_embedded(&h).save_snapshot(&path).unwrap();

    let restored = Arc::new(EmbeddedLedger::load_snapshot(&path).unwrap());
    assert_eq!(restored.latest().await.unwrap(), saved);
    let again = Vault::at(restored.clone(), vault.address()).await.unwrap();
    let note = again.note(&commitment, BlockRef::Latest).await.unwrap();
    assert_eq!(note.amount, 1_234);
    assert_eq!(
        again.deposit_state(BlockRef::Latest).await.unwrap(),
        vault.deposit_state(BlockRef::Latest).await.unwrap()
    );
    let events = again.events(0, saved.number).await.unwrap();
    assert_eq!(events.iter().filter_map(|e| e.deposit()).count(), 1);
    // The restored chain keeps working.
    again
        .deposit(
            h.account(1),
            &nullgate_zk::note::commitment(&secret(2)),
            1_000,
        )
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

fn h_embedded(h: &Harness) -> &EmbeddedLedger {
    h.embedded.as_deref().expect("an embedded harness")
}

#[tokio::test]
async fn a_broken_snapshot_is_refused_with_its_path() {
    let path = std::env::temp_dir().join(format!("nullgate-bad-snapshot-{}", std::process::id()));
    std::fs::write(&path, b"{\"chain_id\": 1}").unwrap();
    let Err(ChainError::Snapshot { path: named, .. }) = EmbeddedLedger::load_snapshot(&path) else {
        panic!("a truncated snapshot must be refused");
    };
    assert!(named.contains("nullgate-bad-snapshot"));
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn embedded_finality_and_history() {
    let chain = EmbeddedLedger::with_config(EmbeddedConfig {
        finality_depth: 3,
        ..EmbeddedConfig::default()
    });
    chain.mine(2).await.unwrap();
    assert_eq!(chain.finalized().await.unwrap().number, 0);
    chain.mine(2).await.unwrap();
    assert_eq!(chain.latest().await.unwrap().number, 4);
    assert_eq!(chain.finalized().await.unwrap().number, 1);

    // Reads at a future block are refused; so are reads below the kept history.
    let to = address!("0x0000000000000000000000000000000000000001");
    assert!(matches!(
        chain
            .call("x", to, Default::default(), BlockRef::Number(9))
            .await,
        Err(ChainError::FutureBlock(9))
    ));
    chain.mine(300).await.unwrap();
    assert!(matches!(
        chain
            .call("x", to, Default::default(), BlockRef::Number(1))
            .await,
        Err(ChainError::BlockPruned { block: 1, .. })
    ));
    assert!(
        chain
            .call("x", to, Default::default(), BlockRef::Number(300))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn embedded_reverts_change_nothing() {
    let h = Harness::embedded();
    let vault = deploy(&h).await;
    let head = h.ledger.latest().await.unwrap();
    let balance = h.ledger.balance(h.account(1)).await.unwrap();
    // Below the minimum deposit: refused, no block, no payment.
    let error = vault
        .deposit(h.account(1), &nullgate_zk::note::commitment(&secret(3)), 1)
        .await
        .unwrap_err();
    assert_eq!(error.revert_name(), Some("DepositBelowMinimum"));
    assert_eq!(h.ledger.latest().await.unwrap(), head);
    assert_eq!(h.ledger.balance(h.account(1)).await.unwrap(), balance);
}

#[tokio::test]
async fn rpc_ledger_refusals() {
    // A malformed URL and an empty key list are refused before any connection.
    assert!(matches!(
        RpcLedger::connect("not a url", dev_signers(1), Finality::FinalizedTag),
        Err(ChainError::Rpc(_))
    ));
    assert!(RpcLedger::connect("http://127.0.0.1:1", Vec::new(), Finality::FinalizedTag).is_err());
}

#[tokio::test]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn rpc_ledger_refusals_on_anvil() {
    let h = Harness::anvil();
    let endpoint = h.endpoint.clone().expect("anvil has an endpoint");
    // A sender the ledger holds no key for.
    let ledger = RpcLedger::connect(&endpoint, dev_signers(1), Finality::Confirmations(5)).unwrap();
    let stranger = dev_signers(2)[1].address();
    assert!(matches!(
        ledger
            .transact(
                "x",
                stranger,
                Some(stranger),
                U256::ZERO,
                Default::default()
            )
            .await,
        Err(ChainError::UnknownSender(_))
    ));
    // Confirmation-depth finality on a chain of 3 blocks: genesis is the final one.
    h.dev.mine(3).await.unwrap();
    assert_eq!(ledger.finalized().await.unwrap().number, 0);
    h.dev.mine(5).await.unwrap();
    assert_eq!(ledger.finalized().await.unwrap().number, 3);
}

#[tokio::test]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn a_read_only_ledger_reads_through_socks5_and_signs_nothing() {
    let h = Harness::anvil();
    let endpoint = h.endpoint.clone().expect("anvil has an endpoint");
    let vault = deploy(&h).await;
    let tunnels: Tunnels = Arc::new(Mutex::new(Vec::new()));
    let proxy = socks_server(tunnels.clone()).await;
    // By name: the proxy, not this machine, resolves it.
    let port = endpoint.rsplit(':').next().unwrap().trim_end_matches('/');
    let by_name = format!("http://localhost:{port}");
    let reader = Arc::new(
        RpcLedger::read_only(&by_name, Finality::FinalizedTag, RpcRoute::Socks5(proxy)).unwrap(),
    );
    assert_eq!(
        reader.chain_id().await.unwrap(),
        h.ledger.chain_id().await.unwrap()
    );
    let again = Vault::at(reader.clone(), vault.address()).await.unwrap();
    assert_eq!(
        again.deposit_state(BlockRef::Latest).await.unwrap(),
        vault.deposit_state(BlockRef::Latest).await.unwrap()
    );
    let seen = tunnels.lock().unwrap().clone();
    assert!(!seen.is_empty(), "every read went through the proxy");
    for tunnel in &seen {
        assert_eq!(tunnel.user, CHAIN_SOCKS_USER);
        assert_eq!(tunnel.target, format!("localhost:{port}"));
    }
    // No key: nothing can be sent, from any account.
    assert!(reader.accounts().is_empty());
    let someone = dev_signers(1)[0].address();
    assert!(matches!(
        reader
            .transact("x", someone, Some(someone), U256::ZERO, Default::default())
            .await,
        Err(ChainError::UnknownSender(_))
    ));
}

#[tokio::test]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn waiting_for_a_new_vault_to_be_final() {
    let h = Harness::anvil();
    let vault = deploy(&h).await;
    // anvil's `finalized` is two blocks below the head: the vault is not there yet.
    let mut told = Vec::new();
    let mine = {
        let dev = h.dev.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            dev.mine(3).await.unwrap();
        })
    };
    vault
        .wait_until_final(std::time::Duration::from_millis(50), |block| {
            told.push(block)
        })
        .await
        .unwrap();
    mine.await.unwrap();
    assert_eq!(told.len(), 1, "told once: {told:?}");
    // Once final, reads at the finalised block work and a second wait is none.
    let finalized = h.ledger.finalized().await.unwrap();
    vault
        .deposit_state(BlockRef::Number(finalized.number))
        .await
        .unwrap();
    vault
        .wait_until_final(std::time::Duration::from_millis(50), |_| {
            panic!("no wait for a final vault")
        })
        .await
        .unwrap();
}

/// Carries each body to `url` over plain HTTP and keeps what it carried.
struct Recording {
    url: String,
    http: reqwest::Client,
    bodies: Mutex<Vec<Vec<u8>>>,
}

impl RpcCarrier for Recording {
    fn post(&self, body: Vec<u8>) -> Carried {
        self.bodies.lock().unwrap().push(body.clone());
        let request = self
            .http
            .post(&self.url)
            .body(body)
            .header("content-type", "application/json");
        Box::pin(async move {
            let answer = request.send().await.map_err(|e| e.to_string())?;
            if !answer.status().is_success() {
                return Err(format!("the node answered {}", answer.status()));
            }
            Ok(answer.bytes().await.map_err(|e| e.to_string())?.to_vec())
        })
    }
}

#[tokio::test]
#[cfg_attr(
    not(nullgate_anvil),
    ignore = "needs anvil: run `npm ci` in contracts/ or set NULLGATE_ANVIL (.ci/run does)"
)]
async fn a_read_only_ledger_reads_through_a_carrier_of_the_callers() {
    let h = Harness::anvil();
    let vault = deploy(&h).await;
    let carrier = Arc::new(Recording {
        url: h.endpoint.clone().expect("anvil has an endpoint"),
        http: reqwest::Client::new(),
        bodies: Mutex::new(Vec::new()),
    });
    let reader = Arc::new(RpcLedger::read_only_through(
        carrier.clone(),
        Finality::FinalizedTag,
    ));
    assert_eq!(
        reader.chain_id().await.unwrap(),
        h.ledger.chain_id().await.unwrap()
    );
    let again = Vault::at(reader.clone(), vault.address()).await.unwrap();
    assert_eq!(
        again.deposit_state(BlockRef::Latest).await.unwrap(),
        vault.deposit_state(BlockRef::Latest).await.unwrap()
    );
    let bodies = carrier.bodies.lock().unwrap().clone();
    let methods: Vec<String> = bodies
        .iter()
        .map(|b| serde_json::from_slice::<serde_json::Value>(b).unwrap()["method"].to_string())
        .collect();
    assert!(
        methods.iter().any(|m| m.contains("eth_chainId")),
        "{methods:?}"
    );
    assert!(
        methods.iter().any(|m| m.contains("eth_call")),
        "{methods:?}"
    );
    assert!(reader.accounts().is_empty(), "it signs nothing");

    // A carrier that fails: the read is an RPC error saying why.
    struct Failing;
    impl RpcCarrier for Failing {
        fn post(&self, _: Vec<u8>) -> Carried {
            Box::pin(async { Err("the mixnet exit refused the call".to_owned()) })
        }
    }
    let failing = RpcLedger::read_only_through(Arc::new(Failing), Finality::FinalizedTag);
    match failing.latest().await {
        Err(ChainError::Rpc(message)) => assert!(message.contains("exit refused"), "{message}"),
        other => panic!("expected an RPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_read_only_ledger_refuses_a_bad_url_and_a_dead_proxy() {
    assert!(matches!(
        RpcLedger::read_only("not a url", Finality::FinalizedTag, RpcRoute::Direct),
        Err(ChainError::Rpc(_))
    ));
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = unused.local_addr().unwrap();
    drop(unused);
    let reader = RpcLedger::read_only(
        "http://localhost:8545",
        Finality::FinalizedTag,
        RpcRoute::Socks5(dead),
    )
    .unwrap();
    assert!(matches!(reader.latest().await, Err(ChainError::Rpc(_))));
}

#[tokio::test]
async fn unreachable_node_is_an_rpc_error() {
    let ledger =
        RpcLedger::connect("http://127.0.0.1:9", dev_signers(1), Finality::FinalizedTag).unwrap();
    assert!(matches!(ledger.latest().await, Err(ChainError::Rpc(_))));
    assert!(matches!(
        ledger.advance_time(1).await,
        Err(ChainError::NotADevChain(_))
    ));
}

/// A node that hides one deposit's log: tree sync must notice through the digest and change
/// nothing.
struct HidingNode(Arc<EmbeddedLedger>);

#[async_trait::async_trait]
impl Ledger for HidingNode {
    async fn chain_id(&self) -> Result<u64, ChainError> {
        self.0.chain_id().await
    }
    fn accounts(&self) -> Vec<nullgate_chain::Address> {
        self.0.accounts()
    }
    async fn transact(
        &self,
        call: &'static str,
        from: nullgate_chain::Address,
        to: Option<nullgate_chain::Address>,
        value: U256,
        data: nullgate_chain::Bytes,
    ) -> Result<nullgate_chain::Receipt, ChainError> {
        self.0.transact(call, from, to, value, data).await
    }
    async fn call(
        &self,
        call: &'static str,
        to: nullgate_chain::Address,
        data: nullgate_chain::Bytes,
        block: BlockRef,
    ) -> Result<nullgate_chain::Bytes, ChainError> {
        self.0.call(call, to, data, block).await
    }
    async fn logs(
        &self,
        address: nullgate_chain::Address,
        from: u64,
        to: u64,
    ) -> Result<Vec<nullgate_chain::ledger::BlockLog>, ChainError> {
        let mut logs = self.0.logs(address, from, to).await?;
        // Drop the second NoteDeposited log, if any.
        let deposited = nullgate_chain::bindings::NoteVault::NoteDeposited::SIGNATURE_HASH;
        if let Some(position) = logs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.log.topics().first() == Some(&deposited))
            .map(|(i, _)| i)
            .nth(1)
        {
            logs.remove(position);
        }
        Ok(logs)
    }
    async fn latest(&self) -> Result<nullgate_chain::BlockInfo, ChainError> {
        self.0.latest().await
    }
    async fn finalized(&self) -> Result<nullgate_chain::BlockInfo, ChainError> {
        self.0.finalized().await
    }
    async fn balance(&self, account: nullgate_chain::Address) -> Result<U256, ChainError> {
        self.0.balance(account).await
    }
}

#[tokio::test]
async fn tree_sync_refuses_a_node_that_hides_a_deposit() {
    let h = Harness::embedded();
    let vault = deploy(&h).await;
    let start = h.ledger.latest().await.unwrap().number;
    for seed in 30..33 {
        vault
            .deposit(
                h.account(1),
                &nullgate_zk::note::commitment(&secret(seed)),
                1_000,
            )
            .await
            .unwrap();
    }
    h.finalize_all().await;
    let hiding = Vault::at(
        Arc::new(HidingNode(h.embedded.clone().unwrap())),
        vault.address(),
    )
    .await
    .unwrap();
    let mut sync = nullgate_chain::TreeSync::new(start);
    assert!(matches!(
        sync.sync(&hiding).await,
        Err(ChainError::DigestMismatch(_))
    ));
    assert!(
        sync.tree().is_empty() && sync.deposits().is_empty(),
        "nothing applied"
    );
    // The honest node syncs the same tree from scratch.
    let step = sync.sync(&vault).await.unwrap();
    assert_eq!(step.added, 3);
}

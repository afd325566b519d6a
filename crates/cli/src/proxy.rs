//! `nullgate proxy --config proxy.toml`: the local proxy (OpenAI, Anthropic, Ollama, JSON-RPC)
//! over a wallet, sending every call through the transport of its `[transport]` table (OHTTP
//! relay, mixnet, SOCKS5 for Tor or Nym; see [`crate::transport`]) to the gateway.
//!
//! ```toml
//! wallet = "wallet"                   # the wallet directory (created empty if missing)
//! rpc_url = "http://127.0.0.1:8545"   # the chain (your own node, ideally)
//! rpc_socks = "127.0.0.1:9050"        # chain reads through this SOCKS5 proxy (default: the
//!                                     # transport's, see chain_reads)
//! chain_reads = "transport"           # "transport": with the calls through the mixnet (its
//!                                     # exits must allowlist rpc_url), SOCKS5 or Tor;
//!                                     # straight to rpc_url with ohttp and direct. "direct":
//!                                     # straight to rpc_url (your own node on this machine)
//! vault = "0x…"                       # the vault's address
//! confirmations = 0                   # 0: the node's `finalized` tag
//! gateway = "gateway.example"         # the authority requests name
//! request_proving_key = "keys/request.pk"   # from `nullgate setup`; hash checked on chain
//! default_class = 1                   # class index credentials are pre-generated for
//! sync_ms = 2000                      # how often the chain and tree are followed
//! min_anonymity = 8                   # refuse to spend among fewer Active notes (§9)
//! prover_threads = 1                  # threads proving credentials (default: one per core)
//! passphrase_env = "NULLGATE_PASSPHRASE"  # variable holding an encrypted wallet's passphrase
//!                                     # (without it: asked on the terminal if encrypted)
//! [proxy]                             # listen (default 127.0.0.1:8787), max_body_bytes
//! listen = "127.0.0.1:8787"           # (4 MiB), default_max_tokens (1024)
//! [transport]                         # how calls leave this machine
//! kind = "ohttp"
//! relay = "https://relay.example/"    # the OHTTP relay in front of the gateway
//! ```
//!
//! Notes come from `nullgate wallet deposit` (or `nullgate demo --dir` on its embedded
//! chain). A missing wallet is created empty, encrypted when `passphrase_env` is set.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use nullgate_chain::{Address, Finality, Ledger, RpcLedger, RpcRoute, Vault};
use nullgate_client::{
    client::{Client, ClientConfig},
    proxy::{Proxy, ProxyConfig},
    trust::trust,
    wallet::{VaultId, Wallet},
};

use crate::transport::{ChainRpc, ChosenTransport, TransportFile};
use nullgate_zk::keys::load_prover_key;
use serde::Deserialize;

/// Options of `nullgate proxy`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The configuration file (TOML, see the module docs / README).
    #[arg(long, default_value = "proxy.toml")]
    config: PathBuf,
}

/// `proxy.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyFile {
    wallet: PathBuf,
    rpc_url: String,
    #[serde(default)]
    rpc_socks: Option<SocketAddr>,
    #[serde(default)]
    chain_reads: ChainReads,
    vault: String,
    #[serde(default)]
    confirmations: u64,
    gateway: String,
    #[serde(default = "default_key")]
    request_proving_key: PathBuf,
    #[serde(default = "default_class")]
    default_class: u8,
    #[serde(default = "default_sync")]
    sync_ms: u64,
    #[serde(default = "default_min_anonymity")]
    min_anonymity: usize,
    #[serde(default)]
    prover_threads: usize,
    #[serde(default)]
    passphrase_env: Option<String>,
    #[serde(default)]
    proxy: ProxyConfig,
    transport: TransportFile,
}

/// Where the proxy's own chain reads go (`chain_reads`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChainReads {
    /// With the calls where their transport can carry them: the mixnet, SOCKS5, Tor.
    #[default]
    Transport,
    /// Straight to `rpc_url` (or through `rpc_socks`).
    Direct,
}

fn default_key() -> PathBuf {
    "keys/request.pk".into()
}
fn default_class() -> u8 {
    1
}
fn default_sync() -> u64 {
    2000
}
fn default_min_anonymity() -> usize {
    crate::wallet::DEFAULT_MIN_ANONYMITY
}

/// Whether `url` names this machine (then reading the chain straight from it reveals
/// nothing).
fn is_loopback(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
    else {
        return false;
    };
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs the proxy until interrupted.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let (file, base) = read_config(&args.config)?;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let client = start(&file, &base).await?;
        let proxy = Proxy::bind(Arc::new(client), file.proxy).await?;
        eprintln!(
            "nullgate proxy on http://{}/v1 (set OPENAI_BASE_URL to it; no API key needed)",
            proxy.local_addr()
        );
        proxy.run(std::future::pending()).await?;
        Ok(())
    })
}

/// Runs `nullgate mcp` over the same configuration: the MCP server on stdio until the host
/// closes it.
pub(crate) fn run_mcp(args: Args) -> anyhow::Result<()> {
    let (file, base) = read_config(&args.config)?;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let client = start(&file, &base).await?;
        crate::mcp::serve_stdio(client, file.proxy).await
    })
}

/// The configuration file, and the directory its paths are relative to.
fn read_config(path: &std::path::Path) -> anyhow::Result<(ProxyFile, PathBuf)> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (see `nullgate proxy --help`)",
            path.display()
        )
    })?;
    let file: ProxyFile = toml::from_str(&text).context("proxy config")?;
    let base = path.parent().map(PathBuf::from).unwrap_or_default();
    Ok((file, base))
}

/// The client core over the configured chain, transport and wallet, synced once and then
/// following the chain in the background.
async fn start(
    file: &ProxyFile,
    base: &std::path::Path,
) -> anyhow::Result<Client<ChosenTransport>> {
    let vault_address: Address = file.vault.parse().context("vault: not an address")?;
    let finality = if file.confirmations == 0 {
        Finality::FinalizedTag
    } else {
        Finality::Confirmations(file.confirmations)
    };
    file.transport.check_available()?;
    // A transport that carries the chain reads too comes first; the mixnet takes the
    // gateway's key once the vault's pin has been read through it.
    let carrier = match (file.chain_reads, file.rpc_socks) {
        (ChainReads::Transport, None) => file.transport.chain_carrier().await?,
        _ => None,
    };
    let ledger: Arc<dyn Ledger> = match &carrier {
        Some(carrier) => {
            eprintln!(
                "chain reads go through {} to {}",
                carrier.name(),
                file.rpc_url
            );
            Arc::new(RpcLedger::read_only_through(
                Arc::new(ChainRpc::new(carrier.clone(), &file.rpc_url)?),
                finality,
            ))
        }
        None => {
            let route = match (file.rpc_socks, file.chain_reads) {
                (Some(socks), _) => RpcRoute::Socks5(socks),
                (None, ChainReads::Transport) => file.transport.chain_route(),
                (None, ChainReads::Direct) => RpcRoute::Direct,
            };
            if route == RpcRoute::Direct && !is_loopback(&file.rpc_url) {
                eprintln!(
                    "warning: chain reads go straight to {}: that node sees this machine's \
                     address (run your own node, or set rpc_socks to a Tor or Nym SOCKS5 proxy)",
                    file.rpc_url
                );
            }
            Arc::new(RpcLedger::read_only(&file.rpc_url, finality, route)?)
        }
    };
    let vault = Arc::new(Vault::at(ledger, vault_address).await?);
    vault
        .wait_until_final(Duration::from_secs(2), |block| {
            eprintln!("waiting for the vault's deployment to be final (finalised block: {block})")
        })
        .await?;
    let deployment = vault.summary().await?.deployment()?;
    let key_bytes = std::fs::read(base.join(&file.request_proving_key)).with_context(|| {
        format!(
            "cannot read {} (from `nullgate setup`)",
            file.request_proving_key.display()
        )
    })?;
    let prover = Arc::new(
        load_prover_key(&key_bytes, Some(&deployment.request_proving_key_hash))
            .context("the request proving key is not the one the vault pins")?,
    );
    let transport = match carrier {
        Some(carrier) => {
            file.transport
                .over_carrier(carrier, &deployment.ohttp_keys_hash)
                .await?
        }
        None => file.transport.connect(&deployment.ohttp_keys_hash).await?,
    };
    eprintln!("calls leave through {}", transport.kind());
    let trusted = trust(&vault, &prover, &transport, &file.gateway).await?;
    let dir = base.join(&file.wallet);
    let passphrase = crate::wallet::PassphraseArgs {
        passphrase_env: file.passphrase_env.clone(),
    };
    let wallet = if dir.join("wallet.json").exists() || dir.join("wallet.json.bak").exists() {
        let opened = passphrase.open(&dir)?;
        if let Some(warning) = opened.warning {
            eprintln!("warning: {warning}");
        }
        opened.wallet
    } else {
        let id = VaultId {
            chain_id: deployment.chain_id,
            vault: deployment.vault,
        };
        if file.passphrase_env.is_some() {
            Wallet::create_sealed(&dir, id, &passphrase.for_new()?)?
        } else {
            eprintln!(
                "warning: creating {} unencrypted (set passphrase_env in the config to \
                 encrypt it)",
                dir.display()
            );
            Wallet::create(&dir, id)?
        }
    };
    let client = Client::new(
        wallet,
        transport,
        vault,
        trusted,
        prover,
        ClientConfig {
            authority: file.gateway.clone(),
            default_class: file.default_class,
            in_progress_retries: 8,
            min_anonymity: file.min_anonymity,
            prover_threads: file.prover_threads,
            // The proxy deposits nothing (`nullgate wallet deposit` draws the delays).
            first_use_delay: nullgate_client::client::DEFAULT_FIRST_USE_DELAY,
        },
    )?;
    client.sync().await?;
    let follower = client.clone();
    let every = Duration::from_millis(file.sync_ms.max(100));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            if let Err(error) = follower.sync().await {
                eprintln!("warning: following the chain failed ({error}); retrying");
            }
        }
    });
    Ok(client)
}

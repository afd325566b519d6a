//! `nullgate vault`: the operator deploys a vault and reads its parameters back, on the
//! embedded chain or any JSON-RPC endpoint. (The user's commands are `nullgate wallet`.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use hex::FromHex;
use nullgate_chain::{
    Address, B256, EmbeddedLedger, Finality, KeyHashes, Ledger, PrivateKeySigner, RpcLedger,
    RpcRoute, Vault, VaultParams, VaultSummary, dev_signers,
};
use nullgate_protocol::price::PriceList;
use nullgate_zk::{
    groth16::CircuitKind,
    keys::{DEV_SEED, dev_setup},
    schnorr::SecretKey,
};
use serde::Deserialize;

use crate::bench_zk::new_spinner;

/// `nullgate vault …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Deploy the exit verifier and a vault; print the vault's address and parameters.
    Deploy(Box<DeployArgs>),
    /// Print a deployed vault's parameters.
    Show(ShowArgs),
}

/// Where the chain is.
#[derive(Debug, clap::Args)]
pub(crate) struct ChainArgs {
    /// A JSON-RPC endpoint (anvil, an L2, mainnet). Without it: the embedded chain.
    #[arg(long)]
    rpc_url: Option<String>,
    /// A file holding the sender's private key in hex (or set NULLGATE_PRIVATE_KEY). Never
    /// taken on the command line, where `ps` would show it; never logged.
    #[arg(long)]
    private_key_file: Option<PathBuf>,
    /// Send from dev account N of the public test mnemonic (anvil, the embedded chain).
    #[arg(long, conflicts_with = "private_key_file")]
    dev_account: Option<u32>,
    /// For chains without a `finalized` block tag: blocks below the head that count as final.
    #[arg(long)]
    confirmations: Option<u64>,
    /// The embedded chain's state file: loaded if it exists, written after the command.
    #[arg(long)]
    snapshot: Option<PathBuf>,
}

/// Options of `nullgate vault deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Key directory written by `nullgate setup` (its keys.json hashes are pinned). Without
    /// it the DEV keys are set up in-process.
    #[arg(long)]
    keys: Option<PathBuf>,
    /// The gateway's state key (secret, hex): read if the file exists, else created (0600).
    #[arg(long, default_value = "state-key.hex")]
    state_key: PathBuf,
    /// Token base units (wei for ETH) per credit unit.
    #[arg(long, default_value_t = 1_000_000_000)]
    unit_size: u128,
    /// An ERC-20 token instead of native ETH.
    #[arg(long)]
    asset: Option<Address>,
    /// The smallest deposit, credit units.
    #[arg(long, default_value_t = 1_000)]
    min_deposit: u64,
    /// The gateway's price list (canonical text, PROTOCOL §11): its SHA-256 is pinned as
    /// `priceListHash`, and the cost classes and floor fee are its own. Without it the hash
    /// stays zero and no gateway can serve the vault.
    #[arg(long, conflicts_with_all = ["classes", "floor_fee"])]
    price_list: Option<PathBuf>,
    /// The environment variable holding the gateway's OHTTP key seed (as in its
    /// `ohttp_seed_env`): the hash of the key configuration it derives is pinned as
    /// `ohttpKeysHash`. Without it the hash stays zero and clients refuse every key.
    #[arg(long)]
    ohttp_seed_env: Option<String>,
    /// Cost classes, strictly increasing, comma separated (at most 8); without
    /// `--price-list` only.
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 10, 100, 1_000])]
    classes: Vec<u64>,
    /// The floor fee `Δ_min ≤ C_1`; without `--price-list` only.
    #[arg(long, default_value_t = 1)]
    floor_fee: u64,
    /// Default windows: `spec` (PROTOCOL §2: W 72 h, G_exp 14 days, TTL 90 days) or `dev`
    /// (W 1 h, G_exp 1 day, TTL 30 days, for trying things out). The three flags below
    /// override either.
    #[arg(long, value_enum, default_value_t = Preset::Spec)]
    preset: Preset,
    /// The exit window `W`, seconds.
    #[arg(long)]
    exit_window: Option<u64>,
    /// The expiry grace `G_exp ≥ W`, seconds.
    #[arg(long)]
    expiry_grace: Option<u64>,
    /// The note lifetime, seconds.
    #[arg(long)]
    note_lifetime: Option<u64>,
    /// The treasury (default: the deployer).
    #[arg(long)]
    treasury: Option<Address>,
    /// The clearance signer (default: the deployer).
    #[arg(long)]
    clearance_signer: Option<Address>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Default time windows of a deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    /// PROTOCOL §2's defaults: W 72 h, G_exp 14 days, TTL 90 days.
    Spec,
    /// Short windows for trying things out: W 1 h, G_exp 1 day, TTL 30 days.
    Dev,
}

impl Preset {
    /// `(W, G_exp, TTL)` in seconds.
    fn windows(self) -> (u64, u64, u64) {
        const HOUR: u64 = 3_600;
        const DAY: u64 = 24 * HOUR;
        match self {
            Self::Spec => (72 * HOUR, 14 * DAY, 90 * DAY),
            Self::Dev => (HOUR, DAY, 30 * DAY),
        }
    }
}

/// Options of `nullgate vault show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// The vault's address.
    #[arg(long)]
    address: Address,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs `nullgate vault …`.
pub(crate) fn run(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        match command {
            Command::Deploy(args) => deploy(*args).await,
            Command::Show(args) => show(args).await,
        }
    })
}

/// An opened chain: the ledger, the sender (none for a node given no key: the ledger only
/// reads), and the embedded chain to snapshot if any.
pub(crate) struct Opened {
    pub(crate) ledger: Arc<dyn Ledger>,
    sender: Option<Address>,
    embedded: Option<(Arc<EmbeddedLedger>, PathBuf)>,
}

/// Why a command that sends a transaction cannot, on a node given no key.
const NEED_KEY: &str = "--rpc-url needs the sender's key: set NULLGATE_PRIVATE_KEY or pass \
--private-key-file FILE, or --dev-account N for a dev node";

pub(crate) fn open(args: &ChainArgs) -> anyhow::Result<Opened> {
    let private_key = match &args.private_key_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--private-key-file: cannot read {}", path.display()))?,
        ),
        None => std::env::var("NULLGATE_PRIVATE_KEY").ok(),
    };
    let signer = match (&private_key, args.dev_account) {
        (Some(hex_key), _) => Some(hex_key.trim().parse::<PrivateKeySigner>().map_err(|_| {
            anyhow::anyhow!(
                "the private key (NULLGATE_PRIVATE_KEY or --private-key-file) is not 32 bytes of hex"
            )
        })?),
        // A node and no key: only reads (`wallet status`, `restore`).
        (None, None) if args.rpc_url.is_some() => None,
        (None, index) => Some(
            dev_signers(index.unwrap_or(0) + 1)
                .pop()
                .context("dev account index out of range")?,
        ),
    };
    let sender = signer.as_ref().map(PrivateKeySigner::address);
    match &args.rpc_url {
        Some(url) => {
            if args.snapshot.is_some() {
                bail!("--snapshot is for the embedded chain; drop it when using --rpc-url");
            }
            let finality = args
                .confirmations
                .map_or(Finality::FinalizedTag, Finality::Confirmations);
            let ledger = match signer {
                Some(signer) => RpcLedger::connect(url, vec![signer], finality)?,
                None => RpcLedger::read_only(url, finality, RpcRoute::Direct)?,
            };
            Ok(Opened {
                ledger: Arc::new(ledger),
                sender,
                embedded: None,
            })
        }
        None => {
            if private_key.is_some() {
                bail!("the embedded chain funds only the dev accounts: use --dev-account N");
            }
            let chain = match &args.snapshot {
                Some(path) if path.exists() => EmbeddedLedger::load_snapshot(path)?,
                _ => EmbeddedLedger::new(),
            };
            let chain = Arc::new(chain);
            Ok(Opened {
                ledger: chain.clone(),
                sender,
                embedded: args.snapshot.clone().map(|path| (chain, path)),
            })
        }
    }
}

impl Opened {
    /// The account transactions are sent from; an error saying how to give one when the node
    /// was opened without a key.
    pub(crate) fn sender(&self) -> anyhow::Result<Address> {
        self.sender.context(NEED_KEY)
    }

    /// Writes the embedded chain's snapshot, if the command runs on one.
    pub(crate) fn save(&self) -> anyhow::Result<()> {
        if let Some((chain, path)) = &self.embedded {
            chain.save_snapshot(path)?;
            eprintln!("embedded chain saved to {}", path.display());
        }
        Ok(())
    }
}

async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let opened = open(&args.chain)?;
    let sender = opened.sender()?;
    // The pins first: a bad file or variable fails before the slow key setup.
    let prices = match &args.price_list {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the price list {}", path.display()))?;
            Some(
                PriceList::parse(&bytes)
                    .with_context(|| format!("the price list {}", path.display()))?,
            )
        }
        None => {
            eprintln!(
                "warning: no --price-list: priceListHash stays zero and no gateway can serve \
                 this vault"
            );
            None
        }
    };
    let ohttp_keys_hash = match &args.ohttp_seed_env {
        Some(var) => Some(B256::from(crate::gateway::ohttp_keys(var)?.served_hash()?)),
        None => {
            eprintln!(
                "warning: no --ohttp-seed-env: ohttpKeysHash stays zero and clients refuse \
                 every gateway key"
            );
            None
        }
    };
    let (keys, dev_keys) = match &args.keys {
        Some(dir) => read_key_hashes(dir)?,
        None => {
            let spinner = new_spinner(!args.json, "DEV setup of the request and exit keys");
            let request = dev_setup(CircuitKind::Request, &DEV_SEED)?;
            let exit = dev_setup(CircuitKind::Exit, &DEV_SEED)?;
            spinner.finish_and_clear();
            (KeyHashes::of(&request, &exit)?, true)
        }
    };
    let state_key = state_key(&args.state_key)?;
    let mut params = VaultParams::dev(keys, state_key.public_key(), sender);
    params.dev_keys = dev_keys;
    params.asset = args.asset;
    params.unit_size = nullgate_chain::U256::from(args.unit_size);
    params.min_deposit = args.min_deposit;
    params.cost_classes = args.classes;
    params.floor_fee = args.floor_fee;
    if let Some(list) = &prices {
        params.cost_classes = list.classes().to_vec();
        params.floor_fee = list.floor_fee();
        params.price_list_hash = B256::from(list.hash());
    }
    if let Some(hash) = ohttp_keys_hash {
        params.ohttp_keys_hash = hash;
    }
    let (exit_window, expiry_grace, note_lifetime) = args.preset.windows();
    params.exit_window = args.exit_window.unwrap_or(exit_window);
    params.expiry_grace = args.expiry_grace.unwrap_or(expiry_grace);
    params.note_lifetime = args.note_lifetime.unwrap_or(note_lifetime);
    params.treasury = args.treasury.unwrap_or(sender);
    params.clearance_signer = args.clearance_signer.unwrap_or(sender);

    let spinner = new_spinner(!args.json, "deploying the exit verifier and the vault");
    let vault = Vault::deploy(opened.ledger.clone(), sender, &params).await?;
    spinner.finish_and_clear();
    let summary = vault.summary().await?;
    print(&summary, args.json)?;
    opened.save()
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let opened = open(&args.chain)?;
    let vault = Vault::at(opened.ledger.clone(), args.address)
        .await
        .with_context(|| format!("no vault answers at {}", args.address))?;
    print(&vault.summary().await?, args.json)
}

/// The `keys.json` records `nullgate setup` writes.
#[derive(Deserialize)]
struct KeyRecord {
    circuit: String,
    dev: bool,
    proving_key_sha256: String,
    verifying_key_sha256: String,
}

fn read_key_hashes(dir: &Path) -> anyhow::Result<(KeyHashes, bool)> {
    let path = dir.join("keys.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (write it with `nullgate setup`)",
            path.display()
        )
    })?;
    let records: Vec<KeyRecord> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a keys.json", path.display()))?;
    let find = |circuit: &str| -> anyhow::Result<&KeyRecord> {
        records
            .iter()
            .find(|r| r.circuit == circuit)
            .with_context(|| format!("{} has no {circuit} key", path.display()))
    };
    let hash = |hex_hash: &str| -> anyhow::Result<[u8; 32]> {
        <[u8; 32]>::from_hex(hex_hash).ok().with_context(|| {
            format!(
                "{} holds a hash that is not 32 bytes of hex",
                path.display()
            )
        })
    };
    let (request, exit) = (find("request")?, find("exit")?);
    Ok((
        KeyHashes {
            request_proving: hash(&request.proving_key_sha256)?,
            exit_proving: hash(&exit.proving_key_sha256)?,
            request_verifying: hash(&request.verifying_key_sha256)?,
            exit_verifying: hash(&exit.verifying_key_sha256)?,
        },
        request.dev || exit.dev,
    ))
}

/// Reads the state key, or creates one readable only by its owner.
fn state_key(path: &Path) -> anyhow::Result<SecretKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the state key {}", path.display()))?;
        let bytes = hex::decode(text.trim())
            .ok()
            .with_context(|| format!("{} is not hex", path.display()))?;
        return SecretKey::from_bytes(&bytes)
            .with_context(|| format!("{} is not a state key", path.display()));
    }
    let key = SecretKey::random(&mut rand::rngs::OsRng);
    write_private(path, hex::encode(key.to_bytes()).as_bytes())?;
    eprintln!(
        "created a new state key in {} (keep it secret: the gateway signs with it)",
        path.display()
    );
    Ok(key)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

fn print(summary: &VaultSummary, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(summary)?);
        return Ok(());
    }
    let asset = if summary.asset == Address::ZERO {
        "native ETH".to_string()
    } else {
        format!("ERC-20 {}", summary.asset)
    };
    let rows: Vec<(&str, String)> = vec![
        ("vault", summary.address.to_string()),
        ("chain id", summary.chain_id.to_string()),
        ("dom", format!("{:#066x}", summary.dom)),
        ("exit verifier", summary.exit_verifier.to_string()),
        ("asset", asset),
        (
            "unit size",
            format!("{} base units per credit", summary.unit_size),
        ),
        (
            "minimum deposit",
            format!("{} credits", summary.min_deposit),
        ),
        ("cost classes", format!("{:?}", summary.cost_classes)),
        ("floor fee", summary.floor_fee.to_string()),
        ("exit window W", format!("{} s", summary.exit_window)),
        ("expiry grace G_exp", format!("{} s", summary.expiry_grace)),
        ("note lifetime", format!("{} s", summary.note_lifetime)),
        (
            "keys",
            if summary.dev_keys {
                "DEV (local chains only)".into()
            } else {
                "ceremony".into()
            },
        ),
        (
            "request pk sha256",
            summary.request_proving_key_hash.to_string(),
        ),
        ("exit pk sha256", summary.exit_proving_key_hash.to_string()),
        (
            "request vk sha256",
            summary.request_verifying_key_hash.to_string(),
        ),
        (
            "exit vk sha256",
            summary.exit_verifying_key_hash.to_string(),
        ),
        (
            "current state key",
            format!(
                "#{} ({:#x}, {:#x})",
                summary.current_key, summary.current_key_point.0, summary.current_key_point.1
            ),
        ),
        ("operator", summary.operator.to_string()),
        ("treasury", summary.treasury.to_string()),
        ("clearance signer", summary.clearance_signer.to_string()),
        ("price list hash", summary.price_list_hash.to_string()),
        ("OHTTP keys hash", summary.ohttp_keys_hash.to_string()),
        ("notes", summary.deposit_count.to_string()),
        ("deposits paused", summary.deposits_paused.to_string()),
    ];
    for (name, value) in rows {
        println!("{name:>20}  {value}");
    }
    Ok(())
}

//! `nullgate gateway --config gateway.toml`: the provider's server in front of a paid API,
//! following a vault over JSON-RPC. Every option is documented, with its default, in
//! `nullgate_gateway::config`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use nullgate_chain::{Address, Finality, Ledger, PrivateKeySigner, RpcLedger, Vault};
use nullgate_gateway::{
    Gateway, GatewayConfig, GatewayParts,
    charge::StateSigner,
    store::{NullifierStore, postgres::PostgresStore, sqlite::SqliteStore},
    upstream::{Upstream, UpstreamKey},
};
use nullgate_net::ohttp::KeyRing;
use nullgate_protocol::price::PriceList;
use nullgate_zk::{
    curve::scalar_from_bytes,
    groth16::{CircuitKind, VerifierKey},
    schnorr::SecretKey,
};

/// Options of `nullgate gateway`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The configuration file (TOML; every option and default in the gateway crate's docs).
    #[arg(long, default_value = "gateway.toml")]
    config: PathBuf,
}

fn secret_env(name: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let value = std::env::var(name).with_context(|| format!("{what}: set {name} (hex)"))?;
    hex::decode(value.trim().trim_start_matches("0x")).with_context(|| format!("{name} is not hex"))
}

/// The gateway's OHTTP key ring, derived from the seed in the environment variable `var`
/// (the same seed gives the same key configuration, so `nullgate vault deploy` pins the hash
/// of the configuration the gateway will serve).
pub(crate) fn ohttp_keys(var: &str) -> anyhow::Result<KeyRing> {
    let seed = secret_env(var, "the OHTTP key seed")?;
    if seed.len() < 32 {
        bail!("{var} must hold at least 32 bytes of hex");
    }
    Ok(KeyRing::derive(1, &seed, Duration::from_secs(24 * 3600))?)
}

/// Reads the configuration, checks it against the vault, and serves until interrupted.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config).with_context(|| {
        format!(
            "cannot read {} (see `nullgate gateway --help`)",
            args.config.display()
        )
    })?;
    let config = GatewayConfig::from_toml(&text).map_err(anyhow::Error::msg)?;
    let base = args.config.parent().map(PathBuf::from).unwrap_or_default();
    let price_bytes = std::fs::read(base.join(&config.price_list))
        .with_context(|| format!("cannot read the price list {}", config.price_list.display()))?;
    let price_list = PriceList::parse(&price_bytes).context("the price list")?;
    let vk_bytes = std::fs::read(base.join(&config.request_verifying_key)).with_context(|| {
        format!(
            "cannot read the request verifying key {} (from `nullgate setup`)",
            config.request_verifying_key.display()
        )
    })?;
    let verifier_key = VerifierKey::from_bytes(CircuitKind::Request, &vk_bytes)?;
    let exit_vk_bytes =
        std::fs::read(base.join(&config.exit_verifying_key)).with_context(|| {
            format!(
                "cannot read the exit verifying key {} (from `nullgate setup`)",
                config.exit_verifying_key.display()
            )
        })?;
    let exit_verifier_key = VerifierKey::from_bytes(CircuitKind::Exit, &exit_vk_bytes)?;
    let clearance_signer = match &config.clearance_key_env {
        Some(var) => Some(
            std::env::var(var)
                .with_context(|| format!("clearance_key_env: {var} is not set"))?
                .trim()
                .parse::<PrivateKeySigner>()
                .map_err(|_| anyhow::anyhow!("{var} is not a private key"))?,
        ),
        None => None,
    };
    let state_key = SecretKey::from_scalar(scalar_from_bytes(
        &secret_env(&config.state_key_env, "the state key")?,
        "state key",
    )?)?;
    let ohttp = ohttp_keys(&config.ohttp_seed_env)?;
    let slasher = std::env::var(&config.slasher_key_env)
        .ok()
        .map(|key| key.trim().parse::<PrivateKeySigner>())
        .transpose()
        .map_err(|_| anyhow::anyhow!("{} is not a private key", config.slasher_key_env))?;
    let upstream_key = match (&config.upstream_key_env, &config.upstream_key_file) {
        (Some(_), Some(_)) => {
            bail!("set one of upstream_key_env and upstream_key_file, not both")
        }
        (Some(var), None) => Some(
            std::env::var(var).with_context(|| format!("upstream_key_env: {var} is not set"))?,
        ),
        (None, Some(file)) => Some(
            std::fs::read_to_string(base.join(file))
                .with_context(|| format!("upstream_key_file: cannot read {}", file.display()))?,
        ),
        (None, None) => None,
    }
    .map(|secret| UpstreamKey::new(&secret, config.upstream_key_header))
    .transpose()?;
    let postgres_url = match &config.postgres_url_env {
        Some(var) => Some(
            std::env::var(var).with_context(|| format!("postgres_url_env: {var} is not set"))?,
        ),
        None => None,
    };
    let vault_address: Address = config.vault.parse().context("vault: not an address")?;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let finality = if config.confirmations == 0 {
            Finality::FinalizedTag
        } else {
            Finality::Confirmations(config.confirmations)
        };
        let slasher_address = slasher.as_ref().map(|s| s.address());
        let ledger: Arc<dyn Ledger> = Arc::new(RpcLedger::connect(
            &config.rpc_url,
            slasher.into_iter().collect(),
            finality,
        )?);
        let vault = Arc::new(Vault::at(ledger, vault_address).await?);
        vault
            .wait_until_final(Duration::from_secs(2), |block| {
                eprintln!(
                    "waiting for the vault's deployment to be final (finalised block: {block})"
                )
            })
            .await?;
        // The state key signs under its number on chain (checked by Gateway::start).
        let number = vault.summary().await?.current_key;
        let store: Arc<dyn NullifierStore> = match &postgres_url {
            Some(url) => Arc::new(
                PostgresStore::connect(url, config.limits.retention_hours)
                    .await
                    .context("postgres_url_env: the PostgreSQL store")?,
            ),
            None => Arc::new(SqliteStore::open(
                &base.join(&config.database),
                config.limits.retention_hours,
            )?),
        };
        let gateway = Gateway::start(GatewayParts {
            vault,
            from_block: config.from_block,
            price_list,
            signer: StateSigner {
                number,
                key: state_key,
            },
            verifier_key,
            exit_verifier_key,
            clearance_signer,
            store,
            upstream: Upstream::new(&config.upstream, upstream_key)?,
            ohttp,
            authority: config.authority(),
            limits: config.limits.clone(),
            slasher: slasher_address,
        })
        .await;
        let gateway = match gateway {
            Ok(gateway) => gateway,
            Err(error) => bail!("the gateway does not start: {error}"),
        };
        if slasher_address.is_none() {
            eprintln!(
                "warning: no {} set: double spends are recorded but not slashed",
                config.slasher_key_env
            );
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        eprintln!(
            "nullgate gateway on {} for vault {vault_address}",
            config.listen
        );
        gateway.serve(listener).await.context("the gateway stopped")
    })
}

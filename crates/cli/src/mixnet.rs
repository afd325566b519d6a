//! `nullgate directory`, `nullgate mixnode` and `nullgate mixnet init`: run the mixnet's
//! directory authority and nodes from settings files, and write a fresh set of them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nullgate_net::mixnet::{
    authority::{AuthoritySettings, NodeRecord, authority_router},
    epoch::EpochClock,
    mixnode::{ExitSettings, MixnodeSettings, start_mixnode},
};

/// Options of `nullgate directory`.
#[derive(Debug, clap::Args)]
pub(crate) struct DirectoryArgs {
    /// The authority's settings (JSON, as `nullgate mixnet init` writes them).
    #[arg(long)]
    config: PathBuf,
}

/// Options of `nullgate mixnode`.
#[derive(Debug, clap::Args)]
pub(crate) struct MixnodeArgs {
    /// The node's settings (JSON, as `nullgate mixnet init` writes them).
    #[arg(long)]
    config: PathBuf,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    #[arg(long)]
    metrics: Option<SocketAddr>,
}

/// `nullgate mixnet …`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MixnetCommand {
    /// Write settings for a directory authority and a mixnet of N nodes per layer, with fresh
    /// keys (secrets in files readable by the owner only).
    Init(InitArgs),
}

/// Options of `nullgate mixnet init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// Directory to write `directory.json` and `node-<layer>-<index>.json` into.
    #[arg(long)]
    dir: PathBuf,
    /// Nodes per layer.
    #[arg(long, default_value_t = 1)]
    per_layer: usize,
    /// Host the authority and nodes listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port of the authority; nodes take the following ports.
    #[arg(long, default_value_t = 9100)]
    base_port: u16,
    /// A gateway (base URL) the exits forward to; repeat for several.
    #[arg(long = "allow")]
    allow: Vec<String>,
    /// A JSON-RPC endpoint (full URL) the exits forward chain reads to; repeat for several.
    #[arg(long = "allow-rpc")]
    allow_rpc: Vec<String>,
    /// Epoch length in seconds.
    #[arg(long, default_value_t = 3600)]
    epoch_seconds: u64,
    /// Mean per-hop delay ceiling a node honours, milliseconds.
    #[arg(long, default_value_t = 1000)]
    delay_cap_ms: u64,
}

/// Runs the directory authority until interrupted.
pub(crate) fn run_directory(args: DirectoryArgs) -> anyhow::Result<()> {
    let settings: AuthoritySettings = read_json(&args.config)?;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        eprintln!(
            "directory authority on {} for {} nodes; its key (pin it): {}",
            settings.listen,
            settings.nodes.len(),
            hex::encode(settings.verifying_key().to_bytes())
        );
        axum::serve(listener, authority_router(settings.config()))
            .await
            .context("the directory authority stopped")
    })
}

/// Runs a mix node until interrupted.
pub(crate) fn run_mixnode(args: MixnodeArgs) -> anyhow::Result<()> {
    let settings: MixnodeSettings = read_json(&args.config)?;
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let (listen, layer) = (settings.listen, settings.layer);
        let exit = settings.exit.is_some();
        let node = start_mixnode(settings, listener)
            .await
            .context("the node could not join the mixnet")?;
        eprintln!(
            "mix node of layer {layer}{} on {listen}, epoch {} ({} nodes in the directory)",
            if exit { " with an exit" } else { "" },
            node.directory.epoch,
            node.directory.layers.iter().flatten().count()
        );
        match args.metrics {
            Some(address) => {
                let metrics = std::sync::Arc::clone(&node.metrics);
                let exit_metrics = node.exit_metrics.clone();
                let router = axum::Router::new().route(
                    "/metrics",
                    axum::routing::get(move || {
                        let mut text = metrics.prometheus();
                        if let Some(exit) = &exit_metrics {
                            text.push_str(&exit.prometheus());
                        }
                        async move { text }
                    }),
                );
                let listener = tokio::net::TcpListener::bind(address)
                    .await
                    .with_context(|| format!("cannot serve metrics on {address}"))?;
                axum::serve(listener, router)
                    .await
                    .context("the metrics server stopped")
            }
            None => std::future::pending().await,
        }
    })
}

/// Writes a fresh authority and node settings.
pub(crate) fn run_init(args: InitArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.per_layer > 0, "--per-layer must be at least 1");
    let total = u16::try_from(args.per_layer * 3).context("too many nodes")?;
    anyhow::ensure!(
        args.base_port.checked_add(total).is_some(),
        "--base-port leaves no room for {total} node ports"
    );
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let secret = || -> [u8; 32] { rand::random() };
    let endpoint = |port: u16| -> anyhow::Result<SocketAddr> {
        format!("{}:{port}", args.host)
            .parse()
            .with_context(|| format!("--host {:?} is not an IP address", args.host))
    };
    let authority_listen = endpoint(args.base_port)?;
    let signing_secret = secret();
    let authority_key = ed25519_dalek::SigningKey::from_bytes(&signing_secret)
        .verifying_key()
        .to_bytes();
    let genesis = EpochClock::now().as_secs();
    let mut nodes = Vec::new();
    let mut node_settings = Vec::new();
    for layer in 0..3 {
        for index in 0..args.per_layer {
            let port = args.base_port + 1 + u16::try_from(layer * args.per_layer + index)?;
            let settings = MixnodeSettings {
                listen: endpoint(port)?,
                layer,
                address: secret(),
                link_secret: secret(),
                identity_secret: secret(),
                key_seed: secret(),
                authority_url: format!("http://{authority_listen}"),
                authority_key,
                genesis,
                epoch_seconds: args.epoch_seconds,
                grace_ms: 2 * args.delay_cap_ms * 3,
                payload_size: 2048,
                frame_len: 4096,
                queue_capacity: 65_536,
                delay_cap_ms: args.delay_cap_ms,
                exit: (layer == 2).then(|| ExitSettings {
                    allowlist: args.allow.clone(),
                    rpc_allowlist: args.allow_rpc.clone(),
                    processing_delay_ms: 20,
                }),
            };
            nodes.push(NodeRecord {
                layer,
                address: settings.address,
                endpoint: settings.listen.to_string(),
                link_key: settings.link_key(),
                identity: settings.identity(),
            });
            node_settings.push((format!("node-{layer}-{index}.json"), settings));
        }
    }
    let authority = AuthoritySettings {
        listen: authority_listen,
        signing_secret,
        genesis,
        epoch_seconds: args.epoch_seconds,
        nodes,
    };
    write_secret_json(&args.dir.join("directory.json"), &authority)?;
    for (name, settings) in &node_settings {
        write_secret_json(&args.dir.join(name), settings)?;
    }
    println!(
        "wrote {} (authority at http://{authority_listen}, key {}) and {} node files",
        args.dir.join("directory.json").display(),
        hex::encode(authority_key),
        node_settings.len()
    );
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a valid settings file (write one with `nullgate mixnet init`)",
            path.display()
        )
    })
}

fn write_secret_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // The mode above applies only to a new file: an existing one keeps its own (perhaps
    // world-readable) permissions unless they are set here, before the secret is written.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    file.write_all(&serde_json::to_vec_pretty(value)?)?;
    file.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn secret_files_are_private_even_when_they_existed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.json");
        std::fs::write(&path, b"{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_secret_json(&path, &serde_json::json!({ "seed": "00" })).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_secret_json(&dir.path().join("new.json"), &1).unwrap();
        let mode = std::fs::metadata(dir.path().join("new.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

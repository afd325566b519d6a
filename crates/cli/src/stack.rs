//! The whole local system in one process, as `nullgate demo` and `nullgate bench client`
//! run it: DEV keys, the embedded chain with a vault, a gateway in front of an
//! OpenAI-compatible upstream (the example server, or a real one), an OHTTP relay, a wallet
//! with deposited notes and its pre-generated credentials, and the proxy.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};
use nullgate_chain::Ledger;
use nullgate_client::{
    client::{Client, ClientConfig},
    proxy::{Proxy, ProxyConfig},
    trust::{Trusted, trust},
    wallet::{VaultId, Wallet},
};
use nullgate_example_llm::RunningExampleLlm;
use nullgate_gateway::{
    Gateway,
    config::Limits,
    dev::{DEV_AUTHORITY, DevDeployment, demo_price_list},
    store::{NullifierStore, sqlite::SqliteStore},
    upstream::{KeyHeader, Upstream, UpstreamKey},
};
use nullgate_net::ohttp::{OhttpTransport, RelayConfig, relay_router};
use nullgate_protocol::price::TokenPrices;
use nullgate_zk::{
    groth16::{CircuitKind, ProverKey},
    keys::{DEV_SEED, dev_setup},
};

/// What to start.
pub(crate) struct StackOptions {
    /// Notes the deposit is split into.
    pub(crate) notes: usize,
    /// Credits per note.
    pub(crate) deposit: u64,
    /// A real upstream instead of the example server.
    pub(crate) upstream: Option<String>,
    /// Its API key.
    pub(crate) upstream_key: Option<String>,
    /// Where the gateway's database and the wallet live.
    pub(crate) dir: PathBuf,
    /// No progress output.
    pub(crate) quiet: bool,
    /// The longest request body the agent will send (to pick the class to pre-generate).
    pub(crate) typical_body: usize,
    /// The `max_tokens` the agent sets.
    pub(crate) max_tokens: u64,
}

/// Everything running.
pub(crate) struct Stack {
    pub(crate) dev: DevDeployment,
    pub(crate) request_key: Arc<ProverKey>,
    pub(crate) example: Option<RunningExampleLlm>,
    pub(crate) upstream_url: String,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) gateway: Gateway,
    pub(crate) relay_addr: SocketAddr,
    pub(crate) client: Client<OhttpTransport>,
    pub(crate) trusted: Trusted,
    pub(crate) proxy_url: String,
}

/// Starts the stack.
pub(crate) async fn start(args: &StackOptions) -> anyhow::Result<Stack> {
    let dir = &args.dir;
    let quiet = args.quiet;
    let say = |text: &str| {
        if !quiet {
            eprintln!("{text}");
        }
    };
    let key = args.upstream_key.clone();
    // DEV keys, with a progress bar.
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(2).with_style(
            ProgressStyle::with_template("DEV setup {msg:8} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        )
    };
    bar.set_message("request");
    let request_key = Arc::new(
        tokio::task::spawn_blocking(|| dev_setup(CircuitKind::Request, &DEV_SEED)).await??,
    );
    bar.inc(1);
    bar.set_message("exit");
    let exit_key =
        tokio::task::spawn_blocking(|| dev_setup(CircuitKind::Exit, &DEV_SEED)).await??;
    bar.inc(1);
    bar.finish();

    // The chain and the vault.
    let dev = DevDeployment::deploy(request_key.clone(), &exit_key, demo_price_list()).await?;
    say(&format!(
        "embedded chain: vault at {} (chain 31337)",
        dev.vault.address()
    ));

    // The upstream.
    let example = match &args.upstream {
        Some(_) => None,
        None => Some(nullgate_example_llm::start(Default::default()).await?),
    };
    let upstream_url = match (&args.upstream, &example) {
        (Some(url), _) => url.clone(),
        (None, Some(example)) => example.base_url(),
        (None, None) => unreachable!(),
    };

    // The gateway.
    let store = Arc::new(SqliteStore::open(&dir.join("gateway.sqlite"), 24)?);
    let limits = Limits {
        poll_ms: 100,
        ..Limits::default()
    };
    let gateway = Gateway::start(
        dev.gateway_parts(
            store.clone() as Arc<dyn NullifierStore>,
            Upstream::new(
                &upstream_url,
                key.map(|key| UpstreamKey::new(&key, KeyHeader::Bearer))
                    .transpose()?,
            )?,
            limits,
        ),
    )
    .await?;
    let gateway_addr = serve(gateway.router()).await?;
    say(&format!(
        "gateway on {gateway_addr} in front of {upstream_url}"
    ));

    // The relay.
    let relay_addr = serve(relay_router(RelayConfig {
        gateway: format!("http://{gateway_addr}/ohttp").parse()?,
        max_request: 2 << 20,
    }))
    .await?;
    say(&format!("OHTTP relay on {relay_addr}"));

    // The wallet: the OHTTP key comes through the relay, pinned by the chain's hash.
    let transport = OhttpTransport::through_relay(
        format!("http://{relay_addr}/").parse()?,
        &dev.vault.summary().await?.ohttp_keys_hash.0,
    )
    .await?;
    let trusted = trust(&dev.vault, &request_key, &transport, DEV_AUTHORITY).await?;
    let wallet = Wallet::create(
        dir.join("wallet"),
        VaultId {
            chain_id: trusted.deployment.chain_id,
            vault: trusted.deployment.vault,
        },
    )?;
    // Credentials are pre-generated for the class the proxy picks for the agent's calls:
    // prompt bytes bound the prompt tokens, max_tokens the completion (see the proxy).
    let longest = args.typical_body;
    let chat_class = match dev
        .price_list
        .route("POST", "/v1/chat/completions")
        .and_then(|r| r.pricing.tokens())
    {
        Some(TokenPrices {
            input: prompt,
            output: completion,
            ..
        }) => dev
            .price_list
            .class_for(prompt * (longest as u64 + 64) + completion * args.max_tokens)
            .map_or(0, |(index, _)| index),
        _ => 0,
    };
    let client = Client::new(
        wallet,
        transport,
        dev.vault.clone(),
        trusted.clone(),
        request_key.clone(),
        ClientConfig {
            authority: DEV_AUTHORITY.into(),
            default_class: chat_class,
            in_progress_retries: 8,
            // One user's demo chain: its own notes are the whole vault.
            min_anonymity: 0,
            prover_threads: 0,
            // The demo's notes are used at once: it has no one to hide among.
            first_use_delay: Duration::ZERO,
        },
    )?;
    let depositor = dev.ledger.accounts()[1];
    client
        .deposit(depositor, &vec![args.deposit; args.notes])
        .await?;
    say(&format!(
        "deposited {} notes of {} credits",
        args.notes, args.deposit
    ));
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
            .with_message("syncing the note tree and pre-generating credentials")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        bar.tick();
        match client.sync().await {
            Ok(()) if client.notes().iter().all(|n| n.note_id.is_some()) => break,
            Ok(()) => {}
            Err(error) if Instant::now() > deadline => return Err(error.into()),
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client.pregenerate_idle();
    client.wait_pregenerated(Duration::from_secs(120)).await;
    bar.finish_and_clear();

    // The proxy.
    let proxy = Proxy::bind(
        Arc::new(client.clone()),
        ProxyConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..ProxyConfig::default()
        },
    )
    .await?;
    let proxy_url = format!("http://{}/v1", proxy.local_addr());
    tokio::spawn(proxy.run(std::future::pending()));
    say(&format!(
        "proxy on {proxy_url} (OPENAI_BASE_URL; no API key needed)"
    ));

    Ok(Stack {
        dev,
        request_key,
        example,
        upstream_url,
        store,
        gateway,
        relay_addr,
        client,
        trusted,
        proxy_url,
    })
}

async fn serve(router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

//! `nullgate relay`: an OHTTP relay in front of one gateway.

use std::net::SocketAddr;

use anyhow::Context;
use nullgate_net::ohttp::{RelayConfig, relay_router};

/// Options of `nullgate relay`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// The gateway's OHTTP endpoint (e.g. `https://gateway.example/ohttp`): the only place
    /// this relay forwards to.
    #[arg(long)]
    gateway: reqwest::Url,
    /// Largest encapsulated request accepted, in bytes (default: a gateway's largest request,
    /// 1 MiB, with room for its headers and padding).
    #[arg(long, default_value_t = (1 << 20) + nullgate_net::LARGE_BUCKET)]
    max_request: usize,
}

/// Runs the relay until interrupted.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "OHTTP relay on {} forwarding to {} (it keeps no logs of clients)",
            args.listen, args.gateway
        );
        let router = relay_router(RelayConfig {
            gateway: args.gateway,
            max_request: args.max_request,
        });
        axum::serve(listener, router)
            .await
            .context("the relay stopped")
    })
}

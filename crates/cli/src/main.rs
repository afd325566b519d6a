//! `nullgate`: every role of nullgate behind one binary.
//!
//! The binary stays thin: it parses arguments, reads and writes files, draws progress bars,
//! and hands everything else to the library crates (see `docs/architecture.md`).

mod bench_client;
mod bench_gateway;
mod bench_net;
mod bench_zk;
mod demo;
mod fetch;
mod gateway;
mod mcp;
mod mixnet;
mod proxy;
mod relay;
mod setup;
mod stack;
mod stats;
mod transport;
mod vault;
mod wallet;

use clap::{Parser, Subcommand};

/// Private, anonymous, prepaid API calls for AI agents.
#[derive(Debug, Parser)]
#[command(name = "nullgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The roles and tools of nullgate.
#[derive(Debug, Subcommand)]
enum Command {
    /// The whole system on one machine: paid, private chat calls from an agent through the
    /// proxy, the relay and the gateway, with a summary table.
    Demo(demo::Args),
    /// Measure the figures of TARGETS.md.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Write the proving and verifying keys of every circuit (DEV keys from a public seed).
    Setup(setup::Args),
    /// Run the gateway in front of a paid API (`--config gateway.toml`).
    Gateway(gateway::Args),
    /// Run the local proxy (OpenAI, Anthropic, Ollama, JSON-RPC) over a wallet
    /// (`--config proxy.toml`).
    Proxy(proxy::Args),
    /// Serve the proxy's calls as MCP tools on stdio (`--config proxy.toml`), for an agent
    /// host: list the APIs, call one privately, show the balance.
    Mcp(proxy::Args),
    /// Run an OHTTP relay: forwards sealed requests to one gateway, strips client metadata.
    Relay(relay::Args),
    /// Run the mixnet's directory authority (signed per-epoch directories).
    Directory(mixnet::DirectoryArgs),
    /// Run a mix node (and its exit, in the last layer).
    Mixnode(mixnet::MixnodeArgs),
    /// Mixnet operator tools.
    #[command(subcommand)]
    Mixnet(mixnet::MixnetCommand),
    /// Send one HTTP request through a transport (direct, SOCKS5, OHTTP, mixnet) and print
    /// the answer: a check of a relay, gateway, mixnet or Tor/Nym path.
    Fetch(fetch::Args),
    /// Operator: deploy a vault (embedded chain or --rpc-url) and print its parameters.
    #[command(subcommand)]
    Vault(vault::Command),
    /// The user's notes: create a wallet, deposit into notes, see balances and the
    /// anonymity set.
    #[command(subcommand)]
    Wallet(wallet::Command),
}

/// What `nullgate bench` measures.
#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Circuits and Groth16: constraint counts, proving, verification, key sizes, memory.
    Zk(bench_zk::Args),
    /// Transports: OHTTP sealing and a loopback round trip through relay and gateway.
    Net(bench_net::Args),
    /// The client: its critical path with a pre-generated credential (sign, fsynced journal
    /// write, seal), and a paid call's added latency over calling the upstream directly.
    Client(bench_client::Args),
    /// The gateway: paid requests/s with every request a distinct real credential, against
    /// a fixed-price local upstream, on SQLite and PostgreSQL, and the added latency at half
    /// that load (credentials proven once and cached).
    Gateway(bench_gateway::Args),
}

fn main() -> anyhow::Result<()> {
    // Logs go to stderr, warnings by default (RUST_LOG to change); nothing that links
    // requests is ever logged.
    // arkworks' constraint gadgets open an INFO span per gadget that formats the whole
    // constraint system: always off, whatever RUST_LOG says.
    let filter = format!(
        "{},gr1cs=off,r1cs=off",
        std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())
    );
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(BenchCommand::Zk(args)) => bench_zk::run(args),
        Command::Bench(BenchCommand::Net(args)) => bench_net::run(args),
        Command::Bench(BenchCommand::Client(args)) => bench_client::run(args),
        Command::Bench(BenchCommand::Gateway(args)) => bench_gateway::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Setup(args) => setup::run(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Proxy(args) => proxy::run(args),
        Command::Mcp(args) => proxy::run_mcp(args),
        Command::Relay(args) => relay::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Vault(command) => vault::run(command),
        Command::Wallet(command) => wallet::run(command),
        Command::Directory(args) => mixnet::run_directory(args),
        Command::Mixnode(args) => mixnet::run_mixnode(args),
        Command::Mixnet(mixnet::MixnetCommand::Init(args)) => mixnet::run_init(args),
    }
}

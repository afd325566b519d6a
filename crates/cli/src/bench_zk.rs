//! `nullgate bench zk`: the proving-system figures of TARGETS.md.

/// Options of `nullgate bench zk`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the benchmark.
pub(crate) fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("nullgate bench zk: the circuits are not built yet (issue 2)")
}

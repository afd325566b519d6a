//! `nullgate bench zk`: the proving-system figures of TARGETS.md, measured in one run.
//!
//! Constraint counts; DEV setup of the request, exit and reference circuits; request proofs
//! with cached matrices (p50, p90) and with full synthesis; exit proofs; the plain depth-20
//! RLN reference proved in the same run; single and batched verification; proving key size;
//! the process's peak RSS.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;

use indicatif::{ProgressBar, ProgressStyle};
use nullgate_zk::{
    Fr,
    groth16::{Proof, ProverKey},
    keys::load_prover_key,
    sample::{self, SampleVault},
    tree::NoteTree,
};
use rand::SeedableRng;
use serde::Serialize;

use crate::stats::{peak_rss_mb, percentile_ms};

/// Options of `nullgate bench zk`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Proofs timed per circuit, after one warm-up proof (at least 10 for the figures of
    /// record).
    #[arg(long, default_value_t = 10)]
    proofs: usize,
    /// Proofs per batch in the batched-verification measurement.
    #[arg(long, default_value_t = 512)]
    batch: usize,
    /// Read keys from this directory (as written by `nullgate setup`) instead of running a
    /// DEV setup in a child process first.
    #[arg(long)]
    keys: Option<PathBuf>,
}

/// The figures, with the JSON keys the issue names.
#[derive(Debug, Serialize)]
struct Report {
    request_constraints: usize,
    exit_constraints: usize,
    rln_reference_constraints: usize,
    request_prove_ms_p50: f64,
    request_prove_ms_p90: f64,
    request_prove_uncached_ms_p50: f64,
    exit_prove_ms_p50: f64,
    rln_reference_prove_ms_p50: f64,
    request_to_rln_ratio: f64,
    verify_ms_p50: f64,
    batch_verify_per_s: f64,
    batch_size: usize,
    proving_key_bytes: usize,
    tree_build_100k_ms: f64,
    setup_s: f64,
    key_load_ms: f64,
    matrix_non_zeros: usize,
    peak_rss_mb: f64,
    peak_rss_mb_with_uncached_prover: f64,
    threads: usize,
}

/// Runs the benchmark and prints the report.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.proofs >= 1, "--proofs must be at least 1");
    anyhow::ensure!(args.batch >= 2, "--batch must be at least 2");
    let mut vault = SampleVault::new(2026);
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    let progress = !args.json;

    let reference = sample::rln_reference();

    // Keys come from files, as a client's would: the setup runs in a child process so that
    // its memory does not count towards this process's peak.
    let started = Instant::now();
    let directory = match &args.keys {
        Some(directory) => directory.clone(),
        None => run_setup(progress)?,
    };
    let setup_s = started.elapsed().as_secs_f64();
    let spinner = new_spinner(progress, "loading keys (with subgroup checks)");
    let started = Instant::now();
    let request_key = load(&directory, "request")?;
    let key_load_ms = started.elapsed().as_secs_f64() * 1000.0;
    let exit_key = load(&directory, "exit")?;
    let reference_key = load(&directory, "rln-reference")?;
    spinner.finish_and_clear();
    if args.keys.is_none() {
        let _ = std::fs::remove_dir_all(&directory);
    }

    // Request proofs over distinct signed states, cached matrices.
    let mut statements = Vec::new();
    for index in 0..=args.proofs as u32 {
        let witness = vault.signed(9_000, index + 1);
        statements.push(vault.request_with_public(&witness, 250));
    }
    let bar = new_bar(progress, "request proofs", statements.len());
    let mut request_times = Vec::new();
    let mut proved: Vec<(Vec<Fr>, Proof)> = Vec::new();
    for (i, (circuit, public)) in statements.iter().enumerate() {
        let started = Instant::now();
        let proof = request_key.prove(circuit.clone(), &mut rng)?;
        if i > 0 {
            request_times.push(started.elapsed());
        }
        proved.push((public.to_field_elements(), proof));
        bar.inc(1);
    }
    bar.finish_and_clear();

    let exit_circuit = vault.exit(5, 6, 1_000).0;
    let bar = new_bar(progress, "exit proofs", args.proofs + 1);
    let exit_times = time_each(args.proofs + 1, || {
        exit_key.prove(exit_circuit.clone(), &mut rng)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();

    let bar = new_bar(progress, "reference RLN proofs", args.proofs + 1);
    let reference_times = time_each(args.proofs + 1, || {
        reference_key.prove(reference.clone(), &mut rng)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();

    // Verification: single proofs, then batches of rerandomised proofs of the distinct
    // statements proved above.
    let verifier = request_key.verifier_key();
    let spinner = new_spinner(progress, "verification");
    let mut verify_times = Vec::new();
    for _ in 0..5 {
        for (inputs, proof) in &proved {
            let started = Instant::now();
            verifier.verify(inputs, proof)?;
            verify_times.push(started.elapsed());
        }
    }
    let batch: Vec<(&[Fr], Proof)> = (0..args.batch)
        .map(|i| {
            let (inputs, proof) = &proved[i % proved.len()];
            (inputs.as_slice(), verifier.rerandomize(proof, &mut rng))
        })
        .collect();
    let batch_refs: Vec<(&[Fr], &Proof)> = batch.iter().map(|(i, p)| (*i, p)).collect();
    let mut batch_times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        verifier
            .verify_batch(&batch_refs, &mut rng)
            .map_err(|bad| anyhow::anyhow!("batch rejected proofs {bad:?}"))?;
        batch_times.push(started.elapsed());
    }
    spinner.finish_and_clear();

    // The client's peak: keys loaded, cached matrices, verification. The uncached prover
    // below rebuilds the whole constraint system and is measured after this reading.
    let peak_rss = peak_rss_mb().unwrap_or(f64::NAN);

    let uncached_runs = args.proofs.div_ceil(2).max(1);
    let bar = new_bar(progress, "request proofs, full synthesis", uncached_runs);
    let uncached = time_each(uncached_runs, || {
        request_key.prove_uncached(statements[0].0.clone(), &mut rng)?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();

    // The note tree: 100,000 leaves appended in one batch, as a watcher catching up would.
    let leaves: Vec<Fr> = (0..100_000u64).map(|i| Fr::from(i * 7 + 1)).collect();
    let spinner = new_spinner(progress, "note tree: 100,000 leaves");
    let mut tree_times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        NoteTree::new().extend(&leaves)?;
        tree_times.push(started.elapsed());
    }
    spinner.finish_and_clear();

    let request_p50 = percentile_ms(&request_times, 50);
    let reference_p50 = percentile_ms(&reference_times[1..], 50);
    let report = Report {
        request_constraints: request_key.matrices().num_constraints(),
        exit_constraints: exit_key.matrices().num_constraints(),
        rln_reference_constraints: reference_key.matrices().num_constraints(),
        request_prove_ms_p50: request_p50,
        request_prove_ms_p90: percentile_ms(&request_times, 90),
        request_prove_uncached_ms_p50: percentile_ms(&uncached, 50),
        exit_prove_ms_p50: percentile_ms(&exit_times[1..], 50),
        rln_reference_prove_ms_p50: reference_p50,
        request_to_rln_ratio: request_p50 / reference_p50,
        verify_ms_p50: percentile_ms(&verify_times, 50),
        batch_verify_per_s: args.batch as f64 / (percentile_ms(&batch_times, 50) / 1000.0),
        batch_size: args.batch,
        proving_key_bytes: request_key.compressed_size(),
        tree_build_100k_ms: percentile_ms(&tree_times, 50),
        setup_s,
        key_load_ms,
        matrix_non_zeros: request_key.matrices().num_non_zeros(),
        peak_rss_mb: peak_rss,
        peak_rss_mb_with_uncached_prover: peak_rss_mb().unwrap_or(f64::NAN),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    println!(
        "nullgate bench zk ({} threads; medians unless noted)",
        r.threads
    );
    println!(
        "  constraints        request {:>7}   exit {:>7}   reference RLN d20 {:>7}",
        r.request_constraints, r.exit_constraints, r.rln_reference_constraints
    );
    println!(
        "  request proof      p50 {:>8.1} ms   p90 {:>8.1} ms   full synthesis p50 {:>8.1} ms",
        r.request_prove_ms_p50, r.request_prove_ms_p90, r.request_prove_uncached_ms_p50
    );
    println!("  exit proof         p50 {:>8.1} ms", r.exit_prove_ms_p50);
    println!(
        "  reference RLN d20  p50 {:>8.1} ms   request/reference {:.2}x",
        r.rln_reference_prove_ms_p50, r.request_to_rln_ratio
    );
    println!(
        "  verify             p50 {:>8.3} ms   batched {:>8.0} proofs/s (batches of {})",
        r.verify_ms_p50, r.batch_verify_per_s, r.batch_size
    );
    println!(
        "  proving key        {:>8} bytes (compressed)",
        r.proving_key_bytes
    );
    println!(
        "  setup (3 circuits) {:>8.1} s    request key load {:>6.0} ms (checked)",
        r.setup_s, r.key_load_ms
    );
    println!("  matrix non-zeros   {:>8}", r.matrix_non_zeros);
    println!(
        "  peak RSS           {:>8.1} MB   after the full-synthesis prover {:>8.1} MB",
        r.peak_rss_mb, r.peak_rss_mb_with_uncached_prover
    );
}

/// Runs `nullgate setup --dev` in a child process into a fresh temporary directory.
fn run_setup(progress: bool) -> anyhow::Result<PathBuf> {
    let directory =
        std::env::temp_dir().join(format!("nullgate-bench-keys-{}", std::process::id()));
    let spinner = new_spinner(progress, "DEV setup of 3 circuits (child process)");
    let status = std::process::Command::new(std::env::current_exe()?)
        .args(["setup", "--dev", "--quiet", "--out"])
        .arg(&directory)
        .status()
        .context("cannot run `nullgate setup`")?;
    spinner.finish_and_clear();
    anyhow::ensure!(status.success(), "`nullgate setup` failed");
    Ok(directory)
}

fn load(directory: &Path, name: &str) -> anyhow::Result<ProverKey> {
    let path = directory.join(format!("{name}.pk"));
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    load_prover_key(&bytes, None).with_context(|| format!("{} is not usable", path.display()))
}

fn time_each(
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Duration>> {
    let mut out = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        out.push(started.elapsed());
    }
    Ok(out)
}

pub(crate) fn new_spinner(visible: bool, message: &'static str) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

pub(crate) fn new_bar(visible: bool, message: &'static str, len: usize) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    ProgressBar::new(len as u64)
        .with_style(
            ProgressStyle::with_template("{msg:32} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        )
        .with_message(message)
}

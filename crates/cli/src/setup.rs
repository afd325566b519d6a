//! `nullgate setup`: writes the proving and verifying keys of every circuit.

use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use nullgate_zk::{groth16::key_hash, keys};
use serde::Serialize;

/// Options of `nullgate setup`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Make DEV keys from a public seed (the only setup this version has: anyone who knows
    /// the seed can forge proofs, so DEV keys are for local chains and tests only).
    #[arg(long, required = true)]
    dev: bool,
    /// Where to write the key files.
    #[arg(long, default_value = "keys")]
    out: PathBuf,
    /// The DEV seed, 32 bytes in hex (default: `nullgate_zk::keys::DEV_SEED`).
    #[arg(long)]
    seed: Option<String>,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
}

/// The hashes `nullgate setup` records beside the keys (PROTOCOL §11: SHA-256 of the
/// compressed key, no header), to be pinned in the vault.
#[derive(Debug, Serialize)]
struct KeyRecord {
    circuit: &'static str,
    dev: bool,
    constraints: usize,
    proving_key: String,
    proving_key_sha256: String,
    verifying_key: String,
    verifying_key_sha256: String,
}

/// Runs the setup.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let seed: [u8; 32] = match &args.seed {
        None => keys::DEV_SEED,
        Some(seed) => hex::decode(seed)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .context("--seed must be 32 bytes in hex (64 hex digits)")?,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(keys::CIRCUITS.len() as u64).with_style(
            ProgressStyle::with_template("DEV setup {msg:16} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        )
    };
    let mut records = Vec::new();
    for kind in keys::CIRCUITS {
        bar.set_message(kind.name());
        let key = keys::dev_setup(kind, &seed)?;
        let proving = format!("{}.pk", kind.name());
        let verifying = format!("{}.vk", kind.name());
        write(&args.out.join(&proving), &key.to_file_bytes())?;
        let verifier = key.verifier_key();
        write(
            &args.out.join(&verifying),
            &verifier.to_file_bytes(&key.matrices().circuit_hash()),
        )?;
        // The same verifying key without a header, for the Solidity verifier generator.
        write(
            &args.out.join(format!("{}.vk.ark", kind.name())),
            &verifier.to_bytes(),
        )?;
        records.push(KeyRecord {
            circuit: kind.name(),
            dev: true,
            constraints: key.matrices().num_constraints(),
            proving_key: proving,
            proving_key_sha256: hex::encode(nullgate_zk::groth16::key_file_hash(
                &key.to_file_bytes(),
            )?),
            verifying_key: verifying,
            verifying_key_sha256: hex::encode(key_hash(verifier.verifying_key())),
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    write(
        &args.out.join("keys.json"),
        serde_json::to_string_pretty(&records)?.as_bytes(),
    )?;
    if !args.quiet {
        println!(
            "DEV keys written to {} (labelled DEV: for local chains and tests only)",
            args.out.display()
        );
        for record in &records {
            println!(
                "  {:14} {:>6} constraints  pk sha256 {}",
                record.circuit, record.constraints, record.proving_key_sha256
            );
        }
    }
    Ok(())
}

/// Writes a file atomically (write, fsync, rename).
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

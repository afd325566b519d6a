//! `nullgate bench gateway`: the gateway's throughput and added latency (TARGETS.md: "gateway
//! throughput, SQLite store, fixed-price local upstream, every request a distinct real
//! credential: ≥ 1,500 paid requests/s; p99 added latency ≤ 10 ms at half that load; the
//! same with PostgreSQL: ≥ 1,000 paid requests/s"), everything in this one process, the load
//! generator included.
//!
//! **The pool.** Every paid request carries a credential of its own: a genesis credential of
//! a note of its own, proven for the tree root after all deposits and the hour of the chain's
//! newest finalised block, signed over its own body (`{"bench":i}`) for `POST /v1/bench`.
//! Proving takes a large fraction of a second a credential, so the pool is made once: an
//! embedded chain with a DEV vault pinning the bench price list, `--pool` notes deposited
//! with `depositMany`, and the proven credentials, cached in `--pool-dir` in a directory
//! named by the key hashes, the price list and the pool size. `chain.json` is the ledger's
//! snapshot (written before proving, atomically); `pool.jsonl` the credentials (a header
//! naming the key hashes, price list hash, vault, root, hour and the snapshot's SHA-256,
//! then one line per credential with its `Authorization` value and body). Credentials go
//! to `pool.partial.jsonl` as they are proven and the file is renamed once complete, so an
//! interrupted build never looks complete; the next run resumes it. A cached pool is used
//! only if the snapshot's hash, the vault's pinned key and price-list hashes, its tree root
//! and its finalised hour match the pool's header; otherwise it is rebuilt (the reason is
//! printed). A loaded snapshot makes no block on its own, so the chain's finalised hour
//! stays the pool's and the gateway's hour-skew check passes whenever the pool is used (the
//! run checks that the chain's head did not move).
//!
//! **Each store** (SQLite in a temporary directory, under `--store-dir` if given;
//! PostgreSQL in a fresh schema on `NULLGATE_POSTGRES_URL`, dropped afterwards) gets a fresh
//! store, a gateway on 127.0.0.1 in front of a fixed-price upstream served by this process,
//! on a runtime of its own, and the whole pool (a fresh store has seen none of its
//! nullifiers):
//!
//! 1. warm-up: one request per connection (untimed);
//! 2. peak: a closed loop, `--concurrency` keep-alive HTTP/1.1 connections sending the
//!    pre-built requests straight to the gateway (no OHTTP), each credential once; paid
//!    requests/s = answers 200 with a receipt ÷ elapsed;
//! 3. half load: an open loop at half that rate over the same number of connections, first
//!    straight to the upstream (the same-run reference), then to the gateway with the rest
//!    of the pool; a request's latency runs from its scheduled send time when it had to
//!    wait for a free connection, from its actual send otherwise. Added latency at a
//!    percentile = paid latency at that percentile − direct latency at that percentile.
//!
//! Where the time goes comes from the gateway's stage histograms (`/metrics`): mean per
//! stage (exact) and p50 (estimated within the histogram's buckets), for both phases, and
//! the process's CPU time per paid request. Any answer but 200 with a receipt is a failure
//! of the benchmark: reported by status, and the command exits non-zero after its report.
//! A missed target is a result: exit status 0.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use nullgate_chain::{
    B256, EmbeddedLedger, KeyHashes, Ledger, TreeSync, Vault, VaultSummary, vault::fr_from_u256,
};
use nullgate_gateway::{
    Gateway,
    config::Limits,
    dev::{DevDeployment, dev_state_key},
    metrics::Stage,
    store::{
        NullifierStore,
        postgres::{PostgresStore, with_search_path},
        sqlite::SqliteStore,
    },
    upstream::Upstream,
};
use nullgate_protocol::{
    credential::{ProofContext, UnsignedCredential},
    payload,
    price::{PriceList, Pricing, Route},
};
use nullgate_zk::{
    Fr,
    circuit::request::RequestWitness,
    curve::Scalar,
    derive,
    field::{fr_from_u128, fr_to_bytes},
    groth16::{CircuitKind, ProverKey},
    keys::{DEV_SEED, dev_setup},
    note::{self, Note},
    state::StateValue,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::stats::{StageSnapshot, percentile_ms, process_cpu_seconds};

/// Options of `nullgate bench gateway`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// Credentials in the pool; each paid request uses one, once (per store).
    #[arg(long, default_value_t = 3000)]
    pool: usize,
    /// Where pools are cached [default: $XDG_CACHE_HOME/nullgate/bench-gateway, or
    /// ~/.cache/nullgate/bench-gateway].
    #[arg(long)]
    pool_dir: Option<PathBuf>,
    /// The nullifier stores to measure (PostgreSQL on $NULLGATE_POSTGRES_URL, skipped when
    /// it is unset).
    #[arg(long, value_enum, default_value_t = StoreChoice::Both)]
    store: StoreChoice,
    /// Keep-alive connections of the load generator (both phases).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Credentials for the peak phase [default: half of those after the warm-up; the rest
    /// go to the half-load phase].
    #[arg(long)]
    peak_requests: Option<usize>,
    /// Keep the SQLite store here, e.g. on the disk a gateway would use (default: a
    /// temporary directory; the store is fresh either way).
    #[arg(long)]
    store_dir: Option<PathBuf>,
    /// Provers side by side while building the pool: 1 proves each credential on every
    /// core (arkworks' own threads); N > 1 runs N single-threaded provers
    /// [default: one per core].
    #[arg(long)]
    provers: Option<usize>,
}

/// Which stores `--store` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StoreChoice {
    Sqlite,
    Postgres,
    Both,
}

/// The one priced route of the bench price list.
const BENCH_PATH: &str = "/v1/bench";
/// Its fixed price, credits.
const FIXED_CREDITS: u64 = 10;
/// Credits per pool note: the vault's minimum deposit (its largest class).
const NOTE_DEPOSIT: u64 = 32_000;
/// Notes per `depositMany` transaction: about 5.5 M gas at the ~27.6k a note measured, well
/// under the embedded chain's 16.7 M per-transaction cap.
const DEPOSITS_PER_TX: usize = 200;
/// The layout version of the pool files (part of the cache directory's name).
const POOL_FORMAT: u32 = 1;
/// The environment variable naming the PostgreSQL server.
const POSTGRES_ENV: &str = "NULLGATE_POSTGRES_URL";
/// Retry-data retention of the stores, hours (the gateway's default).
const RETENTION_HOURS: u32 = 24;

/// TARGETS.md: paid requests/s, SQLite store.
const SQLITE_TARGET_PER_S: f64 = 1_500.0;
/// TARGETS.md: paid requests/s, PostgreSQL store.
const POSTGRES_TARGET_PER_S: f64 = 1_000.0;
/// TARGETS.md: p99 added latency at half the peak load, ms.
const ADDED_P99_TARGET_MS: f64 = 10.0;

/// How "added latency" is defined, as the report states it.
const ADDED_DEFINITION: &str = "added latency at pN = paid latency at pN minus direct latency at pN, \
    both measured in this run by the same open-loop generator at half the store's peak rate over \
    the same number of keep-alive connections: paid to the gateway (which calls the upstream), \
    direct to the upstream itself; a request's latency counts from its scheduled send time if it \
    waited for a free connection, from its actual send otherwise";

/// The bench price list: the demo's classes (500 < 2,000 < 8,000 < 32,000) and floor fee (5),
/// `content-type` signed, and one route, `POST /v1/bench` at a fixed [`FIXED_CREDITS`].
fn bench_price_list() -> anyhow::Result<PriceList> {
    PriceList::new(
        vec![500, 2_000, 8_000, 32_000],
        5,
        vec!["content-type".into()],
        vec![Route {
            method: "POST".into(),
            path: BENCH_PATH.into(),
            pricing: Pricing::Fixed {
                credits: FIXED_CREDITS,
            },
        }],
    )
    .context("the bench price list")
}

/// Runs the benchmark and prints the report.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let split = Split::of(args.pool, args.concurrency, args.peak_requests)?;
    let say = |text: &str| eprintln!("{text}");

    let keys = Keys::dev(!args.json)?;
    let prices = bench_price_list()?;
    let (class_index, class_cost) = prices
        .class_for(FIXED_CREDITS)
        .context("no class covers the fixed price")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let provers = args.provers.unwrap_or(cores).max(1);
    let dir = pool_dir(args.pool_dir.as_deref(), &keys.hashes, &prices, args.pool)?;
    let setup = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let pool = setup.block_on(Pool::prepare(
        &dir,
        &keys,
        &prices,
        args.pool,
        class_index,
        provers,
        &say,
    ))?;
    drop(setup);
    let entries = pool.entries.len();
    say(&format!(
        "pool: {entries} credentials in {} ({})",
        dir.display(),
        pool.origin.describe()
    ));

    let mut stores = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    let kinds: &[StoreKind] = match args.store {
        StoreChoice::Sqlite => &[StoreKind::Sqlite],
        StoreChoice::Postgres => &[StoreKind::Postgres],
        StoreChoice::Both => &[StoreKind::Sqlite, StoreKind::Postgres],
    };
    for &kind in kinds {
        let postgres_url = std::env::var(POSTGRES_ENV).ok().filter(|u| !u.is_empty());
        if kind == StoreKind::Postgres && postgres_url.is_none() {
            let reason = format!("{POSTGRES_ENV} is not set");
            say(&format!("postgres: skipped, {reason}"));
            skipped.push(Skipped {
                store: kind.name(),
                reason,
            });
            continue;
        }
        say(&format!(
            "{}: warm-up {}, peak {}, half load {} (direct reference {}), {} connections",
            kind.name(),
            split.warmup,
            split.peak,
            split.half,
            split.half,
            args.concurrency
        ));
        let run = StoreRun {
            kind,
            postgres_url,
            pool: &pool,
            keys: &keys,
            prices: &prices,
            split,
            concurrency: args.concurrency,
            target_per_s: kind.target_per_s(),
            store_dir: args.store_dir.as_deref(),
        };
        match run.run() {
            Ok(report) => stores.push(report),
            Err(error) => {
                say(&format!("{}: failed: {error:#}", kind.name()));
                failed.push(Failed {
                    store: kind.name(),
                    error: format!("{error:#}"),
                });
            }
        }
    }

    let head = pool.ledger.head_number();
    let report = Report {
        pool: PoolReport {
            size: entries,
            dir: dir.display().to_string(),
            reused: matches!(pool.origin, Origin::Reused),
            rebuilt_because: pool.origin.reason(),
            proved_this_run: pool.origin.proved().map(|p| p.count),
            prove_seconds: pool.origin.proved().map(|p| p.seconds),
            proof_ms_p50: pool.origin.proved().map(|p| p.proof_ms_p50),
            provers,
            hour: pool.header.hour,
            wall_clock_hour: wall_clock_hour(),
            chain_head_block: head,
            chain_head_unchanged: head == pool.head_at_load,
        },
        route: format!("POST {BENCH_PATH}"),
        fixed_price_credits: FIXED_CREDITS,
        class_cost,
        concurrency: args.concurrency,
        cores,
        warmup_requests: split.warmup,
        peak_requests: split.peak,
        half_load_requests: split.half,
        added_latency_definition: ADDED_DEFINITION,
        stores,
        skipped,
        failed,
        seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    anyhow::ensure!(
        report.pool.chain_head_unchanged,
        "the chain made blocks during the run (head {} at load, {head} now): the pool's hour no longer holds",
        pool.head_at_load
    );
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} store run(s) failed",
        report.failed.len()
    );
    let bad: usize = report.stores.iter().map(StoreReport::failures).sum();
    anyhow::ensure!(
        bad == 0,
        "{bad} requests were not answered 200 with a receipt (by status in the report): the benchmark failed"
    );
    Ok(())
}

/// How the pool is divided between the phases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Split {
    warmup: usize,
    peak: usize,
    half: usize,
}

impl Split {
    /// Warm-up one request per connection (at most a tenth of the pool), then `peak` (by
    /// default half of the rest), the rest at half load.
    fn of(pool: usize, concurrency: usize, peak: Option<usize>) -> anyhow::Result<Self> {
        let warmup = concurrency.min(pool / 10);
        let rest = pool.saturating_sub(warmup);
        let peak = peak.unwrap_or(rest / 2);
        anyhow::ensure!(
            peak >= 1 && peak < rest,
            "--pool {pool} leaves {rest} credentials after the warm-up: too few for a peak phase of {peak} and a half-load phase"
        );
        Ok(Self {
            warmup,
            peak,
            half: rest - peak,
        })
    }
}

// ---------------------------------------------------------------------------------- keys

/// The DEV keys and their hashes.
struct Keys {
    request: Arc<ProverKey>,
    exit: ProverKey,
    hashes: KeyHashes,
}

impl Keys {
    /// A DEV setup of the request and exit circuits, with a progress bar.
    fn dev(visible: bool) -> anyhow::Result<Self> {
        let bar = if visible {
            ProgressBar::new(2).with_style(
                ProgressStyle::with_template("DEV setup {msg:8} [{bar:30}] {pos}/{len} {elapsed}")
                    .context("progress template")?
                    .progress_chars("=> "),
            )
        } else {
            ProgressBar::hidden()
        };
        bar.set_message("request");
        let request = Arc::new(dev_setup(CircuitKind::Request, &DEV_SEED)?);
        bar.inc(1);
        bar.set_message("exit");
        let exit = dev_setup(CircuitKind::Exit, &DEV_SEED)?;
        bar.inc(1);
        bar.finish_and_clear();
        let hashes = KeyHashes::of(&request, &exit)?;
        Ok(Self {
            request,
            exit,
            hashes,
        })
    }
}

// ---------------------------------------------------------------------------------- pool

/// The first line of a pool file: what the credentials were made for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PoolHeader {
    format: u32,
    size: usize,
    request_proving_key: String,
    exit_proving_key: String,
    request_verifying_key: String,
    exit_verifying_key: String,
    price_list_hash: String,
    /// The vault's address (0x hex).
    vault: String,
    /// The tree root every credential proves membership under (hex, big-endian bytes of
    /// `fr_to_bytes`).
    root: String,
    /// The hour of the chain's newest finalised block when the pool was made.
    hour: u32,
    class_index: u8,
    /// SHA-256 of `chain.json`.
    snapshot_sha256: String,
}

/// What a pool header must say to be usable now.
struct Expected<'a> {
    hashes: &'a KeyHashes,
    price_list_hash: [u8; 32],
    size: usize,
    class_index: u8,
}

impl PoolHeader {
    /// Why this header does not fit `expected`, if it does not.
    fn mismatch(&self, expected: &Expected<'_>) -> Option<String> {
        let h = expected.hashes;
        let checks = [
            (self.format == POOL_FORMAT, "the pool file's format"),
            (self.size == expected.size, "the pool size"),
            (
                self.request_proving_key == hex::encode(h.request_proving)
                    && self.exit_proving_key == hex::encode(h.exit_proving)
                    && self.request_verifying_key == hex::encode(h.request_verifying)
                    && self.exit_verifying_key == hex::encode(h.exit_verifying),
                "the key hashes",
            ),
            (
                self.price_list_hash == hex::encode(expected.price_list_hash),
                "the price list hash",
            ),
            (self.class_index == expected.class_index, "the class"),
        ];
        checks
            .iter()
            .find(|(ok, _)| !ok)
            .map(|(_, what)| format!("{what} differ(s) from this build's"))
    }

    /// Why the chain loaded from the snapshot is not the one this pool was made for.
    fn chain_mismatch(&self, chain: &ChainFacts) -> Option<String> {
        let s = &chain.summary;
        if self.vault != s.address.to_string().to_lowercase() {
            return Some(format!("the snapshot has no vault at {}", self.vault));
        }
        let pinned = [
            (s.request_proving_key_hash, &self.request_proving_key),
            (s.exit_proving_key_hash, &self.exit_proving_key),
            (s.request_verifying_key_hash, &self.request_verifying_key),
            (s.exit_verifying_key_hash, &self.exit_verifying_key),
        ];
        if pinned
            .iter()
            .any(|(on_chain, ours)| hex::encode(on_chain) != **ours)
        {
            return Some("the snapshot's vault pins other keys".into());
        }
        if hex::encode(s.price_list_hash) != self.price_list_hash {
            return Some("the snapshot's vault pins another price list".into());
        }
        if hex::encode(fr_to_bytes(&chain.sync.tree().root())) != self.root {
            return Some("the snapshot's note tree has another root".into());
        }
        if chain.hour != self.hour {
            return Some(format!(
                "the snapshot's finalised hour is {}, the pool's {}",
                chain.hour, self.hour
            ));
        }
        None
    }
}

/// One credential of the pool: the request it authorises.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PoolEntry {
    /// Its note's position among the pool's notes.
    i: usize,
    /// The `Authorization` header value.
    authorization: String,
    /// The JSON body it is signed over.
    body: String,
}

/// The body of request `i`.
fn body_of(i: usize) -> String {
    format!("{{\"bench\":{i}}}")
}

/// The secret of pool note `i`: deterministic, so that a resumed build proves for the same
/// notes the snapshot holds. A DEV bench note: 128 bits from a public derivation.
fn note_secret(i: usize) -> Fr {
    let digest = Sha256::new()
        .chain_update(b"nullgate/bench-gateway/note")
        .chain_update((i as u64).to_be_bytes())
        .finalize();
    let mut low = [0u8; 16];
    low.copy_from_slice(&digest[..16]);
    fr_from_u128(u128::from_be_bytes(low))
}

/// The cache directory of a pool of `size` for these keys and this price list.
fn pool_dir(
    base: Option<&Path>,
    hashes: &KeyHashes,
    prices: &PriceList,
    size: usize,
) -> anyhow::Result<PathBuf> {
    let base = match base {
        Some(base) => base.to_path_buf(),
        None => {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .context("neither XDG_CACHE_HOME nor HOME is set: pass --pool-dir")?;
            cache.join("nullgate").join("bench-gateway")
        }
    };
    let name = Sha256::new()
        .chain_update(POOL_FORMAT.to_be_bytes())
        .chain_update(hashes.request_proving)
        .chain_update(hashes.exit_proving)
        .chain_update(hashes.request_verifying)
        .chain_update(hashes.exit_verifying)
        .chain_update(prices.hash())
        .chain_update((size as u64).to_be_bytes())
        .finalize();
    Ok(base.join(format!("pool-{size}-{}", &hex::encode(name)[..16])))
}

/// The chain as a pool sees it.
struct ChainFacts {
    summary: VaultSummary,
    sync: TreeSync,
    dom: Fr,
    hour: u32,
}

impl ChainFacts {
    async fn read(vault: &Vault) -> anyhow::Result<Self> {
        let summary = vault.summary().await.context("reading the vault")?;
        let mut sync = TreeSync::new(0);
        sync.sync(vault).await.context("syncing the note tree")?;
        let finalized = vault.ledger().finalized().await?;
        Ok(Self {
            summary,
            sync,
            dom: vault.dom().await?,
            hour: u32::try_from(finalized.timestamp / 3600)?,
        })
    }
}

/// How the pool came to be.
enum Origin {
    /// Loaded whole from the cache.
    Reused,
    /// Made (or finished) in this run.
    Built {
        /// Why the cache could not be used as it was.
        reason: String,
        proved: Proved,
    },
}

/// The proofs made in this run.
#[derive(Clone, Copy)]
struct Proved {
    count: usize,
    seconds: f64,
    proof_ms_p50: f64,
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Origin::Reused => "reused from the cache".into(),
            Origin::Built { reason, proved } => format!(
                "{reason}; proved {} in {:.0} s, {:.1} credentials/s",
                proved.count,
                proved.seconds,
                proved.count as f64 / proved.seconds.max(1e-9)
            ),
        }
    }

    fn reason(&self) -> Option<String> {
        match self {
            Origin::Reused => None,
            Origin::Built { reason, .. } => Some(reason.clone()),
        }
    }

    fn proved(&self) -> Option<Proved> {
        match self {
            Origin::Reused => None,
            Origin::Built { proved, .. } => Some(*proved),
        }
    }
}

/// A complete pool with its chain.
struct Pool {
    header: PoolHeader,
    /// By `i`.
    entries: Vec<PoolEntry>,
    ledger: Arc<EmbeddedLedger>,
    vault: Arc<Vault>,
    /// The chain's head block when the pool was loaded (it must not move).
    head_at_load: u64,
    origin: Origin,
}

const SNAPSHOT: &str = "chain.json";
const COMPLETE: &str = "pool.jsonl";
const PARTIAL: &str = "pool.partial.jsonl";

impl Pool {
    /// The cached pool in `dir` if it fits; else the partial one finished; else a new one.
    async fn prepare(
        dir: &Path,
        keys: &Keys,
        prices: &PriceList,
        size: usize,
        class_index: u8,
        provers: usize,
        say: &dyn Fn(&str),
    ) -> anyhow::Result<Self> {
        let expected = Expected {
            hashes: &keys.hashes,
            price_list_hash: prices.hash(),
            size,
            class_index,
        };
        let reason = match Self::load(dir, &expected, &keys.request).await {
            Ok(pool) => return Ok(pool),
            Err(reason) => reason,
        };
        // A partial pool whose chain still fits is finished, not rebuilt.
        let (header, chain, ledger, vault, done, reason) =
            match Self::resumable(dir, &expected, &keys.request).await {
                Ok((header, chain, ledger, vault, done)) => {
                    let reason =
                        format!("resuming a partial pool ({} of {size} proven)", done.len());
                    say(&format!("pool: {reason}"));
                    (header, chain, ledger, vault, done, reason)
                }
                Err(partial) => {
                    let reason = format!("{reason}; {partial}: building a new one");
                    say(&format!("pool: {reason}"));
                    let (header, chain, ledger, vault) =
                        Self::new_chain(dir, keys, prices, size, class_index, say).await?;
                    (header, chain, ledger, vault, Vec::new(), reason)
                }
            };
        let proved = prove_pool(dir, &header, &chain, keys, prices, done, provers, say)?;
        let pool = Self::load(dir, &expected, &keys.request)
            .await
            .map_err(|why| anyhow::anyhow!("the pool just built does not load: {why}"))?;
        drop((ledger, vault));
        Ok(Self {
            origin: Origin::Built { reason, proved },
            ..pool
        })
    }

    /// The complete pool in `dir`, checked against its snapshot; `Err` says why not.
    async fn load(dir: &Path, expected: &Expected<'_>, key: &ProverKey) -> Result<Self, String> {
        let path = dir.join(COMPLETE);
        if !path.exists() {
            return Err(format!("no complete pool in {}", dir.display()));
        }
        let (header, entries, complete) =
            read_pool_file(&path).map_err(|e| format!("{}: {e:#}", path.display()))?;
        if !complete {
            return Err(format!("{} is damaged", path.display()));
        }
        if let Some(why) = header.mismatch(expected) {
            return Err(why);
        }
        let mut by_index: Vec<Option<PoolEntry>> = vec![None; header.size];
        for entry in entries {
            match by_index.get_mut(entry.i) {
                Some(slot @ None) => *slot = Some(entry),
                _ => {
                    return Err(format!(
                        "{} repeats or misplaces entry {}",
                        path.display(),
                        entry.i
                    ));
                }
            }
        }
        let entries: Vec<PoolEntry> = by_index.into_iter().flatten().collect();
        if entries.len() != header.size {
            return Err(format!(
                "{} holds {} of {} credentials",
                path.display(),
                entries.len(),
                header.size
            ));
        }
        let (ledger, vault, chain) = load_chain(dir, &header, key).await?;
        if let Some(why) = header.chain_mismatch(&chain) {
            return Err(why);
        }
        let head_at_load = ledger.head_number();
        Ok(Self {
            header,
            entries,
            ledger,
            vault,
            head_at_load,
            origin: Origin::Reused,
        })
    }

    /// A partial pool in `dir` whose snapshot fits: its header, chain and the entries
    /// proven so far (the partial file rewritten to hold only whole lines).
    #[allow(clippy::type_complexity)]
    async fn resumable(
        dir: &Path,
        expected: &Expected<'_>,
        key: &ProverKey,
    ) -> Result<
        (
            PoolHeader,
            ChainFacts,
            Arc<EmbeddedLedger>,
            Arc<Vault>,
            Vec<PoolEntry>,
        ),
        String,
    > {
        let path = dir.join(PARTIAL);
        if !path.exists() {
            return Err("no partial pool".into());
        }
        let (header, entries, _) =
            read_pool_file(&path).map_err(|e| format!("{}: {e:#}", path.display()))?;
        if let Some(why) = header.mismatch(expected) {
            return Err(format!("the partial pool does not fit: {why}"));
        }
        let (ledger, vault, chain) = load_chain(dir, &header, key).await?;
        if let Some(why) = header.chain_mismatch(&chain) {
            return Err(format!("the partial pool does not fit: {why}"));
        }
        let mut seen = vec![false; header.size];
        let entries: Vec<PoolEntry> = entries
            .into_iter()
            .filter(|e| e.i < header.size && !std::mem::replace(&mut seen[e.i], true))
            .collect();
        write_pool_file(&path, &header, &entries)
            .map_err(|e| format!("rewriting {}: {e:#}", path.display()))?;
        Ok((header, chain, ledger, vault, entries))
    }

    /// A new chain: a DEV vault pinning `prices`, `size` notes deposited, the snapshot
    /// written; the pool's header.
    async fn new_chain(
        dir: &Path,
        keys: &Keys,
        prices: &PriceList,
        size: usize,
        class_index: u8,
        say: &dyn Fn(&str),
    ) -> anyhow::Result<(PoolHeader, ChainFacts, Arc<EmbeddedLedger>, Arc<Vault>)> {
        for name in [COMPLETE, PARTIAL, SNAPSHOT] {
            match std::fs::remove_file(dir.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {name}")),
            }
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dev = DevDeployment::deploy(keys.request.clone(), &keys.exit, prices.clone())
            .await
            .context("deploying the DEV vault")?;
        let depositor = dev.ledger.accounts()[1];
        let started = Instant::now();
        let mut gas = 0;
        for chunk in (0..size).collect::<Vec<_>>().chunks(DEPOSITS_PER_TX) {
            let notes: Vec<(Fr, u64)> = chunk
                .iter()
                .map(|&i| (note::commitment(&note_secret(i)), NOTE_DEPOSIT))
                .collect();
            gas += dev
                .vault
                .deposit_many(depositor, &notes)
                .await
                .with_context(|| format!("depositing notes {}..", chunk[0]))?
                .gas_used;
        }
        say(&format!(
            "pool: vault at {}, {size} notes of {NOTE_DEPOSIT} credits deposited in {} transactions ({:.0} gas a note, {:.1} s)",
            dev.vault.address(),
            size.div_ceil(DEPOSITS_PER_TX),
            gas as f64 / size as f64,
            started.elapsed().as_secs_f64()
        ));
        let chain = ChainFacts::read(&dev.vault).await?;
        anyhow::ensure!(
            chain.sync.deposits().len() == size,
            "the vault holds {} notes, not {size}",
            chain.sync.deposits().len()
        );
        let snapshot = dir.join(SNAPSHOT);
        let temp = dir.join(format!("{SNAPSHOT}.tmp"));
        dev.ledger
            .save_snapshot(&temp)
            .context("saving the chain's snapshot")?;
        std::fs::rename(&temp, &snapshot).context("moving the snapshot in place")?;
        let bytes = std::fs::read(&snapshot).context("reading the snapshot back")?;
        let h = &keys.hashes;
        let header = PoolHeader {
            format: POOL_FORMAT,
            size,
            request_proving_key: hex::encode(h.request_proving),
            exit_proving_key: hex::encode(h.exit_proving),
            request_verifying_key: hex::encode(h.request_verifying),
            exit_verifying_key: hex::encode(h.exit_verifying),
            price_list_hash: hex::encode(prices.hash()),
            vault: dev.vault.address().to_string().to_lowercase(),
            root: hex::encode(fr_to_bytes(&chain.sync.tree().root())),
            hour: chain.hour,
            class_index,
            snapshot_sha256: hex::encode(Sha256::digest(&bytes)),
        };
        write_pool_file(&dir.join(PARTIAL), &header, &[]).context("starting the pool file")?;
        Ok((header, chain, dev.ledger.clone(), dev.vault.clone()))
    }
}

/// The snapshot in `dir`, checked against `header`'s hash, loaded, and its chain read.
async fn load_chain(
    dir: &Path,
    header: &PoolHeader,
    key: &ProverKey,
) -> Result<(Arc<EmbeddedLedger>, Arc<Vault>, ChainFacts), String> {
    let path = dir.join(SNAPSHOT);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if hex::encode(Sha256::digest(&bytes)) != header.snapshot_sha256 {
        return Err(format!(
            "{} is not the snapshot the pool was made on",
            path.display()
        ));
    }
    let ledger = Arc::new(EmbeddedLedger::load_snapshot(&path).map_err(|e| e.to_string())?);
    let address = header
        .vault
        .parse()
        .map_err(|e| format!("the pool's vault address: {e}"))?;
    let chain: Arc<dyn Ledger> = ledger.clone();
    let vault = Arc::new(
        Vault::at(chain, address)
            .await
            .map_err(|e| format!("the snapshot's vault: {e}"))?,
    );
    let facts = ChainFacts::read(&vault)
        .await
        .map_err(|e| format!("{e:#}"))?;
    // The vault pins the request verifying key the gateway will check against.
    if B256::from(key.verifier_key().key_hash()) != facts.summary.request_verifying_key_hash {
        return Err("the snapshot's vault pins another request key".into());
    }
    Ok((ledger, vault, facts))
}

/// The header, the entries that parse, and whether every line parsed (a build interrupted
/// mid-line leaves a partial last line).
fn read_pool_file(path: &Path) -> anyhow::Result<(PoolHeader, Vec<PoolEntry>, bool)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    let header: PoolHeader = serde_json::from_str(
        &lines
            .next()
            .context("an empty pool file")?
            .context("reading the header")?,
    )
    .context("the pool file's header")?;
    let mut entries = Vec::new();
    for line in lines {
        match line.ok().and_then(|l| serde_json::from_str(&l).ok()) {
            Some(entry) => entries.push(entry),
            None => return Ok((header, entries, false)),
        }
    }
    Ok((header, entries, true))
}

/// Writes `header` and `entries` to `path` atomically (a temporary file, synced, renamed).
fn write_pool_file(path: &Path, header: &PoolHeader, entries: &[PoolEntry]) -> anyhow::Result<()> {
    let temp = path.with_extension("tmp");
    let mut file = std::io::BufWriter::new(
        File::create(&temp).with_context(|| format!("creating {}", temp.display()))?,
    );
    writeln!(file, "{}", serde_json::to_string(header)?)?;
    for entry in entries {
        writeln!(file, "{}", serde_json::to_string(entry)?)?;
    }
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Proves the pool's missing credentials, appending each to the partial file as it comes,
/// then renames the file complete.
#[allow(clippy::too_many_arguments)]
fn prove_pool(
    dir: &Path,
    header: &PoolHeader,
    chain: &ChainFacts,
    keys: &Keys,
    prices: &PriceList,
    done: Vec<PoolEntry>,
    provers: usize,
    say: &dyn Fn(&str),
) -> anyhow::Result<Proved> {
    let mut have = vec![false; header.size];
    for entry in &done {
        have[entry.i] = true;
    }
    let missing: Vec<usize> = (0..header.size).filter(|&i| !have[i]).collect();
    let class = (
        header.class_index,
        prices
            .class(header.class_index)
            .context("the pool's class")?,
    );
    let state_key = dev_state_key().public_key();
    anyhow::ensure!(
        chain.summary.current_key == 1,
        "the vault's current state key is number {}, the DEV key is 1",
        chain.summary.current_key
    );
    let context = ProofContext {
        dom: chain.dom,
        root: chain.sync.tree().root(),
        state_key: (1, &state_key),
        class,
        hour: header.hour,
    };
    let signed = prices.signed_headers().to_vec();
    let partial = dir.join(PARTIAL);
    let mut out = std::fs::OpenOptions::new()
        .append(true)
        .open(&partial)
        .with_context(|| format!("opening {}", partial.display()))?;

    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = ProgressBar::new(header.size as u64).with_style(
        ProgressStyle::with_template(
            "proving credentials [{bar:30}] {pos}/{len} {per_sec} {elapsed} ETA {eta}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    bar.set_position(done.len() as u64);
    bar.reset_eta();
    let provers = provers.min(missing.len().max(1));
    say(&format!(
        "pool: proving {} credentials on {provers} prover(s){}",
        missing.len(),
        if provers == 1 {
            " using every core each"
        } else {
            ", one thread each"
        }
    ));
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let mut times = Vec::with_capacity(missing.len());
    let (tx, rx) = mpsc::channel::<anyhow::Result<(PoolEntry, Duration)>>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..provers {
            let tx = tx.clone();
            let (next, stop, missing, context, signed) =
                (&next, &stop, &missing, &context, &signed);
            let (key, sync) = (&keys.request, &chain.sync);
            scope.spawn(move || {
                let work = || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(&i) = missing.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let begun = Instant::now();
                        let entry = make_entry(i, key, sync, context, signed);
                        let failed = entry.is_err();
                        if tx.send(entry.map(|e| (e, begun.elapsed()))).is_err() || failed {
                            break;
                        }
                    }
                };
                if provers == 1 {
                    work();
                } else {
                    match rayon::ThreadPoolBuilder::new().num_threads(1).build() {
                        Ok(pool) => pool.install(work),
                        Err(e) => {
                            let _ = tx.send(Err(anyhow::anyhow!("a prover's thread pool: {e}")));
                        }
                    }
                }
            });
        }
        drop(tx);
        let result = (|| {
            for received in &rx {
                let (entry, took) = received?;
                writeln!(out, "{}", serde_json::to_string(&entry)?)
                    .context("appending to the partial pool")?;
                times.push(took);
                bar.inc(1);
                let n = bar.position();
                if !interactive && (n.is_multiple_of(100) || n == header.size as u64) {
                    let rate = times.len() as f64 / started.elapsed().as_secs_f64();
                    let left = (header.size as u64 - n) as f64 / rate.max(1e-9);
                    eprintln!(
                        "pool: {n}/{} proven, {rate:.2}/s, about {left:.0} s left",
                        header.size
                    );
                }
            }
            Ok(())
        })();
        // On a failure the provers stop after their current proof.
        stop.store(true, Ordering::Relaxed);
        result
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        times.len() == missing.len(),
        "proved {} of {} credentials",
        times.len(),
        missing.len()
    );
    out.sync_all().context("syncing the pool file")?;
    drop(out);
    std::fs::rename(&partial, dir.join(COMPLETE)).context("completing the pool file")?;
    Ok(Proved {
        count: missing.len(),
        seconds,
        proof_ms_p50: percentile_ms(&times, 50),
    })
}

/// Proves and signs the credential of pool note `i`.
fn make_entry(
    i: usize,
    key: &ProverKey,
    sync: &TreeSync,
    context: &ProofContext<'_>,
    signed: &[String],
) -> anyhow::Result<PoolEntry> {
    let secret = note_secret(i);
    let deposit = sync
        .deposits()
        .get(i)
        .with_context(|| format!("no deposit {i} on chain"))?;
    anyhow::ensure!(
        fr_from_u256(&deposit.commitment, "commitment")? == note::commitment(&secret),
        "deposit {i} is not the pool's note {i}"
    );
    let note = Note {
        secret,
        note_id: deposit.note_id,
        deposit: deposit.amount,
        expiry: deposit.expiry,
    };
    let witness = RequestWitness {
        note,
        path: sync.tree().path(note.note_id)?,
        state: StateValue::new(note.deposit, 0, note.note_id)?,
        blinding: Scalar::from(0u64),
        signature: None,
    };
    let (unsigned, _) = UnsignedCredential::prove(key, context, &witness, &mut rand::rngs::OsRng)?;
    let body = body_of(i);
    let headers =
        payload::signed_headers(signed, [("content-type", b"application/json".as_slice())]);
    let digest = payload::payload_digest(
        &unsigned.nullifier,
        "POST",
        BENCH_PATH,
        &headers,
        body.as_bytes(),
    );
    let esk = derive::request_signing_key(&secret, witness.state.index());
    Ok(PoolEntry {
        i,
        authorization: unsigned.sign(&esk, &digest).to_authorization(),
        body,
    })
}

/// The current hour by the wall clock.
fn wall_clock_hour() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 3600)
}

/// The embedded chain's head block number.
trait HeadNumber {
    fn head_number(&self) -> u64;
}

impl HeadNumber for EmbeddedLedger {
    fn head_number(&self) -> u64 {
        // The embedded chain answers `latest` without ever waiting.
        futures_util::FutureExt::now_or_never(self.latest())
            .and_then(Result::ok)
            .map_or(u64::MAX, |block| block.number)
    }
}

// -------------------------------------------------------------------------------- stores

/// A nullifier store the benchmark measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }

    fn target_per_s(self) -> f64 {
        match self {
            StoreKind::Sqlite => SQLITE_TARGET_PER_S,
            StoreKind::Postgres => POSTGRES_TARGET_PER_S,
        }
    }
}

/// One store's run: everything it needs.
struct StoreRun<'a> {
    kind: StoreKind,
    postgres_url: Option<String>,
    pool: &'a Pool,
    keys: &'a Keys,
    prices: &'a PriceList,
    split: Split,
    concurrency: usize,
    target_per_s: f64,
    /// Where the SQLite store's temporary directory is made.
    store_dir: Option<&'a Path>,
}

impl StoreRun<'_> {
    /// Runs on a runtime of its own (dropped after, with every task the gateway spawned); a
    /// PostgreSQL schema is made before and dropped after.
    fn run(&self) -> anyhow::Result<StoreReport> {
        let admin = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let temp = match self.store_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                tempfile::tempdir_in(dir)
            }
            None => tempfile::tempdir(),
        }
        .context("a temporary directory for the store")?;
        let schema = match (&self.kind, &self.postgres_url) {
            (StoreKind::Postgres, Some(url)) => Some(admin.block_on(Schema::create(url))?),
            _ => None,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let result = runtime.block_on(async {
            let store: Arc<dyn NullifierStore> = match &schema {
                Some(schema) => Arc::new(
                    PostgresStore::connect(&schema.url, RETENTION_HOURS)
                        .await
                        .context("connecting the PostgreSQL store")?,
                ),
                None => Arc::new(
                    SqliteStore::open(&temp.path().join("gateway.sqlite"), RETENTION_HOURS)
                        .context("opening the SQLite store")?,
                ),
            };
            self.measure(store).await
        });
        runtime.shutdown_timeout(Duration::from_secs(10));
        if let Some(schema) = schema
            && let Err(error) = admin.block_on(schema.drop())
        {
            eprintln!("postgres: could not drop the bench schema: {error:#}");
        }
        result
    }

    async fn measure(&self, store: Arc<dyn NullifierStore>) -> anyhow::Result<StoreReport> {
        let pool = self.pool;
        let upstream = serve(upstream_router()).await?;
        let dev = DevDeployment {
            ledger: pool.ledger.clone(),
            vault: pool.vault.clone(),
            operator: pool.ledger.accounts()[0],
            request_key: self.keys.request.clone(),
            exit_key: self.keys.exit.verifier_key(),
            price_list: self.prices.clone(),
        };
        let gateway = Gateway::start(dev.gateway_parts(
            store,
            Upstream::new(&format!("http://{upstream}"), None)?,
            Limits::default(),
        ))
        .await
        .context("starting the gateway")?;
        let metrics = gateway.metrics();
        let gateway_addr = serve(gateway.router()).await?;

        let paid: Vec<Prepared> = pool
            .entries
            .iter()
            .map(Prepared::paid)
            .collect::<anyhow::Result<_>>()?;
        let direct: Vec<Prepared> = pool.entries.iter().map(Prepared::direct).collect();
        let Split { warmup, peak, half } = self.split;
        let (warm, rest) = paid.split_at(warmup);
        let (peak_requests, half_requests) = rest.split_at(peak);
        let direct_requests = &direct[warmup + peak..warmup + peak + half];

        let name = self.kind.name();
        let phase = |what: &str| eprintln!("{name}: {what}");
        phase("warm-up");
        let warm = closed_loop(gateway_addr, warm, self.concurrency).await?;

        phase("peak (closed loop)");
        let before = StageSnapshot::take(&metrics);
        let cpu_before = process_cpu_seconds();
        let peak_run = closed_loop(gateway_addr, peak_requests, self.concurrency).await?;
        let cpu_peak = cpu_since(cpu_before);
        let after_peak = StageSnapshot::take(&metrics);
        let peak_ok = peak_run.ok_latencies().len();
        let paid_per_s = peak_ok as f64 / peak_run.elapsed.as_secs_f64();
        anyhow::ensure!(peak_ok > 0, "no paid request succeeded at peak");
        let rate = paid_per_s / 2.0;

        phase(&format!("half load at {rate:.0}/s: direct reference"));
        let direct_run = open_loop(upstream, direct_requests, self.concurrency, rate).await?;
        phase(&format!("half load at {rate:.0}/s: paid"));
        let before_half = StageSnapshot::take(&metrics);
        let cpu_before = process_cpu_seconds();
        let half_run = open_loop(gateway_addr, half_requests, self.concurrency, rate).await?;
        let cpu_half = cpu_since(cpu_before);
        let after_half = StageSnapshot::take(&metrics);

        let paid_lat = half_run.ok_latencies();
        let direct_lat = direct_run.ok_latencies();
        let paid_p50 = percentile_ms(&paid_lat, 50);
        let paid_p99 = percentile_ms(&paid_lat, 99);
        let direct_p50 = percentile_ms(&direct_lat, 50);
        let direct_p99 = percentile_ms(&direct_lat, 99);
        let added_p99 = paid_p99 - direct_p99;
        let half_means = after_half.means_ms_since(&before_half);
        let paid_mean_ms = mean_ms(&paid_lat);
        Ok(StoreReport {
            store: name,
            warmup: PhaseCounts::of(&warm),
            peak: PeakReport {
                requests: peak_requests.len(),
                ok: peak_ok,
                failures: peak_run.failures(),
                first_failure: peak_run.first_error.clone(),
                seconds: peak_run.elapsed.as_secs_f64(),
                paid_per_s,
                target_per_s: self.target_per_s,
                meets_target: paid_per_s >= self.target_per_s,
                latency_ms_p50: percentile_ms(&peak_run.ok_latencies(), 50),
                latency_ms_p99: percentile_ms(&peak_run.ok_latencies(), 99),
                process_cpu_ms_per_request: cpu_peak.map(|s| s * 1e3 / peak_ok as f64),
                cpu_cores_busy: cpu_peak.map(|s| s / peak_run.elapsed.as_secs_f64()),
            },
            half_load: HalfReport {
                rate_per_s: rate,
                requests: half_requests.len(),
                ok: paid_lat.len(),
                failures: half_run.failures(),
                first_failure: half_run.first_error.clone(),
                achieved_per_s: half_requests.len() as f64 / half_run.elapsed.as_secs_f64(),
                direct_ok: direct_lat.len(),
                direct_failures: direct_run.failures(),
                paid_ms_p50: paid_p50,
                paid_ms_p99: paid_p99,
                direct_ms_p50: direct_p50,
                direct_ms_p99: direct_p99,
                added_ms_p50: paid_p50 - direct_p50,
                added_ms_p99: added_p99,
                target_added_ms_p99: ADDED_P99_TARGET_MS,
                meets_target: added_p99 <= ADDED_P99_TARGET_MS,
                process_cpu_ms_per_request: cpu_half
                    .map(|s| s * 1e3 / paid_lat.len().max(1) as f64),
            },
            stages_peak: Stages::between(&before, &after_peak),
            stages_half_load: Stages::between(&before_half, &after_half),
            time_split_half_load_ms: time_split(&half_means, paid_mean_ms),
        })
    }
}

/// CPU seconds since `before`.
fn cpu_since(before: Option<f64>) -> Option<f64> {
    Some(process_cpu_seconds()? - before?)
}

fn mean_ms(samples: &[Duration]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / samples.len() as f64
}

/// Where a paid request's mean time goes: the gateway's stages, the rest of its pipeline,
/// and what lies outside it (HTTP on both ends, loopback, the load generator).
fn time_split(means: &[(&'static str, f64)], paid_mean_ms: f64) -> BTreeMap<&'static str, f64> {
    let get = |label: &str| {
        means
            .iter()
            .find(|(l, _)| *l == label)
            .map_or(0.0, |(_, v)| *v)
    };
    let request = get(Stage::Request.label());
    let verify = get(Stage::Verify.label());
    let store =
        get(Stage::Lookup.label()) + get(Stage::Reserve.label()) + get(Stage::Settle.label());
    let upstream = get(Stage::Upstream.label());
    BTreeMap::from([
        ("verify", verify),
        ("store_lookup_reserve_settle", store),
        ("upstream", upstream),
        ("rest_of_pipeline", request - verify - store - upstream),
        (
            "outside_pipeline_http_and_load_generator",
            paid_mean_ms - request,
        ),
        ("client_observed", paid_mean_ms),
    ])
}

/// A fresh schema on the PostgreSQL server, for one run.
struct Schema {
    base: String,
    name: String,
    /// The connection string with the schema as `search_path`.
    url: String,
}

impl Schema {
    async fn create(base: &str) -> anyhow::Result<Self> {
        let name = format!("nullgate_bench_{:016x}", rand::random::<u64>());
        let client = admin_connection(base).await?;
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .context("creating the bench schema")?;
        Ok(Self {
            base: base.to_owned(),
            url: with_search_path(base, &name),
            name,
        })
    }

    async fn drop(self) -> anyhow::Result<()> {
        let client = admin_connection(&self.base).await?;
        client
            .batch_execute(&format!(
                "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS {} CASCADE",
                self.name
            ))
            .await
            .context("dropping the bench schema")?;
        Ok(())
    }
}

async fn admin_connection(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {POSTGRES_ENV}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            eprintln!("postgres: admin connection: {error}");
        }
    });
    Ok(client)
}

/// The fixed-price upstream: `POST /v1/bench` answers a small JSON body.
fn upstream_router() -> axum::Router {
    axum::Router::new().route(
        BENCH_PATH,
        axum::routing::post(|_body: Bytes| async {
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"ok":true,"result":"fixed-price answer"}"#,
            )
        }),
    )
}

async fn serve(router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("bench server on {addr}: {error}");
        }
    });
    Ok(addr)
}

// ------------------------------------------------------------------------ load generator

/// A request ready to send.
#[derive(Clone)]
struct Prepared {
    authorization: Option<HeaderValue>,
    body: Bytes,
}

impl Prepared {
    fn paid(entry: &PoolEntry) -> anyhow::Result<Self> {
        Ok(Self {
            authorization: Some(
                HeaderValue::from_str(&entry.authorization)
                    .context("a pool credential is not a header value")?,
            ),
            body: Bytes::from(entry.body.clone()),
        })
    }

    fn direct(entry: &PoolEntry) -> Self {
        Self {
            authorization: None,
            body: Bytes::from(entry.body.clone()),
        }
    }

    fn request(&self, host: &HeaderValue) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(BENCH_PATH)
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(value) = &self.authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        Ok(request.body(Full::new(self.body.clone()))?)
    }
}

/// One request's result.
struct Outcome {
    latency: Duration,
    /// The status; 0 when the connection failed.
    status: u16,
    /// Whether a 200 is acceptable: a receipt from the gateway, any 200 from the upstream.
    ok: bool,
}

/// A phase's results.
struct PhaseRun {
    outcomes: Vec<Outcome>,
    /// From the start of the phase to its last answer.
    elapsed: Duration,
    first_error: Option<String>,
}

impl PhaseRun {
    fn ok_latencies(&self) -> Vec<Duration> {
        self.outcomes
            .iter()
            .filter(|o| o.ok)
            .map(|o| o.latency)
            .collect()
    }

    /// The requests not answered as they should be, by what they got.
    fn failures(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for o in self.outcomes.iter().filter(|o| !o.ok) {
            let key = match o.status {
                0 => "connection error".to_owned(),
                200 => "200 without a receipt".to_owned(),
                status => format!("status {status}"),
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let mut connection = Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
            sender: None,
        };
        connection.sender = Some(connection.connect().await?);
        Ok(connection)
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends `request`; a failed connection is reopened for the next one (the failed
    /// request is not retried: its credential may have been spent).
    async fn send(&mut self, prepared: &Prepared, gateway: bool) -> (u16, bool, Option<String>) {
        let result = async {
            if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
                self.sender = Some(self.connect().await?);
            }
            let sender = self.sender.as_mut().context("no connection")?;
            sender.ready().await?;
            let response = sender.send_request(prepared.request(&self.host)?).await?;
            let status = response.status();
            let receipt = response.headers().contains_key("nullgate-receipt");
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, receipt, body))
        }
        .await;
        match result {
            Ok((status, receipt, body)) => {
                let ok = status == StatusCode::OK && (receipt || !gateway);
                let error = (!ok).then(|| {
                    format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    )
                });
                (status.as_u16(), ok, error)
            }
            Err(error) => {
                self.sender = None;
                (0, false, Some(format!("{error:#}")))
            }
        }
    }
}

/// Sends every request once over `concurrency` connections, each sending its next as soon
/// as it has an answer.
async fn closed_loop(
    addr: SocketAddr,
    requests: &[Prepared],
    concurrency: usize,
) -> anyhow::Result<PhaseRun> {
    schedule(addr, requests, concurrency, None).await
}

/// Sends every request once at `rate` per second (request `j` due at `j / rate` s), over
/// `concurrency` connections.
async fn open_loop(
    addr: SocketAddr,
    requests: &[Prepared],
    concurrency: usize,
    rate: f64,
) -> anyhow::Result<PhaseRun> {
    anyhow::ensure!(rate > 0.0, "a rate of {rate}/s");
    schedule(addr, requests, concurrency, Some(rate)).await
}

async fn schedule(
    addr: SocketAddr,
    requests: &[Prepared],
    concurrency: usize,
    rate: Option<f64>,
) -> anyhow::Result<PhaseRun> {
    let workers = concurrency.min(requests.len()).max(1);
    let mut connections = Vec::with_capacity(workers);
    for _ in 0..workers {
        connections.push(Connection::open(addr).await?);
    }
    let gateway = requests.iter().any(|r| r.authorization.is_some());
    let requests: Arc<[Prepared]> = requests.into();
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for mut connection in connections {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut first_error = None;
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(prepared) = requests.get(j) else {
                    break;
                };
                let sent = match rate {
                    None => Instant::now(),
                    Some(rate) => {
                        let due = start + Duration::from_secs_f64(j as f64 / rate);
                        if Instant::now() < due {
                            tokio::time::sleep_until(due.into()).await;
                            Instant::now()
                        } else {
                            // Late: it waited for this connection, which counts.
                            due
                        }
                    }
                };
                let (status, ok, error) = connection.send(prepared, gateway).await;
                outcomes.push(Outcome {
                    latency: sent.elapsed(),
                    status,
                    ok,
                });
                if first_error.is_none() {
                    first_error = error;
                }
            }
            (outcomes, first_error, Instant::now())
        }));
    }
    let mut run = PhaseRun {
        outcomes: Vec::with_capacity(requests.len()),
        elapsed: Duration::ZERO,
        first_error: None,
    };
    let mut last = start;
    for task in tasks {
        let (outcomes, error, done) = task.await.context("a load generator task")?;
        run.outcomes.extend(outcomes);
        run.first_error = run.first_error.or(error);
        last = last.max(done);
    }
    run.elapsed = last - start;
    Ok(run)
}

// -------------------------------------------------------------------------------- report

#[derive(Debug, Serialize)]
struct Report {
    pool: PoolReport,
    route: String,
    fixed_price_credits: u64,
    /// The class every credential is proven for.
    class_cost: u64,
    concurrency: usize,
    cores: usize,
    warmup_requests: usize,
    peak_requests: usize,
    half_load_requests: usize,
    added_latency_definition: &'static str,
    stores: Vec<StoreReport>,
    skipped: Vec<Skipped>,
    failed: Vec<Failed>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct PoolReport {
    size: usize,
    dir: String,
    reused: bool,
    rebuilt_because: Option<String>,
    proved_this_run: Option<usize>,
    prove_seconds: Option<f64>,
    proof_ms_p50: Option<f64>,
    provers: usize,
    /// The hour every credential is made for: the chain's finalised hour, frozen with it.
    hour: u32,
    wall_clock_hour: u64,
    chain_head_block: u64,
    /// No block was made while the pool was in use.
    chain_head_unchanged: bool,
}

#[derive(Debug, Serialize)]
struct Skipped {
    store: &'static str,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Failed {
    store: &'static str,
    error: String,
}

#[derive(Debug, Serialize)]
struct StoreReport {
    store: &'static str,
    warmup: PhaseCounts,
    peak: PeakReport,
    half_load: HalfReport,
    stages_peak: Stages,
    stages_half_load: Stages,
    /// Mean ms per paid request at half load: verify, the store's three stages, the
    /// upstream call, the rest of the gateway's pipeline, and everything outside it.
    time_split_half_load_ms: BTreeMap<&'static str, f64>,
}

impl StoreReport {
    fn failures(&self) -> usize {
        [
            &self.warmup.failures,
            &self.peak.failures,
            &self.half_load.failures,
            &self.half_load.direct_failures,
        ]
        .iter()
        .flat_map(|f| f.values())
        .sum()
    }
}

#[derive(Debug, Serialize)]
struct PhaseCounts {
    requests: usize,
    failures: BTreeMap<String, usize>,
    first_failure: Option<String>,
}

impl PhaseCounts {
    fn of(run: &PhaseRun) -> Self {
        Self {
            requests: run.outcomes.len(),
            failures: run.failures(),
            first_failure: run.first_error.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct PeakReport {
    requests: usize,
    /// Answered 200 with a receipt.
    ok: usize,
    failures: BTreeMap<String, usize>,
    first_failure: Option<String>,
    seconds: f64,
    paid_per_s: f64,
    target_per_s: f64,
    meets_target: bool,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    /// The whole process's CPU time (gateway, upstream, load generator) per paid request.
    process_cpu_ms_per_request: Option<f64>,
    /// CPU seconds per second of the phase (2.0 is both cores busy).
    cpu_cores_busy: Option<f64>,
}

#[derive(Debug, Serialize)]
struct HalfReport {
    rate_per_s: f64,
    requests: usize,
    ok: usize,
    failures: BTreeMap<String, usize>,
    first_failure: Option<String>,
    achieved_per_s: f64,
    direct_ok: usize,
    direct_failures: BTreeMap<String, usize>,
    paid_ms_p50: f64,
    paid_ms_p99: f64,
    direct_ms_p50: f64,
    direct_ms_p99: f64,
    added_ms_p50: f64,
    added_ms_p99: f64,
    target_added_ms_p99: f64,
    meets_target: bool,
    process_cpu_ms_per_request: Option<f64>,
}

/// The gateway's stages over a phase.
#[derive(Debug, Serialize)]
struct Stages {
    /// Exact means, ms.
    mean_ms: BTreeMap<&'static str, f64>,
    /// Medians estimated within the histogram's buckets, ms.
    p50_ms_estimated: BTreeMap<&'static str, f64>,
}

impl Stages {
    fn between(before: &StageSnapshot, after: &StageSnapshot) -> Self {
        Self {
            mean_ms: after.means_ms_since(before).into_iter().collect(),
            p50_ms_estimated: after
                .percentile_ms_since(before, 50)
                .into_iter()
                .filter(|(_, v)| v.is_finite())
                .collect(),
        }
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "✓" } else { "✗" }
}

fn print_table(r: &Report) {
    let pool = &r.pool;
    println!(
        "nullgate bench gateway: POST {BENCH_PATH} at a fixed {} credits (class {}), {} keep-alive connections, everything in this process on {} cores",
        r.fixed_price_credits, r.class_cost, r.concurrency, r.cores
    );
    println!(
        "  pool: {} distinct credentials, {}{} ({})",
        pool.size,
        if pool.reused { "reused" } else { "built" },
        pool.prove_seconds.map_or(String::new(), |s| format!(
            " ({} proven in {s:.0} s, p50 {:.0} ms a proof on {} prover(s))",
            pool.proved_this_run.unwrap_or(0),
            pool.proof_ms_p50.unwrap_or(f64::NAN),
            pool.provers
        )),
        pool.dir
    );
    println!(
        "  phases per store: warm-up {}, peak {} (closed loop), half load {} (open loop; as many direct first)",
        r.warmup_requests, r.peak_requests, r.half_load_requests
    );
    for s in &r.stores {
        let (p, h) = (&s.peak, &s.half_load);
        println!("  {}:", s.store);
        println!(
            "    peak                       {:>8.0} paid requests/s   target ≥ {:.0} {}   ({} of {} in {:.2} s; latency p50 {:.1} ms, p99 {:.1} ms)",
            p.paid_per_s,
            p.target_per_s,
            verdict(p.meets_target),
            p.ok,
            p.requests,
            p.seconds,
            p.latency_ms_p50,
            p.latency_ms_p99
        );
        if let (Some(cpu), Some(busy)) = (p.process_cpu_ms_per_request, p.cpu_cores_busy) {
            println!(
                "    process CPU at peak        {cpu:>8.2} ms per paid request, {busy:.2} cores busy"
            );
        }
        println!(
            "    half load                  {:>8.0} requests/s (achieved {:.0}/s)",
            h.rate_per_s, h.achieved_per_s
        );
        println!("                                    p50          p99");
        println!(
            "      paid                     {:>8.2} ms  {:>8.2} ms",
            h.paid_ms_p50, h.paid_ms_p99
        );
        println!(
            "      direct to the upstream   {:>8.2} ms  {:>8.2} ms",
            h.direct_ms_p50, h.direct_ms_p99
        );
        println!(
            "      added (paid − direct)    {:>8.2} ms  {:>8.2} ms   target p99 ≤ {} ms {}",
            h.added_ms_p50,
            h.added_ms_p99,
            h.target_added_ms_p99,
            verdict(h.meets_target)
        );
        for (phase, stages) in [("peak", &s.stages_peak), ("half load", &s.stages_half_load)] {
            let line: Vec<String> = Stage::ALL
                .iter()
                .filter_map(|stage| {
                    let label = stage.label();
                    let mean = stages.mean_ms.get(label)?;
                    let p50 = stages
                        .p50_ms_estimated
                        .get(label)
                        .map_or(String::new(), |v| format!(" (p50 ≈{v:.2})"));
                    Some(format!("{label} {mean:.2}{p50}"))
                })
                .collect();
            println!("    gateway stages, {phase}, mean ms: {}", line.join(", "));
        }
        let t = &s.time_split_half_load_ms;
        let get = |k: &str| t.get(k).copied().unwrap_or(f64::NAN);
        println!(
            "    where a paid request's {:.2} ms go at half load (means): verify {:.2}, store (lookup + reserve + settle) {:.2}, upstream {:.2}, rest of the pipeline {:.2}, outside it (HTTP, load generator) {:.2}",
            get("client_observed"),
            get("verify"),
            get("store_lookup_reserve_settle"),
            get("upstream"),
            get("rest_of_pipeline"),
            get("outside_pipeline_http_and_load_generator")
        );
        let failures: Vec<String> = [
            ("warm-up", &s.warmup.failures),
            ("peak", &p.failures),
            ("half load", &h.failures),
            ("direct", &h.direct_failures),
        ]
        .iter()
        .filter(|(_, f)| !f.is_empty())
        .map(|(phase, f)| format!("{phase}: {f:?}"))
        .collect();
        if !failures.is_empty() {
            println!("    FAILED REQUESTS: {}", failures.join("; "));
            if let Some(first) = s
                .warmup
                .first_failure
                .as_ref()
                .or(p.first_failure.as_ref())
                .or(h.first_failure.as_ref())
            {
                println!("      first: {first}");
            }
        }
    }
    for s in &r.skipped {
        println!("  {}: skipped ({})", s.store, s.reason);
    }
    for f in &r.failed {
        println!("  {}: FAILED: {}", f.store, f.error);
    }
    println!("  added latency: {}", r.added_latency_definition);
    println!(
        "  chain: pool hour {} (wall clock {}), head block {} {}; total {:.1} s",
        pool.hour,
        pool.wall_clock_hour,
        pool.chain_head_block,
        if pool.chain_head_unchanged {
            "unchanged"
        } else {
            "MOVED"
        },
        r.seconds
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes() -> KeyHashes {
        KeyHashes {
            request_proving: [1; 32],
            exit_proving: [2; 32],
            request_verifying: [3; 32],
            exit_verifying: [4; 32],
        }
    }

    fn header(h: &KeyHashes) -> PoolHeader {
        PoolHeader {
            format: POOL_FORMAT,
            size: 3,
            request_proving_key: hex::encode(h.request_proving),
            exit_proving_key: hex::encode(h.exit_proving),
            request_verifying_key: hex::encode(h.request_verifying),
            exit_verifying_key: hex::encode(h.exit_verifying),
            price_list_hash: hex::encode([5; 32]),
            vault: "0x00000000000000000000000000000000000000aa".into(),
            root: hex::encode([6; 32]),
            hour: 490_000,
            class_index: 0,
            snapshot_sha256: hex::encode([7; 32]),
        }
    }

    #[test]
    fn pool_file_round_trips_and_a_cut_line_marks_it_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.jsonl");
        let h = hashes();
        let entries: Vec<PoolEntry> = (0..3)
            .map(|i| PoolEntry {
                i,
                authorization: format!("NullGate credential{i}"),
                body: body_of(i),
            })
            .collect();
        write_pool_file(&path, &header(&h), &entries).unwrap();
        let (read_header, read, complete) = read_pool_file(&path).unwrap();
        assert_eq!(
            (read_header, read, complete),
            (header(&h), entries.clone(), true)
        );
        // An interrupted append leaves half a line: the whole ones are kept, the file is
        // marked incomplete.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"i\":3,\"authori").unwrap();
        let (_, read, complete) = read_pool_file(&path).unwrap();
        assert_eq!((read, complete), (entries, false));
    }

    #[test]
    fn a_header_for_other_keys_prices_or_size_does_not_fit() {
        let h = hashes();
        let expected = Expected {
            hashes: &h,
            price_list_hash: [5; 32],
            size: 3,
            class_index: 0,
        };
        assert_eq!(header(&h).mismatch(&expected), None);
        let other_keys = KeyHashes {
            exit_verifying: [9; 32],
            ..h
        };
        assert!(
            header(&other_keys)
                .mismatch(&expected)
                .unwrap()
                .contains("key hashes")
        );
        let mut other = header(&h);
        other.size = 4;
        assert!(other.mismatch(&expected).unwrap().contains("pool size"));
        let mut other = header(&h);
        other.price_list_hash = hex::encode([8; 32]);
        assert!(other.mismatch(&expected).unwrap().contains("price list"));
    }

    #[test]
    fn the_split_leaves_every_phase_some_credentials() {
        assert_eq!(
            Split::of(3000, 64, None).unwrap(),
            Split {
                warmup: 64,
                peak: 1468,
                half: 1468
            }
        );
        assert_eq!(
            Split::of(200, 64, None).unwrap(),
            Split {
                warmup: 20,
                peak: 90,
                half: 90
            }
        );
        assert_eq!(Split::of(200, 64, Some(150)).unwrap().half, 30);
        assert!(Split::of(200, 64, Some(180)).is_err());
        assert!(Split::of(1, 64, None).is_err());
    }

    #[test]
    fn added_latency_is_the_difference_of_percentiles() {
        let paid: Vec<Duration> = (1..=100)
            .map(|i| Duration::from_micros(1_000 + i * 10))
            .collect();
        let direct: Vec<Duration> = (1..=100).map(|i| Duration::from_micros(100 + i)).collect();
        let added_p99 = percentile_ms(&paid, 99) - percentile_ms(&direct, 99);
        assert!((added_p99 - (1.99 - 0.199)).abs() < 1e-9, "{added_p99}");
        let split = time_split(
            &[
                ("lookup", 0.1),
                ("verify", 1.0),
                ("reserve", 0.2),
                ("upstream", 0.3),
                ("settle", 0.2),
                ("request", 2.0),
            ],
            2.5,
        );
        assert!((split["store_lookup_reserve_settle"] - 0.5).abs() < 1e-9);
        assert!((split["rest_of_pipeline"] - 0.2).abs() < 1e-9);
        assert!((split["outside_pipeline_http_and_load_generator"] - 0.5).abs() < 1e-9);
    }

    #[test]
    fn note_secrets_are_distinct_and_fixed() {
        assert_ne!(note_secret(0), note_secret(1));
        assert_eq!(note_secret(7), note_secret(7));
    }
}

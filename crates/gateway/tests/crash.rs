//! Crash safety (the gateway at scale, item 7): a gateway process is killed at every fault
//! point of the pipeline and of the chain watcher (`nullgate_gateway::fault`), restarted on
//! the same database, and then: no nullifier is lost, no request runs twice upstream, a
//! reserved-but-unfinished request is finished as a retry with a valid next state, and no
//! retry loses its receipt.
//!
//! The gateway runs as a separate process — this test binary started again with
//! `NULLGATE_CRASH_CHILD` set — on a snapshot of the test's embedded chain, in front of the
//! test's example LLM, whose counters tell how often a request ran. This file has its own
//! `main` (no libtest harness) for that; it prints libtest's lines.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use common::{CHAT, Harness, chat, receipt_of};
use nullgate_chain::{Address, EmbeddedLedger, ExitArgs, Ledger, Vault};
use nullgate_gateway::{
    Gateway, GatewayParts,
    charge::StateSigner,
    config::Limits,
    dev::{DEV_AUTHORITY, demo_price_list, dev_ohttp_keys, dev_state_key},
    fault::{FAULT_ENV, FaultPoint},
    store::{NullifierStore, sqlite::SqliteStore},
    upstream::Upstream,
};
use nullgate_zk::{
    field::fr_to_bytes,
    groth16::{CircuitKind, VerifierKey},
};
use serde::{Deserialize, Serialize};

/// Set in a child: its configuration, as JSON.
const CHILD_ENV: &str = "NULLGATE_CRASH_CHILD";

/// The lease of the children: a killed one's reservation is taken over soon after.
const LEASE_SECONDS: u64 = 1;

/// What a child gateway is started with.
#[derive(Serialize, Deserialize)]
struct ChildConfig {
    snapshot: PathBuf,
    vault: Address,
    operator: Address,
    database: PathBuf,
    upstream: String,
    request_key: PathBuf,
    exit_key: PathBuf,
}

fn main() {
    if let Ok(config) = std::env::var(CHILD_ENV) {
        let config: ChildConfig = serde_json::from_str(&config).expect("the child's config");
        tokio::runtime::Runtime::new()
            .expect("a runtime")
            .block_on(child(config));
        return;
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    std::process::exit(runtime.block_on(run(&filter)));
}

/// Runs every scenario (those named in `filter`, when given) and prints libtest's lines: the
/// exit status.
async fn run(filter: &[String]) -> i32 {
    let names: Vec<String> = FaultPoint::ALL
        .iter()
        .map(|p| format!("killed_at_{}", p.name().replace('-', "_")))
        .collect();
    let chosen: Vec<usize> = (0..names.len())
        .filter(|&i| filter.is_empty() || filter.iter().any(|f| names[i].contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    if cfg!(not(debug_assertions)) {
        // Release builds compile the fault points away: nothing here could be killed.
        for &i in &chosen {
            println!(
                "test {} ... ignored, fault points exist in debug builds only",
                names[i]
            );
        }
        println!(
            "\ntest result: ok. 0 passed; 0 failed; {} ignored; 0 measured; 0 filtered out\n",
            chosen.len()
        );
        return 0;
    }
    let started = Instant::now();
    let world = World::new(FaultPoint::ALL.len()).await;
    let (mut passed, mut failed) = (0, Vec::new());
    for &i in &chosen {
        let point = FaultPoint::ALL[i];
        let outcome = match point {
            FaultPoint::WatcherSynced | FaultPoint::WatcherRecorded => {
                world.watcher_scenario(point, i).await
            }
            _ => world.request_scenario(point, i).await,
        };
        match outcome {
            Ok(()) => {
                passed += 1;
                println!("test {} ... ok", names[i]);
            }
            Err(why) => {
                println!("test {} ... FAILED", names[i]);
                failed.push((names[i].clone(), why));
            }
        }
    }
    for (name, why) in &failed {
        println!("\n---- {name} ----\n{why}");
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        names.len() - chosen.len(),
        started.elapsed().as_secs_f64()
    );
    i32::from(!failed.is_empty())
}

/// The child: a gateway on the snapshot's chain and the given database, serving until
/// killed. Its first stdout line says where it listens.
async fn child(config: ChildConfig) {
    let ledger: Arc<dyn Ledger> =
        Arc::new(EmbeddedLedger::load_snapshot(&config.snapshot).expect("the chain snapshot"));
    let vault = Arc::new(Vault::at(ledger, config.vault).await.expect("the vault"));
    let read_key = |path: &Path, kind| {
        VerifierKey::from_bytes(kind, &std::fs::read(path).expect("a key file")).expect("a key")
    };
    let parts = GatewayParts {
        vault,
        from_block: 0,
        price_list: demo_price_list(),
        signer: StateSigner {
            number: 1,
            key: dev_state_key(),
        },
        verifier_key: read_key(&config.request_key, CircuitKind::Request),
        exit_verifier_key: read_key(&config.exit_key, CircuitKind::Exit),
        clearance_signer: Some(nullgate_chain::dev_signers(1).remove(0)),
        store: Arc::new(SqliteStore::open(&config.database, 24).expect("the database"))
            as Arc<dyn NullifierStore>,
        upstream: Upstream::new(&config.upstream, None).expect("the upstream"),
        ohttp: dev_ohttp_keys(),
        authority: DEV_AUTHORITY.into(),
        limits: Limits {
            poll_ms: 50,
            lease_seconds: LEASE_SECONDS,
            ..Limits::default()
        },
        slasher: Some(config.operator),
    };
    let gateway = Gateway::start(parts).await.expect("the gateway starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    println!("listening {}", listener.local_addr().expect("an address"));
    gateway.serve(listener).await.expect("serving");
}

/// The test's side: a deployment with notes, its chain snapshot and keys on disk.
struct World {
    h: Harness,
    dir: tempfile::TempDir,
}

/// A child gateway process.
struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl World {
    async fn new(notes: usize) -> Self {
        let h = Harness::start(notes).await;
        let dir = tempfile::tempdir().expect("a directory");
        std::fs::write(
            dir.path().join("request.vk"),
            h.dev.request_key.verifier_key().to_bytes(),
        )
        .expect("writing a key");
        std::fs::write(dir.path().join("exit.vk"), h.dev.exit_key.to_bytes())
            .expect("writing a key");
        Self { h, dir }
    }

    /// Saves the chain as it is now (each child reads the snapshot it is started with).
    fn snapshot(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.chain.json"));
        self.h.dev.ledger.save_snapshot(&path).expect("a snapshot");
        path
    }

    /// Starts a gateway process on `database`, killed at `fault` if given. `None` when it
    /// exited before listening (killed at a point it passes while starting).
    fn start(
        &self,
        snapshot: &Path,
        database: &Path,
        fault: Option<FaultPoint>,
    ) -> Option<Running> {
        let config = ChildConfig {
            snapshot: snapshot.into(),
            vault: self.h.dev.vault.address(),
            operator: self.h.dev.operator,
            database: database.into(),
            upstream: self.h.upstream.base_url(),
            request_key: self.dir.path().join("request.vk"),
            exit_key: self.dir.path().join("exit.vk"),
        };
        let mut command = Command::new(std::env::current_exe().expect("this test binary"));
        command
            .env(CHILD_ENV, serde_json::to_string(&config).expect("JSON"))
            .env_remove(FAULT_ENV)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(point) = fault {
            command.env(FAULT_ENV, point.name());
        }
        // Killed and waited for when dropped, on every path.
        let mut running = Running {
            child: command.spawn().expect("starting the gateway process"),
            url: String::new(),
        };
        let stdout = running.child.stdout.take().expect("its stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).ok()?;
        let address = line.strip_prefix("listening ")?.trim();
        running.url = format!("http://{address}");
        Some(running)
    }

    /// A request killed at `point` (one of the pipeline's), re-sent to a restarted gateway.
    async fn request_scenario(&self, point: FaultPoint, note: usize) -> Result<(), String> {
        let h = &self.h;
        let snapshot = self.snapshot(point.name());
        let database = self.dir.path().join(format!("{}.sqlite", point.name()));
        let witness = h.genesis(note);
        let body = chat(&format!("a request killed at {}", point.name()), false);
        let unsigned = h.prove(&witness, 0, h.hour().await);
        let (nullifier, published_state) = (unsigned.nullifier, unsigned.published_state);
        let auth = h.sign(unsigned, &witness, &body).to_authorization();
        let ran_before = h.upstream.counters().chat_completions;

        let mut first = self
            .start(&snapshot, &database, Some(point))
            .ok_or("the gateway did not start")?;
        if let Ok(answer) = post(&first.url, &auth, &body).await {
            return Err(format!("answered {} instead of dying", answer.status()));
        }
        let status = first.child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            return Err("the gateway exited cleanly instead of being killed".into());
        }
        let ran_first = h.upstream.counters().chat_completions - ran_before;

        let second = self
            .start(&snapshot, &database, None)
            .ok_or("the gateway did not restart")?;
        // The journal's re-send; 503 while the dead gateway's lease runs.
        let deadline = Instant::now() + Duration::from_secs(20);
        let answer = loop {
            let answer = post(&second.url, &auth, &body)
                .await
                .map_err(|e| e.to_string())?;
            if answer.status() != 503 || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let status = answer.status().as_u16();
        let receipt = receipt_of(&answer);
        let ran = h.upstream.counters().chat_completions - ran_before;
        // Before the reservation nothing was kept: the re-send is new and runs. From the
        // reservation on, N is never lost: a reservation left unfinished is finished
        // without running again; a finished one is a retry with its stored answer.
        let expected = match point {
            FaultPoint::Parsed | FaultPoint::LookedUp | FaultPoint::Verified => (200, 0, 1),
            FaultPoint::Reserved => (502, 0, 0),
            FaultPoint::Forwarded => (502, 1, 1),
            _ => (200, 1, 1),
        };
        if (status, ran_first, ran) != expected {
            return Err(format!(
                "(status, runs before the crash, runs in all) = {:?}, expected {expected:?}",
                (status, ran_first, ran)
            ));
        }
        let class_cost = h.dev.price_list.class(0).expect("class 0");
        receipt
            .check(
                &h.dom,
                &nullifier,
                &published_state,
                class_cost,
                &[(1, dev_state_key().public_key())],
            )
            .map_err(|e| format!("the receipt is not a valid next state: {e}"))?;
        if status == 502 && receipt.charge != h.dev.price_list.floor_fee() {
            return Err(format!("an interrupted request charged {}", receipt.charge));
        }

        // Every later re-send is a retry with the same receipt, and nothing runs again.
        let again = post(&second.url, &auth, &body)
            .await
            .map_err(|e| e.to_string())?;
        if again.status().as_u16() != status || receipt_of(&again) != receipt {
            return Err(format!(
                "a retry answered {} with another receipt",
                again.status()
            ));
        }
        drop(second);
        let third = self
            .start(&snapshot, &database, None)
            .ok_or("the gateway did not start a third time")?;
        let lookup: serde_json::Value = reqwest::get(format!(
            "{}/nullgate/receipt/{}",
            third.url,
            hex::encode(fr_to_bytes(&nullifier))
        ))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
        if lookup["status"] != "receipt" {
            return Err(format!("after another restart N is {lookup}"));
        }
        if h.upstream.counters().chat_completions - ran_before != ran {
            return Err("a retry ran upstream".into());
        }
        Ok(())
    }

    /// An exit on chain, the watcher killed at `point` while ingesting it: after a restart
    /// the exit's nullifier is in the store and a request at its index is refused.
    async fn watcher_scenario(&self, point: FaultPoint, note: usize) -> Result<(), String> {
        let h = &self.h;
        let (public, proof) = h.genesis_exit(note, 0, 50_000);
        h.dev
            .vault
            .initiate_exit(h.dev.operator, &ExitArgs::new(&public, 1, &proof))
            .await
            .map_err(|e| e.to_string())?;
        let snapshot = self.snapshot(point.name());
        let database = self.dir.path().join(format!("{}.sqlite", point.name()));
        // The watcher passes its points while the gateway starts: it dies before listening.
        if self.start(&snapshot, &database, Some(point)).is_some() {
            return Err("the gateway started instead of dying in its watcher".into());
        }
        let running = self
            .start(&snapshot, &database, None)
            .ok_or("the gateway did not restart")?;
        let witness = h.genesis(note);
        let body = chat("a request at an exit's index", false);
        let unsigned = h.prove(&witness, 0, h.hour().await);
        let auth = h.sign(unsigned, &witness, &body).to_authorization();
        let ran_before = h.upstream.counters().chat_completions;
        let answer = post(&running.url, &auth, &body)
            .await
            .map_err(|e| e.to_string())?;
        if answer.status() != 409 {
            return Err(format!(
                "a request at the exit's index answered {}",
                answer.status()
            ));
        }
        if h.upstream.counters().chat_completions != ran_before {
            return Err("a request at the exit's index ran".into());
        }
        Ok(())
    }
}

async fn post(url: &str, auth: &str, body: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .post(format!("{url}{CHAT}"))
        .header("content-type", "application/json")
        .header("authorization", auth)
        .body(body.to_owned())
        .timeout(Duration::from_secs(30))
        .send()
        .await
}

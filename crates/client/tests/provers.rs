//! The prover pool (issue 12, item 3): every proof runs on the configured number of prover
//! threads, and a request that finds every note busy waits for one, saying so in one log
//! line, instead of failing.
mod common;

use std::{
    io,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use common::*;
use nullgate_client::{client::ClientConfig, wallet::Wallet};

/// What the client logged, for every test in this binary.
fn log() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        // As `nullgate` filters: arkworks' gadget spans format the whole constraint system.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,gr1cs=off,r1cs=off",
            ))
            .with_ansi(false)
            .with_writer(move || Captured(writer.clone()))
            .init();
        buffer
    })
}

struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lines_with(text: &str) -> usize {
    String::from_utf8_lossy(&log().lock().unwrap())
        .lines()
        .filter(|line| line.contains(text))
        .count()
}

/// The tests here count threads and CPU time of the whole process: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_finds_every_note_busy_waits_for_it_with_one_log_line() {
    let _serial = SERIAL.lock().await;
    log();
    let world = world().await;
    let dir = tempfile::tempdir().unwrap();
    let client = new_wallet(&world, dir.path()).await;
    let busy = "is busy; requests wait";
    let before = lines_with(busy);

    // The only note is in flight (journalled, not yet sent)...
    let first = client.prepare(&chat()).await.unwrap();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.pay_request(chat()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        waiting.iter().all(|w| !w.is_finished()),
        "the other requests wait for the note"
    );
    assert_eq!(lines_with(busy), before + 1, "one line says why they wait");

    // ...and once it is answered and its state written, the waiting requests go out, one
    // after the other.
    let answered = client.send(first).await.unwrap();
    assert_eq!(answered.status, 200);
    for request in waiting {
        let answered = tokio::time::timeout(Duration::from_secs(60), request)
            .await
            .expect("a waiting request went out once the note was free")
            .unwrap()
            .unwrap();
        assert_eq!(answered.status, 200);
    }
    client.settled(Duration::from_secs(10)).await;
    assert_eq!(client.notes()[0].state.index, 3, "one index each");
    assert_eq!(lines_with(busy), before + 1, "and no more lines");
    assert_eq!(world.upstream.counters().chat_completions, 3);
    // Nothing of this test may still prove when the next one measures.
    client.wait_pregenerated(Duration::from_secs(60)).await;
}

/// CPU seconds this process has used (utime + stime of `/proc/self/stat`, fields 14 and 15,
/// in the kernel's 100 ticks a second; counted from the name's closing parenthesis, since
/// the name may hold spaces). Threads that have ended count too.
#[cfg(target_os = "linux")]
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// A client with `threads` prover threads and four fresh notes, and the cores the process
/// used on average while it pre-generated their four credentials at once.
#[cfg(target_os = "linux")]
async fn cores_used_proving(world: &World, threads: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let wallet = Wallet::create(dir.path(), vault_id(world).await).unwrap();
    let client = client_with_config(
        world,
        wallet,
        ClientConfig {
            prover_threads: threads,
            ..config()
        },
    )
    .await;
    client
        .deposit(world.dev.operator, &[50_000; 4])
        .await
        .unwrap();
    let (cpu, wall) = (cpu_seconds(), std::time::Instant::now());
    // Syncing starts a pre-generation for each of the four notes at once.
    synced(&client).await;
    let cores = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64();
    assert_eq!(client.stats().proof_ms.total(), 4, "four proofs");
    // And a request still gets its answer.
    let answered = client.pay_request(chat()).await.unwrap();
    assert_eq!(answered.status, 200);
    client.wait_pregenerated(Duration::from_secs(60)).await;
    cores
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn proving_uses_the_configured_number_of_threads() {
    let _serial = SERIAL.lock().await;
    log();
    let cores = std::thread::available_parallelism().unwrap().get();
    let world = world().await;
    // Four proofs at once on one prover thread keep one core busy, however many there are.
    let one = cores_used_proving(&world, 1).await;
    eprintln!("one prover thread: {one:.2} cores busy");
    assert!(one < 1.3, "one prover thread kept {one:.2} cores busy");
    // The control: on a machine with more cores, two threads keep two of them busy (so the
    // measure above would have seen proving escape its thread).
    if cores >= 2 {
        let two = cores_used_proving(&world, 2).await;
        eprintln!("two prover threads: {two:.2} cores busy");
        assert!(
            two > 1.4,
            "two prover threads kept only {two:.2} cores busy"
        );
    }
}

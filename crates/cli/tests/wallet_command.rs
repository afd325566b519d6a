//! `nullgate wallet new`, `deposit`, `status`, `balance`, `exit`, `finalize` and `secrets` on
//! the embedded chain, as a user runs them after an operator's `nullgate vault deploy`; the
//! wallet encrypted under a passphrase from an environment variable.

use std::path::Path;
use std::process::Command;

mod common;
use common::{json_of, nullgate};

const PASSPHRASE_ENV: &str = "NULLGATE_TEST_PASSPHRASE";

/// `nullgate wallet <verb>` on the snapshot, from dev account 1, with the wallet in `dir`
/// and its passphrase in [`PASSPHRASE_ENV`].
fn wallet(dir: &Path, verb: &str) -> Command {
    let mut command = nullgate();
    command
        .env(PASSPHRASE_ENV, "correct horse battery")
        .args(["wallet", verb, "--dev-account", "1"])
        .args(["--passphrase-env", PASSPHRASE_ENV])
        .arg("--snapshot")
        .arg(dir.join("chain.json"))
        .arg("--wallet")
        .arg(dir.join("wallet"));
    command
}

/// Runs `command`, which must fail; its standard error.
fn failure(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn new_deposit_status_and_the_anonymity_threshold() {
    let dir = std::env::temp_dir().join(format!("nullgate-wallet-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let deployed = json_of(
        nullgate()
            .args(["vault", "deploy", "--json", "--min-deposit", "1000"])
            .args(["--preset", "dev", "--exit-window", "2"])
            .arg("--snapshot")
            .arg(dir.join("chain.json"))
            .arg("--state-key")
            .arg(dir.join("state-key.hex")),
    );
    let vault = deployed["address"].as_str().unwrap().to_string();

    let out = wallet(&dir, "new")
        .args(["--vault", &vault])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Encrypted at rest: without the passphrase, or with another, nothing opens.
    let file = std::fs::read_to_string(dir.join("wallet/wallet.json")).unwrap();
    assert!(
        file.contains("\"sealed\"") && !file.contains("\"notes\""),
        "{file}"
    );
    let mut bare = nullgate();
    bare.args(["wallet", "status", "--snapshot"])
        .arg(dir.join("chain.json"))
        .arg("--wallet")
        .arg(dir.join("wallet"));
    let error = failure(&mut bare);
    assert!(error.contains("is encrypted"), "{error}");
    let error = failure(wallet(&dir, "status").env(PASSPHRASE_ENV, "wrong"));
    assert!(error.contains("does not open"), "{error}");
    // A second wallet in the same directory is refused.
    let error = failure(wallet(&dir, "new").args(["--vault", &vault]));
    assert!(error.contains("already"), "{error}");

    // While another process (here: this test) holds the wallet, every command is refused
    // with who holds it, and nothing changes.
    let before = std::fs::read(dir.join("wallet/wallet.json")).unwrap();
    let held = nullgate_client::wallet::Wallet::open_sealed(
        dir.join("wallet"),
        Some(&nullgate_client::wallet::Passphrase::new(
            "correct horse battery".into(),
        )),
    )
    .unwrap();
    for verb in ["status", "deposit"] {
        let mut command = wallet(&dir, verb);
        if verb == "deposit" {
            command.args(["--amount", "10000", "--notes", "3"]);
        }
        let error = failure(&mut command);
        assert!(
            error.contains(&format!(
                "in use by another nullgate process (pid {})",
                std::process::id()
            )),
            "{error}"
        );
    }
    drop(held);
    assert_eq!(
        std::fs::read(dir.join("wallet/wallet.json")).unwrap(),
        before
    );

    // Below the minimum deposit per note: refused before anything is sent or written.
    let error = failure(wallet(&dir, "deposit").args(["--amount", "2500", "--notes", "3"]));
    assert!(error.contains("minimum deposit of 1000"), "{error}");
    let status = json_of(wallet(&dir, "status").arg("--json"));
    assert_eq!(status["notes"], serde_json::json!([]));

    let status =
        json_of(wallet(&dir, "deposit").args(["--amount", "10000", "--notes", "3", "--json"]));
    let notes = status["notes"].as_array().unwrap();
    let deposits: Vec<u64> = notes
        .iter()
        .map(|n| n["deposit"].as_u64().unwrap())
        .collect();
    assert_eq!(deposits, vec![3334, 3333, 3333]);
    for (i, note) in notes.iter().enumerate() {
        assert_eq!(note["status"], "active", "{note}");
        assert_eq!(note["note_id"], i);
        assert_eq!(note["balance"], note["deposit"]);
        assert_eq!(note["index"], 0);
        assert!(note["expiry"].as_u64().unwrap() > 0);
        assert!(note["journal"].is_null());
        // Each waits its own random delay of up to an hour before its first use.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if let Some(first_use) = note["first_use"].as_u64() {
            assert!(
                first_use > now.saturating_sub(60) && first_use <= now + 3600,
                "{note}"
            );
        }
    }
    assert!(
        notes.iter().any(|n| n["first_use"].is_u64()),
        "three draws of 0 s in 3601: {notes:?}"
    );
    assert_eq!(status["balance"], 10_000);
    assert_eq!(status["anonymity_set"], 3);

    // Three notes in the vault are too few to hide among by default (8)…
    let balance = json_of(wallet(&dir, "balance").arg("--json"));
    assert_eq!(balance["spending"], "refused");
    let why = balance["why"].as_str().unwrap();
    assert!(
        why.contains("3 Active, unexpired notes") && why.contains("at least 8"),
        "{why}"
    );
    let out = wallet(&dir, "balance").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("refused: the vault has 3"), "{table}");
    // …and enough for a threshold of 3.
    let balance = json_of(wallet(&dir, "balance").args(["--json", "--min-anonymity", "3"]));
    assert_eq!(balance["spending"], "allowed");
    assert!(balance["why"].is_null());

    // The table names every note.
    let out = wallet(&dir, "status").output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        table.lines().filter(|l| l.contains("active")).count(),
        3,
        "{table}"
    );

    // `secrets` prints one line per note.
    let out = nullgate()
        .env(PASSPHRASE_ENV, "correct horse battery")
        .args(["wallet", "secrets", "--passphrase-env", PASSPHRASE_ENV])
        .arg("--wallet")
        .arg(dir.join("wallet"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secrets = String::from_utf8_lossy(&out.stdout);
    assert_eq!(secrets.lines().count(), 3);
    assert!(secrets.lines().all(|l| l.len() == 64), "{secrets}");

    // Exit note 0 without the gateway, then finalise once the 2 s window has passed.
    let recipient = "0x4242424242424242424242424242424242424242";
    let exit = ["--note", "0", "--recipient", recipient, "--max-delay", "0s"];
    let error = failure(wallet(&dir, "exit").args(exit).args(["--payout", "3335"]));
    assert!(
        error.contains("more than this exit allows (3334"),
        "{error}"
    );
    let out = wallet(&dir, "exit").args(exit).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("note 0 is exiting"));
    let status = json_of(wallet(&dir, "status").arg("--json"));
    assert_eq!(status["notes"][0]["status"], "exiting");
    assert_eq!(status["balance"], 6_666, "an Exiting note is not spendable");
    let error = failure(wallet(&dir, "exit").args(exit));
    assert!(error.contains("already on chain"), "{error}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let out = wallet(&dir, "finalize")
        .args(["--note", "0"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("paid out"));
    let status = json_of(wallet(&dir, "status").arg("--json"));
    assert_eq!(status["notes"][0]["status"], "closed");
    let error = failure(wallet(&dir, "finalize").args(["--note", "1"]));
    assert!(error.contains("not Exiting"), "{error}");

    std::fs::remove_dir_all(&dir).unwrap();
}

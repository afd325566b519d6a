//! `nullgate wallet new`, `deposit`, `status` and `balance` on the embedded chain, as a user
//! runs them after an operator's `nullgate vault deploy`.

use std::path::Path;
use std::process::Command;

mod common;
use common::{json_of, nullgate};

/// `nullgate wallet <verb>` on the snapshot, from dev account 1, with the wallet in `dir`.
fn wallet(dir: &Path, verb: &str) -> Command {
    let mut command = nullgate();
    command
        .args(["wallet", verb, "--dev-account", "1"])
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
    // A second wallet in the same directory is refused.
    let error = failure(wallet(&dir, "new").args(["--vault", &vault]));
    assert!(error.contains("already"), "{error}");

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
    }
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

    std::fs::remove_dir_all(&dir).unwrap();
}

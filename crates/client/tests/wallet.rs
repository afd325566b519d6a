//! The wallet (atomic saves, lock, backup) and the request journal (torn writes, recovery).

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
};

use nullgate_client::{
    client::add_pending_notes,
    journal::{Journal, JournalEntry, JournalError, MAX_PAYLOAD},
    wallet::{
        NoteEntry, NoteState, NoteStatus, OpenWarning, Opened, Passphrase, VaultId, Wallet,
        WalletError,
    },
};
use nullgate_zk::{Fr, curve::Scalar, schnorr::SecretKey};

const VAULT: VaultId = VaultId {
    chain_id: 31337,
    vault: [0x5f; 20],
};

/// A secret whose hex is distinctive, so that a leak would show.
fn secret(seed: u8) -> Fr {
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = seed.wrapping_mul(i as u8 + 1) ^ 0x5a;
    }
    bytes[0] = 0x12; // below p
    nullgate_zk::field::fr_from_bytes(&bytes, "test secret").unwrap()
}

/// A signed, non-genesis state.
fn signed_state(balance: u64, index: u32) -> NoteState {
    let mut key = [0u8; 32];
    key[31] = 7;
    let signature = SecretKey::from_bytes(&key)
        .unwrap()
        .sign_with_randomness(&Fr::from(u64::from(index)), &[9; 32])
        .unwrap();
    NoteState {
        balance,
        index,
        blinding: Scalar::from(123_456_789u64),
        signature: Some(signature),
        key_number: 2,
    }
}

/// A wallet in `dir` with two notes: one pending at genesis, one active with a signed state.
fn two_notes(dir: &Path) -> Wallet {
    let mut wallet = Wallet::create(dir, VAULT).unwrap();
    assert_eq!(wallet.add_note(NoteEntry::new(secret(11), 500)).unwrap(), 0);
    let mut active = NoteEntry::new(secret(22), 1000);
    active.note_id = Some(7);
    active.expiry = Some(490_000);
    active.status = NoteStatus::Active;
    active.state = signed_state(940, 3);
    assert_eq!(wallet.add_note(active).unwrap(), 1);
    wallet
}

fn open(dir: &Path) -> Opened {
    Wallet::open(dir).unwrap()
}

#[test]
fn wallet_round_trip() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("wallet");
    let notes = two_notes(&dir).notes().to_vec();

    let Opened {
        mut wallet,
        warning,
    } = open(&dir);
    assert_eq!(warning, None);
    assert_eq!(wallet.vault(), VAULT);
    assert_eq!(wallet.notes(), &notes[..]);
    assert_eq!(wallet.note(0).unwrap().state, NoteState::genesis(500));
    assert!(wallet.note(2).is_none());

    // Every change is on disk when it returns.
    wallet.set_state(1, signed_state(900, 4)).unwrap();
    wallet.set_status(0, NoteStatus::Active).unwrap();
    let expiry = wallet
        .update(0, |note| {
            note.note_id = Some(8);
            note.expiry = Some(490_024);
            note.expiry
        })
        .unwrap();
    assert_eq!(expiry, Some(490_024));
    let notes = wallet.notes().to_vec();
    drop(wallet);
    let reopened = open(&dir).wallet;
    assert_eq!(reopened.notes(), &notes[..]);
    assert_eq!(reopened.note(1).unwrap().state, signed_state(900, 4));
    // The backup holds the same bytes as the wallet.
    assert_eq!(
        fs::read(dir.join("wallet.json")).unwrap(),
        fs::read(dir.join("wallet.json.bak")).unwrap()
    );
}

#[test]
fn secrets_stay_out_of_debug_and_invariants_hold() {
    let temp = tempfile::tempdir().unwrap();
    let mut wallet = two_notes(temp.path());
    let secret_hex = hex::encode(nullgate_zk::field::fr_to_bytes(&secret(22)));
    assert!(
        fs::read_to_string(temp.path().join("wallet.json"))
            .unwrap()
            .contains(&secret_hex)
    );
    let debug = format!("{wallet:?}");
    assert!(debug.contains("balance: 940"), "{debug}");
    assert!(
        !debug.contains("secret") && !debug.contains("blinding"),
        "{debug}"
    );
    assert!(!debug.contains(&secret_hex[..16]), "{debug}");

    let before = wallet.notes().to_vec();
    assert!(matches!(
        wallet.add_note(NoteEntry::new(secret(22), 1)),
        Err(WalletError::InvalidNote { index: 2, .. })
    ));
    assert!(matches!(
        wallet.add_note(NoteEntry::new(Fr::from(0u64), 1)),
        Err(WalletError::InvalidNote { index: 2, .. })
    ));
    assert!(matches!(
        wallet.update(0, |note| note.note_id = Some(1 << 24)),
        Err(WalletError::InvalidNote { index: 0, .. })
    ));
    assert!(matches!(
        wallet.set_status(5, NoteStatus::Closed),
        Err(WalletError::NoSuchNote { index: 5, count: 2 })
    ));
    // A refused change leaves memory and disk as they were.
    assert_eq!(wallet.notes(), &before[..]);
    drop(wallet);
    assert_eq!(open(temp.path()).wallet.notes(), &before[..]);
}

#[test]
fn create_refuses_an_existing_wallet_and_open_a_missing_one() {
    let temp = tempfile::tempdir().unwrap();
    drop(two_notes(temp.path()));
    assert!(matches!(
        Wallet::create(temp.path(), VAULT),
        Err(WalletError::AlreadyExists { .. })
    ));
    let empty = temp.path().join("nothing");
    assert!(matches!(
        Wallet::open(&empty),
        Err(WalletError::NotFound { .. })
    ));
}

#[test]
fn the_lock_refuses_a_second_open_until_drop() {
    let temp = tempfile::tempdir().unwrap();
    let wallet = two_notes(temp.path());
    let error = Wallet::open(temp.path()).unwrap_err();
    match &error {
        WalletError::InUse { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
        other => panic!("expected InUse, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("is in use by another nullgate process")
            && message.contains(&format!("pid {}", std::process::id()))
            && message.contains("stop it or use another wallet"),
        "{message}"
    );
    assert!(matches!(
        Wallet::create(temp.path(), VAULT),
        Err(WalletError::InUse { .. })
    ));
    drop(wallet);
    drop(open(temp.path()));
}

/// Run by [`the_lock_refuses_another_process`] in a child process: holds the wallet named by
/// the environment until its standard input closes. Does nothing in a normal test run.
#[test]
fn child_holding_a_wallet() {
    let Some(dir) = std::env::var_os("NULLGATE_TEST_HOLD_WALLET") else {
        return;
    };
    let _wallet = Wallet::open(&dir).unwrap().wallet;
    println!("NULLGATE-WALLET-LOCKED");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_line(&mut String::new());
}

#[test]
fn the_lock_refuses_another_process() {
    let temp = tempfile::tempdir().unwrap();
    drop(two_notes(temp.path()));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holding_a_wallet",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NULLGATE_TEST_HOLD_WALLET", temp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|line| line.unwrap().contains("NULLGATE-WALLET-LOCKED")),
        "the child never locked the wallet"
    );
    match Wallet::open(temp.path()) {
        Err(WalletError::InUse { pid, .. }) => assert_eq!(pid, Some(child.id())),
        other => panic!("expected InUse, got {other:?}"),
    }
    // Closing its standard input lets the child exit, which releases the lock.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    drop(open(temp.path()));
}

#[test]
fn a_stray_temporary_is_not_the_wallet() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let notes = two_notes(dir).notes().to_vec();
    // A crash after writing the temporary, before the rename: a complete, different wallet
    // that was never committed.
    let other = tempfile::tempdir().unwrap();
    drop(Wallet::create(other.path(), VAULT).unwrap());
    fs::copy(
        other.path().join("wallet.json"),
        dir.join("wallet.json.tmp"),
    )
    .unwrap();
    fs::write(dir.join("wallet.json.bak.tmp"), b"{ torn").unwrap();

    let Opened {
        mut wallet,
        warning,
    } = open(dir);
    assert_eq!(warning, None);
    assert_eq!(wallet.notes(), &notes[..]);
    assert!(!dir.join("wallet.json.tmp").exists());
    assert!(!dir.join("wallet.json.bak.tmp").exists());
    wallet.set_status(0, NoteStatus::Active).unwrap();
    assert!(!dir.join("wallet.json.tmp").exists());
}

#[test]
fn a_corrupt_wallet_falls_back_to_the_backup() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let notes = two_notes(dir).notes().to_vec();
    let good = fs::read(dir.join("wallet.json")).unwrap();
    fs::write(dir.join("wallet.json"), &good[..good.len() / 2]).unwrap();

    let Opened { wallet, warning } = open(dir);
    assert_eq!(wallet.notes(), &notes[..]);
    let Some(OpenWarning::UsedBackup { problem }) = warning else {
        panic!("expected a warning, got {warning:?}");
    };
    assert!(problem.contains("corrupt"), "{problem}");
    // The bad file is kept aside and wallet.json is whole again.
    assert_eq!(fs::read(dir.join("wallet.json")).unwrap(), good);
    assert_eq!(
        fs::read(dir.join("wallet.json.corrupt")).unwrap(),
        &good[..good.len() / 2]
    );
    drop(wallet);
    assert_eq!(open(dir).warning, None);

    // A missing wallet.json is recovered the same way.
    fs::remove_file(dir.join("wallet.json")).unwrap();
    let Opened { wallet, warning } = open(dir);
    assert_eq!(wallet.notes(), &notes[..]);
    assert!(
        matches!(warning, Some(OpenWarning::UsedBackup { problem }) if problem.contains("missing"))
    );
    drop(wallet);

    // Both gone bad: an error that names both, and no secret in it.
    fs::write(dir.join("wallet.json"), b"not json").unwrap();
    let mut backup = good.clone();
    let secret = hex::encode(nullgate_zk::field::fr_to_bytes(&secret(22)));
    let at = good
        .windows(secret.len())
        .position(|window| window == secret.as_bytes())
        .unwrap();
    backup[at] = b'z';
    fs::write(dir.join("wallet.json.bak"), &backup).unwrap();
    let error = Wallet::open(dir).unwrap_err();
    assert!(matches!(error, WalletError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(!message.contains(&secret[1..]), "{message}");
}

#[test]
fn a_newer_format_is_refused_not_replaced() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    drop(two_notes(dir));
    let text = fs::read_to_string(dir.join("wallet.json")).unwrap();
    fs::write(
        dir.join("wallet.json"),
        text.replacen("\"version\": 1", "\"version\": 2", 1),
    )
    .unwrap();
    assert!(matches!(
        Wallet::open(dir),
        Err(WalletError::UnsupportedVersion {
            found: 2,
            supported: 1,
            ..
        })
    ));
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("wallet");
    let wallet = two_notes(&dir);
    let journal = Journal::open(wallet.journal_dir()).unwrap();
    journal.write(0, &entry(0, b"x", false)).unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&wallet.journal_dir()), 0o700);
    for file in ["wallet.json", "wallet.json.bak", "lock", "journal/0.req"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
}

fn entry(index: u32, request: &[u8], sent: bool) -> JournalEntry {
    JournalEntry {
        index,
        class_cost: 60,
        nullifier: [index as u8; 32],
        published_state: [0xa5; 64],
        request: request.to_vec(),
        sent,
    }
}

#[test]
fn journal_round_trip_mark_sent_and_clear() {
    let temp = tempfile::tempdir().unwrap();
    let journal = Journal::open(temp.path().join("journal")).unwrap();
    journal.prepare(3).unwrap();
    journal.prepare(3).unwrap();
    assert_eq!(journal.read(3).unwrap(), None);
    assert_eq!(journal.read(4).unwrap(), None);

    let first = entry(
        5,
        b"POST /v1/chat/completions HTTP/1.1\r\n\r\n{\"a\":1}",
        false,
    );
    journal.write(3, &first).unwrap();
    assert_eq!(journal.read(3).unwrap(), Some(first.clone()));
    // An unsent entry may be replaced, also by a shorter one (the tail is ignored).
    let shorter = entry(5, b"GET", false);
    journal.write(3, &shorter).unwrap();
    assert_eq!(journal.read(3).unwrap(), Some(shorter.clone()));

    journal.mark_sent(3).unwrap();
    let sent = JournalEntry {
        sent: true,
        ..shorter
    };
    assert_eq!(journal.read(3).unwrap(), Some(sent.clone()));
    journal.mark_sent(3).unwrap();
    // A sent entry is never overwritten: only a receipt or an exit settles it.
    assert!(matches!(
        journal.write(3, &entry(6, b"other", true)),
        Err(JournalError::SlotBusy { slot: 3, index: 5 })
    ));
    assert_eq!(journal.read(3).unwrap(), Some(sent));

    journal.clear(3).unwrap();
    assert_eq!(journal.read(3).unwrap(), None);
    assert!(matches!(
        journal.mark_sent(3),
        Err(JournalError::Empty { slot: 3 })
    ));
    journal.clear(9).unwrap();
    // Writing an unprepared slot prepares it.
    journal.write(9, &entry(0, b"", true)).unwrap();
    assert_eq!(journal.read(9).unwrap(), Some(entry(0, b"", true)));
    let debug = format!("{:?}", entry(1, b"secret prompt", true));
    assert!(!debug.contains("secret prompt"), "{debug}");
}

#[test]
fn a_torn_journal_write_reads_as_empty() {
    let temp = tempfile::tempdir().unwrap();
    let journal = Journal::open(temp.path()).unwrap();
    let path = temp.path().join("0.req");
    let request = vec![0x42; 1000];
    journal.write(0, &entry(1, &request, true)).unwrap();
    let good = fs::read(&path).unwrap();

    let torn: Vec<(&str, Vec<u8>)> = vec![
        ("truncated payload", good[..good.len() - 1].to_vec()),
        ("truncated header", good[..20].to_vec()),
        ("empty file", Vec::new()),
        ("flipped payload byte", flip(&good, good.len() - 10)),
        ("flipped sent byte", flip(&good, 40)),
        ("flipped checksum byte", flip(&good, 12)),
        ("flipped length byte", flip(&good, 7)),
        ("flipped magic byte", flip(&good, 0)),
        ("huge length", {
            let mut bytes = good.clone();
            bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
            bytes
        }),
    ];
    for (what, bytes) in torn {
        fs::write(&path, &bytes).unwrap();
        assert_eq!(journal.read(0).unwrap(), None, "{what}");
        assert!(journal.pending().unwrap().is_empty(), "{what}");
        // A torn entry never left the device, so the slot takes a new one.
        journal.write(0, &entry(1, b"again", true)).unwrap();
        assert_eq!(journal.read(0).unwrap(), Some(entry(1, b"again", true)));
    }
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    bytes[at] ^= 0x01;
    bytes
}

#[test]
fn pending_survives_a_reopen() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("journal");
    {
        let journal = Journal::open(&dir).unwrap();
        for slot in [10, 2, 0, 1] {
            journal.prepare(slot).unwrap();
        }
        journal.write(10, &entry(4, b"ten", true)).unwrap();
        journal.write(2, &entry(7, b"two", false)).unwrap();
        journal.write(1, &entry(1, b"one", true)).unwrap();
        journal.clear(1).unwrap();
    }
    fs::write(dir.join("notes.txt"), b"not a slot").unwrap();
    let journal = Journal::open(&dir).unwrap();
    assert_eq!(
        journal.pending().unwrap(),
        vec![(2, entry(7, b"two", false)), (10, entry(4, b"ten", true))]
    );
}

#[test]
fn an_oversized_request_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let journal = Journal::open(temp.path()).unwrap();
    let huge = entry(0, &vec![0; MAX_PAYLOAD], true);
    let error = journal.write(0, &huge).unwrap_err();
    assert!(
        matches!(error, JournalError::TooLarge { max: MAX_PAYLOAD, size } if size > MAX_PAYLOAD),
        "{error:?}"
    );
    assert!(error.to_string().contains("too large"), "{error}");
    assert_eq!(journal.read(0).unwrap(), None);
    // The largest request that fits is journalled.
    let fits = entry(0, &vec![7; MAX_PAYLOAD - 113], true);
    journal.write(0, &fits).unwrap();
    assert_eq!(journal.read(0).unwrap(), Some(fits));
}

fn passphrase(text: &str) -> Passphrase {
    Passphrase::new(text.to_owned())
}

/// Every file of the wallet directory, for "nothing changed" checks.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_file() && e.file_name() != "lock")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_sealed_wallet_hides_its_secrets_and_opens_with_its_passphrase_only() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut wallet = Wallet::create_sealed(dir, VAULT, &passphrase("correct horse")).unwrap();
    assert!(wallet.is_sealed());
    wallet.add_note(NoteEntry::new(secret(11), 500)).unwrap();
    let notes = wallet.notes().to_vec();
    drop(wallet);
    let hex_secret = hex::encode(nullgate_zk::field::fr_to_bytes(&secret(11)));
    for name in ["wallet.json", "wallet.json.bak"] {
        let text = fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.contains("\"sealed\""), "{name} is sealed");
        assert!(
            !text.contains(&hex_secret),
            "{name} does not show the secret"
        );
        assert!(
            !text.contains("\"deposit\""),
            "{name} does not show the notes"
        );
    }

    let before = files(dir);
    let none = Wallet::open(dir).unwrap_err();
    assert!(matches!(none, WalletError::NeedPassphrase { .. }), "{none}");
    assert!(none.to_string().contains("--passphrase-env"));
    let wrong = Wallet::open_sealed(dir, Some(&passphrase("battery staple"))).unwrap_err();
    assert!(
        matches!(wrong, WalletError::WrongPassphrase { .. }),
        "{wrong}"
    );
    assert!(wrong.to_string().contains("nothing was changed"));
    assert_eq!(files(dir), before, "a refused open changes nothing");

    let opened = Wallet::open_sealed(dir, Some(&passphrase("correct horse"))).unwrap();
    assert!(opened.warning.is_none());
    assert!(opened.wallet.is_sealed());
    assert_eq!(opened.wallet.notes(), &notes[..]);

    assert!(matches!(
        Wallet::create_sealed(tempfile::tempdir().unwrap().path(), VAULT, &passphrase("")),
        Err(WalletError::EmptyPassphrase)
    ));
}

#[test]
fn a_damaged_sealed_file_falls_back_to_its_backup_and_a_plain_wallet_can_be_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let notes = two_notes(dir).notes().to_vec();
    // A plaintext wallet opened with a passphrase is sealed from then on.
    let opened = Wallet::open_sealed(dir, Some(&passphrase("pass"))).unwrap();
    assert!(opened.wallet.is_sealed());
    drop(opened);
    for name in ["wallet.json", "wallet.json.bak"] {
        assert!(
            fs::read_to_string(dir.join(name))
                .unwrap()
                .contains("\"sealed\"")
        );
    }
    // Truncated: the backup is used, and says so.
    let sealed = fs::read(dir.join("wallet.json")).unwrap();
    fs::write(dir.join("wallet.json"), &sealed[..sealed.len() / 2]).unwrap();
    let opened = Wallet::open_sealed(dir, Some(&passphrase("pass"))).unwrap();
    assert!(matches!(
        opened.warning,
        Some(OpenWarning::UsedBackup { .. })
    ));
    assert_eq!(opened.wallet.notes(), &notes[..]);
    drop(opened);
    // A flipped ciphertext byte in wallet.json: the backup again.
    let text = fs::read_to_string(dir.join("wallet.json")).unwrap();
    let at = text.find("\"ciphertext\": \"").unwrap() + 15;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    fs::write(dir.join("wallet.json"), &bytes).unwrap();
    let opened = Wallet::open_sealed(dir, Some(&passphrase("pass"))).unwrap();
    assert!(matches!(
        opened.warning,
        Some(OpenWarning::UsedBackup { .. })
    ));
    assert_eq!(opened.wallet.notes(), &notes[..]);
}

#[test]
fn each_new_note_draws_its_own_first_use_delay_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut wallet = Wallet::create(dir.path(), VAULT).unwrap();
    let journal = Journal::open(wallet.journal_dir()).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let delay = std::time::Duration::from_secs(3600);
    add_pending_notes(&mut wallet, &journal, &[1_000; 16], delay).unwrap();
    let drawn: Vec<u64> = wallet
        .notes()
        .iter()
        .map(|n| n.first_use.unwrap_or(before))
        .collect();
    assert!(drawn.iter().all(|&t| t >= before && t <= before + 3600 + 5));
    let mut distinct = drawn.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 1, "one draw per note: {drawn:?}");
    // Kept in the wallet file (a restart does not draw again)...
    drop(wallet);
    let reopened = Wallet::open(dir.path()).unwrap().wallet;
    let kept: Vec<u64> = reopened
        .notes()
        .iter()
        .map(|n| n.first_use.unwrap_or(before))
        .collect();
    assert_eq!(kept, drawn);
    // ...and no delay is no delay.
    let mut wallet = reopened;
    add_pending_notes(&mut wallet, &journal, &[1_000], std::time::Duration::ZERO).unwrap();
    assert_eq!(wallet.notes()[16].first_use, None);
}

#[test]
fn a_copy_of_a_wallet_file_is_read_without_a_lock_or_a_change_and_refused_when_bad() {
    let dir = tempfile::tempdir().unwrap();
    let wallet_dir = dir.path().join("wallet");
    let mut wallet = Wallet::create_sealed(&wallet_dir, VAULT, &passphrase("pass")).unwrap();
    wallet.add_note(NoteEntry::new(secret(11), 500)).unwrap();
    let notes = wallet.notes().to_vec();
    // Read while the wallet is open and locked: a copy needs no lock.
    let copy = wallet_dir.join("wallet.json.bak");
    let before = files(&wallet_dir);
    let (vault, read) = Wallet::read_copy(&copy, Some(&passphrase("pass"))).unwrap();
    assert_eq!(vault, VAULT);
    assert_eq!(read, notes);
    assert_eq!(files(&wallet_dir), before, "reading a copy changes nothing");
    drop(wallet);

    let refused = |path: &Path, with: Option<&str>| {
        Wallet::read_copy(path, with.map(passphrase).as_ref())
            .unwrap_err()
            .to_string()
    };
    assert!(refused(&copy, None).contains("--passphrase-env"));
    let wrong = refused(&copy, Some("other"));
    assert!(
        wrong.contains("does not open with the passphrase"),
        "{wrong}"
    );
    let missing = refused(&dir.path().join("nowhere.json"), Some("pass"));
    assert!(missing.contains("is missing"), "{missing}");
    let damaged = dir.path().join("damaged.json");
    fs::write(&damaged, b"{\"version\": 1, \"vault\"").unwrap();
    let text = refused(&damaged, None);
    assert!(
        text.contains("is corrupt") && text.contains("note secrets alone"),
        "{text}"
    );
}

//! `nullgate demo` with small numbers, issue 10's acceptance:
//!
//! - its JSON summary: every call answered, every receipt verified by the client, the total
//!   charge equal to the upstream's reported usage priced by the price list (±0 credit
//!   units), no call above its class cap;
//! - after a run, the gateway's database and the log output hold nothing that links two
//!   requests or a request to a note: no timestamps, row ids, addresses, payloads or prompts,
//!   only the columns PROTOCOL.md §6 allows.

mod common;

use std::{
    collections::BTreeSet,
    io::Read,
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::nullgate;

/// The demo's arguments: 6 calls over 2 notes, 2 in flight, every second one streamed.
const DEMO: [&str; 9] = [
    "demo",
    "--calls",
    "6",
    "--notes",
    "2",
    "--concurrency",
    "2",
    "--stream-every",
    "2",
];
const CALLS: u64 = 6;
const NOTES: u64 = 2;
/// `--deposit`'s default.
const DEPOSIT: u64 = 100_000;

/// Debug logs of everything, but the arkworks constraint spans: `ark-r1cs-std` opens an
/// INFO span (target `gr1cs`) per gadget call whose fields are the whole constraint system's
/// `Debug`, so with those on the DEV setup never ends (tens of GB formatting spans).
const DEBUG_LOG: &str = "debug,gr1cs=off,r1cs=off";

/// A distinctive piece of each of the agent's prompts (`PROMPTS` in `crates/cli/src/demo.rs`).
const PROMPT_PIECES: [&str; 6] = [
    "causes of the French revolution",
    "zero-knowledge proof, for a ten year old",
    "names for a lighthouse keeper",
    "convert Celsius to Fahrenheit",
    "haiku about mixnets",
    "kilogram of feathers",
];

#[test]
fn prompt_pieces_are_the_demo_agents() {
    let source = include_str!("../src/demo.rs");
    for piece in PROMPT_PIECES {
        assert!(
            source.contains(piece),
            "{piece:?} is no longer a demo prompt"
        );
    }
}

/// What only a chat request's body holds.
const REQUEST_PAYLOAD: [&str; 2] = ["\"messages\"", "\"max_tokens\""];
/// What the example upstream's answers hold: a per-answer id and the reply's text.
const RESPONSE_PAYLOAD: [&str; 2] = ["chatcmpl-", "Example reply from"];

/// Runs `command` to its end (killing it after `limit`), its output captured.
fn run(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "`nullgate {DEMO:?}` still running after {limit:?}: {}",
                String::from_utf8_lossy(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn demo(dir: &Path, json: bool, log: Option<&str>) -> Output {
    let mut command = nullgate();
    command.args(DEMO).arg("--dir").arg(dir);
    if json {
        command.arg("--json");
    }
    match log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let out = run(&mut command, Duration::from_secs(600));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn demo_answers_receipts_and_charges_exactly_the_priced_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), true, None);
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = |key: &str| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} missing from {summary}"))
    };

    assert_eq!(summary["dev_keys"], true, "{summary}");
    assert_eq!(n("calls"), CALLS, "{summary}");
    assert_eq!(n("answered"), n("calls"), "every call answered: {summary}");
    assert_eq!(
        n("receipts_verified"),
        n("calls"),
        "every receipt verified by the client: {summary}"
    );
    assert_eq!(
        n("gateway_records"),
        n("calls"),
        "one final record per call: {summary}"
    );
    assert_eq!(n("gateway_reservations"), 0, "no lease left: {summary}");
    assert!(n("streamed") >= 1, "some calls streamed: {summary}");

    let charged = n("credits_charged");
    assert!(charged > 0, "{summary}");
    assert_eq!(
        charged,
        n("upstream_usage_priced"),
        "the charge is the upstream's usage priced, ±0 credit units: {summary}"
    );
    assert_eq!(summary["charge_equals_usage"], true, "{summary}");
    assert_eq!(
        n("calls_above_cap"),
        0,
        "no call above its class cap: {summary}"
    );

    let notes = summary["notes"].as_array().unwrap();
    assert_eq!(notes.len() as u64, NOTES, "{summary}");
    let balances: u64 = notes.iter().map(|note| note[0].as_u64().unwrap()).sum();
    assert_eq!(
        balances,
        NOTES * DEPOSIT - charged,
        "the notes hold the deposits less the charges: {summary}"
    );
    let indices: u64 = notes.iter().map(|note| note[1].as_u64().unwrap()).sum();
    assert_eq!(
        indices, CALLS,
        "each call moved one note one index on: {summary}"
    );

    let tables: BTreeSet<&str> = summary["gateway_tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for table in ["evidence", "nullifiers", "schema_version"] {
        assert!(tables.contains(table), "{summary}");
    }
}

/// The columns §6 allows in `table`, in order; `None` for a table it does not allow.
fn allowed_columns(table: &str) -> Option<&'static [&'static str]> {
    match table {
        "schema_version" => Some(&["version"]),
        "nullifiers" => Some(&["n", "x", "y", "lease_until", "receipt"]),
        "evidence" => Some(&["commitment", "secret"]),
        hourly
            if hourly.strip_prefix("retained_").is_some_and(|hour| {
                !hour.is_empty() && hour.bytes().all(|b| b.is_ascii_digit())
            }) =>
        {
            Some(&[
                "n",
                "payload_digest",
                "a_pub",
                "class_cost",
                "status",
                "content_type",
                "body",
            ])
        }
        _ => None,
    }
}

/// The ports in `127.0.0.1:<port>` the demo printed after `prefix`.
fn port_after(log: &str, prefix: &str) -> u16 {
    let start = log
        .find(prefix)
        .unwrap_or_else(|| panic!("no `{prefix}` in the log:\n{log}"))
        + prefix.len();
    let digits: String = log[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Every `127.0.0.1:<port>` in `log`.
fn ports_in(log: &str) -> BTreeSet<u16> {
    log.match_indices("127.0.0.1:")
        .filter_map(|(at, prefix)| {
            let digits: String = log[at + prefix.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Whether `text` holds `:<port>` not followed by another digit.
fn names_port(text: &str, port: u16) -> bool {
    let needle = format!(":{port}");
    text.match_indices(&needle).any(|(at, _)| {
        !text[at + needle.len()..]
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit())
    })
}

fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let word = chunk
            .iter()
            .enumerate()
            .fold(0u32, |w, (i, b)| w | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[(word >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The decimal digits of the big-endian integer `bytes` (how a field element displays).
fn decimal(bytes: &[u8]) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::new();
    while number.iter().any(|&b| b != 0) {
        let mut rest = 0u32;
        for byte in &mut number {
            let value = (rest << 8) | u32::from(*byte);
            *byte = (value / 10) as u8;
            rest = value % 10;
        }
        digits.push(b'0' + rest as u8);
    }
    digits.reverse();
    String::from_utf8(digits).unwrap()
}

fn reversed(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

/// Every way a 32-byte value could be written out in a log line.
fn renderings(value: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for bytes in [value.to_vec(), reversed(value)] {
        out.push(hex::encode(&bytes));
        out.push(decimal(&bytes));
        out.push(base64(&bytes, BASE64URL));
        out.push(base64(&bytes, BASE64));
    }
    out
}

/// A row of `nullifiers`.
struct Record {
    n: Vec<u8>,
    x: Vec<u8>,
    y: Vec<u8>,
    lease_until: Option<i64>,
    receipt: Option<Vec<u8>>,
}

struct Database {
    /// `(name, type, sql)` of everything in `sqlite_master`.
    objects: Vec<(String, String, Option<String>)>,
    nullifiers: Vec<Record>,
    evidence: i64,
    /// Every blob in every table.
    blobs: Vec<Vec<u8>>,
}

fn read_database(connection: &rusqlite::Connection) -> Database {
    let objects: Vec<(String, String, Option<String>)> = connection
        .prepare("SELECT name, type, sql FROM sqlite_master ORDER BY name")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let nullifiers = connection
        .prepare("SELECT n, x, y, lease_until, receipt FROM nullifiers")
        .unwrap()
        .query_map([], |row| {
            Ok(Record {
                n: row.get(0)?,
                x: row.get(1)?,
                y: row.get(2)?,
                lease_until: row.get(3)?,
                receipt: row.get(4)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let evidence = connection
        .query_row("SELECT count(*) FROM evidence", [], |row| row.get(0))
        .unwrap();
    let mut blobs = Vec::new();
    for (table, kind, _) in &objects {
        if kind != "table" {
            continue;
        }
        let mut statement = connection
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .unwrap();
        let width = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for column in 0..width {
                if let rusqlite::types::ValueRef::Blob(blob) = row.get_ref(column).unwrap() {
                    blobs.push(blob.to_vec());
                }
            }
        }
    }
    Database {
        objects,
        nullifiers,
        evidence,
        blobs,
    }
}

#[test]
fn gateway_database_and_logs_hold_nothing_that_links_requests() {
    let dir = tempfile::tempdir().unwrap();
    // The table, not --json: the demo then prints where each part listens.
    let out = demo(dir.path(), false, Some(DEBUG_LOG));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();

    // The files as they are on disk, before anything else opens them.
    let path = dir.path().join("gateway.sqlite");
    let mut files = vec![("gateway.sqlite", std::fs::read(&path).unwrap())];
    if let Ok(wal) = std::fs::read(dir.path().join("gateway.sqlite-wal")) {
        files.push(("gateway.sqlite-wal", wal));
    }

    let connection = rusqlite::Connection::open(&path).unwrap();
    let db = read_database(&connection);

    // Only the tables §6 allows, each with only its allowed columns, none with row ids; no
    // index, view or trigger besides.
    let mut names = BTreeSet::new();
    for (name, kind, sql) in &db.objects {
        assert_eq!(kind, "table", "{kind} {name} in the database: {sql:?}");
        let expected = allowed_columns(name)
            .unwrap_or_else(|| panic!("table {name} is not one §6 allows: {sql:?}"));
        let columns: Vec<String> = connection
            .prepare(&format!("PRAGMA table_info(\"{name}\")"))
            .unwrap()
            .query_map([], |row| row.get(1))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(columns, expected, "the columns of {name}");
        let sql = sql.as_deref().unwrap_or_default();
        assert!(
            sql.to_ascii_uppercase().contains("WITHOUT ROWID"),
            "{name} has row ids: {sql}"
        );
        assert!(
            connection
                .prepare(&format!("SELECT rowid FROM \"{name}\""))
                .is_err(),
            "{name} answers SELECT rowid"
        );
        names.insert(name.as_str());
    }
    for table in ["schema_version", "nullifiers", "evidence"] {
        assert!(names.contains(table), "no {table} table: {names:?}");
    }
    assert!(
        names.iter().any(|name| name.starts_with("retained_")),
        "no retry-window partition: {names:?}"
    );

    // After the run: every record final (a receipt, no lease time), no evidence.
    assert_eq!(db.nullifiers.len() as u64, CALLS, "one record per call");
    for record in &db.nullifiers {
        let n = hex::encode(&record.n);
        assert_eq!(
            record.lease_until, None,
            "nullifier {n} keeps its lease time"
        );
        assert!(record.receipt.is_some(), "nullifier {n} has no receipt");
    }
    assert_eq!(db.evidence, 0, "evidence kept, yet no note cheated");
    drop(connection);

    // No prompt, request payload or address in the database files.
    let relay = port_after(&log, "OHTTP relay on 127.0.0.1:");
    let proxy = port_after(&log, "proxy on http://127.0.0.1:");
    let mut ports = ports_in(&log);
    assert!(ports.contains(&relay) && ports.contains(&proxy));
    ports.insert(relay);
    ports.insert(proxy);
    for (file, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        for piece in PROMPT_PIECES {
            assert!(!text.contains(piece), "{file} holds a prompt: {piece:?}");
        }
        for payload in REQUEST_PAYLOAD {
            assert!(
                !text.contains(payload),
                "{file} holds a request payload ({payload})"
            );
        }
        for address in ["127.0.0.1", "localhost"] {
            assert!(
                !text.contains(address),
                "{file} holds an address: {address}"
            );
        }
        for port in &ports {
            assert!(!names_port(&text, *port), "{file} holds the port :{port}");
        }
    }
    for blob in &db.blobs {
        assert!(
            !blob.windows(4).any(|w| w == [127, 0, 0, 1]),
            "a stored value holds 127.0.0.1 as bytes: {}",
            hex::encode(blob)
        );
    }

    // The log: no prompt, no stored value (nullifiers first), no credential, no receipt.
    for piece in PROMPT_PIECES {
        assert!(!log.contains(piece), "the log holds a prompt: {piece:?}");
    }
    for payload in REQUEST_PAYLOAD.iter().chain(&RESPONSE_PAYLOAD) {
        assert!(
            !log.contains(payload),
            "the log holds a payload ({payload})"
        );
    }
    let lower = log.to_ascii_lowercase();
    for Record {
        n, x, y, receipt, ..
    } in &db.nullifiers
    {
        for rendering in renderings(n) {
            assert!(
                !lower.contains(&rendering.to_ascii_lowercase()),
                "the log names the nullifier {} as {rendering}",
                hex::encode(n)
            );
        }
        for value in [x, y] {
            assert!(
                !lower.contains(&hex::encode(value)),
                "the log names a share"
            );
        }
        let receipt = receipt.as_deref().unwrap_or_default();
        for encoded in [base64(receipt, BASE64URL), base64(receipt, BASE64)] {
            assert!(
                !log.contains(&encoded[..43]),
                "the log holds a receipt: {encoded}"
            );
        }
        assert!(
            !lower.contains(&hex::encode(receipt)),
            "the log holds a receipt"
        );
    }
    for blob in db.blobs.iter().filter(|blob| blob.len() >= 16) {
        assert!(
            !lower.contains(&hex::encode(blob)),
            "the log holds a stored value: {}",
            hex::encode(blob)
        );
    }
    assert!(
        !lower.contains("authorization"),
        "the log holds an authorization header"
    );
    assert!(
        !log.contains("NullGate "),
        "the log holds a NullGate credential"
    );
    assert!(
        !lower.contains("nullgate-receipt"),
        "the log holds a nullgate-receipt value"
    );
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The gateway's lease (`Limits::default`, PROTOCOL.md §6: 10 min): a reservation's
/// `lease_until` is its time plus this.
const LEASE_SECONDS: u64 = 600;

/// Where `bytes` hold a Unix time in `times`: as decimal text, or as a 4- or 8-byte
/// big-endian integer (how SQLite records an INTEGER of that size).
fn times_in(bytes: &[u8], times: &std::ops::RangeInclusive<u64>) -> Vec<(usize, u64)> {
    let mut found = Vec::new();
    for at in 0..bytes.len() {
        let rest = &bytes[at..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        let starts_number = at == 0 || !bytes[at - 1].is_ascii_digit();
        if starts_number && digits == 10 {
            let value: u64 = std::str::from_utf8(&rest[..10]).unwrap().parse().unwrap();
            if times.contains(&value) {
                found.push((at, value));
            }
        }
        if let Some(word) = rest.first_chunk::<4>() {
            let value = u64::from(u32::from_be_bytes(*word));
            if times.contains(&value) {
                found.push((at, value));
            }
        }
        if let Some(word) = rest.first_chunk::<8>() {
            let value = u64::from_be_bytes(*word);
            if times.contains(&value) {
                found.push((at, value));
            }
        }
    }
    found
}

/// No second-precise time in the gateway's files: not a lease end (a superseded cell is
/// zeroed), not the upstream's `created` (coarsened to the hour, which the partition names
/// tell anyway; a start of an hour is therefore not a finding).
#[test]
fn gateway_files_hold_no_request_time() {
    let dir = tempfile::tempdir().unwrap();
    let start = unix_now();
    demo(dir.path(), true, None);
    let end = unix_now();
    // The run's seconds (request times) and those plus the lease (lease ends).
    let during = start.saturating_sub(2)..=end + 2;
    let lease_ends = start + LEASE_SECONDS - 2..=end + LEASE_SECONDS + 2;
    let mut findings = Vec::new();
    for file in ["gateway.sqlite", "gateway.sqlite-wal"] {
        let Ok(bytes) = std::fs::read(dir.path().join(file)) else {
            continue;
        };
        for (what, times) in [("request times", &during), ("lease ends", &lease_ends)] {
            let mut found = times_in(&bytes, times);
            found.retain(|(_, time)| time % 3600 != 0);
            if !found.is_empty() {
                findings.push(format!(
                    "{file}: {} {what} ({times:?}), at (offset, time) {:?}",
                    found.len(),
                    &found[..found.len().min(4)]
                ));
            }
        }
    }
    assert!(findings.is_empty(), "{}", findings.join("\n"));
}

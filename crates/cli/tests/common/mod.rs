//! What the CLI tests share: the binary under test and running it for its JSON.

#![allow(dead_code)] // each test file uses its own part

use std::{
    path::PathBuf,
    process::{Child, Command},
};

/// A base port with the next `count - 1` ports free too (checked by binding them).
pub(crate) fn free_ports(count: u16) -> u16 {
    for _ in 0..50 {
        let base: u16 = 20_000 + rand::random::<u16>() % 30_000;
        let held: Vec<_> = (0..count)
            .filter_map(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).ok())
            .collect();
        if held.len() == usize::from(count) {
            return base;
        }
    }
    panic!("no free ports");
}

/// A sample's value in the Prometheus text served at `http://{address}/metrics`.
pub(crate) async fn metric(address: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// An empty directory for one test's files, `nullgate-{name}-{pid}` in the system's
/// temporary directory.
pub(crate) fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nullgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The `nullgate` binary cargo built for these tests.
pub(crate) fn nullgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nullgate"))
}

/// Runs `command`, which must succeed, and parses its standard output as JSON.
pub(crate) fn json_of(command: &mut Command) -> serde_json::Value {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Child processes, killed when the test ends however it ends.
pub(crate) struct Children(pub(crate) Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// anvil from `$NULLGATE_ANVIL` or `contracts/node_modules` (installed by `.ci/run`).
pub(crate) fn anvil_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NULLGATE_ANVIL") {
        return Some(PathBuf::from(path));
    }
    let npm =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/node_modules/.bin/anvil");
    npm.exists().then_some(npm)
}

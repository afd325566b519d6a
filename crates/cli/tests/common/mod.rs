//! What the CLI tests share: the binary under test and running it for its JSON.

#![allow(dead_code)] // each test file uses its own part

use std::process::Command;

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

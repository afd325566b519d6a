//! ABI bindings generated from the committed artifacts (`contracts/artifacts/*.json`).
//!
//! `forge build` writes them and `.ci/run` fails when they differ from a fresh build, so the
//! Rust side always speaks to exactly the bytecode the Foundry tests ran.

#![allow(missing_docs, unreachable_pub)]

alloy::sol!(
    /// The note vault (PROTOCOL §2, §3, §8).
    #[derive(Debug, PartialEq, Eq)]
    NoteVault,
    "../../contracts/artifacts/NoteVault.json"
);

alloy::sol!(
    /// The Groth16 verifier of the exit circuit, generated from the DEV exit key.
    #[derive(Debug)]
    ExitVerifier,
    "../../contracts/artifacts/ExitVerifier.json"
);

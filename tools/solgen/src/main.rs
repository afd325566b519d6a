//! `nullgate-solgen`: writes nullgate's generated Solidity, never copied by hand.
//!
//! - `poseidon [--contracts DIR]` writes `DIR/src/generated/Poseidon.sol` (the on-chain
//!   Poseidon, PROTOCOL §1) and `DIR/test/generated/PoseidonVectors.sol` (reference outputs of
//!   `light-poseidon` for the Foundry tests). `DIR` defaults to the repository's `contracts/`.
//! - `exit-verifier [--contracts DIR]` writes `DIR/src/generated/ExitVerifier.sol`, the exit
//!   circuit's verifier under the DEV keys of `nullgate-zk`, and `DIR/test/generated/ExitProof.sol`
//!   (a real exit proof the Foundry tests verify on the EVM).
//! - `verifier --vk FILE --name NAME --out FILE.sol` renders a Groth16 verifier from an
//!   arkworks verifying key (compressed serialisation, bare or in a `nullgate-zk` key file)
//!   with `taceo-groth16-sol`, and prints the key's pinned hash.
//!
//! CI (`.ci/steps/20-contracts.sh`) reruns the generator and fails if the committed files
//! differ.

mod exit;
mod poseidon;
mod verifier;

use std::path::PathBuf;
use std::process::ExitCode;

/// How many pseudo-random cases per width the vectors file holds (case 0 is all `p − 1`).
const VECTOR_CASES: usize = 8;

const USAGE: &str = "usage:
  nullgate-solgen poseidon [--contracts DIR]
  nullgate-solgen exit-verifier [--contracts DIR]
  nullgate-solgen verifier --vk FILE --name CONTRACT --out FILE.sol";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("nullgate-solgen: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let (command, rest) = args.split_first().ok_or("no subcommand")?;
    let options = Options::parse(rest)?;
    let contracts = || {
        options
            .get("--contracts")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts"))
    };
    match command.as_str() {
        "poseidon" => {
            options.only(&["--contracts"])?;
            let contracts = contracts();
            write(
                &contracts.join("src/generated/Poseidon.sol"),
                &poseidon::render_library(),
            )?;
            write(
                &contracts.join("test/generated/PoseidonVectors.sol"),
                &poseidon::render_vectors(VECTOR_CASES),
            )
        }
        "exit-verifier" => {
            options.only(&["--contracts"])?;
            let contracts = contracts();
            let key = exit::dev_key()?;
            write(
                &contracts.join("src/generated/ExitVerifier.sol"),
                &exit::render_verifier(&key)?,
            )?;
            write(
                &contracts.join("test/generated/ExitProof.sol"),
                &exit::render_proof_fixture(&key)?,
            )?;
            println!(
                "DEV exit verifying key hash: {}",
                verifier::key_hash(&exit::verifying_key_bytes(&key))
            );
            Ok(())
        }
        "verifier" => {
            options.only(&["--vk", "--name", "--out"])?;
            let vk_path = options.require("--vk")?;
            let file = std::fs::read(vk_path).map_err(|e| format!("reading {vk_path}: {e}"))?;
            let body = verifier::key_body(&file)?;
            let source = verifier::render(body, options.require("--name")?, "verifier")?;
            write(&PathBuf::from(options.require("--out")?), &source)?;
            println!(
                "verifying key hash (PROTOCOL §11, the vault's pinned hash): {}",
                verifier::key_hash(body)
            );
            Ok(())
        }
        other => Err(format!("unknown subcommand {other:?}")),
    }
}

fn write(path: &std::path::Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `--name value` pairs, each name at most once.
struct Options(Vec<(String, String)>);

impl Options {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut iter = args.iter();
        while let Some(name) = iter.next() {
            if !name.starts_with("--") {
                return Err(format!("unexpected argument {name:?}"));
            }
            let value = iter.next().ok_or(format!("{name} needs a value"))?;
            if pairs.iter().any(|(n, _)| n == name) {
                return Err(format!("{name} given twice"));
            }
            pairs.push((name.clone(), value.clone()));
        }
        Ok(Self(pairs))
    }

    fn only(&self, allowed: &[&str]) -> Result<(), String> {
        match self.0.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            Some((n, _)) => Err(format!("unknown option {n}")),
            None => Ok(()),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, String> {
        self.get(name).ok_or(format!("missing {name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed generated files are what the generator writes today.
    #[test]
    fn committed_poseidon_files_are_current() {
        let contracts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
        let cases = [
            ("src/generated/Poseidon.sol", poseidon::render_library()),
            (
                "test/generated/PoseidonVectors.sol",
                poseidon::render_vectors(VECTOR_CASES),
            ),
        ];
        for (path, fresh) in cases {
            let committed = std::fs::read_to_string(contracts.join(path)).unwrap_or_default();
            assert!(
                committed == fresh,
                "contracts/{path} is stale: run `cargo run -p nullgate-solgen -- poseidon`"
            );
        }
    }

    /// The committed exit verifier and proof fixture are what the DEV exit key gives today.
    #[test]
    fn committed_exit_files_are_current() {
        let contracts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
        let key = exit::dev_key().unwrap();
        let cases = [
            (
                "src/generated/ExitVerifier.sol",
                exit::render_verifier(&key).unwrap(),
            ),
            (
                "test/generated/ExitProof.sol",
                exit::render_proof_fixture(&key).unwrap(),
            ),
        ];
        for (path, fresh) in cases {
            let committed = std::fs::read_to_string(contracts.join(path)).unwrap_or_default();
            assert!(
                committed == fresh,
                "contracts/{path} is stale: run `cargo run -p nullgate-solgen -- exit-verifier`"
            );
        }
    }

    #[test]
    fn verifier_command_writes_the_contract_from_a_key_file() {
        let dir = std::env::temp_dir().join(format!("solgen-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vk = dir.join("exit.vk");
        let out = dir.join("ExitVerifier.sol");
        let body = verifier::tests::throwaway_vk_bytes();
        std::fs::write(&vk, &body).unwrap();
        let arg = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let args = [
            "verifier".to_string(),
            "--vk".to_string(),
            arg(&vk),
            "--name".to_string(),
            "ExitVerifier".to_string(),
            "--out".to_string(),
            arg(&out),
        ];
        run(&args).unwrap();
        let written = std::fs::read_to_string(&out).unwrap();
        assert!(written.contains("contract ExitVerifier {"));
        assert!(written.contains(&verifier::key_hash(&body)));
        std::fs::write(&vk, b"not a key").unwrap();
        assert!(run(&args).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_reject_unknown_repeated_and_dangling() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(Options::parse(&s(&["--vk", "a", "--vk", "b"])).is_err());
        assert!(Options::parse(&s(&["--vk"])).is_err());
        assert!(Options::parse(&s(&["vk"])).is_err());
        let o = Options::parse(&s(&["--vk", "a"])).unwrap();
        assert!(o.only(&["--out"]).is_err());
        assert_eq!(o.require("--vk").unwrap(), "a");
        assert!(run(&s(&["nope"])).is_err());
    }
}

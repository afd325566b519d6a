//! Keys for nullgate's circuits: the deterministic DEV setup and loading key files.
//!
//! A DEV setup derives each circuit's toxic waste from a public seed, so anyone can forge
//! proofs under DEV keys: they exist for local chains and tests, and say so in their file
//! header and on chain (`devKeys`, PROTOCOL §2). Production keys come from a multi-party
//! ceremony (not in this version).

use sha2::{Digest, Sha256};

use crate::{
    Error,
    groth16::{CircuitKind, ProverKey, key_file_kind},
    sample::{self, SampleVault},
};

/// The default DEV seed (`nullgate setup --dev` without `--seed`): public, so that anyone can
/// reproduce the DEV keys and the verifier generated from them.
pub const DEV_SEED: [u8; 32] = *b"nullgate/v1/dev-seed\0\0\0\0\0\0\0\0\0\0\0\n";

/// The circuits a DEV setup produces keys for, in the order `nullgate setup` writes them.
pub const CIRCUITS: [CircuitKind; 3] = [
    CircuitKind::Request,
    CircuitKind::Exit,
    CircuitKind::RlnReference,
];

/// The DEV key of `kind`, from the master `seed` (each circuit gets its own derived seed).
pub fn dev_setup(kind: CircuitKind, seed: &[u8; 32]) -> Result<ProverKey, Error> {
    let circuit_seed: [u8; 32] = Sha256::new()
        .chain_update(b"nullgate/v1/dev-setup")
        .chain_update(kind.name().as_bytes())
        .chain_update(seed)
        .finalize()
        .into();
    match kind {
        CircuitKind::Request => ProverKey::dev_setup(kind, request_sample(), circuit_seed),
        CircuitKind::Exit => ProverKey::dev_setup(kind, exit_sample(), circuit_seed),
        CircuitKind::RlnReference => {
            ProverKey::dev_setup(kind, sample::rln_reference(), circuit_seed)
        }
    }
}

/// Loads a proving key file of any of the circuits (the header names it). With
/// `pinned_hash` equal to the key's hash it loads without subgroup checks.
pub fn load_prover_key(bytes: &[u8], pinned_hash: Option<&[u8; 32]>) -> Result<ProverKey, Error> {
    match key_file_kind(bytes)? {
        CircuitKind::Request => ProverKey::from_file_bytes(bytes, request_sample(), pinned_hash),
        CircuitKind::Exit => ProverKey::from_file_bytes(bytes, exit_sample(), pinned_hash),
        CircuitKind::RlnReference => {
            ProverKey::from_file_bytes(bytes, sample::rln_reference(), pinned_hash)
        }
    }
}

fn request_sample() -> crate::circuit::request::RequestCircuit {
    let vault = SampleVault::new(0);
    vault.request(&vault.genesis(), 1)
}

fn exit_sample() -> crate::circuit::exit::ExitCircuit {
    SampleVault::new(0).exit(1, 1, 1).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_setup_is_deterministic_and_files_load() {
        let first = dev_setup(CircuitKind::RlnReference, &[9; 32]).unwrap();
        let second = dev_setup(CircuitKind::RlnReference, &[9; 32]).unwrap();
        let other = dev_setup(CircuitKind::RlnReference, &[8; 32]).unwrap();
        assert_eq!(first.to_file_bytes(), second.to_file_bytes());
        assert_ne!(first.to_file_bytes(), other.to_file_bytes());
        let loaded = load_prover_key(&first.to_file_bytes(), None).unwrap();
        assert_eq!(loaded.kind(), CircuitKind::RlnReference);
        assert_eq!(
            loaded.verifier_key().key_hash(),
            first.verifier_key().key_hash()
        );
        assert!(load_prover_key(b"NULLGATE-KEY v1 proving nonsense DEV\n", None).is_err());
    }
}

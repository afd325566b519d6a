//! The harness the behavioural suite runs on: the embedded chain, or anvil started on
//! 127.0.0.1 by the test, both with finality two blocks below the head.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use alloy::node_bindings::{Anvil, AnvilInstance};
use nullgate_chain::{
    Address, DevChain, EmbeddedLedger, ExitArgs, Finality, KeyHashes, Ledger, RpcLedger, Vault,
    VaultParams, dev_signers, embedded::EmbeddedConfig,
};
use nullgate_zk::{
    Fr,
    circuit::exit::{ExitCircuit, ExitPublic, ExitWitness},
    curve::Scalar,
    groth16::CircuitKind,
    groth16::ProverKey,
    keys::{DEV_SEED, dev_setup},
    note::Note,
    schnorr::SecretKey,
    state::StateValue,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Blocks below the head that are final, on both chains.
pub const FINALITY_DEPTH: u64 = 2;

/// One chain under test.
pub struct Harness {
    pub ledger: Arc<dyn Ledger>,
    pub dev: Arc<dyn DevChain>,
    pub name: &'static str,
    /// The embedded chain itself, when this harness is one.
    pub embedded: Option<Arc<EmbeddedLedger>>,
    /// anvil's URL, when this harness is anvil.
    pub endpoint: Option<String>,
    _anvil: Option<AnvilInstance>,
}

impl Harness {
    /// The in-process chain.
    pub fn embedded() -> Self {
        let chain = Arc::new(EmbeddedLedger::with_config(EmbeddedConfig {
            finality_depth: FINALITY_DEPTH,
            ..EmbeddedConfig::default()
        }));
        Self {
            ledger: chain.clone(),
            dev: chain.clone(),
            name: "embedded",
            embedded: Some(chain),
            endpoint: None,
            _anvil: None,
        }
    }

    /// anvil from `contracts/node_modules` (or `$NULLGATE_ANVIL`). Tests that call it are
    /// marked ignored when the build found no anvil (`build.rs`); here it must be there.
    pub fn anvil() -> Self {
        let path = anvil_path().expect(
            "anvil was found at build time but not now: run `npm ci` in contracts/ or set NULLGATE_ANVIL",
        );
        // `--slots-in-an-epoch 1`: anvil's `finalized` block is two below the head.
        let anvil = Anvil::at(path).args(["--slots-in-an-epoch", "1"]).spawn();
        let ledger = RpcLedger::connect(
            anvil.endpoint().as_str(),
            dev_signers(10),
            Finality::FinalizedTag,
        )
        .expect("anvil's endpoint is a valid URL");
        let ledger = Arc::new(ledger);
        Self {
            ledger: ledger.clone(),
            dev: ledger,
            name: "anvil",
            embedded: None,
            endpoint: Some(anvil.endpoint()),
            _anvil: Some(anvil),
        }
    }

    /// Account `i` of the dev accounts.
    pub fn account(&self, i: usize) -> Address {
        self.ledger.accounts()[i]
    }

    /// Mines enough blocks for everything so far to be final.
    pub async fn finalize_all(&self) {
        self.dev.mine(FINALITY_DEPTH).await.expect("mining");
    }
}

fn anvil_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NULLGATE_ANVIL") {
        return Some(PathBuf::from(path));
    }
    let npm =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/node_modules/.bin/anvil");
    npm.exists().then_some(npm)
}

/// The DEV keys (exit proving key and the four pinned hashes), set up once per test binary.
pub struct Keys {
    pub exit: ProverKey,
    pub hashes: KeyHashes,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let request = dev_setup(CircuitKind::Request, &DEV_SEED).expect("request DEV setup");
        let exit = dev_setup(CircuitKind::Exit, &DEV_SEED).expect("exit DEV setup");
        let hashes = KeyHashes::of(&request, &exit).expect("key hashes");
        Keys { exit, hashes }
    })
}

/// The gateway's state key of the test vaults (`PK_1`).
pub fn state_key() -> SecretKey {
    SecretKey::random(&mut ChaCha20Rng::seed_from_u64(7))
}

/// A vault with the DEV parameters, operated (and treasured) by account 0.
pub async fn deploy(harness: &Harness) -> Vault {
    let params = VaultParams::dev(keys().hashes, state_key().public_key(), harness.account(0));
    Vault::deploy(harness.ledger.clone(), harness.account(0), &params)
        .await
        .expect("deploying the vault")
}

/// A fresh note secret.
pub fn secret(seed: u64) -> Fr {
    Fr::from(0x5ec7_0000u64 + seed)
}

/// The exit of a note never spent (its genesis state), declaring `count` requests.
pub fn genesis_exit(
    dom: Fr,
    note: Note,
    payout: u64,
    recipient: Address,
    count: u32,
) -> (ExitArgs, ExitPublic) {
    let witness = ExitWitness {
        note,
        state: StateValue::new(note.deposit, 0, note.note_id).expect("a valid state"),
        blinding: Scalar::from(0u64),
        signature: None,
        request_count: count,
    };
    let (circuit, public) = ExitCircuit::new(
        dom,
        &state_key().public_key(),
        VaultParams::dev(keys().hashes, state_key().public_key(), Address::ZERO).max_class_cost(),
        payout,
        recipient.into_array(),
        &witness,
    )
    .expect("a consistent exit witness");
    let proof = keys()
        .exit
        .prove(
            circuit,
            &mut ChaCha20Rng::seed_from_u64(u64::from(note.note_id)),
        )
        .expect("proving the exit");
    (ExitArgs::new(&public, 1, &proof), public)
}

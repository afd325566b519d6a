//! Sample statements: a small vault with a gateway key and a few notes, and honest request,
//! exit and reference circuits over it. Used by the benchmarks, by key setup (which needs one
//! instance of each circuit) and by tests. Secrets here are fixed and public: never use them
//! for real notes.

use rand::SeedableRng;

use crate::{
    Fr,
    circuit::{
        exit::{ExitCircuit, ExitPublic, ExitWitness},
        request::{RequestCircuit, RequestPublic, RequestWitness},
        rln_reference::RlnReferenceCircuit,
    },
    curve::Scalar,
    derive,
    note::Note,
    schnorr::{PublicKey, SecretKey},
    state::{self, StateValue},
    tree::NoteTree,
};

/// The deterministic generator the sample vault draws from.
pub type Rng = rand_chacha::ChaCha20Rng;

/// A vault (chain 31337) with a gateway state key and five notes; the sample note is
/// `note_id` 3.
pub struct SampleVault {
    /// `dom` of the sample vault.
    pub dom: Fr,
    /// The gateway's state key.
    pub key: SecretKey,
    /// Its public key.
    pub public_key: PublicKey,
    /// The note tree with the five notes.
    pub tree: NoteTree,
    /// The sample note (`note_id` 3).
    pub note: Note,
    /// The randomness for signatures.
    pub rng: Rng,
}

impl SampleVault {
    /// A vault whose randomness (keys, signatures) comes from `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let dom = derive::dom(31337, &[7u8; 20]);
        let key = SecretKey::random(&mut rng);
        let public_key = key.public_key();
        let mut tree = NoteTree::new();
        let mut notes = Vec::new();
        for note_id in 0..5u32 {
            notes.push(Note {
                secret: Fr::from(1000 + u64::from(note_id) * 7919),
                note_id,
                deposit: 10_000 + u64::from(note_id),
                expiry: 500_000,
            });
        }
        tree.extend(&notes.iter().map(Note::leaf).collect::<Vec<_>>())
            .expect("sample values are valid");
        Self {
            dom,
            key,
            public_key,
            tree,
            note: notes[3],
            rng,
        }
    }

    /// The genesis witness of the fixture's note.
    pub fn genesis(&self) -> RequestWitness {
        RequestWitness {
            note: self.note,
            path: self
                .tree
                .path(self.note.note_id)
                .expect("sample values are valid"),
            state: StateValue::new(self.note.deposit, 0, self.note.note_id)
                .expect("sample values are valid"),
            blinding: Scalar::from(0u64),
            signature: None,
        }
    }

    /// A signed state `(B, m, r)` of the fixture's note, as the gateway would sign it.
    pub fn signed(&mut self, balance: u64, index: u32) -> RequestWitness {
        let state =
            StateValue::new(balance, index, self.note.note_id).expect("sample values are valid");
        let blinding = Scalar::from(0x5eedu64) * Scalar::from(u64::from(index) + 3);
        let commitment = state::commit(&state, &blinding);
        let signature = self
            .key
            .sign(&derive::state_hash(&self.dom, &commitment), &mut self.rng);
        RequestWitness {
            note: self.note,
            path: self
                .tree
                .path(self.note.note_id)
                .expect("sample values are valid"),
            state,
            blinding,
            signature: Some(signature),
        }
    }

    /// The request circuit for `witness` at hour 450,000 with the derived request key.
    pub fn request(&self, witness: &RequestWitness, class_cost: u64) -> RequestCircuit {
        self.request_with_public(witness, class_cost).0
    }

    /// The request circuit and its public inputs.
    pub fn request_with_public(
        &self,
        witness: &RequestWitness,
        class_cost: u64,
    ) -> (RequestCircuit, RequestPublic) {
        let epk = derive::request_signing_key(&witness.note.secret, witness.state.index());
        RequestCircuit::new(
            self.dom,
            self.tree.root(),
            &self.public_key,
            class_cost,
            450_000,
            derive::share_x(&epk.verifying_key()),
            witness,
        )
        .expect("sample witnesses are consistent")
    }

    /// An exit of the sample note from a signed state at `index`, declaring `count` requests.
    pub fn exit(&mut self, index: u32, count: u32, payout: u64) -> (ExitCircuit, ExitPublic) {
        let witness = self.signed(7_000, index);
        ExitCircuit::new(
            self.dom,
            &self.public_key,
            5_000,
            payout,
            [0xab; 20],
            &ExitWitness {
                note: witness.note,
                state: witness.state,
                blinding: witness.blinding,
                signature: witness.signature,
                request_count: count,
            },
        )
        .expect("sample witnesses are consistent")
    }
}

/// The plain depth-20 RLN reference statement.
pub fn rln_reference() -> RlnReferenceCircuit {
    let siblings = core::array::from_fn(|i| Fr::from(i as u64 * 3 + 1));
    RlnReferenceCircuit::sample(Fr::from(99u64), 12345, siblings, Fr::from(5u64))
}

//! The exit circuit (PROTOCOL §8).
//!
//! Public: `dom, note_id, C, D, PK.x, PK.y, C_max, P, recipient, N_n, x_e, y_e`, in that
//! order (`recipient` as a 160-bit integer). Private: `k`, the state `(B, m, r)` with its
//! genesis flag or signature, and the declared request count `n`.
//!
//! The statement: `k ≠ 0`, `C = H(T_ID, k)`; a valid state of this note (genesis, or signed
//! under `PK`) opened as the request circuit opens it, whose packed `note_id` is the public
//! one; `m ≤ n < 2^32`; `P ≤ B − (n − m)·C_max` and `P ≤ D`, each a range-checked difference;
//! and the RLN share at index `n` with abscissa `x_e`. `recipient` is bound by being a
//! public input (the contract passes an `address`, so it is below `2^160` by type).

use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use super::state::{StateAssignment, open_state};
use crate::{
    Error, Fr,
    constants::{T_ID, T_NULL, T_RLN},
    curve::{AffinePoint, Scalar},
    derive,
    field::fr_from_address,
    gadget::{FrVar, bits::enforce_bits, ecc::PointVar, poseidon::hash},
    note::Note,
    rln,
    schnorr::{PublicKey, Signature},
    state::StateValue,
};

/// The public inputs of an exit proof, typed; [`ExitPublic::to_field_elements`] fixes the
/// order the on-chain verifier uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExitPublic {
    /// `dom` of the vault.
    pub dom: Fr,
    /// The note's position.
    pub note_id: u32,
    /// The note's commitment `C`.
    pub commitment: Fr,
    /// The deposit `D`.
    pub deposit: u64,
    /// The state key the state is signed under.
    pub public_key: AffinePoint,
    /// `C_max`, the largest cost class.
    pub max_class_cost: u64,
    /// The payout `P`.
    pub payout: u64,
    /// The address paid.
    pub recipient: [u8; 20],
    /// `N_n`, the nullifier at the declared count `n`.
    pub nullifier: Fr,
    /// `x_e = H(T_EXIT, dom)`.
    pub exit_x: Fr,
    /// `y_e = k + a_n·x_e`.
    pub exit_y: Fr,
}

impl ExitPublic {
    /// Number of public field elements.
    pub const LEN: usize = 12;

    /// The public inputs in PROTOCOL §8's order.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        vec![
            self.dom,
            Fr::from(self.note_id),
            self.commitment,
            Fr::from(self.deposit),
            self.public_key.x,
            self.public_key.y,
            Fr::from(self.max_class_cost),
            Fr::from(self.payout),
            fr_from_address(&self.recipient),
            self.nullifier,
            self.exit_x,
            self.exit_y,
        ]
    }
}

/// What a client knows when it exits.
#[derive(Clone, Debug)]
pub struct ExitWitness {
    /// The note.
    pub note: Note,
    /// Its last state `(B, m)`.
    pub state: StateValue,
    /// The state's blinding.
    pub blinding: Scalar,
    /// The gateway's signature on the state, `None` for the genesis state.
    pub signature: Option<Signature>,
    /// The declared request count `n ≥ m`.
    pub request_count: u32,
}

/// The exit circuit with its raw assignment.
#[derive(Clone, Debug)]
pub struct ExitCircuit {
    pub(crate) assignment: ExitAssignment,
}

#[derive(Clone, Debug)]
pub(crate) struct ExitAssignment {
    pub(crate) dom: Fr,
    pub(crate) note_id: Fr,
    pub(crate) commitment: Fr,
    pub(crate) deposit: Fr,
    pub(crate) public_key: AffinePoint,
    pub(crate) max_class_cost: Fr,
    pub(crate) payout: Fr,
    pub(crate) recipient: Fr,
    pub(crate) nullifier: Fr,
    pub(crate) exit_x: Fr,
    pub(crate) exit_y: Fr,
    pub(crate) secret: Fr,
    pub(crate) state: StateAssignment,
    pub(crate) request_count: Fr,
}

impl ExitCircuit {
    /// Builds the exit circuit and its public inputs. Fails if the payout exceeds what the
    /// statement allows or the witness is inconsistent.
    pub fn new(
        dom: Fr,
        public_key: &PublicKey,
        max_class_cost: u64,
        payout: u64,
        recipient: [u8; 20],
        witness: &ExitWitness,
    ) -> Result<(Self, ExitPublic), Error> {
        let note = &witness.note;
        let state = &witness.state;
        if witness.request_count < state.index() {
            return Err(Error::Unsatisfied("exit (state or request count)"));
        }
        let owed = u128::from(witness.request_count - state.index()) * u128::from(max_class_cost);
        if u128::from(payout) + owed > u128::from(state.balance()) || payout > note.deposit {
            return Err(Error::Unsatisfied("exit (payout too large)"));
        }
        let state_assignment = StateAssignment::new(
            "exit (state)",
            &dom,
            public_key,
            note,
            state,
            &witness.blinding,
            witness.signature.as_ref(),
        )?;
        let exit_x = derive::exit_x(&dom);
        let slope = rln::slope(&dom, &note.secret, witness.request_count);
        let share = rln::share(&note.secret, &slope, exit_x);
        let public = ExitPublic {
            dom,
            note_id: note.note_id,
            commitment: note.commitment(),
            deposit: note.deposit,
            public_key: public_key.0.affine(),
            max_class_cost,
            payout,
            recipient,
            nullifier: rln::nullifier(&slope),
            exit_x,
            exit_y: share.y,
        };
        let assignment = ExitAssignment {
            dom,
            note_id: Fr::from(note.note_id),
            commitment: public.commitment,
            deposit: Fr::from(note.deposit),
            public_key: public.public_key,
            max_class_cost: Fr::from(max_class_cost),
            payout: Fr::from(payout),
            recipient: fr_from_address(&recipient),
            nullifier: public.nullifier,
            exit_x,
            exit_y: share.y,
            secret: note.secret,
            state: state_assignment,
            request_count: Fr::from(witness.request_count),
        };
        Ok((Self { assignment }, public))
    }
}

impl ConstraintSynthesizer<Fr> for ExitCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let a = &self.assignment;
        let input = |value: Fr| FrVar::new_input(cs.clone(), || Ok(value));
        let witness = |value: Fr| FrVar::new_witness(cs.clone(), || Ok(value));

        // Public inputs, in PROTOCOL §8's order.
        let dom = input(a.dom)?;
        let note_id = input(a.note_id)?;
        let commitment = input(a.commitment)?;
        let deposit = input(a.deposit)?;
        let public_key = PointVar::input(cs.clone(), a.public_key)?;
        let max_class_cost = input(a.max_class_cost)?;
        let payout = input(a.payout)?;
        let _recipient = input(a.recipient)?;
        let nullifier = input(a.nullifier)?;
        let exit_x = input(a.exit_x)?;
        let exit_y = input(a.exit_y)?;

        let secret = witness(a.secret)?;
        let request_count = witness(a.request_count)?;

        // k ≠ 0 and C = H(T_ID, k).
        secret.enforce_not_equal(&FrVar::zero())?;
        hash(T_ID, std::slice::from_ref(&secret))?.enforce_equal(&commitment)?;

        // A valid state of this note: the packed note_id is the public one.
        let state = open_state(&cs, &a.state, &dom, &note_id, &deposit, &public_key)?;

        // n ≥ m, n − m < 2^32, n < 2^32.
        enforce_bits(&request_count, 32)?;
        let unpaid = &request_count - &state.index;
        enforce_bits(&unpaid, 32)?;

        // P ≤ B − (n − m)·C_max and P ≤ D, as range-checked differences: with B, D, P,
        // C_max < 2^64 and n − m < 2^32 a negative difference is a field element far above
        // 2^64, so it has no 64-bit decomposition.
        enforce_bits(&deposit, 64)?;
        enforce_bits(&max_class_cost, 64)?;
        enforce_bits(&payout, 64)?;
        let owed = &unpaid * &max_class_cost;
        enforce_bits(&(&state.balance - &owed - &payout), 64)?;
        enforce_bits(&(&deposit - &payout), 64)?;

        // The RLN share at index n with the constant abscissa x_e.
        let slope = hash(T_RLN, &[dom, secret.clone(), request_count])?;
        hash(T_NULL, std::slice::from_ref(&slope))?.enforce_equal(&nullifier)?;
        slope.mul_equals(&exit_x, &(exit_y - secret))?;
        Ok(())
    }
}

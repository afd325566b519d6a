//! The request circuit (PROTOCOL §7).
//!
//! Public: `dom, root, PK.x, PK.y, C_c, t, N, x, y, A_pub.x, A_pub.y`, in that order.
//! Private: `k, note_id, D, expiry, path, B, m, r, is_genesis, σ = (R, s), ε`.

use ark_r1cs_std::{alloc::AllocVar, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystemRef, SynthesisError};

use super::state::{StateAssignment, open_state};
use crate::{
    Error, Fr,
    constants::{SCALAR_BITS, T_ID, T_LEAF, T_NULL, T_RLN, TREE_DEPTH},
    curve::{AffinePoint, Scalar, scalar_to_fr},
    derive,
    gadget::{
        FrVar,
        bits::enforce_bits,
        ecc::{FixedBase, PointVar, fixed_base_sum},
        merkle,
        poseidon::hash,
    },
    note::Note,
    rln,
    schnorr::{PublicKey, Signature},
    state::{self as native_state, StateValue},
    tree::MerklePath,
};

/// The public inputs of a request proof, typed. [`RequestPublic::to_field_elements`] is the
/// one place that fixes their order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RequestPublic {
    /// `dom` of the vault.
    pub dom: Fr,
    /// A finalised root of the note tree.
    pub root: Fr,
    /// The state key `PK_i` the state is signed under (the current key for genesis).
    pub public_key: AffinePoint,
    /// The cost class `C_c`: the most this request may cost.
    pub class_cost: u64,
    /// `t`: the hour of the newest finalised block.
    pub hour: u32,
    /// `N`: the nullifier of this index.
    pub nullifier: Fr,
    /// `x`, derived from the request key.
    pub share_x: Fr,
    /// `y = k + a·x`.
    pub share_y: Fr,
    /// `A_pub = A + ε·H`.
    pub published_state: AffinePoint,
}

impl RequestPublic {
    /// Number of public field elements.
    pub const LEN: usize = 11;

    /// The public inputs in PROTOCOL §7's order, points as `x` then `y`.
    pub fn to_field_elements(&self) -> Vec<Fr> {
        vec![
            self.dom,
            self.root,
            self.public_key.x,
            self.public_key.y,
            Fr::from(self.class_cost),
            Fr::from(self.hour),
            self.nullifier,
            self.share_x,
            self.share_y,
            self.published_state.x,
            self.published_state.y,
        ]
    }
}

/// What a client knows when it proves request `m` of a note.
#[derive(Clone, Debug)]
pub struct RequestWitness {
    /// The note.
    pub note: Note,
    /// Its path under `root`.
    pub path: MerklePath,
    /// The current state `(B, m)`.
    pub state: StateValue,
    /// The blinding `r` of the current state.
    pub blinding: Scalar,
    /// The gateway's signature on the state, `None` for the genesis state.
    pub signature: Option<Signature>,
}

/// The request circuit with its raw assignment.
#[derive(Clone, Debug)]
pub struct RequestCircuit {
    pub(crate) assignment: RequestAssignment,
}

/// Every value the circuit allocates, as field elements and points.
#[derive(Clone, Debug)]
pub(crate) struct RequestAssignment {
    pub(crate) dom: Fr,
    pub(crate) root: Fr,
    pub(crate) public_key: AffinePoint,
    pub(crate) class_cost: Fr,
    pub(crate) hour: Fr,
    pub(crate) nullifier: Fr,
    pub(crate) share_x: Fr,
    pub(crate) share_y: Fr,
    pub(crate) published_state: AffinePoint,
    pub(crate) secret: Fr,
    pub(crate) note_id: Fr,
    pub(crate) deposit: Fr,
    pub(crate) expiry: Fr,
    pub(crate) siblings: [Fr; TREE_DEPTH],
    pub(crate) state: StateAssignment,
    pub(crate) epsilon: Fr,
}

impl RequestCircuit {
    /// Builds the circuit for request `m = witness.state.index()` and derives its public
    /// inputs: `ε_m`, `A_pub`, the share `(x, y)` for `share_x`, and `N`.
    ///
    /// Fails if the witness is inconsistent (wrong note position, a signature that does not
    /// verify, a state that cannot pay `class_cost`): a client must not send such a proof.
    pub fn new(
        dom: Fr,
        root: Fr,
        public_key: &PublicKey,
        class_cost: u64,
        hour: u32,
        share_x: Fr,
        witness: &RequestWitness,
    ) -> Result<(Self, RequestPublic), Error> {
        let note = &witness.note;
        let state = &witness.state;
        if witness.path.root(&note.leaf(), note.note_id) != root {
            return Err(Error::Unsatisfied("request (leaf not under root)"));
        }
        if state.balance() < class_cost || note.expiry < hour {
            return Err(Error::Unsatisfied("request (balance or expiry)"));
        }
        let state_assignment = StateAssignment::new(
            "request (state)",
            &dom,
            public_key,
            note,
            state,
            &witness.blinding,
            witness.signature.as_ref(),
        )?;
        let commitment = native_state::commit(state, &witness.blinding);
        let epsilon = derive::rerandomiser(&note.secret, state.index());
        let published_state = native_state::rerandomise(&commitment, &epsilon);
        let slope = rln::slope(&dom, &note.secret, state.index());
        let share = rln::share(&note.secret, &slope, share_x);
        let public = RequestPublic {
            dom,
            root,
            public_key: public_key.0.affine(),
            class_cost,
            hour,
            nullifier: rln::nullifier(&slope),
            share_x,
            share_y: share.y,
            published_state,
        };
        let assignment = RequestAssignment {
            dom,
            root,
            public_key: public.public_key,
            class_cost: Fr::from(class_cost),
            hour: Fr::from(hour),
            nullifier: public.nullifier,
            share_x,
            share_y: share.y,
            published_state,
            secret: note.secret,
            note_id: Fr::from(note.note_id),
            deposit: Fr::from(note.deposit),
            expiry: Fr::from(note.expiry),
            siblings: witness.path.siblings,
            state: state_assignment,
            epsilon: scalar_to_fr(&epsilon),
        };
        Ok((Self { assignment }, public))
    }
}

impl ConstraintSynthesizer<Fr> for RequestCircuit {
    fn generate_constraints(self, cs: ConstraintSystemRef<Fr>) -> Result<(), SynthesisError> {
        let a = &self.assignment;
        let input = |value: Fr| FrVar::new_input(cs.clone(), || Ok(value));
        let witness = |value: Fr| FrVar::new_witness(cs.clone(), || Ok(value));

        // Public inputs, in PROTOCOL §7's order.
        let dom = input(a.dom)?;
        let root = input(a.root)?;
        let public_key = PointVar::input(cs.clone(), a.public_key)?;
        let class_cost = input(a.class_cost)?;
        let hour = input(a.hour)?;
        let nullifier = input(a.nullifier)?;
        let share_x = input(a.share_x)?;
        let share_y = input(a.share_y)?;
        let published_state = PointVar::input(cs.clone(), a.published_state)?;

        let secret = witness(a.secret)?;
        let note_id = witness(a.note_id)?;
        let deposit = witness(a.deposit)?;
        let expiry = witness(a.expiry)?;
        let siblings = a
            .siblings
            .iter()
            .map(|s| witness(*s))
            .collect::<Result<Vec<_>, _>>()?;

        // Items 3, 4 and the state ranges of item 5 (shared with the exit circuit).
        let state = open_state(&cs, &a.state, &dom, &note_id, &deposit, &public_key)?;

        // Item 1: k ≠ 0, C = H(T_ID, k), L = H(T_LEAF, note_id, C, D, expiry) at position
        // note_id under root; the path directions are the note_id bits of v.
        secret.enforce_not_equal(&FrVar::zero())?;
        let commitment = hash(T_ID, std::slice::from_ref(&secret))?;
        let leaf = hash(
            T_LEAF,
            &[note_id, commitment, deposit.clone(), expiry.clone()],
        )?;
        merkle::root(&leaf, &state.note_id_bits, &siblings)?.enforce_equal(&root)?;

        // Item 2: expiry ≥ t, with t, expiry < 2^32.
        enforce_bits(&hour, 32)?;
        enforce_bits(&expiry, 32)?;
        enforce_bits(&(&expiry - &hour), 32)?;

        // Item 5: B ≥ C_c, with D, C_c < 2^64.
        enforce_bits(&deposit, 64)?;
        enforce_bits(&class_cost, 64)?;
        enforce_bits(&(&state.balance - &class_cost), 64)?;

        // Item 6: A_pub = A + ε·H.
        let epsilon = witness(a.epsilon)?;
        let epsilon_bits = enforce_bits(&epsilon, SCALAR_BITS)?;
        fixed_base_sum(Some(state.commitment), &[(FixedBase::h(), &epsilon_bits)])?
            .enforce_equal(&published_state)?;

        // Item 7: a = H(T_RLN, dom, k, m), N = H(T_NULL, a), y = k + a·x.
        let slope = hash(T_RLN, &[dom, secret.clone(), state.index])?;
        hash(T_NULL, std::slice::from_ref(&slope))?.enforce_equal(&nullifier)?;
        slope.mul_equals(&share_x, &(share_y - secret))?;
        Ok(())
    }
}

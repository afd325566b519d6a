//! The state opening shared by the request and exit circuits (PROTOCOL §7 items 3, 4, 5).

use ark_r1cs_std::{alloc::AllocVar, boolean::Boolean, eq::EqGadget, fields::FieldVar};
use ark_relations::gr1cs::{ConstraintSystemRef, SynthesisError};

use crate::{
    Error, Fr,
    constants::{SCALAR_BITS, T_STATE, TREE_DEPTH},
    curve::{AffinePoint, Scalar, scalar_to_fr},
    derive,
    gadget::{
        FrVar,
        bits::enforce_bits,
        ecc::{FixedBase, PointVar, fixed_base_sum},
        poseidon::hash,
        schnorr::{self, SignatureVar},
    },
    note::Note,
    schnorr::{PublicKey, Signature},
    state::{self as native_state, StateValue},
};

/// The raw values of a state opening: `(B, m, r)`, the genesis flag and the signature.
#[derive(Clone, Debug)]
pub(crate) struct StateAssignment {
    pub(crate) balance: Fr,
    pub(crate) index: Fr,
    pub(crate) blinding: Fr,
    /// 1 for a genesis state, 0 otherwise (any other value must be rejected).
    pub(crate) is_genesis: Fr,
    pub(crate) signature_r: AffinePoint,
    pub(crate) signature_s: Fr,
}

impl StateAssignment {
    /// Checks a state natively the way the circuit will (a genesis state is `(D, 0, 0)`; any
    /// other carries a signature under `public_key` on `H(T_STATE, dom, A.x, A.y)`) and lays
    /// it out for the circuit. `circuit` names the circuit in the error.
    pub(crate) fn new(
        circuit: &'static str,
        dom: &Fr,
        public_key: &PublicKey,
        note: &Note,
        state: &StateValue,
        blinding: &Scalar,
        signature: Option<&Signature>,
    ) -> Result<Self, Error> {
        if state.note_id() != note.note_id {
            return Err(Error::Unsatisfied(circuit));
        }
        let is_genesis = match signature {
            None => {
                if state.index() != 0
                    || state.balance() != note.deposit
                    || *blinding != Scalar::from(0u64)
                {
                    return Err(Error::Unsatisfied(circuit));
                }
                Fr::from(1u64)
            }
            Some(signature) => {
                let commitment = native_state::commit(state, blinding);
                crate::schnorr::verify(
                    public_key,
                    &derive::state_hash(dom, &commitment),
                    signature,
                )?;
                Fr::from(0u64)
            }
        };
        let identity = AffinePoint::new_unchecked(Fr::from(0u64), Fr::from(1u64));
        Ok(Self {
            balance: Fr::from(state.balance()),
            index: Fr::from(state.index()),
            blinding: scalar_to_fr(blinding),
            is_genesis,
            signature_r: signature.map_or(identity, |s| s.r.affine()),
            signature_s: signature.map_or(Fr::from(0u64), |s| scalar_to_fr(&s.s)),
        })
    }
}

/// The state opening as circuit variables.
pub(crate) struct StateVars {
    pub(crate) balance: FrVar,
    pub(crate) index: FrVar,
    pub(crate) note_id_bits: Vec<Boolean<Fr>>,
    pub(crate) commitment: PointVar,
}

/// Opens `A = v·G + r·H` with `v = B + 2^64·m + 2^96·note_id` (item 3), enforces the genesis
/// rule or the signature under `public_key` on `H(T_STATE, dom, A.x, A.y)` (item 4), and the
/// ranges `B < 2^64`, `m < 2^32 − 1`, `note_id < 2^24` (item 5).
pub(crate) fn open_state(
    cs: &ConstraintSystemRef<Fr>,
    assignment: &StateAssignment,
    dom: &FrVar,
    note_id: &FrVar,
    deposit: &FrVar,
    public_key: &PointVar,
) -> Result<StateVars, SynthesisError> {
    let witness = |value: Fr| FrVar::new_witness(cs.clone(), || Ok(value));
    let balance = witness(assignment.balance)?;
    let index = witness(assignment.index)?;
    let blinding = witness(assignment.blinding)?;
    let is_genesis = witness(assignment.is_genesis)?;

    // Item 5: ranges. The bits of B, m and note_id are the bits of v.
    let balance_bits = enforce_bits(&balance, 64)?;
    let index_bits = enforce_bits(&index, 32)?;
    index.enforce_not_equal(&FrVar::constant(Fr::from(u32::MAX)))?;
    let note_id_bits = enforce_bits(note_id, TREE_DEPTH)?;
    let blinding_bits = enforce_bits(&blinding, SCALAR_BITS)?;

    // Item 3: A = v·G + r·H, one running sum over both bases.
    let value_bits = [balance_bits, index_bits, note_id_bits.clone()].concat();
    let commitment = fixed_base_sum(
        None,
        &[
            (FixedBase::g(), &value_bits),
            (FixedBase::h(), &blinding_bits),
        ],
    )?;

    // Item 4: is_genesis is boolean (through `signed` below); genesis means m = 0, B = D,
    // r = 0.
    is_genesis.mul_equals(&index, &FrVar::zero())?;
    is_genesis.mul_equals(&(&balance - deposit), &FrVar::zero())?;
    is_genesis.mul_equals(&blinding, &FrVar::zero())?;
    // Otherwise the signature verifies. `signed` is a boolean equal to 1 − is_genesis, which
    // makes is_genesis boolean too.
    let signed = Boolean::new_witness(cs.clone(), || Ok(assignment.is_genesis == Fr::from(0u64)))?;
    FrVar::from(signed.clone()).enforce_equal(&(FrVar::one() - &is_genesis))?;
    let message = hash(
        T_STATE,
        &[dom.clone(), commitment.x.clone(), commitment.y.clone()],
    )?;
    let signature = SignatureVar {
        r: PointVar::witness(cs.clone(), Some(assignment.signature_r))?,
        s: witness(assignment.signature_s)?,
    };
    schnorr::verify(public_key, &message, &signature, &signed)?;

    Ok(StateVars {
        balance,
        index,
        note_id_bits,
        commitment,
    })
}

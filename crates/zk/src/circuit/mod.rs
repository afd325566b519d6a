//! The circuits: the request circuit (PROTOCOL §7), the exit circuit (§8) and a plain
//! depth-20 RLN circuit used only as a same-run benchmark reference.
//!
//! Each circuit holds a raw *assignment* (field elements and points, exactly what is
//! allocated) built from typed values by a constructor that computes everything the
//! statement derives. Public inputs have a typed struct with one conversion to the ordered
//! field elements a verifier needs. Negative tests take an honest assignment, break one item
//! of the statement, and assert that the constraint system is unsatisfied.

pub mod exit;
pub mod request;
pub mod rln_reference;
mod state;
#[cfg(test)]
mod tests;

use ark_relations::gr1cs::{ConstraintSynthesizer, ConstraintSystem};

use crate::{Error, Fr};

/// Whether `circuit` is satisfied by its own assignment (a debugging and testing aid; the
/// prover checks the same before proving).
pub fn is_satisfied<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<bool, Error> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    circuit
        .generate_constraints(cs.clone())
        .map_err(|e| Error::Synthesis(e.to_string()))?;
    cs.is_satisfied()
        .map_err(|e| Error::Synthesis(e.to_string()))
}

/// The number of constraints of `circuit` (after inlining, as the prover sees it).
pub fn constraint_count<C: ConstraintSynthesizer<Fr>>(circuit: C) -> Result<usize, Error> {
    let cs = ConstraintSystem::<Fr>::new_ref();
    cs.set_optimization_goal(ark_relations::gr1cs::OptimizationGoal::Constraints);
    circuit
        .generate_constraints(cs.clone())
        .map_err(|e| Error::Synthesis(e.to_string()))?;
    cs.finalize();
    Ok(cs.num_constraints())
}

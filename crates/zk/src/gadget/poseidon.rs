//! The circom Poseidon permutation as constraints: twin of [`crate::poseidon`].
//!
//! The S-box `x^5` costs three constraints; linear layers cost none. An S-box applied to a
//! constant (the tag and the zero capacity element in the first round) costs nothing.

use ark_r1cs_std::fields::FieldVar;
use ark_relations::gr1cs::SynthesisError;

use super::FrVar;
use crate::{Fr, poseidon::parameters};

/// circomlibjs `poseidon(inputs)` in-circuit: returns state element 0.
pub fn poseidon(inputs: &[FrVar]) -> Result<FrVar, SynthesisError> {
    let params = parameters(inputs.len() + 1);
    let width = params.width;
    let mut state = Vec::with_capacity(width);
    state.push(FrVar::zero());
    state.extend_from_slice(inputs);
    let half = params.full_rounds / 2;
    let rounds = params.full_rounds + params.partial_rounds;
    for round in 0..rounds {
        for (i, element) in state.iter_mut().enumerate() {
            *element += params.ark[round * width + i];
        }
        let full = round < half || round >= half + params.partial_rounds;
        let sboxed = if full { width } else { 1 };
        for element in state.iter_mut().take(sboxed) {
            *element = sbox(element)?;
        }
        state = (0..width)
            .map(|i| {
                state
                    .iter()
                    .zip(&params.mds[i])
                    .fold(FrVar::zero(), |acc, (s, m)| acc + s * *m)
            })
            .collect();
    }
    Ok(state.swap_remove(0))
}

/// The tagged hash `H(tag, inputs…)` in-circuit: twin of [`crate::poseidon::hash`].
pub fn hash(tag: u64, inputs: &[FrVar]) -> Result<FrVar, SynthesisError> {
    let mut all = Vec::with_capacity(inputs.len() + 1);
    all.push(FrVar::constant(Fr::from(tag)));
    all.extend_from_slice(inputs);
    poseidon(&all)
}

fn sbox(x: &FrVar) -> Result<FrVar, SynthesisError> {
    let x2 = x.square()?;
    let x4 = x2.square()?;
    Ok(x4 * x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poseidon::vectors::{ONE_TWO_THREE, ONES, fr};
    use ark_r1cs_std::{GR1CSVar, alloc::AllocVar};
    use ark_relations::gr1cs::ConstraintSystem;
    use ark_std::UniformRand;
    use rand::SeedableRng;

    #[test]
    fn gadget_matches_circomlibjs_vectors_and_native() {
        let cs = ConstraintSystem::<Fr>::new_ref();
        for (n, expected) in ONES.iter().enumerate() {
            let inputs: Vec<FrVar> = (0..=n)
                .map(|_| FrVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap())
                .collect();
            assert_eq!(poseidon(&inputs).unwrap().value().unwrap(), fr(expected));
        }
        let inputs: Vec<FrVar> = (1..=2u64)
            .map(|i| FrVar::new_witness(cs.clone(), || Ok(Fr::from(i + 1))).unwrap())
            .collect();
        assert_eq!(
            hash(1, &inputs).unwrap().value().unwrap(),
            fr(ONE_TWO_THREE)
        );
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for n in 1..=6 {
            let values: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let vars: Vec<FrVar> = values
                .iter()
                .map(|v| FrVar::new_witness(cs.clone(), || Ok(*v)).unwrap())
                .collect();
            assert_eq!(
                hash(9, &vars).unwrap().value().unwrap(),
                crate::poseidon::hash(9, &values)
            );
        }
        assert!(cs.is_satisfied().unwrap());
    }

    #[test]
    fn a_wrong_output_is_unsatisfied() {
        use ark_r1cs_std::eq::EqGadget;
        let cs = ConstraintSystem::<Fr>::new_ref();
        let input = FrVar::new_witness(cs.clone(), || Ok(Fr::from(1u64))).unwrap();
        let claimed = FrVar::new_input(cs.clone(), || Ok(fr(ONES[0]) + Fr::from(1u64))).unwrap();
        poseidon(&[input]).unwrap().enforce_equal(&claimed).unwrap();
        assert!(!cs.is_satisfied().unwrap());
    }

    #[test]
    fn constraint_costs() {
        // The tag and the capacity element are constants: their first S-boxes are free.
        for (inputs, expected) in [(2usize, 237usize), (3, 258), (4, 294), (5, 318), (6, 351)] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let vars: Vec<FrVar> = (0..inputs - 1)
                .map(|_| FrVar::new_witness(cs.clone(), || Ok(Fr::from(3u64))).unwrap())
                .collect();
            let _digest = hash(1, &vars).unwrap();
            assert_eq!(cs.num_constraints(), expected, "width {}", inputs + 1);
        }
    }
}

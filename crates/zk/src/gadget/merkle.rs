//! The note-tree path in-circuit: twin of [`crate::tree::MerklePath::root`].

use ark_r1cs_std::boolean::Boolean;
use ark_relations::gr1cs::SynthesisError;

use super::{FrVar, poseidon::hash};
use crate::{Fr, constants::T_NODE};

/// The root reached from `leaf` with the given position bits (least significant first: bit
/// `i` set means the node at level `i` is a right child) and siblings. One constraint per
/// level for the swap, plus the node hash.
pub fn root(
    leaf: &FrVar,
    position_bits: &[Boolean<Fr>],
    siblings: &[FrVar],
) -> Result<FrVar, SynthesisError> {
    assert_eq!(position_bits.len(), siblings.len(), "one bit per level");
    let mut current = leaf.clone();
    for (bit, sibling) in position_bits.iter().zip(siblings) {
        // delta = bit·(sibling − current): left = current + delta, right = sibling − delta.
        let delta = FrVar::from(bit.clone()) * (sibling - &current);
        let left = &current + &delta;
        let right = sibling - &delta;
        current = hash(T_NODE, &[left, right])?;
    }
    Ok(current)
}

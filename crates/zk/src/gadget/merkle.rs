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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{constants::TREE_DEPTH, gadget::bits::enforce_bits, tree::NoteTree};
    use ark_r1cs_std::{GR1CSVar, alloc::AllocVar};
    use ark_relations::gr1cs::ConstraintSystem;

    #[test]
    fn gadget_root_matches_native_at_the_boundaries() {
        let leaves: Vec<Fr> = (0..9u64).map(|i| Fr::from(i * i + 5)).collect();
        let mut tree = NoteTree::new();
        tree.extend(&leaves).unwrap();
        for position in [0u32, 1, 7, 8] {
            let cs = ConstraintSystem::<Fr>::new_ref();
            let path = tree.path(position).unwrap();
            let leaf = FrVar::new_witness(cs.clone(), || Ok(leaves[position as usize])).unwrap();
            let id = FrVar::new_witness(cs.clone(), || Ok(Fr::from(position))).unwrap();
            let bits = enforce_bits(&id, TREE_DEPTH).unwrap();
            let siblings: Vec<FrVar> = path
                .siblings
                .iter()
                .map(|s| FrVar::new_witness(cs.clone(), || Ok(*s)).unwrap())
                .collect();
            let root = root(&leaf, &bits, &siblings).unwrap();
            assert_eq!(root.value().unwrap(), tree.root(), "position {position}");
            assert!(cs.is_satisfied().unwrap());
        }
    }
}

//! The note tree: a sparse binary Poseidon Merkle tree of depth 24 (PROTOCOL §3).
//!
//! Leaf position is `note_id`; bit `i` of `note_id` (least significant first) is the direction
//! at level `i`. Empty leaves are 0 and empty subtrees `Z_{i+1} = H(T_NODE, Z_i, Z_i)`, so only
//! the filled part of each level is stored. Leaves are appended in `note_id` order (the order
//! of finalised `NoteDeposited` events); [`NoteTree::extend`] recomputes each touched node once
//! and records the new root in the history.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::{
    Error, Fr,
    constants::{T_NODE, TREE_DEPTH},
    poseidon::hash,
};

/// `H(T_NODE, left, right)`.
pub fn node(left: &Fr, right: &Fr) -> Fr {
    hash(T_NODE, &[*left, *right])
}

/// `Z_0 … Z_24`: the roots of empty subtrees of each height.
pub fn empty_roots() -> &'static [Fr; TREE_DEPTH + 1] {
    static EMPTY: OnceLock<[Fr; TREE_DEPTH + 1]> = OnceLock::new();
    EMPTY.get_or_init(|| {
        let mut out = [Fr::from(0u64); TREE_DEPTH + 1];
        for i in 0..TREE_DEPTH {
            out[i + 1] = node(&out[i], &out[i]);
        }
        out
    })
}

/// An authentication path: the sibling at each level, leaf level first.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MerklePath {
    /// Siblings from the leaf level up.
    pub siblings: [Fr; TREE_DEPTH],
}

impl MerklePath {
    /// The root this path leads to from `leaf` at `position`.
    pub fn root(&self, leaf: &Fr, position: u32) -> Fr {
        let mut current = *leaf;
        for (level, sibling) in self.siblings.iter().enumerate() {
            current = if (position >> level) & 1 == 0 {
                node(&current, sibling)
            } else {
                node(sibling, &current)
            };
        }
        current
    }
}

/// The append-only note tree with the history of its roots.
#[derive(Clone, Debug)]
pub struct NoteTree {
    /// `levels[0]` are the leaves, `levels[i]` the filled nodes of height `i`.
    levels: Vec<Vec<Fr>>,
    roots: Vec<Fr>,
}

impl Default for NoteTree {
    fn default() -> Self {
        Self::new()
    }
}

impl NoteTree {
    /// An empty tree; its root `Z_24` is the first in the history.
    pub fn new() -> Self {
        Self {
            levels: vec![Vec::new(); TREE_DEPTH + 1],
            roots: vec![empty_roots()[TREE_DEPTH]],
        }
    }

    /// How many leaves the tree holds (the next `note_id`).
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether no leaf was appended yet.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The current root.
    pub fn root(&self) -> Fr {
        *self
            .roots
            .last()
            .expect("the history starts with the empty root")
    }

    /// Every root this tree has had, oldest first (one per [`NoteTree::extend`]).
    pub fn roots(&self) -> &[Fr] {
        &self.roots
    }

    /// Whether `root` is one of this tree's roots (old roots stay valid for membership).
    pub fn has_root(&self, root: &Fr) -> bool {
        self.roots.contains(root)
    }

    /// The leaf at `note_id`.
    pub fn leaf(&self, note_id: u32) -> Option<Fr> {
        self.levels[0].get(note_id as usize).copied()
    }

    /// Appends leaves in `note_id` order and records the new root.
    pub fn extend(&mut self, leaves: &[Fr]) -> Result<Fr, Error> {
        if self.len() + leaves.len() > 1 << TREE_DEPTH {
            return Err(Error::Tree("the tree is full (2^24 notes)"));
        }
        let mut first_dirty = self.len();
        self.levels[0].extend_from_slice(leaves);
        for height in 0..TREE_DEPTH {
            let (below, above) = self.levels.split_at_mut(height + 1);
            let children = &below[height];
            let parents = &mut above[0];
            let parent_start = first_dirty / 2;
            let parent_end = children.len().div_ceil(2);
            parents.truncate(parent_start);
            let empty = empty_roots()[height];
            // Nodes of one level are independent: hash them on every core.
            let fresh: Vec<Fr> = (parent_start..parent_end)
                .into_par_iter()
                .map(|parent| {
                    let left = children[2 * parent];
                    let right = children.get(2 * parent + 1).copied().unwrap_or(empty);
                    node(&left, &right)
                })
                .collect();
            parents.extend(fresh);
            first_dirty = parent_start;
        }
        let root = self.levels[TREE_DEPTH]
            .first()
            .copied()
            .unwrap_or(empty_roots()[TREE_DEPTH]);
        self.roots.push(root);
        Ok(root)
    }

    /// The authentication path of the leaf at `note_id`, under the current root.
    pub fn path(&self, note_id: u32) -> Result<MerklePath, Error> {
        if note_id as usize >= self.len() {
            return Err(Error::Tree("no leaf at that note_id"));
        }
        let mut siblings = [Fr::from(0u64); TREE_DEPTH];
        for (height, sibling) in siblings.iter_mut().enumerate() {
            let index = ((note_id >> height) ^ 1) as usize;
            *sibling = self.levels[height]
                .get(index)
                .copied()
                .unwrap_or(empty_roots()[height]);
        }
        Ok(MerklePath { siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense reference: hashes a full bottom level of 2^depth leaves up to the root.
    fn dense_root(leaves: &[Fr]) -> Fr {
        let mut level: Vec<Fr> = leaves.to_vec();
        level.resize(16, Fr::from(0u64));
        while level.len() > 1 {
            level = level.chunks(2).map(|p| node(&p[0], &p[1])).collect();
        }
        // Lift the 16-leaf subtree (height 4) to height 24 along the left edge.
        let mut root = level[0];
        for height in 4..TREE_DEPTH {
            root = node(&root, &empty_roots()[height]);
        }
        root
    }

    #[test]
    fn matches_a_dense_computation_and_paths_verify() {
        let leaves: Vec<Fr> = (1..=11u64).map(Fr::from).collect();
        let mut tree = NoteTree::new();
        assert_eq!(tree.root(), empty_roots()[TREE_DEPTH]);
        tree.extend(&leaves[..3]).unwrap();
        assert_eq!(tree.root(), dense_root(&leaves[..3]));
        tree.extend(&leaves[3..]).unwrap();
        assert_eq!(tree.root(), dense_root(&leaves));
        // One at a time gives the same root.
        let mut single = NoteTree::new();
        for leaf in &leaves {
            single.extend(std::slice::from_ref(leaf)).unwrap();
        }
        assert_eq!(single.root(), tree.root());
        for (id, leaf) in leaves.iter().enumerate() {
            let path = tree.path(id as u32).unwrap();
            assert_eq!(path.root(leaf, id as u32), tree.root());
            assert_ne!(path.root(&(*leaf + Fr::from(1u64)), id as u32), tree.root());
        }
        assert!(tree.path(11).is_err());
        assert_eq!(tree.roots().len(), 3);
        assert!(tree.has_root(&dense_root(&leaves[..3])));
        assert!(!tree.has_root(&Fr::from(5u64)));
    }
}

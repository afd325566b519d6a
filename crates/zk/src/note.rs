//! Notes: the secret, the commitment deposited on chain, and the tree leaf (PROTOCOL §3).

use crate::{
    Fr,
    constants::{T_ID, T_LEAF},
    poseidon::hash,
};

/// A deposited note as its owner knows it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Note {
    /// The secret `k` (non-zero; never shown to anyone).
    pub secret: Fr,
    /// The position in the note tree, assigned by the vault.
    pub note_id: u32,
    /// The deposit `D`, in credit units.
    pub deposit: u64,
    /// The expiry, in hours since the Unix epoch.
    pub expiry: u32,
}

impl core::fmt::Debug for Note {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The secret is never printed.
        f.debug_struct("Note")
            .field("note_id", &self.note_id)
            .field("deposit", &self.deposit)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl Note {
    /// `C = H(T_ID, k)`.
    pub fn commitment(&self) -> Fr {
        commitment(&self.secret)
    }

    /// `L = H(T_LEAF, note_id, C, D, expiry)`.
    pub fn leaf(&self) -> Fr {
        leaf(self.note_id, &self.commitment(), self.deposit, self.expiry)
    }
}

/// `C = H(T_ID, k)`.
pub fn commitment(secret: &Fr) -> Fr {
    hash(T_ID, &[*secret])
}

/// `L = H(T_LEAF, note_id, C, D, expiry)`, computed from a `NoteDeposited` event.
pub fn leaf(note_id: u32, commitment: &Fr, deposit: u64, expiry: u32) -> Fr {
    hash(
        T_LEAF,
        &[
            Fr::from(note_id),
            *commitment,
            Fr::from(deposit),
            Fr::from(expiry),
        ],
    )
}

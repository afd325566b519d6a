//! Protocol constants: domain tags and sizes (PROTOCOL §11).

/// Domain tag of `dom = H(T_DOM, chain_id, vault, version)`.
pub const T_DOM: u64 = 1;
/// Domain tag of the note commitment `C = H(T_ID, k)`.
pub const T_ID: u64 = 2;
/// Domain tag of the leaf `L = H(T_LEAF, note_id, C, D, expiry)`.
pub const T_LEAF: u64 = 3;
/// Domain tag of tree nodes `H(T_NODE, left, right)`.
pub const T_NODE: u64 = 4;
/// Domain tag of the signed state hash `H(T_STATE, dom, A.x, A.y)`.
pub const T_STATE: u64 = 5;
/// Domain tag of the Schnorr challenge.
pub const T_SIG: u64 = 6;
/// Domain tag of the request share abscissa `x = H(T_REQ, epk_hi, epk_lo)`.
pub const T_REQ: u64 = 7;
/// Domain tag of the RLN slope `a = H(T_RLN, dom, k, m)`.
pub const T_RLN: u64 = 8;
/// Domain tag of the nullifier `N = H(T_NULL, a)`.
pub const T_NULL: u64 = 9;
/// Domain tag of the exit abscissa `x_e = H(T_EXIT, dom)`.
pub const T_EXIT: u64 = 10;

/// Depth of the note tree; `note_id < 2^TREE_DEPTH`.
pub const TREE_DEPTH: usize = 24;
/// Protocol version bound into `dom`.
pub const PROTOCOL_VERSION: u64 = 1;
/// Bit length of a Baby-JubJub scalar (`l < 2^251`).
pub const SCALAR_BITS: usize = 251;
/// Bit length of the Schnorr challenge.
pub const CHALLENGE_BITS: usize = 128;

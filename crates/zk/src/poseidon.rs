//! Poseidon over BN254 with circom/iden3 parameters, and the tagged hash `H` of PROTOCOL §1.
//!
//! `H(T, x1..xn)` is circomlibjs `poseidon([T, x1, …, xn])`: the tag is the first *input*
//! (state element 1), not the capacity element, so a tag widens the permutation by one element
//! and never costs a second permutation. The round constants and MDS matrices are
//! `light-poseidon`'s (`bn254_x5`), the iden3 ones. The permutation below is the native twin of
//! [`crate::gadget::poseidon`]; both are pinned to circomlibjs vectors in tests.

use std::sync::OnceLock;

use ark_ff::Field;
use light_poseidon::PoseidonParameters;

use crate::Fr;

/// The widest permutation nullgate uses (6 inputs and a tag would be width 8; the Schnorr
/// challenge hashes a tag and 5 inputs, width 7).
pub const MAX_WIDTH: usize = 13;

/// The circom parameters for a permutation of `width` state elements (`width = inputs + 1`).
///
/// # Panics
/// If `width` is not in `2..=13` (a programming error: every width used is fixed in code).
pub fn parameters(width: usize) -> &'static PoseidonParameters<Fr> {
    static CACHE: [OnceLock<PoseidonParameters<Fr>>; MAX_WIDTH + 1] =
        [const { OnceLock::new() }; MAX_WIDTH + 1];
    assert!(
        (2..=MAX_WIDTH).contains(&width),
        "Poseidon width {width} is not supported"
    );
    CACHE[width].get_or_init(|| {
        light_poseidon::parameters::bn254_x5::get_poseidon_parameters::<Fr>(width as u8)
            .expect("widths 2..=13 have circom parameters")
    })
}

/// circomlibjs `poseidon(inputs)`: the permutation over `[0, inputs…]`, returning element 0.
///
/// # Panics
/// If `inputs` is empty or longer than 12 (a programming error).
pub fn poseidon(inputs: &[Fr]) -> Fr {
    let params = parameters(inputs.len() + 1);
    let mut buffer = [Fr::from(0u64); MAX_WIDTH];
    let state = &mut buffer[..params.width];
    state[1..].copy_from_slice(inputs);
    permute(params, state);
    state[0]
}

/// The tagged hash `H(tag, inputs…)` of PROTOCOL §1: `poseidon([tag, inputs…])`.
pub fn hash(tag: u64, inputs: &[Fr]) -> Fr {
    let mut all = [Fr::from(0u64); MAX_WIDTH - 1];
    all[0] = Fr::from(tag);
    all[1..=inputs.len()].copy_from_slice(inputs);
    poseidon(&all[..=inputs.len()])
}

/// The Poseidon permutation in place: `full/2` full rounds, the partial rounds, `full/2` full
/// rounds, each adding round constants, applying `x^5`, then the MDS matrix.
fn permute(params: &PoseidonParameters<Fr>, state: &mut [Fr]) {
    let width = params.width;
    let half = params.full_rounds / 2;
    let rounds = params.full_rounds + params.partial_rounds;
    let mut buffer = [Fr::from(0u64); MAX_WIDTH];
    let next = &mut buffer[..width];
    for round in 0..rounds {
        for (i, element) in state.iter_mut().enumerate() {
            *element += params.ark[round * width + i];
        }
        let full = round < half || round >= half + params.partial_rounds;
        let sboxed = if full { width } else { 1 };
        for element in state.iter_mut().take(sboxed) {
            *element = sbox(*element);
        }
        for (i, out) in next.iter_mut().enumerate() {
            *out = state
                .iter()
                .zip(&params.mds[i])
                .fold(Fr::from(0u64), |acc, (s, m)| acc + *s * m);
        }
        state.copy_from_slice(next);
    }
}

fn sbox(x: Fr) -> Fr {
    let x2 = x.square();
    x2.square() * x
}

#[cfg(test)]
pub(crate) mod vectors {
    use crate::Fr;
    use ark_ff::PrimeField;

    /// circomlibjs `poseidon([1; n])` for n = 1..=7 (widths 2..=8).
    pub(crate) const ONES: [&str; 7] = [
        "29176100eaa962bdc1fe6c654d6a3c130e96a4d1168b33848b897dc502820133",
        "007af346e2d304279e79e0a9f3023f771294a78acb70e73f90afe27cad401e81",
        "02c0066e10a72abd2b33c3b214cb3e81bcb1b6e30961cd23c202b18673bf2543",
        "082c9c370a0d24f4416fbc414a37681f78442d27d86385991c17d6fc0c4b7d71",
        "10389605ae688d4f14db853122c47d66a803c72b41589cb1bf868741b206b9bb",
        "2a73f679328c3eab724aa3e5bdbf50b39035d7729f135b9709890f85c5dc5e76",
        "2276310aa7f3343a284214139d9da959be2a31b2c708a5f81954b265e53a30b8",
    ];
    /// circomlibjs `poseidon([1, 2])` and `poseidon([1, 2, 3])`.
    pub(crate) const ONE_TWO: &str =
        "115cc0f5e7d690413df64c6b9662e9cf2a3617f2743245519e19607a4417189a";
    pub(crate) const ONE_TWO_THREE: &str =
        "0e7732d89e6939c0ff03d5e58dab6302f3230e269dc5b968f725df34ab36d732";

    pub(crate) fn fr(hex_str: &str) -> Fr {
        Fr::from_be_bytes_mod_order(&hex::decode(hex_str).unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::vectors::*;
    use super::*;
    use light_poseidon::{Poseidon, PoseidonHasher};
    use rand::SeedableRng;

    #[test]
    fn circomlibjs_vectors_every_width() {
        for (n, expected) in ONES.iter().enumerate() {
            let inputs = vec![Fr::from(1u64); n + 1];
            assert_eq!(poseidon(&inputs), fr(expected), "poseidon([1; {}])", n + 1);
        }
        assert_eq!(poseidon(&[1u64.into(), 2u64.into()]), fr(ONE_TWO));
        assert_eq!(
            poseidon(&[1u64.into(), 2u64.into(), 3u64.into()]),
            fr(ONE_TWO_THREE)
        );
    }

    #[test]
    fn tag_is_the_first_input() {
        // H(1, 2) is poseidon([1, 2]): the tag is an input, not the capacity element.
        assert_eq!(hash(1, &[Fr::from(2u64)]), fr(ONE_TWO));
        assert_eq!(hash(1, &[2u64.into(), 3u64.into()]), fr(ONE_TWO_THREE));
    }

    #[test]
    fn agrees_with_light_poseidon_on_random_inputs() {
        use ark_std::UniformRand;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for n in 1..=7 {
            let inputs: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let mut reference = Poseidon::<Fr>::new_circom(n).unwrap();
            assert_eq!(poseidon(&inputs), reference.hash(&inputs).unwrap());
        }
    }
}

//! Rate-limiting nullifiers: shares, nullifiers and secret recovery (PROTOCOL §5.3, §6.2).
//!
//! At index `m` a note's secret `k` defines the line `y = k + a·x` with slope
//! `a = H(T_RLN, dom, k, m)`; each request reveals one point `(x, y)` on it and the nullifier
//! `N = H(T_NULL, a)`. Two points with different `x` at one index reveal `k`.

use ark_ff::Field;

use crate::{
    Error, Fr,
    constants::{T_NULL, T_RLN},
    poseidon::hash,
};

/// One point `(x, y)` on a note's line at one index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Share {
    /// The abscissa, derived from the request key (or `x_e` for exits).
    pub x: Fr,
    /// `y = k + a·x`.
    pub y: Fr,
}

/// `a = H(T_RLN, dom, k, m)`.
pub fn slope(dom: &Fr, secret: &Fr, index: u32) -> Fr {
    hash(T_RLN, &[*dom, *secret, Fr::from(index)])
}

/// `N = H(T_NULL, a)`.
pub fn nullifier(slope: &Fr) -> Fr {
    hash(T_NULL, &[*slope])
}

/// The share `(x, k + a·x)`.
pub fn share(secret: &Fr, slope: &Fr, x: Fr) -> Share {
    Share {
        x,
        y: *secret + *slope * x,
    }
}

/// Recovers `(k, a)` from two shares on one line with different `x`.
///
/// Two shares with the same `x` recover nothing ([`Error::SameShareX`]): with the same `y`
/// they are one share seen twice (a retry), with another `y` one of them is invalid.
pub fn recover(first: &Share, second: &Share) -> Result<(Fr, Fr), Error> {
    let denominator = (first.x - second.x).inverse().ok_or(Error::SameShareX)?;
    let slope = (first.y - second.y) * denominator;
    Ok((first.y - slope * first.x, slope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_shares_reveal_the_secret() {
        let (dom, k) = (Fr::from(11u64), Fr::from(123456u64));
        let a = slope(&dom, &k, 4);
        let first = share(&k, &a, Fr::from(1000u64));
        let second = share(&k, &a, Fr::from(2000u64));
        assert_eq!(recover(&first, &second), Ok((k, a)));
        assert_ne!(nullifier(&a), nullifier(&slope(&dom, &k, 5)));
    }

    #[test]
    fn same_x_recovers_nothing() {
        let k = Fr::from(5u64);
        let a = slope(&Fr::from(1u64), &k, 0);
        let first = share(&k, &a, Fr::from(9u64));
        // The same share twice: a retry.
        assert_eq!(recover(&first, &first), Err(Error::SameShareX));
        // Same x, another y: an invalid share, still nothing to recover.
        let forged = Share {
            x: first.x,
            y: first.y + Fr::from(1u64),
        };
        assert_eq!(recover(&first, &forged), Err(Error::SameShareX));
    }
}

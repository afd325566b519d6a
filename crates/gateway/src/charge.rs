//! From a reservation to a signed receipt (PROTOCOL §6 steps 5–6): [`Reserved`] →
//! [`Charged`] (`Δ_min ≤ Δ ≤ C_c`, by construction) → [`Receipted`]
//! (`A' = A_pub − Δ·G + 2^64·G`, signed with the current state key).

use nullgate_protocol::{price::PriceList, receipt::Receipt};
use nullgate_zk::{Fr, schnorr::SecretKey};

use crate::store::Reserved;

/// The gateway's current state key and its number.
pub struct StateSigner {
    /// The key's absolute number.
    pub number: u32,
    /// The secret.
    pub key: SecretKey,
}

/// A reservation with its charge fixed.
#[derive(Clone, Debug)]
pub struct Charged {
    reserved: Reserved,
    charge: u64,
}

impl Reserved {
    /// Charges `raw` clamped to `[Δ_min, C_c]`: every answer after a reservation costs at
    /// least the floor fee and never more than the class cap.
    pub fn charge(self, prices: &PriceList, raw: u64) -> Charged {
        Charged {
            charge: prices.charge(raw, self.class_cost),
            reserved: self,
        }
    }
}

impl Charged {
    /// `Δ`.
    pub fn charge(&self) -> u64 {
        self.charge
    }

    /// Signs `A'` with the current key.
    pub fn sign(self, dom: &Fr, signer: &StateSigner) -> Receipted {
        // PROTOCOL §4: assert Δ ≤ C_c just before signing (no borrow into m).
        assert!(
            self.charge <= self.reserved.class_cost,
            "charge above the class cap"
        );
        let receipt = Receipt::issue(
            dom,
            self.reserved.nullifier,
            &self.reserved.published_state,
            self.charge,
            signer.number,
            &signer.key,
            &mut rand::thread_rng(),
        );
        Receipted {
            reserved: self.reserved,
            receipt,
        }
    }
}

/// A charged reservation with its signed receipt, ready to persist.
#[derive(Clone, Debug)]
pub struct Receipted {
    pub(crate) reserved: Reserved,
    receipt: Receipt,
}

impl Receipted {
    /// The receipt.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }

    /// The reservation it settles.
    pub fn reserved(&self) -> &Reserved {
        &self.reserved
    }
}

//! Key epochs: the clock that numbers them and the schedule of a node's per-epoch Sphinx keys.
//!
//! Epoch `e` runs from `genesis + e·length` (inclusive) to `genesis + (e+1)·length`. A node
//! derives the key of every epoch from one secret seed, so it can publish the next epoch's
//! key before the boundary (the directory lists both) and needs to store nothing per epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};

/// Numbers epochs from wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochClock {
    /// Start of epoch 0, since the Unix epoch.
    pub genesis: Duration,
    /// Length of every epoch (not zero).
    pub length: Duration,
}

impl EpochClock {
    /// The epoch at `now` (since the Unix epoch); epoch 0 before genesis.
    pub fn epoch_at(&self, now: Duration) -> u64 {
        let since = now.saturating_sub(self.genesis).as_nanos();
        let length = self.length.as_nanos().max(1);
        u64::try_from(since / length).unwrap_or(u64::MAX)
    }

    /// When `epoch` starts, since the Unix epoch.
    pub fn start(&self, epoch: u64) -> Duration {
        let offset = self.length.as_nanos().saturating_mul(u128::from(epoch));
        self.genesis + Duration::from_nanos(u64::try_from(offset).unwrap_or(u64::MAX))
    }

    /// The current wall-clock time since the Unix epoch.
    pub fn now() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
}

/// A node's Sphinx keys, one per epoch, from a secret seed.
#[derive(Clone)]
pub struct KeySchedule {
    seed: [u8; 32],
}

impl std::fmt::Debug for KeySchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is never printed.
        f.debug_struct("KeySchedule").finish_non_exhaustive()
    }
}

impl KeySchedule {
    /// The schedule derived from `seed` (keep it secret: it yields every epoch's key).
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed }
    }

    /// The secret key of `epoch`.
    pub fn key(&self, epoch: u64) -> StaticSecret {
        let bytes: [u8; 32] = Sha256::new()
            .chain_update(b"nullgate/v1/sphinx-epoch-key")
            .chain_update(self.seed)
            .chain_update(epoch.to_be_bytes())
            .finalize()
            .into();
        StaticSecret::from(bytes)
    }

    /// The public key of `epoch`, as the directory lists it.
    pub fn public(&self, epoch: u64) -> [u8; 32] {
        PublicKey::from(&self.key(epoch)).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_numbered_from_genesis_and_keys_differ_per_epoch() {
        let clock = EpochClock {
            genesis: Duration::from_secs(1_000),
            length: Duration::from_secs(60),
        };
        assert_eq!(clock.epoch_at(Duration::from_secs(10)), 0);
        assert_eq!(clock.epoch_at(Duration::from_secs(1_059)), 0);
        assert_eq!(clock.epoch_at(Duration::from_secs(1_060)), 1);
        assert_eq!(clock.start(3), Duration::from_secs(1_180));
        let schedule = KeySchedule::new([7; 32]);
        assert_ne!(schedule.public(1), schedule.public(2));
        assert_eq!(schedule.public(1), KeySchedule::new([7; 32]).public(1));
        assert_ne!(schedule.public(1), KeySchedule::new([8; 32]).public(1));
        assert!(!format!("{schedule:?}").contains('7'));
    }
}

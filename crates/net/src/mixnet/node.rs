//! A mix node's per-packet step, sans-IO: check the replay tag, peel one layer, say what to
//! do next. The caller owns sockets and timers.
//!
//! The step can run on several threads at once: an epoch's replay tags sit behind a lock
//! that each packet takes twice, briefly (look up before the costly part, insert after),
//! and [`Epochs::keys`] hands worker threads a snapshot of the keys in use.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use x25519_dalek::StaticSecret;

use super::packet::{Opened, PacketFormat, ReplayTag};
use crate::NetError;

/// Why a packet was dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Dropped {
    /// This node already processed a packet with this replay tag in this key epoch.
    #[error("replayed packet")]
    Replay,
    /// The packet is malformed, tampered with, or not for this node's key.
    #[error("invalid packet: {0}")]
    Invalid(NetError),
}

/// One key epoch of a mix node: its packet key and the replay tags seen under it. When the
/// epoch ends, the whole value is dropped: tags of an old key can never match again.
/// Clones share the tags, so threads processing packets of one epoch share one cache.
#[derive(Clone)]
pub struct EpochState<F> {
    format: F,
    key: StaticSecret,
    seen: Arc<Mutex<HashSet<ReplayTag>>>,
}

impl<F: PacketFormat> EpochState<F> {
    /// A node state for one epoch's key.
    pub fn new(format: F, key: StaticSecret) -> Self {
        Self {
            format,
            key,
            seen: Arc::default(),
        }
    }

    /// Processes one packet: the replay tag is checked before the costly part, so a replay
    /// costs one key exchange and no forwarding; it is recorded once the packet opened. Of
    /// two copies opening at once on two threads, the one recorded second is the replay.
    pub fn process(&self, packet: &[u8]) -> Result<Opened, Dropped> {
        let (tag, opened) = self
            .format
            .open(&self.key, packet, &|tag| self.tags().contains(tag))
            .map_err(Dropped::Invalid)?
            .ok_or(Dropped::Replay)?;
        if !self.tags().insert(tag) {
            return Err(Dropped::Replay);
        }
        Ok(opened)
    }

    /// How many distinct packets this epoch has seen.
    pub fn seen(&self) -> usize {
        self.tags().len()
    }

    fn tags(&self) -> std::sync::MutexGuard<'_, HashSet<ReplayTag>> {
        // A set of tags is valid whatever a panicking holder left half done.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a node's packet keys change: never (one key) or every epoch of a clock.
pub enum NodeKeys {
    /// One key for the node's whole life (tests, benchmarks).
    Fixed(StaticSecret),
    /// A new key every epoch; the previous epoch's key still opens packets for `grace`
    /// after the boundary (packets in flight), then it and its replay cache are dropped.
    Rotating {
        /// The per-epoch keys.
        schedule: super::epoch::KeySchedule,
        /// The epoch clock.
        clock: super::epoch::EpochClock,
        /// How long the previous key still works.
        grace: std::time::Duration,
    },
}

/// A node's packet keys over time: the current epoch's state and, during the grace period,
/// the previous one's.
pub struct Epochs<F> {
    format: F,
    keys: NodeKeys,
    epoch: u64,
    current: EpochState<F>,
    previous: Option<(EpochState<F>, std::time::Duration)>,
}

impl<F: PacketFormat + Copy> Epochs<F> {
    /// The state at `now` (since the Unix epoch).
    pub fn new(format: F, keys: NodeKeys, now: std::time::Duration) -> Self {
        let (epoch, key) = match &keys {
            NodeKeys::Fixed(key) => (0, key.clone()),
            NodeKeys::Rotating {
                schedule, clock, ..
            } => {
                let epoch = clock.epoch_at(now);
                (epoch, schedule.key(epoch))
            }
        };
        Self {
            format,
            keys,
            epoch,
            current: EpochState::new(format, key),
            previous: None,
        }
    }

    /// The current epoch (0 for fixed keys).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves to the epoch of `now` if it changed, and forgets the previous key once its
    /// grace period is over; says whether the keys in use changed.
    pub fn advance(&mut self, now: std::time::Duration) -> bool {
        let NodeKeys::Rotating {
            schedule,
            clock,
            grace,
        } = &self.keys
        else {
            return false;
        };
        let mut changed = false;
        let epoch = clock.epoch_at(now);
        if epoch > self.epoch {
            let next = EpochState::new(self.format, schedule.key(epoch));
            let old = std::mem::replace(&mut self.current, next);
            // Only the epoch just ended keeps a grace period, counted from its end.
            self.previous = (epoch == self.epoch + 1).then(|| (old, clock.start(epoch) + *grace));
            self.epoch = epoch;
            changed = true;
        }
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            self.previous = None;
            changed = true;
        }
        changed
    }

    /// When the next change is due (the next boundary, or the end of the grace period).
    pub fn next_change(&self) -> Option<std::time::Duration> {
        let NodeKeys::Rotating { clock, .. } = &self.keys else {
            return None;
        };
        let boundary = clock.start(self.epoch + 1);
        Some(match &self.previous {
            Some((_, until)) => boundary.min(*until),
            None => boundary,
        })
    }

    /// Processes one packet at `now` with the current key, or the previous one in its grace
    /// period.
    pub fn process(&mut self, packet: &[u8], now: std::time::Duration) -> Result<Opened, Dropped> {
        self.advance(now);
        self.keys().process(packet)
    }

    /// The keys in use now, for processing packets on other threads (they share this
    /// state's replay caches). Take a new snapshot after [`Epochs::advance`].
    pub fn keys(&self) -> EpochKeys<F> {
        EpochKeys {
            current: self.current.clone(),
            previous: self.previous.as_ref().map(|(state, _)| state.clone()),
        }
    }
}

/// A snapshot of a node's keys: the current epoch's and, in its grace period, the previous
/// one's, each with its (shared) replay cache.
#[derive(Clone)]
pub struct EpochKeys<F> {
    current: EpochState<F>,
    previous: Option<EpochState<F>>,
}

impl<F: PacketFormat> EpochKeys<F> {
    /// Processes one packet with the current key, or else the previous one.
    pub fn process(&self, packet: &[u8]) -> Result<Opened, Dropped> {
        match self.current.process(packet) {
            Err(Dropped::Invalid(error)) => match &self.previous {
                Some(previous) => previous.process(packet).map_err(|e| match e {
                    Dropped::Invalid(_) => Dropped::Invalid(error),
                    replay => replay,
                }),
                None => Err(Dropped::Invalid(error)),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use x25519_dalek::PublicKey;

    use super::*;
    use crate::mixnet::packet::{Hop, Sphinx};

    fn nodes() -> Vec<(StaticSecret, Hop)> {
        (0..3u8)
            .map(|i| {
                let key = StaticSecret::from([i + 1; 32]);
                let hop = Hop {
                    address: [i + 10; 32],
                    key: PublicKey::from(&key),
                };
                (key, hop)
            })
            .collect()
    }

    fn packet(format: &Sphinx, route: &[Hop]) -> Vec<u8> {
        let delays = vec![Duration::from_millis(3); route.len()];
        format
            .create(b"hello mixnet", route, [0xde; 32], &delays)
            .unwrap()
    }

    #[test]
    fn three_hops_deliver_and_replays_are_dropped() {
        let format = Sphinx::new(1024);
        let nodes = nodes();
        let route: Vec<Hop> = nodes.iter().map(|(_, hop)| hop.clone()).collect();
        let mut states: Vec<EpochState<Sphinx>> = nodes
            .iter()
            .map(|(key, _)| EpochState::new(format, key.clone()))
            .collect();
        let mut bytes = packet(&format, &route);
        assert_eq!(bytes.len(), format.packet_size());
        for (i, state) in states.iter_mut().enumerate() {
            match state.process(&bytes).unwrap() {
                Opened::Forward {
                    next,
                    delay,
                    packet,
                } => {
                    assert_eq!(next, route[i + 1].address);
                    assert_eq!(delay, Duration::from_millis(3));
                    assert_eq!(
                        packet.len(),
                        format.packet_size(),
                        "fixed size on every hop"
                    );
                    // The same packet again is a replay.
                    assert!(matches!(state.process(&bytes), Err(Dropped::Replay)));
                    bytes = packet;
                }
                Opened::Deliver {
                    destination,
                    payload,
                    ..
                } => {
                    assert_eq!(i, 2);
                    assert_eq!(destination, [0xde; 32]);
                    assert_eq!(format.plaintext(&payload).unwrap(), b"hello mixnet");
                }
            }
        }
    }

    /// Threads processing copies of one packet at the same moment share the replay cache:
    /// exactly one copy opens.
    #[test]
    fn copies_processed_at_once_on_two_threads_open_once() {
        let format = Sphinx::new(1024);
        let nodes = nodes();
        let route: Vec<Hop> = nodes.iter().map(|(_, hop)| hop.clone()).collect();
        let mut epochs = Epochs::new(format, NodeKeys::Fixed(nodes[0].0.clone()), Duration::ZERO);
        let rounds = 40;
        for _ in 0..rounds {
            let bytes = packet(&format, &route);
            let start = std::sync::Barrier::new(2);
            let opened: Vec<bool> = std::thread::scope(|scope| {
                let workers: Vec<_> = (0..2)
                    .map(|_| {
                        let (keys, bytes, start) = (epochs.keys(), &bytes, &start);
                        scope.spawn(move || {
                            start.wait();
                            match keys.process(bytes) {
                                Ok(_) => true,
                                Err(Dropped::Replay) => false,
                                Err(other) => panic!("{other}"),
                            }
                        })
                    })
                    .collect();
                workers.into_iter().map(|w| w.join().unwrap()).collect()
            });
            assert_eq!(opened.iter().filter(|o| **o).count(), 1, "{opened:?}");
            // And a later copy through the node's own state is a replay too.
            assert!(matches!(
                epochs.process(&bytes, Duration::ZERO),
                Err(Dropped::Replay)
            ));
        }
        assert_eq!(epochs.keys().current.seen(), rounds);
    }

    #[test]
    fn tampered_and_foreign_packets_are_dropped_at_the_hop_that_sees_them() {
        let format = Sphinx::new(1024);
        let nodes = nodes();
        let route: Vec<Hop> = nodes.iter().map(|(_, hop)| hop.clone()).collect();
        let first = EpochState::new(format, nodes[0].0.clone());
        // A flipped header bit fails the first hop's MAC.
        let mut bytes = packet(&format, &route);
        bytes[40] ^= 1;
        assert!(matches!(first.process(&bytes), Err(Dropped::Invalid(_))));
        // A packet for another node's key does not open here.
        let second = EpochState::new(format, nodes[1].0.clone());
        assert!(matches!(
            second.process(&packet(&format, &route)),
            Err(Dropped::Invalid(_))
        ));
        // Wrong sizes and garbage never panic.
        assert!(matches!(
            first.process(&[0u8; 10]),
            Err(Dropped::Invalid(_))
        ));
        assert!(matches!(
            first.process(&vec![7u8; format.packet_size()]),
            Err(Dropped::Invalid(_))
        ));
    }

    #[test]
    fn a_forged_copy_arriving_first_does_not_block_the_real_packet() {
        let format = Sphinx::new(1024);
        let nodes = nodes();
        let route: Vec<Hop> = nodes.iter().map(|(_, hop)| hop.clone()).collect();
        let first = EpochState::new(format, nodes[0].0.clone());
        let real = packet(&format, &route);
        // Same ephemeral key (so the same replay tag), a flipped routing bit: fails the MAC.
        let mut forged = real.clone();
        forged[40] ^= 1;
        assert!(matches!(first.process(&forged), Err(Dropped::Invalid(_))));
        assert_eq!(first.seen(), 0, "an invalid packet is not recorded");
        assert!(first.process(&real).is_ok());
        assert!(matches!(first.process(&real), Err(Dropped::Replay)));
    }

    #[test]
    fn a_reply_block_carries_one_reply_back_and_works_once() {
        let format = Sphinx::new(1024);
        let nodes = nodes();
        // The reply travels the layers in reverse.
        let back: Vec<Hop> = nodes.iter().rev().map(|(_, hop)| hop.clone()).collect();
        let (block, opener) = format
            .reply_block(&back, [0xc1; 32], &[Duration::ZERO; 3])
            .unwrap();
        let mut states: Vec<EpochState<Sphinx>> = nodes
            .iter()
            .rev()
            .map(|(key, _)| EpochState::new(format, key.clone()))
            .collect();
        let (first_hop, mut bytes) = format.use_reply_block(&block, b"the answer").unwrap();
        assert_eq!(first_hop, back[0].address);
        let (_, second_use) = format.use_reply_block(&block, b"another answer").unwrap();
        let mut delivered = None;
        for state in states.iter_mut() {
            match state.process(&bytes).unwrap() {
                Opened::Forward { packet, .. } => bytes = packet,
                Opened::Deliver {
                    destination,
                    identifier,
                    payload,
                } => {
                    assert_eq!(destination, [0xc1; 32]);
                    assert_eq!(identifier, opener.identifier());
                    delivered = Some(payload);
                }
            }
        }
        let payload = delivered.expect("the last hop delivers");
        assert_eq!(opener.open(&payload).unwrap(), b"the answer");
        // Only the opener reads it; the last hop cannot.
        assert!(format.plaintext(&payload).is_err());
        // The same block used again is a replay at its first hop.
        assert!(matches!(
            states[0].process(&second_use),
            Err(Dropped::Replay)
        ));
    }

    #[test]
    fn rotating_keys_keep_the_old_key_for_the_grace_period_only() {
        use crate::mixnet::epoch::{EpochClock, KeySchedule};

        let format = Sphinx::new(1024);
        let schedule = KeySchedule::new([5; 32]);
        let clock = EpochClock {
            genesis: Duration::from_secs(1_000),
            length: Duration::from_secs(60),
        };
        let mut epochs = Epochs::new(
            format,
            NodeKeys::Rotating {
                schedule: schedule.clone(),
                clock,
                grace: Duration::from_secs(5),
            },
            Duration::from_secs(1_010),
        );
        assert_eq!(epochs.epoch(), 0);
        let for_epoch = |epoch: u64, tag: u8| {
            let hop = Hop {
                address: [1; 32],
                key: PublicKey::from(&schedule.key(epoch)),
            };
            format
                .create(&[tag], &[hop], [0xde; 32], &[Duration::ZERO])
                .unwrap()
        };
        let at = Duration::from_secs;
        assert!(epochs.process(&for_epoch(0, 1), at(1_020)).is_ok());
        // Not yet: epoch 1's key before its epoch.
        assert!(matches!(
            epochs.process(&for_epoch(1, 2), at(1_030)),
            Err(Dropped::Invalid(_))
        ));
        assert_eq!(epochs.next_change(), Some(at(1_060)));
        // Epoch 1 starts; epoch 0's key still opens packets in flight, and its replay cache
        // still catches replays.
        let in_flight = for_epoch(0, 3);
        assert!(epochs.process(&in_flight, at(1_061)).is_ok());
        assert_eq!(epochs.epoch(), 1);
        assert!(matches!(
            epochs.process(&in_flight, at(1_062)),
            Err(Dropped::Replay)
        ));
        assert!(epochs.process(&for_epoch(1, 4), at(1_062)).is_ok());
        assert_eq!(epochs.next_change(), Some(at(1_065)));
        // After the grace period the expired epoch's key is gone.
        assert!(matches!(
            epochs.process(&for_epoch(0, 5), at(1_066)),
            Err(Dropped::Invalid(_))
        ));
        assert!(epochs.process(&for_epoch(1, 6), at(1_066)).is_ok());
        // Skipping an epoch entirely leaves no grace for the older key.
        assert!(matches!(
            epochs.process(&for_epoch(1, 7), at(1_190)),
            Err(Dropped::Invalid(_))
        ));
        assert_eq!(epochs.epoch(), 3);
    }

    #[test]
    fn a_new_epoch_key_rejects_packets_made_for_the_old_one() {
        let format = Sphinx::new(1024);
        let nodes = nodes();
        let route: Vec<Hop> = nodes.iter().map(|(_, hop)| hop.clone()).collect();
        let bytes = packet(&format, &route);
        let next_epoch = EpochState::new(format, StaticSecret::from([99; 32]));
        assert!(matches!(
            next_epoch.process(&bytes),
            Err(Dropped::Invalid(_))
        ));
    }
}

//! Messages larger than one packet: fragments with a message id, protected by Reed-Solomon
//! parity so that any `k` of the `k + m` fragments rebuild the message.
//!
//! Fragment layout: message id (16 bytes, random) ‖ index (1) ‖ data shards `k` (1) ‖ parity
//! shards `m` (1) ‖ message length (4, big-endian) ‖ shard bytes.
//!
//! Normative format: `docs/spec/MIXNET.md` §4.

use std::collections::{HashMap, HashSet};

use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::NetError;

/// Bytes of a fragment before its shard.
pub const FRAGMENT_HEADER: usize = 16 + 1 + 1 + 1 + 4;

/// Splits `message` into fragments of at most `max_fragment` bytes, adding `parity`
/// parity fragments.
pub fn fragment(message: &[u8], max_fragment: usize, parity: u8) -> Result<Vec<Vec<u8>>, NetError> {
    let shard_len = max_fragment
        .checked_sub(FRAGMENT_HEADER)
        .filter(|len| *len > 0)
        .ok_or_else(|| NetError::BadMessage("fragments too small for their header".into()))?;
    let length = u32::try_from(message.len()).map_err(|_| NetError::TooLarge {
        what: "message",
        limit: u32::MAX as usize,
    })?;
    let data = message.len().div_ceil(shard_len).max(1);
    if data + usize::from(parity) > 255 || parity == 0 {
        return Err(NetError::TooLarge {
            what: "message (fragments, parity included, are at most 255; parity at least 1)",
            limit: (255 - usize::from(parity.max(1))) * shard_len,
        });
    }
    let codec = ReedSolomon::new(data, usize::from(parity))
        .map_err(|e| NetError::BadMessage(e.to_string()))?;
    let mut shards: Vec<Vec<u8>> = (0..data + usize::from(parity))
        .map(|i| {
            let mut shard = vec![0u8; shard_len];
            let start = (i * shard_len).min(message.len());
            let end = ((i + 1) * shard_len).min(message.len());
            if i < data {
                shard[..end - start].copy_from_slice(&message[start..end]);
            }
            shard
        })
        .collect();
    codec
        .encode(&mut shards)
        .map_err(|e| NetError::BadMessage(e.to_string()))?;
    let id: [u8; 16] = rand::random();
    Ok(shards
        .into_iter()
        .enumerate()
        .map(|(index, shard)| {
            let mut out = Vec::with_capacity(FRAGMENT_HEADER + shard.len());
            out.extend_from_slice(&id);
            out.push(index as u8);
            out.push(data as u8);
            out.push(parity);
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(&shard);
            out
        })
        .collect())
}

/// Collects fragments until a message can be rebuilt; bounded in memory.
pub struct Reassembler {
    pending: HashMap<[u8; 16], Partial>,
    /// Ids of rebuilt messages (late fragments of them are ignored), oldest first; the
    /// oldest are forgotten beyond [`DONE_REMEMBERED`].
    done: HashSet<[u8; 16]>,
    done_order: std::collections::VecDeque<[u8; 16]>,
    max_pending: usize,
    /// Counts messages started, to find the oldest incomplete one.
    started: u64,
}

/// How many rebuilt message ids a reassembler remembers.
pub const DONE_REMEMBERED: usize = 65_536;

struct Partial {
    started: u64,
    data: u8,
    parity: u8,
    length: u32,
    shard_len: usize,
    shards: Vec<Option<Vec<u8>>>,
    received: usize,
}

impl Reassembler {
    /// A reassembler holding at most `max_pending` incomplete messages.
    pub fn new(max_pending: usize) -> Self {
        Self {
            pending: HashMap::new(),
            done: HashSet::new(),
            done_order: Default::default(),
            max_pending,
            started: 0,
        }
    }

    /// Adds a fragment; returns the message once enough fragments have arrived. Late
    /// fragments of a finished message and duplicates are ignored.
    pub fn push(&mut self, fragment: &[u8]) -> Result<Option<Vec<u8>>, NetError> {
        if fragment.len() <= FRAGMENT_HEADER {
            return Err(NetError::BadMessage(
                "fragment shorter than its header".into(),
            ));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&fragment[..16]);
        let (index, data, parity) = (fragment[16], fragment[17], fragment[18]);
        let length = u32::from_be_bytes([fragment[19], fragment[20], fragment[21], fragment[22]]);
        let shard = &fragment[FRAGMENT_HEADER..];
        if data == 0
            || parity == 0
            || usize::from(data) + usize::from(parity) > 255
            || index >= data + parity
            || length as usize > usize::from(data) * shard.len()
        {
            return Err(NetError::BadMessage("inconsistent fragment header".into()));
        }
        if self.done.contains(&id) {
            return Ok(None);
        }
        if !self.pending.contains_key(&id) && self.pending.len() >= self.max_pending.max(1) {
            // Full: the oldest incomplete message gives way (its fragments were lost beyond
            // repair, or never existed), so stale entries cannot lock new messages out.
            let oldest = self
                .pending
                .iter()
                .min_by_key(|(_, partial)| partial.started)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.pending.remove(&oldest);
            }
        }
        let started = self.started;
        let partial = self.pending.entry(id).or_insert_with(|| Partial {
            started,
            data,
            parity,
            length,
            shard_len: shard.len(),
            shards: vec![None; usize::from(data) + usize::from(parity)],
            received: 0,
        });
        if partial.started == started {
            self.started += 1;
        }
        if (
            partial.data,
            partial.parity,
            partial.length,
            partial.shard_len,
        ) != (data, parity, length, shard.len())
        {
            return Err(NetError::BadMessage(
                "fragment disagrees with earlier fragments of its message".into(),
            ));
        }
        let slot = &mut partial.shards[usize::from(index)];
        if slot.is_none() {
            *slot = Some(shard.to_vec());
            partial.received += 1;
        }
        if partial.received < usize::from(data) {
            return Ok(None);
        }
        let Some(mut partial) = self.pending.remove(&id) else {
            return Ok(None);
        };
        let codec = ReedSolomon::new(usize::from(data), usize::from(parity))
            .map_err(|e| NetError::BadMessage(e.to_string()))?;
        codec
            .reconstruct_data(&mut partial.shards)
            .map_err(|e| NetError::BadMessage(format!("fragments do not rebuild: {e}")))?;
        if self.done.insert(id) {
            self.done_order.push_back(id);
        }
        while self.done_order.len() > DONE_REMEMBERED {
            if let Some(oldest) = self.done_order.pop_front() {
                self.done.remove(&oldest);
            }
        }
        let mut message: Vec<u8> = partial
            .shards
            .into_iter()
            .take(usize::from(data))
            .flatten()
            .flatten()
            .collect();
        message.truncate(length as usize);
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, seq::SliceRandom};

    use super::*;

    #[test]
    fn any_k_fragments_rebuild_the_message() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let message: Vec<u8> = (0..10_000).map(|_| rng.r#gen()).collect();
        let fragments = fragment(&message, 1_000, 4).unwrap();
        let data = 10_000usize.div_ceil(1_000 - FRAGMENT_HEADER);
        assert_eq!(fragments.len(), data + 4);
        for lost in 0..=4 {
            let mut kept = fragments.clone();
            kept.shuffle(&mut rng);
            kept.truncate(fragments.len() - lost);
            let mut reassembler = Reassembler::new(8);
            let mut rebuilt = None;
            for fragment in &kept {
                if let Some(message) = reassembler.push(fragment).unwrap() {
                    rebuilt = Some(message);
                }
            }
            assert_eq!(rebuilt.as_deref(), Some(&message[..]), "lost {lost}");
        }
        // One more than the parity budget lost: nothing comes out.
        let mut reassembler = Reassembler::new(8);
        for fragment in &fragments[5..] {
            assert_eq!(reassembler.push(fragment).unwrap(), None);
        }
    }

    #[test]
    fn bad_fragments_are_rejected_and_memory_is_bounded() {
        let fragments = fragment(b"short message", 100, 2).unwrap();
        let mut reassembler = Reassembler::new(1);
        assert!(reassembler.push(&fragments[0][..10]).is_err());
        let mut bad = fragments[0].clone();
        bad[16] = 200; // index beyond k + m
        assert!(reassembler.push(&bad).is_err());
        let mut bad = fragments[0].clone();
        bad[18] = 0; // no parity
        assert!(reassembler.push(&bad).is_err());
        // Beyond the bound, the oldest incomplete message is dropped for the newest.
        let two = fragment(&[7u8; 500], 100, 2).unwrap();
        assert_eq!(reassembler.push(&two[0]).unwrap(), None);
        let three = fragment(&[8u8; 500], 100, 2).unwrap();
        assert_eq!(reassembler.push(&three[0]).unwrap(), None);
        let mut rebuilt = None;
        for piece in &three[1..] {
            rebuilt = reassembler.push(piece).unwrap().or(rebuilt);
        }
        assert_eq!(
            rebuilt,
            Some(vec![8u8; 500]),
            "the newest message completes"
        );
        let mut rebuilt = None;
        for piece in &two[1..two.len() - 2] {
            rebuilt = reassembler.push(piece).unwrap().or(rebuilt);
        }
        assert_eq!(rebuilt, None, "the evicted one lost its first fragment");
        // Random bytes never panic.
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for _ in 0..2_000 {
            let len = rng.gen_range(0..200);
            let junk: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let _ = Reassembler::new(4).push(&junk);
        }
        assert!(fragment(b"x", 10, 1).is_err());
    }
}

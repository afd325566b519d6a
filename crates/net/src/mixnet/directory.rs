//! The directory: one signed document per epoch listing the mix nodes of each layer with
//! their current and next Sphinx keys. Clients and nodes accept a document only if the
//! directory authority's Ed25519 signature verifies and the epoch is current.
//!
//! Wire format: the 64-byte signature, then the JSON body it signs, byte for byte (the
//! body is never re-serialised before verification).
//!
//! Normative format: `docs/spec/MIXNET.md` §6.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::Rng;
use serde::{Deserialize, Serialize};
use x25519_dalek::PublicKey;

use super::packet::{Hop, NodeAddress};
use crate::NetError;

/// Number of mix layers between the entry and the exit.
pub const LAYERS: usize = 3;
/// Largest directory document accepted, in bytes.
pub const MAX_DOCUMENT: usize = 1 << 20;

/// One mix node as the directory lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// The node's address in packet headers (hex).
    #[serde(with = "hex::serde")]
    pub address: NodeAddress,
    /// Where to connect to it (`host:port`).
    pub endpoint: String,
    /// Its static Noise link key (hex), pinned by whoever dials it.
    #[serde(with = "hex::serde")]
    pub link_key: [u8; 32],
    /// Its Sphinx key for this epoch (hex).
    #[serde(with = "hex::serde")]
    pub key: [u8; 32],
    /// Its Sphinx key for the next epoch (hex), so that clients can build packets that will
    /// still open across the boundary.
    #[serde(with = "hex::serde")]
    pub next_key: [u8; 32],
}

/// The content of one epoch's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    /// The epoch number.
    pub epoch: u64,
    /// Start of the epoch, seconds since the Unix epoch.
    pub valid_from: u64,
    /// End of the epoch (exclusive), seconds since the Unix epoch.
    pub valid_until: u64,
    /// The nodes of each layer, entry side first.
    pub layers: Vec<Vec<NodeEntry>>,
}

impl Directory {
    /// Signs the document with the directory authority's key: signature ‖ body.
    pub fn sign(&self, authority: &SigningKey) -> Result<Vec<u8>, NetError> {
        let body = serde_json::to_vec(self).map_err(|e| NetError::BadMessage(e.to_string()))?;
        let signature = authority.sign(&body);
        let mut out = signature.to_bytes().to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Verifies a signed document against the authority's key and the current time, and
    /// checks its shape: exactly [`LAYERS`] non-empty layers, distinct addresses.
    pub fn verify(document: &[u8], authority: &VerifyingKey, now: u64) -> Result<Self, NetError> {
        if document.len() > MAX_DOCUMENT {
            return Err(NetError::TooLarge {
                what: "directory document",
                limit: MAX_DOCUMENT,
            });
        }
        if document.len() < 64 {
            return Err(NetError::BadMessage("directory document too short".into()));
        }
        let (signature, body) = document.split_at(64);
        let signature = Signature::from_slice(signature)
            .map_err(|_| NetError::BadMessage("malformed directory signature".into()))?;
        authority
            .verify_strict(body, &signature)
            .map_err(|_| NetError::BadMessage("directory signature does not verify".into()))?;
        let directory: Self = serde_json::from_slice(body)
            .map_err(|e| NetError::BadMessage(format!("directory body: {e}")))?;
        if !(directory.valid_from <= now && now < directory.valid_until) {
            return Err(NetError::BadMessage(format!(
                "directory for epoch {} is not valid now",
                directory.epoch
            )));
        }
        if directory.layers.len() != LAYERS || directory.layers.iter().any(Vec::is_empty) {
            return Err(NetError::BadMessage(format!(
                "a directory lists {LAYERS} non-empty layers"
            )));
        }
        let mut addresses: Vec<&NodeAddress> = directory
            .layers
            .iter()
            .flatten()
            .map(|n| &n.address)
            .collect();
        addresses.sort();
        if addresses.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(NetError::BadMessage("a node is listed twice".into()));
        }
        Ok(directory)
    }

    /// A stratified route: one node drawn uniformly from each layer, in layer order, with
    /// this epoch's keys.
    pub fn route(&self, rng: &mut impl Rng) -> Vec<Hop> {
        self.layers
            .iter()
            .map(|layer| {
                let node = &layer[rng.gen_range(0..layer.len())];
                Hop {
                    address: node.address,
                    key: PublicKey::from(node.key),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn directory() -> Directory {
        let node = |i: u8| NodeEntry {
            address: [i; 32],
            endpoint: format!("127.0.0.1:{}", 9000 + u16::from(i)),
            link_key: [i + 100; 32],
            key: [i.wrapping_mul(3); 32],
            next_key: [i.wrapping_mul(5); 32],
        };
        Directory {
            epoch: 7,
            valid_from: 1_000,
            valid_until: 2_000,
            layers: vec![
                vec![node(1), node(2)],
                vec![node(3)],
                vec![node(4), node(5)],
            ],
        }
    }

    #[test]
    fn signed_documents_verify_and_routes_are_stratified() {
        let authority = SigningKey::from_bytes(&[42; 32]);
        let document = directory().sign(&authority).unwrap();
        let parsed = Directory::verify(&document, &authority.verifying_key(), 1_500).unwrap();
        assert_eq!(parsed, directory());
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        for _ in 0..20 {
            let route = parsed.route(&mut rng);
            assert_eq!(route.len(), LAYERS);
            for (hop, layer) in route.iter().zip(&parsed.layers) {
                assert!(layer.iter().any(|n| n.address == hop.address));
            }
        }
    }

    #[test]
    fn bad_documents_are_rejected() {
        let authority = SigningKey::from_bytes(&[42; 32]);
        let key = authority.verifying_key();
        let document = directory().sign(&authority).unwrap();
        // Expired and not yet valid.
        assert!(Directory::verify(&document, &key, 2_000).is_err());
        assert!(Directory::verify(&document, &key, 999).is_err());
        // Another authority, a flipped body byte, a truncated document, junk.
        let other = SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert!(Directory::verify(&document, &other, 1_500).is_err());
        let mut tampered = document.clone();
        let last = tampered.len() - 3;
        tampered[last] ^= 1;
        assert!(Directory::verify(&tampered, &key, 1_500).is_err());
        assert!(Directory::verify(&document[..63], &key, 1_500).is_err());
        assert!(Directory::verify(&[0u8; 200], &key, 1_500).is_err());
        // Well signed but the wrong shape: two layers, a duplicated node.
        let mut shape = directory();
        shape.layers.pop();
        assert!(Directory::verify(&shape.sign(&authority).unwrap(), &key, 1_500).is_err());
        let mut twice = directory();
        let duplicate = twice.layers[0][0].clone();
        twice.layers[1].push(duplicate);
        assert!(Directory::verify(&twice.sign(&authority).unwrap(), &key, 1_500).is_err());
    }
}

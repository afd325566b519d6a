//! The packet format: Sphinx (`sphinx-packet`, pinned exactly) behind our own trait, so the
//! rest of the mixnet never names the crate's types.
//!
//! Normative format: `docs/spec/MIXNET.md` §2.

use std::time::Duration;

use sphinx_packet::{
    SURB, SURBMaterial, SphinxPacket, SphinxPacketBuilder, SurbReplyRecovery,
    header::delays::Delay,
    payload::Payload,
    route::{Destination, DestinationAddressBytes, Node, NodeAddressBytes},
    version::SINGLE_SEED_SURB_VERSION,
};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::NetError;

/// A mix node's 32-byte address as carried in packet headers.
pub type NodeAddress = [u8; 32];

/// One hop of a route: where it is and its current packet key.
#[derive(Clone, Debug)]
pub struct Hop {
    /// The node's address.
    pub address: NodeAddress,
    /// The node's public packet key for the current epoch.
    pub key: PublicKey,
}

/// What a node does with a packet it could open.
#[derive(Debug)]
pub enum Opened {
    /// Hold the packet for `delay`, then send `packet` to `next`.
    Forward {
        /// The next hop.
        next: NodeAddress,
        /// The delay the sender chose for this hop.
        delay: Duration,
        /// The re-encrypted packet, as bytes.
        packet: Vec<u8>,
    },
    /// This node is the last hop: the payload, for `destination`. A forward message's
    /// payload opens with [`Sphinx::plaintext`]; a reply's only with the [`ReplyOpener`] its
    /// recipient kept.
    Deliver {
        /// The final destination's address.
        destination: [u8; 32],
        /// For a reply, the identifier its opener is kept under (zero for a forward
        /// message).
        identifier: [u8; 16],
        /// The payload as the last hop sees it.
        payload: Vec<u8>,
    },
}

/// A packet format: how a sender wraps a message in layers, how a node peels one.
pub trait PacketFormat {
    /// Wraps `message` for `route` (at most 5 hops) and `destination`, with one delay per
    /// hop.
    fn create(
        &self,
        message: &[u8],
        route: &[Hop],
        destination: [u8; 32],
        delays: &[Duration],
    ) -> Result<Vec<u8>, NetError>;

    /// Peels one layer with the node's key. First it derives the packet's replay tag (the
    /// same packet, or a replay of it, always has the same tag) and asks `seen`; if the tag
    /// was seen, it stops there and returns `Ok(None)`, before the costly part. Otherwise it
    /// returns the tag with the opened layer, for the caller to record: only packets that
    /// open are recorded, so a forged copy with a valid tag cannot block the real packet.
    fn open(
        &self,
        key: &StaticSecret,
        packet: &[u8],
        seen: &dyn Fn(&ReplayTag) -> bool,
    ) -> Result<Option<(ReplayTag, Opened)>, NetError>;
}

/// A packet's replay tag under one node key.
pub type ReplayTag = [u8; 32];

/// Sphinx with a fixed payload size.
#[derive(Clone, Copy, Debug)]
pub struct Sphinx {
    payload_size: usize,
}

impl Sphinx {
    /// Sphinx packets carrying `payload_size` bytes of payload (encrypted size; 17 bytes of
    /// it are overhead).
    pub fn new(payload_size: usize) -> Self {
        Self { payload_size }
    }

    /// The most plaintext one packet (or one reply) carries: the payload less Sphinx's
    /// 16-byte tag and 1 byte of padding marker.
    pub fn plaintext_capacity(&self) -> usize {
        self.payload_size.saturating_sub(17)
    }

    /// The size of every packet on the wire.
    pub fn packet_size(&self) -> usize {
        sphinx_packet::header::HEADER_SIZE + self.payload_size
    }

    fn parse(&self, packet: &[u8]) -> Result<SphinxPacket, NetError> {
        if packet.len() != self.packet_size() {
            return Err(NetError::BadMessage(format!(
                "packet of {} bytes; this network's packets are {}",
                packet.len(),
                self.packet_size()
            )));
        }
        SphinxPacket::from_bytes(packet).map_err(|e| NetError::BadMessage(e.to_string()))
    }
}

/// What the recipient of a reply keeps to read it (single use, never sent).
pub struct ReplyOpener(SurbReplyRecovery);

impl ReplyOpener {
    /// The identifier the reply will carry to its last hop.
    pub fn identifier(&self) -> [u8; 16] {
        *self.0.identifier()
    }

    /// Reads a reply's payload as the last hop delivered it.
    pub fn open(&self, payload: &[u8]) -> Result<Vec<u8>, NetError> {
        let payload =
            Payload::from_bytes(payload).map_err(|e| NetError::BadMessage(e.to_string()))?;
        self.0
            .recover_plaintext(payload)
            .map_err(|e| NetError::BadMessage(format!("reply does not open: {e}")))
    }
}

impl Sphinx {
    /// The plaintext of a forward message delivered by the last hop.
    pub fn plaintext(&self, payload: &[u8]) -> Result<Vec<u8>, NetError> {
        Payload::from_bytes(payload)
            .and_then(Payload::recover_plaintext)
            .map_err(|e| NetError::BadMessage(format!("payload does not open: {e}")))
    }

    /// A single-use reply block (SURB) routing a reply back over `route` to `destination`:
    /// the block to send along with a request, and the opener to keep. Using a block twice
    /// gives two packets with one header, and the first hop's replay cache drops the second.
    pub fn reply_block(
        &self,
        route: &[Hop],
        destination: [u8; 32],
        delays: &[Duration],
    ) -> Result<(Vec<u8>, ReplyOpener), NetError> {
        let material = SURBMaterial::new(
            nodes(route),
            sphinx_delays(delays),
            // A random identifier: the recipient looks its opener up by it.
            Destination::new(
                DestinationAddressBytes::from_bytes(destination),
                rand::random(),
            ),
            SINGLE_SEED_SURB_VERSION,
        );
        let (block, recovery) = material
            .construct_recoverable_SURB()
            .map_err(|e| NetError::BadMessage(e.to_string()))?;
        Ok((block.to_bytes(), ReplyOpener(recovery)))
    }

    /// Wraps `message` in a received reply block: the first hop and the packet.
    pub fn use_reply_block(
        &self,
        block: &[u8],
        message: &[u8],
    ) -> Result<(NodeAddress, Vec<u8>), NetError> {
        let block = SURB::from_bytes(block).map_err(|e| NetError::BadMessage(e.to_string()))?;
        let (packet, first_hop) = block
            .use_surb(message, self.payload_size)
            .map_err(|e| NetError::BadMessage(e.to_string()))?;
        Ok((first_hop.to_bytes(), packet.to_bytes()))
    }
}

fn nodes(route: &[Hop]) -> Vec<Node> {
    route
        .iter()
        .map(|hop| Node::new(NodeAddressBytes::from_bytes(hop.address), hop.key))
        .collect()
}

fn sphinx_delays(delays: &[Duration]) -> Vec<Delay> {
    delays
        .iter()
        .map(|d| Delay::new_from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
        .collect()
}

impl PacketFormat for Sphinx {
    fn create(
        &self,
        message: &[u8],
        route: &[Hop],
        destination: [u8; 32],
        delays: &[Duration],
    ) -> Result<Vec<u8>, NetError> {
        let nodes = nodes(route);
        let delays = sphinx_delays(delays);
        let destination =
            Destination::new(DestinationAddressBytes::from_bytes(destination), [0; 16]);
        let packet = SphinxPacketBuilder::new()
            .with_payload_size(self.payload_size)
            .build_packet(message, &nodes, &destination, &delays)
            .map_err(|e| NetError::BadMessage(e.to_string()))?;
        Ok(packet.to_bytes())
    }

    fn open(
        &self,
        key: &StaticSecret,
        packet: &[u8],
        seen: &dyn Fn(&ReplayTag) -> bool,
    ) -> Result<Option<(ReplayTag, Opened)>, NetError> {
        let packet = self.parse(packet)?;
        // One key exchange serves both the replay tag and the unwrapping.
        let secret = packet.header.compute_expanded_shared_secret(key);
        let mut tag = [0u8; 32];
        let replay = secret.replay_tag();
        tag[..replay.len()].copy_from_slice(replay);
        if seen(&tag) {
            return Ok(None);
        }
        let processed = packet
            .process_with_expanded_secret(&secret)
            .map_err(|e| NetError::BadMessage(format!("packet does not open: {e}")))?;
        Ok(Some((
            tag,
            match processed.data {
                sphinx_packet::ProcessedPacketData::ForwardHop {
                    next_hop_packet,
                    next_hop_address,
                    delay,
                } => Opened::Forward {
                    next: next_hop_address.to_bytes(),
                    delay: delay.to_duration(),
                    packet: next_hop_packet.to_bytes(),
                },
                sphinx_packet::ProcessedPacketData::FinalHop {
                    destination,
                    identifier,
                    payload,
                } => Opened::Deliver {
                    destination: destination.as_bytes(),
                    identifier,
                    payload: payload.as_bytes().to_vec(),
                },
            },
        )))
    }
}

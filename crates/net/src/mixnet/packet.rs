//! The packet format: Sphinx (`sphinx-packet`, pinned exactly) behind our own trait, so the
//! rest of the mixnet never names the crate's types.

use std::time::Duration;

use sphinx_packet::{
    SphinxPacket, SphinxPacketBuilder,
    header::delays::Delay,
    route::{Destination, DestinationAddressBytes, Node, NodeAddressBytes},
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
    /// This node is the exit: the payload, for `destination`.
    Deliver {
        /// The final destination's address.
        destination: [u8; 32],
        /// The plaintext payload (zero-padded to the packet's payload size).
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
    /// same packet, or a replay of it, always has the same tag) and asks `fresh`; if `fresh`
    /// says the tag was seen, it stops there and returns `Ok(None)`, before the costly part.
    fn open(
        &self,
        key: &StaticSecret,
        packet: &[u8],
        fresh: &mut dyn FnMut(&[u8; 32]) -> bool,
    ) -> Result<Option<Opened>, NetError>;
}

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

impl PacketFormat for Sphinx {
    fn create(
        &self,
        message: &[u8],
        route: &[Hop],
        destination: [u8; 32],
        delays: &[Duration],
    ) -> Result<Vec<u8>, NetError> {
        let nodes: Vec<Node> = route
            .iter()
            .map(|hop| Node::new(NodeAddressBytes::from_bytes(hop.address), hop.key))
            .collect();
        let delays: Vec<Delay> = delays
            .iter()
            .map(|d| Delay::new_from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)))
            .collect();
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
        fresh: &mut dyn FnMut(&[u8; 32]) -> bool,
    ) -> Result<Option<Opened>, NetError> {
        let packet = self.parse(packet)?;
        // One key exchange serves both the replay tag and the unwrapping.
        let secret = packet.header.compute_expanded_shared_secret(key);
        let mut tag = [0u8; 32];
        let replay = secret.replay_tag();
        tag[..replay.len()].copy_from_slice(replay);
        if !fresh(&tag) {
            return Ok(None);
        }
        let processed = packet
            .process_with_expanded_secret(&secret)
            .map_err(|e| NetError::BadMessage(format!("packet does not open: {e}")))?;
        Ok(Some(match processed.data {
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
                payload,
                ..
            } => Opened::Deliver {
                destination: destination.as_bytes(),
                payload: payload
                    .recover_plaintext()
                    .map_err(|e| NetError::BadMessage(e.to_string()))?,
            },
        }))
    }
}

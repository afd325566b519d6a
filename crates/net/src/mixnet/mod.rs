//! The mixnet (Loopix-style), layer by layer. Built so far, sans-IO but for links: the packet format
//! behind our own trait with single-use reply blocks ([`packet`]), a mix node's per-packet
//! step with its per-epoch replay cache ([`node`]), and the signed per-epoch directory with
//! stratified route selection ([`directory`]), and fragmentation with Reed-Solomon parity
//! ([`fragment`]), and Loopix timing: exponential per-hop delays, a node's bounded delay
//! queue and the client's Poisson schedule with drop and loop cover traffic ([`timing`]);
//! and authenticated links between nodes, Noise XX with pinned keys and fixed-size frames
//! ([`link`]); a node on the network tying links, the per-packet step, the delay queue and
//! Prometheus counters together ([`server`]). Still to come (issue 4): the directory server,
//! epoch rotation driven by it, the client loop on sockets, the exit with its allowlist, and
//! the loopback harness with the `nullgate mixnode` and `nullgate directory` commands.

pub mod directory;
pub mod fragment;
pub mod link;
pub mod node;
pub mod packet;
pub mod server;
pub mod timing;

//! The mixnet (Loopix-style), layer by layer: the packet format behind our own trait with
//! single-use reply blocks ([`packet`]), a mix node's per-packet step with its per-epoch
//! replay cache ([`node`]), the signed per-epoch directory with stratified route selection
//! ([`directory`]), fragmentation with Reed-Solomon parity ([`fragment`]), Loopix timing:
//! exponential per-hop delays, a node's bounded delay queue and the client's Poisson
//! schedule with drop and loop cover traffic ([`timing`]); authenticated links, Noise XX with
//! pinned keys and fixed-size frames ([`link`]); a node on the network ([`server`]); the exit
//! beside a last-layer node ([`exit`]); the client, a [`Transport`](crate::Transport)
//! ([`client`]); key epochs ([`epoch`]); the directory authority ([`authority`]) and a whole
//! node as `nullgate mixnode` runs it ([`mixnode`]); and a loopback harness ([`harness`]).

pub mod authority;
pub mod client;
pub mod directory;
pub mod epoch;
pub mod exit;
pub mod fragment;
pub mod harness;
pub mod link;
pub mod mixnode;
pub mod node;
pub mod packet;
pub mod server;
pub mod timing;

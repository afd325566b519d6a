//! The mixnet (Loopix-style), layer by layer. Built so far: the packet format behind our
//! own trait ([`packet`]) and a mix node's per-packet step with its replay cache
//! ([`node`]), both sans-IO. Still to come (issue 4): the signed directory, authenticated
//! links, the Poisson client loop with cover traffic, fragmentation with FEC, and SURB
//! replies.

pub mod node;
pub mod packet;

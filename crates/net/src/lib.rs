//! # nullgate-net: getting a request to the provider without saying who sent it
//!
//! Every transport takes one HTTP request, encoded as Binary HTTP (RFC 9292), and returns the
//! response with its trailer section (receipts travel there, PROTOCOL §6.6), behind one
//! request-level trait, [`Transport`]. A per-call [`IsolationId`] tells the transport which
//! calls may share network state (a circuit, a connection): none, by default.
//!
//! - [`ohttp`]: Oblivious HTTP (RFC 9458). The client seals each request to the gateway's
//!   key; a relay forwards opaque messages and strips client metadata; the gateway side is an
//!   `axum` router that decapsulates and hands the inner request to any service. The relay
//!   learns who but not what; the gateway what but not who.
//! - [`socks`]: SOCKS5 (`tokio-socks`) for Tor and Nym clients, with isolation through SOCKS
//!   credentials (Tor's `IsolateSOCKSAuth`).
//! - [`direct`]: plain HTTP, for tests only: it hides nothing.
//! - `tor` (cargo feature `tor`, off by default): embedded Tor through `arti-client`, with
//!   isolation through arti's isolation tokens.
//! - [`mixnet`]: the Loopix-style mixnet on Sphinx packets: nodes on Noise links, a signed
//!   directory, an exit that forwards OHTTP-sealed requests to allowlisted gateways, and
//!   [`mixnet::client::MixnetClient`], a [`Transport`] with Poisson cover traffic.
//!
//! Stream transports (SOCKS5, Tor, direct) run TLS over the stream for `https` targets, so
//! TLS is end to end with the target ([`TlsRoots`] says whom to trust).
//!
//! This crate knows nothing about credits: it moves opaque requests.

pub mod direct;
mod error;
mod message;
pub mod mixnet;
pub mod ohttp;
pub mod socks;
mod stream;
#[cfg(feature = "tor")]
pub mod tor;
mod transport;

pub use error::NetError;
pub use message::{HttpRequest, HttpResponse, LARGE_BUCKET, MIN_BUCKET, padded_len};
pub use stream::TlsRoots;
pub use transport::{IsolationId, Transport};

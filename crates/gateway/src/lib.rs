//! # nullgate-gateway: the provider's side of a paid, private call
//!
//! The gateway stands in front of a paid API (`docs/spec/PROTOCOL.md` §6). For every
//! request it runs the spec's pipeline in the spec's order, each step a type that only the
//! step before can produce:
//!
//! ```text
//! Authorization ─parse─▶ Presented ─N look-up─▶ (retry / 409 / double spend)
//!      ─Ed25519 + Groth16─▶ Verified ─reserve N─▶ Reserved ─upstream, price─▶ Charged
//!      ─sign A'─▶ Receipted ─persist─▶ response with NullGate-Receipt
//! ```
//!
//! - [`verify`]: parsing with hard limits, the request signature and the proof against
//!   public inputs the gateway assembles itself; [`verify::Verified`] exists only there.
//!   `batching`: concurrent requests' proofs checked together, batches growing with load.
//! - [`store`]: the nullifier store behind one trait; [`store::sqlite`] keeps it in SQLite
//!   (WAL, `WITHOUT ROWID`, keyed by `N`, reservation and final record as separate states,
//!   response bodies in hourly partitions dropped whole).
//! - [`charge`]: from a reservation to a signed receipt (`A' = A_pub − Δ·G + 2^64·G`), with
//!   `Δ_min ≤ Δ ≤ C_c` enforced by the type.
//! - [`upstream`], [`usage`] and [`stream`]: forwarding with the gateway's own credentials
//!   and only the allowlisted headers; every pricing mode of the price list (fixed, per
//!   JSON-RPC method, per token of OpenAI chat, embeddings and Responses and of Anthropic
//!   Messages), unstreamed and streamed (SSE relayed as it arrives, cut off at the class
//!   cap, the receipt in a trailer and a final event);
//!   [`timestamps`]: the upstream's `created` times coarsened to the hour.
//! - [`watcher`]: the note tree and its roots from finalised `NoteDeposited` events.
//! - [`slash`]: a double spend recovers the note's secret, keeps the evidence and slashes.
//! - `close`: a mutual close (§8): the exit proof verified, `N_n` recorded with the exit's
//!   share, the clearance signed (`POST /nullgate/close`).
//! - [`service`]: the HTTP surface (`/.well-known/nullgate`, `/nullgate/tree`,
//!   `/nullgate/receipt/{N}`, `/metrics`, every priced route), behind the OHTTP gateway of
//!   `nullgate-net`.
//!
//! The gateway holds no user secret, logs no payload, prompt, nullifier or address, and
//! stores only what §6 allows: `N → (x, y, receipt)` and, for the retry window only, the
//! payload digest, `A_pub` and the response.

mod batching;
pub mod charge;
mod close;
pub mod config;
pub mod dev;
pub mod fault;
pub mod metrics;
mod pipeline;
pub mod service;
pub mod slash;
pub mod store;
pub mod stream;
pub mod timestamps;
pub mod upstream;
pub mod usage;
pub mod verify;
pub mod watcher;

pub use config::GatewayConfig;

pub use service::{Gateway, GatewayParts};

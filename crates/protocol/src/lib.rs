//! # nullgate-protocol: what client and gateway say to each other
//!
//! The wire formats of `docs/spec/PROTOCOL.md` §5, §6 and §11, as plain values with
//! byte-exact encodings and nothing else: no sockets, no tokio, no web framework, so that
//! every parser is easy to test and to fuzz (`crates/protocol/fuzz`).
//!
//! - [`close`]: a mutual close's request (exit statement and proof) and the clearance that
//!   answers it (§8).
//! - [`credential`]: the `Authorization: NullGate …` credential, versioned by its first byte,
//!   and the pre-generated [`credential::UnsignedCredential`] a client holds before it knows
//!   the payload (§5 steps 1–5 done, 6 not yet).
//! - [`receipt`]: the gateway's `NullGate-Receipt`, and the check a client makes before it
//!   advances its state (§6, end).
//! - [`payload`]: the payload digest the request key signs (§11).
//! - [`price`]: the price list as a canonical byte string whose SHA-256 is `priceListHash`
//!   (cost classes, floor fee, per-route pricing, signed headers), and charges from usage.
//! - [`well_known`]: the `/.well-known/nullgate` document, a convenience copy of the
//!   deployment parameters that clients check against the chain (§2).
//! - [`tree`]: the compact leaf list of `GET /nullgate/tree` (§3).
//! - [`rejection`]: every refusal a gateway can answer, with its one mapping to an HTTP
//!   status, an RFC 9457 problem document and a `WWW-Authenticate: NullGate` challenge.
//!
//! Every cryptographic value comes from [`nullgate_zk`] and is checked on decoding (field
//! elements below `p`, points on the curve and in the subgroup, proofs with subgroup checks),
//! so holding a decoded value means those checks passed.
//!
//! ## Design notes
//!
//! Layouts are fixed-length: a credential is always [`credential::CREDENTIAL_LEN`] bytes and a
//! receipt [`receipt::RECEIPT_LEN`], so a parser has one length to check and nothing to
//! allocate. A new layout gets a new first byte; a parser refuses versions it does not know.
//! The deployment parameters themselves (`VaultParams`) stay in `nullgate-chain`, next to the
//! contract they are the constructor of: both sides read them from the chain, and the
//! [`well_known::WellKnown`] document is the copy they compare.
//!
//! ```
//! use nullgate_protocol::price::PriceList;
//! let list = PriceList::parse(
//!     b"nullgate-price-list 1\nclasses 100 1000\nfloor 10\nsigned-header content-type\n\
//!       route POST /v1/chat/completions openai-tokens 1 2\n",
//! )
//! .unwrap();
//! assert_eq!(list.floor_fee(), 10);
//! assert_eq!(list.hash(), nullgate_protocol::price::PriceList::parse(&list.to_bytes()).unwrap().hash());
//! ```

pub mod close;
pub mod credential;
pub mod deployment;
mod error;
pub mod payload;
pub mod price;
pub mod receipt;
pub mod rejection;
pub mod tree;
pub mod well_known;

pub use error::WireError;
pub use nullgate_zk;

/// Encodes bytes as unpadded base64url (RFC 4648 §5), as credentials and receipts travel.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url; `what` names the value in the error.
pub fn from_base64url(text: &str, what: &'static str) -> Result<Vec<u8>, WireError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.as_bytes())
        .map_err(|_| WireError::Base64(what))
}

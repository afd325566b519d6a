//! `GET /.well-known/nullgate` (PROTOCOL §2): the gateway's convenience copy of the
//! deployment parameters, with the price list and the OHTTP key configurations it serves.
//!
//! A client never trusts it alone: it reads the same values from the chain (over its
//! anonymity transport) and uses this document only where every value matches (the price
//! list and key configurations by their pinned hashes).

use serde::{Deserialize, Serialize};

use crate::{WireError, price::PriceList};

/// The path of the document.
pub const WELL_KNOWN_PATH: &str = "/.well-known/nullgate";

/// The path of the leaf list.
pub const TREE_PATH: &str = "/nullgate/tree";

/// The path prefix of receipt look-ups (`/nullgate/receipt/{N as 64 hex digits}`).
pub const RECEIPT_PATH: &str = "/nullgate/receipt";

/// Longest document a client reads.
pub const MAX_WELL_KNOWN_LEN: usize = 256 << 10;

/// A registered state key.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StateKeyEntry {
    /// Its absolute number.
    pub number: u32,
    /// `x ‖ y`, hex.
    pub point: String,
}

/// The document. Hashes and field elements are `0x`-prefixed hex, big-endian.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WellKnown {
    /// Protocol version (1).
    pub version: u32,
    /// The chain id.
    pub chain_id: u64,
    /// The vault's address.
    pub vault: String,
    /// `dom`.
    pub dom: String,
    /// `x_e`.
    pub exit_x: String,
    /// Whether the vault's keys come from a DEV setup (anyone can forge proofs).
    pub dev_keys: bool,
    /// The cost classes (equal to the price list's).
    pub cost_classes: Vec<u64>,
    /// `Δ_min`.
    pub floor_fee: u64,
    /// The number of the key that signs new states.
    pub current_key: u32,
    /// Every key accepted for requests.
    pub state_keys: Vec<StateKeyEntry>,
    /// The price list, canonical text.
    pub price_list: String,
    /// `priceListHash`.
    pub price_list_hash: String,
    /// The `application/ohttp-keys` body, base64url.
    pub ohttp_keys: String,
    /// `ohttpKeysHash`.
    pub ohttp_keys_hash: String,
    /// SHA-256 of the request verifying key.
    pub request_verifying_key_hash: String,
    /// SHA-256 of the exit verifying key.
    pub exit_verifying_key_hash: String,
    /// Where the leaf list is served.
    pub tree: String,
    /// Where receipts are looked up.
    pub receipt: String,
}

impl WellKnown {
    /// Parses the JSON document (bounded) and its price list.
    pub fn parse(bytes: &[u8]) -> Result<(Self, PriceList), WireError> {
        if bytes.len() > MAX_WELL_KNOWN_LEN {
            return Err(WireError::Length {
                what: "well-known document",
                expected: MAX_WELL_KNOWN_LEN,
                got: bytes.len(),
            });
        }
        let doc: Self = serde_json::from_slice(bytes)
            .map_err(|e| WireError::syntax("well-known document", e.to_string()))?;
        if doc.version != 1 {
            return Err(WireError::Version {
                what: "well-known document",
                version: u8::try_from(doc.version).unwrap_or(u8::MAX),
            });
        }
        let list = PriceList::parse(doc.price_list.as_bytes())?;
        if list.classes() != doc.cost_classes.as_slice() || list.floor_fee() != doc.floor_fee {
            return Err(WireError::syntax(
                "well-known document",
                "cost classes or floor fee differ from the price list's",
            ));
        }
        Ok((doc, list))
    }
}

/// `0x`-prefixed lowercase hex of `bytes`.
pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes `0x`-prefixed hex of exactly `N` bytes.
pub fn from_hex0x<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N], WireError> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| WireError::syntax(what, "expected 0x-prefixed hex"))?;
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out)
        .map_err(|_| WireError::syntax(what, format!("expected {N} bytes of hex")))?;
    Ok(out)
}

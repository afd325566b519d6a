//! Decoding errors of the wire formats.

/// What was wrong with bytes that claimed to be a nullgate message.
///
/// Every variant says what was wrong, so that the gateway's 400 problem document and the
/// client's error message can name it; none of them is ever a panic.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// The first byte names a layout this implementation does not know.
    #[error("{what}: unsupported version {version} (this implementation speaks version 1)")]
    Version {
        /// What was being decoded.
        what: &'static str,
        /// The version byte received.
        version: u8,
    },
    /// The message had the wrong length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// What was being decoded.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// Not valid unpadded base64url.
    #[error("{0}: not unpadded base64url")]
    Base64(&'static str),
    /// The `Authorization` header did not use the `NullGate` scheme.
    #[error("authorization: expected `NullGate <base64url credential>`")]
    Scheme,
    /// A cryptographic value inside the message was invalid (not canonical, not on the
    /// curve, not in the subgroup, a malformed proof or key).
    #[error("{0}")]
    Value(#[from] nullgate_zk::Error),
    /// The request key is not a valid Ed25519 public key, or a weak (small-order) one.
    #[error("request key: not a valid Ed25519 public key of full order")]
    RequestKey,
    /// A text format (price list, tree, well-known document) broke its grammar.
    #[error("{what}: {detail}")]
    Syntax {
        /// What was being decoded.
        what: &'static str,
        /// What was wrong, for the person reading the message.
        detail: String,
    },
}

impl WireError {
    /// A grammar error of `what`.
    pub(crate) fn syntax(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Syntax {
            what,
            detail: detail.into(),
        }
    }
}

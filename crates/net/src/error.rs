//! The errors of this crate.

/// Everything that can go wrong moving a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// A Binary HTTP message was malformed or not of the expected kind.
    #[error("malformed Binary HTTP message: {0}")]
    BadMessage(String),
    /// An OHTTP message could not be sealed or opened.
    #[error("OHTTP: {0}")]
    Ohttp(String),
    /// The encapsulated request names a key this gateway does not hold (or no longer holds):
    /// fetch the key configuration again.
    #[error("OHTTP: unknown or expired key id {0}; fetch the gateway's key configuration again")]
    UnknownKeyId(u8),
    /// The key configuration did not match the pinned hash.
    #[error("OHTTP key configuration does not match the pinned hash; refusing to use it")]
    KeyConfigMismatch,
    /// A message exceeded a size limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The peer answered with an unexpected status or content type.
    #[error("unexpected answer from {peer}: {detail}")]
    Unexpected {
        /// Who answered.
        peer: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Connecting or talking to a peer failed.
    #[error("{peer}: {detail}")]
    Io {
        /// Who we were talking to.
        peer: &'static str,
        /// The underlying failure.
        detail: String,
    },
}

impl From<bhttp::Error> for NetError {
    fn from(error: bhttp::Error) -> Self {
        Self::BadMessage(error.to_string())
    }
}

impl From<ohttp::Error> for NetError {
    fn from(error: ohttp::Error) -> Self {
        Self::Ohttp(error.to_string())
    }
}

//! The request-level transport interface.

use std::future::Future;

use crate::{HttpRequest, HttpResponse, NetError};

/// Which calls may share network state. Calls with different ids must not be linkable by
/// the transport's network footprint (connection, circuit, SOCKS credentials).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IsolationId(pub u64);

impl IsolationId {
    /// A fresh random id: this call shares nothing with any other.
    pub fn fresh() -> Self {
        Self(rand::random())
    }
}

/// Moves one HTTP request to its target and brings back the response with its trailers.
pub trait Transport: Send + Sync {
    /// Sends `request`; calls with different `isolation` are kept apart.
    fn send(
        &self,
        request: HttpRequest,
        isolation: IsolationId,
    ) -> impl Future<Output = Result<HttpResponse, NetError>> + Send;

    /// Seals from now on to the gateway key configuration whose served body hashes to
    /// `pinned_hash` (the vault's current `ohttpKeysHash`, PROTOCOL §2), fetching it through
    /// this transport if the one in use is another. `Ok(true)`: the key changed. A failed
    /// fetch leaves the key in use as it was. Transports that do not seal to the gateway's
    /// key (TLS straight to it) have nothing to follow.
    fn follow_gateway_keys(
        &self,
        pinned_hash: &[u8; 32],
    ) -> impl Future<Output = Result<bool, NetError>> + Send {
        let _ = pinned_hash;
        async { Ok(false) }
    }
}

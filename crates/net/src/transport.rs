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
}

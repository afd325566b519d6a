//! Chain reads carried by a transport of the caller's instead of an HTTP connection of the
//! ledger's own: the mixnet, whose exits serve allowlisted JSON-RPC endpoints, so that the
//! node never learns who reads. [`RpcCarrier`] is all such a transport provides; alloy's
//! JSON-RPC client runs over it unchanged.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use alloy::{
    rpc::json_rpc::{RequestPacket, ResponsePacket},
    transports::{TransportError, TransportErrorKind, TransportFut},
};

/// The answer an [`RpcCarrier`] gives: the node's response body, or why there is none.
pub type Carried = Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send + 'static>>;

/// What carries JSON-RPC bodies to one node and brings its answers back.
pub trait RpcCarrier: Send + Sync + 'static {
    /// Sends one JSON-RPC body (a call or a batch) as an HTTP POST to the node and returns
    /// the body of its successful answer; any other answer or failure is an `Err` saying
    /// what happened.
    fn post(&self, body: Vec<u8>) -> Carried;
}

/// alloy's transport over an [`RpcCarrier`].
#[derive(Clone)]
pub(crate) struct CarrierTransport(pub(crate) Arc<dyn RpcCarrier>);

impl tower::Service<RequestPacket> for CarrierTransport {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: RequestPacket) -> Self::Future {
        let carrier = Arc::clone(&self.0);
        Box::pin(async move {
            let body = serde_json::to_vec(&request).map_err(TransportError::ser_err)?;
            let answer = carrier
                .post(body)
                .await
                .map_err(|e| TransportErrorKind::custom_str(&e))?;
            serde_json::from_slice(&answer)
                .map_err(|e| TransportError::deser_err(e, String::from_utf8_lossy(&answer)))
        })
    }
}

//! Oblivious HTTP (RFC 9458): client, relay and gateway.
//!
//! The client seals a Binary HTTP request to the gateway's public key and posts it to a
//! relay; the relay forwards the opaque bytes to the gateway and the sealed answer back,
//! dropping everything that could identify the client (headers, addresses); the gateway
//! opens the request, hands it to the service it fronts, and seals the response. No single
//! party learns both who asked and what.

pub(crate) mod client;
mod gateway;
mod keys;
mod relay;

pub use client::{OhttpTransport, SealedRequest};
pub use gateway::{GatewayConfig, gateway_router};
pub use keys::{KeyRing, ResponseSealer};
pub use relay::{RelayConfig, relay_router};

/// Media type of an encapsulated request.
pub const REQUEST_MEDIA_TYPE: &str = "message/ohttp-req";
/// Media type of an encapsulated response.
pub const RESPONSE_MEDIA_TYPE: &str = "message/ohttp-res";
/// Media type of the gateway's key configurations.
pub const KEYS_MEDIA_TYPE: &str = "application/ohttp-keys";
/// Path of the gateway's key configurations.
pub const KEYS_PATH: &str = "/ohttp-keys";
/// Path the gateway accepts encapsulated requests on.
pub const GATEWAY_PATH: &str = "/ohttp";

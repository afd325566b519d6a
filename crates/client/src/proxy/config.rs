//! What `nullgate proxy` is configured with.

use std::net::{Ipv4Addr, SocketAddr};

use serde::Deserialize;

/// The local proxy's settings. Every field has a default, so `{}` is a valid configuration.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where the proxy listens. Default `127.0.0.1:8787`. Must be a loopback address
    /// (`127.0.0.0/8` or `[::1]`): anything else is refused when binding.
    pub listen: SocketAddr,
    /// The largest request body accepted, in bytes; a larger one gets 413. Default 4 MiB
    /// (4194304).
    pub max_body_bytes: usize,
    /// For a chat request that sets neither `max_tokens` nor `max_completion_tokens`: the
    /// completion tokens (per choice) the cost class must cover. The proxy then sets
    /// `max_tokens` to the most that class pays for, which is at least this. Default 1024.
    pub default_max_tokens: u64,
}

/// The default listen port of `nullgate proxy`.
const DEFAULT_PORT: u16 = 8787;

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            max_body_bytes: 4 << 20,
            default_max_tokens: 1024,
        }
    }
}

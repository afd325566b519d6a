//! `gateway.toml`: every option of `nullgate gateway`, with its default.
//!
//! ```toml
//! # Where the gateway listens (plain HTTP; put TLS in front, or reach it through an OHTTP
//! # relay, which is the point). Default "127.0.0.1:8480".
//! listen = "127.0.0.1:8480"
//! # The authority (host[:port]) clients name in their sealed requests. Default: `listen`.
//! authority = "gateway.example"
//! # The nullifier store, an SQLite file (created if missing). Default "gateway.sqlite".
//! database = "gateway.sqlite"
//! # Replicas share one PostgreSQL store instead: the environment variable holding its
//! # connection string ("postgresql://user:password@host:port/db"). When set, `database`
//! # is not used. Default: none (SQLite).
//! postgres_url_env = "NULLGATE_POSTGRES_URL"
//! # The price list, canonical text (docs/spec/PROTOCOL.md §11); its SHA-256 must equal the
//! # vault's priceListHash. Default "price-list.txt".
//! price_list = "price-list.txt"
//! # The upstream API every priced route is forwarded to, e.g. "http://127.0.0.1:11434/v1"
//! # for Ollama. Paths are appended after the base's path with a leading /v1 removed when
//! # the base already ends in /v1. Required.
//! upstream = "https://api.example.com/v1"
//! # Environment variable holding the upstream API key, or a file holding it (surrounding
//! # whitespace removed); at most one of the two. Default: none (no key sent).
//! upstream_key_env = "OPENAI_API_KEY"
//! # upstream_key_file = "/run/secrets/upstream-key"
//! # How the key is sent: "bearer" (Authorization: Bearer, OpenAI and most others) or
//! # "x-api-key" (Anthropic). Default "bearer".
//! upstream_key_header = "bearer"
//! # The chain: a JSON-RPC URL and the vault's address. Required.
//! rpc_url = "http://127.0.0.1:8545"
//! vault = "0x…"
//! # The block the vault was deployed in (events are read from there). Default 0.
//! from_block = 0
//! # Confirmations for chains without a `finalized` tag; 0 uses the tag. Default 0.
//! confirmations = 0
//! # Environment variable holding the state key (32-byte hex scalar) whose public key is the
//! # vault's current key. Default "NULLGATE_STATE_KEY".
//! state_key_env = "NULLGATE_STATE_KEY"
//! # The account that submits slash transactions: environment variable with its private key.
//! # Default "NULLGATE_PRIVATE_KEY".
//! slasher_key_env = "NULLGATE_PRIVATE_KEY"
//! # The request verifying key file (from `nullgate setup`); its hash must match the vault.
//! # Default "keys/request.vk.ark".
//! request_verifying_key = "keys/request.vk.ark"
//! # The exit verifying key file (from `nullgate setup`), for mutual closes; its hash must
//! # match the vault. Default "keys/exit.vk.ark".
//! exit_verifying_key = "keys/exit.vk.ark"
//! # Environment variable holding the clearance signer's private key (mutual closes); its
//! # address must be the vault's clearanceSigner. Default: none (closes are refused and
//! # clients exit on chain).
//! clearance_key_env = "NULLGATE_CLEARANCE_KEY"
//! # Environment variable with the OHTTP key seed (32+ bytes hex): the same seed gives the
//! # same key configuration. Default "NULLGATE_OHTTP_SEED".
//! ohttp_seed_env = "NULLGATE_OHTTP_SEED"
//! [limits]   # every field optional; defaults shown
//! hour_skew = 1               # hours: accepted |t − hour of the newest finalised block|
//! lease_seconds = 600         # a reservation's lease
//! retention_hours = 24        # payload digests, A_pub and response bodies kept for retries
//! max_request_bytes = 1048576
//! max_response_bytes = 16777216
//! invalid_per_second = 200    # failed verifications per second, globally, before 429
//! poll_ms = 1000              # how often the watcher reads the chain
//! ```

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

/// The file `nullgate gateway --config` reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listen address. Default `127.0.0.1:8480`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The authority clients name. Default: `listen`.
    #[serde(default)]
    pub authority: Option<String>,
    /// SQLite file. Default `gateway.sqlite`.
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Environment variable with a PostgreSQL connection string; when set, the store is
    /// PostgreSQL (shared by replicas) and `database` is unused. Default: none.
    #[serde(default)]
    pub postgres_url_env: Option<String>,
    /// Price list file. Default `price-list.txt`.
    #[serde(default = "default_price_list")]
    pub price_list: PathBuf,
    /// Upstream base URL.
    pub upstream: String,
    /// Environment variable with the upstream key. Default: none.
    #[serde(default)]
    pub upstream_key_env: Option<String>,
    /// File with the upstream key (instead of `upstream_key_env`). Default: none.
    #[serde(default)]
    pub upstream_key_file: Option<PathBuf>,
    /// How the upstream key is sent. Default `bearer`.
    #[serde(default)]
    pub upstream_key_header: crate::upstream::KeyHeader,
    /// JSON-RPC URL of the chain.
    pub rpc_url: String,
    /// The vault's address (0x hex).
    pub vault: String,
    /// Deployment block. Default 0.
    #[serde(default)]
    pub from_block: u64,
    /// Confirmations instead of the `finalized` tag; 0 uses the tag. Default 0.
    #[serde(default)]
    pub confirmations: u64,
    /// Environment variable with the state key. Default `NULLGATE_STATE_KEY`.
    #[serde(default = "default_state_key_env")]
    pub state_key_env: String,
    /// Environment variable with the slashing account's key. Default `NULLGATE_PRIVATE_KEY`.
    #[serde(default = "default_slasher_env")]
    pub slasher_key_env: String,
    /// Request verifying key file. Default `keys/request.vk.ark`.
    #[serde(default = "default_vk")]
    pub request_verifying_key: PathBuf,
    /// Exit verifying key file. Default `keys/exit.vk.ark`.
    #[serde(default = "default_exit_vk")]
    pub exit_verifying_key: PathBuf,
    /// Environment variable with the clearance signer's key. Default: none.
    #[serde(default)]
    pub clearance_key_env: Option<String>,
    /// Environment variable with the OHTTP key seed. Default `NULLGATE_OHTTP_SEED`.
    #[serde(default = "default_ohttp_env")]
    pub ohttp_seed_env: String,
    /// Limits and timings.
    #[serde(default)]
    pub limits: Limits,
}

/// Limits and timings of the pipeline (all optional in the file).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Accepted `|t − hour(newest finalised block)|`, hours. Default 1.
    pub hour_skew: u32,
    /// A reservation's lease, seconds. Default 600.
    pub lease_seconds: u64,
    /// Retry window for payload digests, `A_pub` and bodies, hours. Default 24.
    pub retention_hours: u32,
    /// Largest request body. Default 1 MiB.
    pub max_request_bytes: usize,
    /// Largest response body kept and relayed. Default 16 MiB.
    pub max_response_bytes: usize,
    /// Failed verifications per second before 429 (global). Default 200.
    pub invalid_per_second: u32,
    /// Watcher poll interval, milliseconds. Default 1000.
    pub poll_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            hour_skew: 1,
            lease_seconds: 600,
            retention_hours: 24,
            max_request_bytes: 1 << 20,
            max_response_bytes: 16 << 20,
            invalid_per_second: 200,
            poll_ms: 1000,
        }
    }
}

impl Limits {
    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }
}

impl GatewayConfig {
    /// Parses `gateway.toml`.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("gateway config: {e}"))
    }

    /// The authority clients name: `authority`, or the listen address.
    pub fn authority(&self) -> String {
        self.authority
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8480))
}
fn default_database() -> PathBuf {
    "gateway.sqlite".into()
}
fn default_price_list() -> PathBuf {
    "price-list.txt".into()
}
fn default_state_key_env() -> String {
    "NULLGATE_STATE_KEY".into()
}
fn default_slasher_env() -> String {
    "NULLGATE_PRIVATE_KEY".into()
}
fn default_vk() -> PathBuf {
    "keys/request.vk.ark".into()
}
fn default_exit_vk() -> PathBuf {
    "keys/exit.vk.ark".into()
}
fn default_ohttp_env() -> String {
    "NULLGATE_OHTTP_SEED".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_file_takes_documented_defaults() {
        let config = GatewayConfig::from_toml(
            "upstream = \"http://127.0.0.1:1/v1\"\nrpc_url = \"http://127.0.0.1:8545\"\nvault = \"0x00\"\n",
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8480");
        assert_eq!(config.limits.lease_seconds, 600);
        assert_eq!(config.limits.retention_hours, 24);
        assert_eq!(config.authority(), "127.0.0.1:8480");
        assert_eq!(config.postgres_url_env, None);
        assert_eq!(
            config.upstream_key_header,
            crate::upstream::KeyHeader::Bearer
        );
        let anthropic = GatewayConfig::from_toml(
            "upstream = \"http://127.0.0.1:1/v1\"\nrpc_url = \"x\"\nvault = \"0x00\"\n\
             upstream_key_file = \"key.txt\"\nupstream_key_header = \"x-api-key\"\n",
        )
        .unwrap();
        assert_eq!(
            anthropic.upstream_key_header,
            crate::upstream::KeyHeader::XApiKey
        );
        assert!(GatewayConfig::from_toml("upstream = 1").is_err());
        assert!(
            GatewayConfig::from_toml("upstream=\"a\"\nrpc_url=\"b\"\nvault=\"c\"\nbogus=1")
                .is_err()
        );
    }
}

//! Embedded Tor (`arti-client`), behind the `tor` feature: each request goes over its own Tor
//! stream to its target through the same stream adapter as SOCKS5 (TLS end to end for
//! `https`), and calls with different isolation ids never share a circuit.
//!
//! Deliberately not in the default build: arti is about 390 crates, its API is not yet
//! stable, and it may exit the process when it sees an obsolete consensus (arti issue
//! tpo/core/arti#1932). The SOCKS5 transport reaches an external Tor or arti daemon without
//! any of that.
//
// The tokens for isolation ids are kept in a bounded map: forgetting one only makes a later
// call with the same id take a new circuit, never share one it must not.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use arti_client::{
    IsolationToken, StreamPrefs, TorClient, TorClientConfig, config::TorClientConfigBuilder,
};
use tor_rtcompat::PreferredRuntime;

use crate::{
    HttpRequest, HttpResponse, IsolationId, NetError, Transport,
    stream::{TlsRoots, check_scheme, exchange},
};

/// Isolation tokens remembered at most; the map is emptied when full.
const MAX_TOKENS: usize = 4_096;

/// Sends each request over embedded Tor.
pub struct TorTransport {
    client: Arc<TorClient<PreferredRuntime>>,
    tokens: Mutex<HashMap<IsolationId, IsolationToken>>,
}

impl TorTransport {
    /// Bootstraps a Tor client with `config` on the current Tokio runtime (this contacts the
    /// Tor network).
    pub async fn bootstrap(config: TorClientConfig) -> Result<Self, NetError> {
        let client = TorClient::create_bootstrapped(config)
            .await
            .map_err(|e| NetError::Io {
                peer: "Tor",
                detail: e.to_string(),
            })?;
        Ok(Self {
            client,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// [`TorTransport::bootstrap`] with arti's defaults, keeping Tor's state (its guards) in
    /// `state_dir` and its directory cache in `cache_dir`, so that a restart reuses both.
    pub async fn bootstrap_in(state_dir: &Path, cache_dir: &Path) -> Result<Self, NetError> {
        let config = TorClientConfigBuilder::from_directories(state_dir, cache_dir)
            .build()
            .map_err(|e| NetError::BadMessage(format!("Tor configuration: {e}")))?;
        Self::bootstrap(config).await
    }

    fn token(&self, isolation: IsolationId) -> IsolationToken {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tokens.len() >= MAX_TOKENS && !tokens.contains_key(&isolation) {
            tokens.clear();
        }
        *tokens.entry(isolation).or_insert_with(IsolationToken::new)
    }
}

impl Transport for TorTransport {
    async fn send(
        &self,
        request: HttpRequest,
        isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        check_scheme(&request)?;
        let (host, port) = crate::socks::split_authority(&request.authority)?;
        let mut prefs = StreamPrefs::new();
        prefs.set_isolation(self.token(isolation));
        // Tor's exit resolves the name: no DNS lookup leaves this machine.
        let stream = self
            .client
            .connect_with_prefs((host, port), &prefs)
            .await
            .map_err(|e| NetError::Io {
                peer: "Tor",
                detail: e.to_string(),
            })?;
        exchange(stream, request, &TlsRoots::webpki()).await
    }
}

//! How `nullgate proxy` and `nullgate mcp` reach the gateway: the `[transport]` table of
//! `proxy.toml`, and the one [`Transport`] it builds.
//!
//! ```toml
//! [transport]
//! kind = "ohttp"                      # sealed through an OHTTP relay (the default choice)
//! relay = "https://relay.example/"
//!
//! # kind = "mixnet"                   # Sphinx packets through the mixnet to the gateway
//! # authority = "http://directory.example:7000"   # the directory authority
//! # authority_key = "…"               # its Ed25519 public key, hex
//! # gateway_url = "http://gateway.example:8080"   # as the exits allowlist it
//!
//! # kind = "socks5"                   # Tor's SocksPort or Nym's socks5 client
//! # socks = "127.0.0.1:9050"
//! # gateway_url = "https://gateway.example"       # or an onion service's http:// URL
//!
//! # kind = "direct"                   # hides nothing: tests and local development only
//! # gateway_url = "http://127.0.0.1:8080"
//! ```
//!
//! OHTTP and the mixnet seal every call to the gateway's key, fetched through the transport
//! and checked against the vault's `ohttpKeysHash`. SOCKS5 and direct carry plain HTTP(S)
//! to `gateway_url`, TLS end to end for `https`.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use hex::FromHex;
use nullgate_chain::RpcRoute;
use nullgate_net::{
    HttpRequest, HttpResponse, IsolationId, NetError, Transport,
    direct::DirectTransport,
    mixnet::{
        authority::fetch_directory,
        client::{GatewayKeys, MixnetClient, MixnetConfig},
        link::LinkKeypair,
    },
    ohttp::OhttpTransport,
    socks::Socks5Transport,
};
use serde::Deserialize;

/// The `[transport]` table: which network carries the paid calls.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum TransportFile {
    /// Oblivious HTTP through a relay: the relay sees this machine, the gateway does not.
    Ohttp {
        /// The relay's URL.
        relay: String,
    },
    /// The mixnet: Poisson-delayed Sphinx packets with cover traffic, to the gateway through
    /// an exit.
    Mixnet {
        /// The directory authority's base URL.
        authority: String,
        /// The authority's Ed25519 public key (64 hex digits).
        authority_key: String,
        /// The gateway's base URL, as the exits allowlist it.
        gateway_url: String,
    },
    /// A SOCKS5 proxy (a Tor or Nym client): one circuit per call.
    Socks5 {
        /// The proxy's address (Tor's default port 9050; Nym's socks5 client, 1080).
        socks: SocketAddr,
        /// Where the gateway serves paid calls (`https://…`, or `http://….onion`).
        gateway_url: String,
    },
    /// Straight to the gateway: it sees this machine's address.
    Direct {
        /// Where the gateway serves paid calls.
        gateway_url: String,
    },
}

/// What the proxy prints when its transport is direct, before anything else.
pub(crate) const DIRECT_WARNING: &str = "WARNING: transport \"direct\" hides nothing. The \
gateway sees this machine's address and links every call to it. Use it only for tests; \
choose ohttp, mixnet or socks5 in proxy.toml's [transport].";

impl TransportFile {
    /// The route the client's own chain reads take by default: through the SOCKS5 proxy when
    /// the calls use one, straight to the node otherwise.
    pub(crate) fn chain_route(&self) -> RpcRoute {
        match self {
            Self::Socks5 { socks, .. } => RpcRoute::Socks5(*socks),
            _ => RpcRoute::Direct,
        }
    }

    /// Builds the transport; sealed kinds fetch the gateway's key through it and check it
    /// against `pinned_hash` (the vault's `ohttpKeysHash`).
    pub(crate) async fn connect(&self, pinned_hash: &[u8; 32]) -> anyhow::Result<ChosenTransport> {
        Ok(match self {
            Self::Ohttp { relay } => ChosenTransport::Ohttp(
                OhttpTransport::through_relay(
                    relay.parse().context("[transport] relay: not a URL")?,
                    pinned_hash,
                )
                .await
                .context("fetching the gateway's OHTTP key through the relay")?,
            ),
            Self::Mixnet {
                authority,
                authority_key,
                gateway_url,
            } => ChosenTransport::Mixnet(Box::new(
                mixnet_client(authority, authority_key, gateway_url, pinned_hash).await?,
            )),
            Self::Socks5 { socks, gateway_url } => ChosenTransport::Socks5 {
                transport: Socks5Transport::new(*socks),
                gateway: GatewayUrl::parse(gateway_url)?,
            },
            Self::Direct { gateway_url } => {
                eprintln!("{DIRECT_WARNING}");
                ChosenTransport::Direct {
                    gateway: GatewayUrl::parse(gateway_url)?,
                }
            }
        })
    }
}

/// A mixnet client on a fresh link key, with the authority's current directory and the
/// gateway's key fetched through the mixnet; it follows the authority's new epochs.
pub(crate) async fn mixnet_client(
    authority: &str,
    authority_key: &str,
    gateway_url: &str,
    pinned_hash: &[u8; 32],
) -> anyhow::Result<MixnetClient> {
    let authority_key = <[u8; 32]>::from_hex(authority_key.trim_start_matches("0x"))
        .ok()
        .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())
        .context("the authority key must be an Ed25519 public key, 64 hex digits")?;
    let directory = fetch_directory(&reqwest::Client::new(), authority, &authority_key)
        .await
        .context("cannot get the mixnet directory")?;
    let mut client = MixnetClient::connect(
        MixnetConfig::deployment(),
        directory,
        LinkKeypair::generate()?,
        gateway_url,
        GatewayKeys::Fetch {
            pinned_hash: *pinned_hash,
        },
    )
    .await?;
    client.follow_authority(authority, authority_key);
    Ok(client)
}

/// Where a stream transport delivers calls: the scheme and `host:port` of `gateway_url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GatewayUrl {
    scheme: String,
    authority: String,
}

impl GatewayUrl {
    /// Parses `http[s]://host[:port]` (a path is refused: calls keep their own).
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let parsed: reqwest::Url = url
            .parse()
            .with_context(|| format!("[transport] gateway_url {url:?} is not a URL"))?;
        let scheme = parsed.scheme();
        if scheme != "http" && scheme != "https" {
            bail!("[transport] gateway_url must be http:// or https://, not {scheme}://");
        }
        if parsed.path() != "/" || parsed.query().is_some() {
            bail!("[transport] gateway_url is the gateway's origin only, without a path");
        }
        let host = parsed
            .host_str()
            .context("[transport] gateway_url has no host")?;
        let port = parsed
            .port_or_known_default()
            .context("[transport] gateway_url has no port")?;
        Ok(Self {
            scheme: scheme.to_owned(),
            authority: format!("{host}:{port}"),
        })
    }

    /// `request`, addressed to this gateway.
    fn address(&self, mut request: HttpRequest) -> HttpRequest {
        request.scheme.clone_from(&self.scheme);
        request.authority.clone_from(&self.authority);
        request
    }
}

/// The transport `[transport]` chose. Calls name the gateway's authority; the stream kinds
/// readdress them to `gateway_url`.
pub(crate) enum ChosenTransport {
    /// Sealed through a relay.
    Ohttp(OhttpTransport),
    /// Sealed through the mixnet.
    Mixnet(Box<MixnetClient>),
    /// Through a SOCKS5 proxy to the gateway's URL.
    Socks5 {
        /// The tunnels.
        transport: Socks5Transport,
        /// Where the calls go.
        gateway: GatewayUrl,
    },
    /// Straight to the gateway's URL.
    Direct {
        /// Where the calls go.
        gateway: GatewayUrl,
    },
}

impl ChosenTransport {
    /// The kind, as `proxy.toml` names it.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Ohttp(_) => "ohttp",
            Self::Mixnet(_) => "mixnet",
            Self::Socks5 { .. } => "socks5",
            Self::Direct { .. } => "direct",
        }
    }
}

impl Transport for ChosenTransport {
    async fn send(
        &self,
        request: HttpRequest,
        isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        match self {
            Self::Ohttp(transport) => transport.send(request, isolation).await,
            Self::Mixnet(transport) => transport.send(request, isolation).await,
            Self::Socks5 { transport, gateway } => {
                transport.send(gateway.address(request), isolation).await
            }
            Self::Direct { gateway } => {
                DirectTransport
                    .send(gateway.address(request), isolation)
                    .await
            }
        }
    }

    async fn follow_gateway_keys(&self, pinned_hash: &[u8; 32]) -> Result<bool, NetError> {
        match self {
            Self::Ohttp(transport) => transport.follow_gateway_keys(pinned_hash).await,
            Self::Mixnet(transport) => transport.follow_gateway_keys(pinned_hash).await,
            // TLS straight to the gateway: no OHTTP key.
            Self::Socks5 { .. } | Self::Direct { .. } => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TransportFile, toml::de::Error> {
        #[derive(Deserialize)]
        struct File {
            transport: TransportFile,
        }
        toml::from_str::<File>(text).map(|f| f.transport)
    }

    #[test]
    fn each_kind_parses_and_a_wrong_field_is_refused() {
        assert_eq!(
            parse("[transport]\nkind = \"ohttp\"\nrelay = \"https://r.example/\"").unwrap(),
            TransportFile::Ohttp {
                relay: "https://r.example/".into()
            }
        );
        let socks = parse(
            "[transport]\nkind = \"socks5\"\nsocks = \"127.0.0.1:9050\"\n\
             gateway_url = \"http://abc.onion\"",
        )
        .unwrap();
        assert_eq!(
            socks.chain_route(),
            RpcRoute::Socks5("127.0.0.1:9050".parse().unwrap())
        );
        assert!(matches!(
            parse(
                "[transport]\nkind = \"mixnet\"\nauthority = \"http://a\"\n\
                 authority_key = \"00\"\ngateway_url = \"http://g\""
            )
            .unwrap(),
            TransportFile::Mixnet { .. }
        ));
        let direct = parse("[transport]\nkind = \"direct\"\ngateway_url = \"http://g:1\"").unwrap();
        assert_eq!(direct.chain_route(), RpcRoute::Direct);
        for bad in [
            // No such kind.
            "[transport]\nkind = \"carrier-pigeon\"",
            // A field of another kind.
            "[transport]\nkind = \"ohttp\"\nrelay = \"https://r/\"\nsocks = \"127.0.0.1:1\"",
            // A missing field.
            "[transport]\nkind = \"socks5\"\nsocks = \"127.0.0.1:9050\"",
            // No kind at all.
            "[transport]\nrelay = \"https://r/\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gateway_urls_are_origins_only() {
        assert_eq!(
            GatewayUrl::parse("https://gateway.example").unwrap(),
            GatewayUrl {
                scheme: "https".into(),
                authority: "gateway.example:443".into()
            }
        );
        assert_eq!(
            GatewayUrl::parse("http://abc.onion").unwrap().authority,
            "abc.onion:80"
        );
        for bad in [
            "gateway.example",
            "ftp://gateway.example",
            "https://gateway.example/v1",
            "https://gateway.example/?x=1",
        ] {
            assert!(GatewayUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_bad_mixnet_authority_key_is_refused_before_any_connection() {
        let Err(error) = mixnet_client("http://127.0.0.1:9", "zz", "http://g", &[0; 32]).await
        else {
            panic!("a bad key was taken");
        };
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
}

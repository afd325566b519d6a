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
//! # kind = "tor"                      # embedded Tor (a build with `--features tor`)
//! # gateway_url = "https://gateway.example"       # or an onion service's http:// URL
//! # dir = "tor"                       # Tor's state and directory cache
//!
//! # kind = "direct"                   # hides nothing: tests and local development only
//! # gateway_url = "http://127.0.0.1:8080"
//! ```
//!
//! OHTTP and the mixnet seal every call to the gateway's key, fetched through the transport
//! and checked against the vault's `ohttpKeysHash`. SOCKS5, Tor and direct carry plain
//! HTTP(S) to `gateway_url`, TLS end to end for `https`. The mixnet, SOCKS5 and Tor carry
//! the proxy's own chain reads too (see `chain_reads` in [`crate::proxy`]).

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::{Context, bail};
use hex::FromHex;
use http::Method;
use nullgate_chain::{Carried, RpcCarrier, RpcRoute};
#[cfg(feature = "tor")]
use nullgate_net::tor::TorTransport;
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
    /// Embedded Tor (arti), in builds with the `tor` feature: one circuit per call, the
    /// chain reads on one of their own.
    Tor {
        /// Where the gateway serves paid calls (`https://…`, or `http://….onion`).
        gateway_url: String,
        /// Where Tor keeps its state (guards) and directory cache. Default `tor`, relative to
        /// the working directory.
        #[serde(default = "default_tor_dir")]
        dir: PathBuf,
    },
    /// Straight to the gateway: it sees this machine's address.
    Direct {
        /// Where the gateway serves paid calls.
        gateway_url: String,
    },
}

fn default_tor_dir() -> PathBuf {
    "tor".into()
}

/// What the proxy prints when its transport is direct, before anything else.
pub(crate) const DIRECT_WARNING: &str = "WARNING: transport \"direct\" hides nothing. The \
gateway sees this machine's address and links every call to it. Use it only for tests; \
choose ohttp, mixnet or socks5 in proxy.toml's [transport].";

impl TransportFile {
    /// The `[transport]` table of the file at `path` (a `proxy.toml`; its other keys are not
    /// read).
    pub(crate) fn read_from(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let table: toml::Table =
            toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
        let transport = table
            .get("transport")
            .cloned()
            .with_context(|| format!("{} has no [transport] table", path.display()))?;
        transport
            .try_into()
            .with_context(|| format!("{}: [transport]", path.display()))
    }

    /// The route the client's own chain reads take by default: through the SOCKS5 proxy when
    /// the calls use one, straight to the node otherwise.
    pub(crate) fn chain_route(&self) -> RpcRoute {
        match self {
            Self::Socks5 { socks, .. } => RpcRoute::Socks5(*socks),
            _ => RpcRoute::Direct,
        }
    }

    /// Refuses, before anything leaves this machine, a kind this build cannot serve.
    pub(crate) fn check_available(&self) -> anyhow::Result<()> {
        #[cfg(not(feature = "tor"))]
        if let Self::Tor { .. } = self {
            bail!(NO_TOR);
        }
        Ok(())
    }

    /// The transport that carries the chain reads too, built first (before any chain read):
    /// the mixnet (the gateway's key taken later, once the vault's pin is read through it)
    /// and embedded Tor. `None` for the others.
    pub(crate) async fn chain_carrier(&self) -> anyhow::Result<Option<ChainCarrier>> {
        Ok(match self {
            Self::Mixnet { .. } => Some(ChainCarrier::Mixnet(Arc::new(
                self.mixnet(GatewayKeys::Later).await?,
            ))),
            #[cfg(feature = "tor")]
            Self::Tor { dir, .. } => Some(ChainCarrier::Tor(
                Arc::new(embedded_tor(dir).await?),
                IsolationId::fresh(),
            )),
            _ => None,
        })
    }

    /// The transport over a [`ChainCarrier`] built by [`Self::chain_carrier`]; the mixnet
    /// first takes the gateway's key, checked against `pinned_hash`.
    pub(crate) async fn over_carrier(
        &self,
        carrier: ChainCarrier,
        pinned_hash: &[u8; 32],
    ) -> anyhow::Result<ChosenTransport> {
        Ok(match carrier {
            ChainCarrier::Mixnet(client) => {
                client
                    .follow_gateway_keys(pinned_hash)
                    .await
                    .context("fetching the gateway's OHTTP key through the mixnet")?;
                ChosenTransport::Mixnet(client)
            }
            #[cfg(feature = "tor")]
            ChainCarrier::Tor(transport, _) => {
                let Self::Tor { gateway_url, .. } = self else {
                    bail!("embedded Tor carries the chain reads of kind = \"tor\" only");
                };
                ChosenTransport::Tor {
                    transport,
                    gateway: GatewayUrl::parse(gateway_url)?,
                }
            }
        })
    }

    /// The mixnet client of a `kind = "mixnet"` table, its gateway key taken as `keys` says.
    pub(crate) async fn mixnet(&self, keys: GatewayKeys<'_>) -> anyhow::Result<MixnetClient> {
        let Self::Mixnet {
            authority,
            authority_key,
            gateway_url,
        } = self
        else {
            bail!("[transport] is not the mixnet");
        };
        mixnet_client(authority, authority_key, gateway_url, keys).await
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
            Self::Mixnet { .. } => ChosenTransport::Mixnet(Arc::new(
                self.mixnet(GatewayKeys::Fetch {
                    pinned_hash: *pinned_hash,
                })
                .await?,
            )),
            Self::Socks5 { socks, gateway_url } => ChosenTransport::Socks5 {
                transport: Socks5Transport::new(*socks),
                gateway: GatewayUrl::parse(gateway_url)?,
            },
            #[cfg(feature = "tor")]
            Self::Tor { gateway_url, dir } => ChosenTransport::Tor {
                gateway: GatewayUrl::parse(gateway_url)?,
                transport: Arc::new(embedded_tor(dir).await?),
            },
            #[cfg(not(feature = "tor"))]
            Self::Tor { .. } => bail!(NO_TOR),
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
    keys: GatewayKeys<'_>,
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
        keys,
    )
    .await?;
    client.follow_authority(authority, authority_key);
    Ok(client)
}

/// A transport that carries the proxy's own chain reads as well as its calls.
#[derive(Clone)]
pub(crate) enum ChainCarrier {
    /// The mixnet: each read through an exit that allowlists the node's URL
    /// (`nullgate mixnet init --allow-rpc URL`).
    Mixnet(Arc<MixnetClient>),
    /// Embedded Tor: every read on one circuit of its own, which no call uses.
    #[cfg(feature = "tor")]
    Tor(Arc<TorTransport>, IsolationId),
}

impl ChainCarrier {
    /// What it is, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Mixnet(_) => "the mixnet",
            #[cfg(feature = "tor")]
            Self::Tor(..) => "embedded Tor",
        }
    }
}

/// A JSON-RPC endpoint's URL, and the parts a request to it names (a mixnet exit checks that
/// they make the URL it allowlists).
#[derive(Clone, Debug, PartialEq, Eq)]
struct RpcEndpoint {
    url: String,
    scheme: String,
    authority: String,
    path: String,
}

impl RpcEndpoint {
    fn parse(url: &str) -> anyhow::Result<Self> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| *scheme == "http" || *scheme == "https")
            .with_context(|| format!("rpc_url {url:?}: expected http://… or https://…"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            bail!("rpc_url {url:?} has no host");
        }
        Ok(Self {
            url: url.to_owned(),
            scheme: scheme.to_owned(),
            authority: authority.to_owned(),
            path: if path.is_empty() { "/" } else { path }.to_owned(),
        })
    }

    /// A POST of the JSON-RPC `body` to this endpoint.
    fn request(&self, body: Vec<u8>) -> HttpRequest {
        let mut request = HttpRequest::new(Method::POST, &self.scheme, &self.authority, &self.path);
        request.headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        request.body = body.into();
        request
    }
}

/// The proxy's chain reads of one node through a [`ChainCarrier`]: each a JSON-RPC POST to
/// its URL.
pub(crate) struct ChainRpc {
    carrier: ChainCarrier,
    endpoint: RpcEndpoint,
}

impl ChainRpc {
    /// Chain reads of `url` through `carrier`.
    pub(crate) fn new(carrier: ChainCarrier, url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            carrier,
            endpoint: RpcEndpoint::parse(url)?,
        })
    }
}

impl RpcCarrier for ChainRpc {
    fn post(&self, body: Vec<u8>) -> Carried {
        let carrier = self.carrier.clone();
        let url = self.endpoint.url.clone();
        let request = self.endpoint.request(body);
        Box::pin(async move {
            let through = carrier.name();
            let answer = match carrier {
                ChainCarrier::Mixnet(client) => {
                    client.rpc(&url).send(request, IsolationId::fresh()).await
                }
                #[cfg(feature = "tor")]
                ChainCarrier::Tor(tor, isolation) => tor.send(request, isolation).await,
            };
            let response = answer.map_err(|e| format!("chain read through {through}: {e}"))?;
            if !response.status.is_success() {
                return Err(format!(
                    "the node answered {} through {through}",
                    response.status
                ));
            }
            Ok(response.body.to_vec())
        })
    }
}

/// Embedded Tor for `kind = "tor"`, its state and cache under `dir`.
#[cfg(feature = "tor")]
pub(crate) async fn embedded_tor(dir: &std::path::Path) -> anyhow::Result<TorTransport> {
    eprintln!(
        "bootstrapping embedded Tor (state in {}; the first start takes a while)",
        dir.display()
    );
    TorTransport::bootstrap_in(&dir.join("state"), &dir.join("cache"))
        .await
        .context("bootstrapping embedded Tor")
}

/// Why `kind = "tor"` is refused by a build without the `tor` feature.
#[cfg(not(feature = "tor"))]
const NO_TOR: &str = "[transport] kind = \"tor\" needs a nullgate built with embedded Tor \
(`cargo install --path crates/cli --features tor`); or run a Tor daemon and use kind = \"socks5\" \
with socks = \"127.0.0.1:9050\"";

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
    /// Sealed through the mixnet (shared with the chain reads it may carry).
    Mixnet(Arc<MixnetClient>),
    /// Through a SOCKS5 proxy to the gateway's URL.
    Socks5 {
        /// The tunnels.
        transport: Socks5Transport,
        /// Where the calls go.
        gateway: GatewayUrl,
    },
    /// Over embedded Tor to the gateway's URL.
    #[cfg(feature = "tor")]
    Tor {
        /// The Tor client (shared with the chain reads, which use a circuit of their own).
        transport: Arc<TorTransport>,
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
            #[cfg(feature = "tor")]
            Self::Tor { .. } => "tor",
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
            #[cfg(feature = "tor")]
            Self::Tor { transport, gateway } => {
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
            #[cfg(feature = "tor")]
            Self::Tor { .. } => Ok(false),
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
    fn rpc_urls_split_into_the_parts_a_request_names() {
        let plain = RpcEndpoint::parse("http://127.0.0.1:8545").unwrap();
        assert_eq!(
            (
                plain.scheme.as_str(),
                plain.authority.as_str(),
                plain.path.as_str()
            ),
            ("http", "127.0.0.1:8545", "/")
        );
        let request = plain.request(b"{}".to_vec());
        assert_eq!(
            format!("{}://{}{}", request.scheme, request.authority, request.path),
            "http://127.0.0.1:8545/"
        );
        assert_eq!(request.headers["content-type"], "application/json");
        let keyed = RpcEndpoint::parse("https://node.example/v3/KEY").unwrap();
        assert_eq!(keyed.authority, "node.example");
        assert_eq!(keyed.path, "/v3/KEY");
        for bad in ["node.example:8545", "ftp://node.example", "http:///path"] {
            assert!(RpcEndpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tor_parses_and_a_build_without_it_says_how_to_get_it() {
        let tor = parse("[transport]\nkind = \"tor\"\ngateway_url = \"http://abc.onion\"").unwrap();
        assert_eq!(
            tor,
            TransportFile::Tor {
                gateway_url: "http://abc.onion".into(),
                dir: "tor".into()
            }
        );
        #[cfg(not(feature = "tor"))]
        {
            let error = tor.check_available().unwrap_err().to_string();
            assert!(
                error.contains("--features tor") && error.contains("socks5"),
                "{error}"
            );
        }
        #[cfg(feature = "tor")]
        tor.check_available().unwrap();
    }

    #[test]
    fn the_transport_table_is_read_from_a_proxy_toml_and_refused_when_absent_or_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("proxy.toml");
        std::fs::write(
            &file,
            "wallet = \"w\"\n[proxy]\nlisten = \"127.0.0.1:1\"\n\
             [transport]\nkind = \"ohttp\"\nrelay = \"https://r.example/\"\n",
        )
        .unwrap();
        assert_eq!(
            TransportFile::read_from(&file).unwrap(),
            TransportFile::Ohttp {
                relay: "https://r.example/".into()
            }
        );
        for (text, says) in [
            ("wallet = \"w\"\n", "no [transport] table"),
            ("[transport]\nkind = \"pigeon\"\n", "[transport]"),
            ("not = toml = at all", "is not TOML"),
        ] {
            std::fs::write(&file, text).unwrap();
            let error = format!("{:#}", TransportFile::read_from(&file).unwrap_err());
            assert!(error.contains(says), "{text}: {error}");
        }
        let missing = format!(
            "{:#}",
            TransportFile::read_from(&dir.path().join("none.toml")).unwrap_err()
        );
        assert!(missing.contains("cannot read"), "{missing}");
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
        let Err(error) =
            mixnet_client("http://127.0.0.1:9", "zz", "http://g", GatewayKeys::Later).await
        else {
            panic!("a bad key was taken");
        };
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
}

//! `nullgate fetch`: one HTTP request through a chosen transport, its answer printed. For
//! checking a relay and gateway, a mixnet, or a Tor/Nym SOCKS5 proxy end to end before
//! pointing an agent at it.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::Bytes;
use hex::FromHex;
use http::{HeaderName, HeaderValue, Method};
use nullgate_net::{
    HttpRequest, HttpResponse, IsolationId, Transport,
    direct::DirectTransport,
    mixnet::client::{GatewayKeys, MixnetClient},
    ohttp::OhttpTransport,
    socks::Socks5Transport,
};

/// The transports `nullgate fetch` can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Via {
    /// Straight to the target: hides nothing (tests and local development only).
    Direct,
    /// A SOCKS5 proxy (a Tor or Nym client), one circuit per call.
    Socks5,
    /// Oblivious HTTP through a relay to the gateway in front of the target.
    Ohttp,
    /// The mixnet: through an exit to the gateway in front of the target.
    Mixnet,
}

/// Options of `nullgate fetch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The target URL (for `ohttp` and `mixnet`, as the gateway forwards it upstream).
    url: reqwest::Url,
    /// The transport.
    #[arg(long)]
    via: Via,
    /// The method (default GET, or POST with --data).
    #[arg(short = 'X', long)]
    method: Option<Method>,
    /// A header, as `Name: value`; repeat for several.
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,
    /// The request body.
    #[arg(short = 'd', long)]
    data: Option<String>,
    /// Print the status and headers before the body, and trailers after it.
    #[arg(short = 'i', long)]
    include: bool,
    /// socks5: the proxy's address (Tor's default port 9050; Nym's socks5 client, 1080).
    #[arg(long, default_value = "127.0.0.1:9050")]
    socks: SocketAddr,
    /// ohttp: the relay's URL.
    #[arg(long)]
    relay: Option<reqwest::Url>,
    /// ohttp, mixnet: SHA-256 of the gateway's key configuration (the vault's
    /// `ohttpKeysHash`, hex); the key is fetched through the transport and must match it.
    #[arg(long)]
    keys_hash: Option<String>,
    /// mixnet: the directory authority's base URL.
    #[arg(long)]
    authority: Option<String>,
    /// mixnet: the authority's Ed25519 public key (hex).
    #[arg(long)]
    authority_key: Option<String>,
    /// mixnet: the gateway's base URL, as the exits allowlist it.
    #[arg(long)]
    gateway: Option<String>,
}

/// The warning `--via direct` prints before anything else.
pub(crate) const DIRECT_WARNING: &str = "WARNING: --via direct hides nothing. The target sees \
this machine's address and links every call to it. Use it only for tests.";

/// Sends the request and prints the answer; an unsuccessful status is an error.
pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let request = request(&args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let response = runtime.block_on(send(&args, request))?;
    print(&response, args.include)?;
    if !response.status.is_success() {
        bail!("the target answered {}", response.status);
    }
    Ok(())
}

async fn send(args: &Args, request: HttpRequest) -> anyhow::Result<HttpResponse> {
    let isolation = IsolationId::fresh();
    let response = match args.via {
        Via::Direct => {
            eprintln!("{DIRECT_WARNING}");
            DirectTransport.send(request, isolation).await?
        }
        Via::Socks5 => {
            Socks5Transport::new(args.socks)
                .send(request, isolation)
                .await?
        }
        Via::Ohttp => {
            let relay = args
                .relay
                .clone()
                .context("--via ohttp needs --relay URL (the OHTTP relay)")?;
            let pin = keys_hash(args)?;
            OhttpTransport::through_relay(relay, &pin)
                .await?
                .send(request, isolation)
                .await?
        }
        Via::Mixnet => mixnet(args).await?.send(request, isolation).await?,
    };
    Ok(response)
}

/// The mixnet client the options describe.
async fn mixnet(args: &Args) -> anyhow::Result<MixnetClient> {
    let need = |what: &Option<String>, flag: &str| {
        what.clone()
            .with_context(|| format!("--via mixnet needs {flag}"))
    };
    let authority = need(&args.authority, "--authority URL (the directory authority)")?;
    let gateway = need(&args.gateway, "--gateway URL (the gateway's base URL)")?;
    let authority_key = need(&args.authority_key, "--authority-key HEX")?;
    let pinned_hash = keys_hash(args)?;
    crate::transport::mixnet_client(
        &authority,
        &authority_key,
        &gateway,
        GatewayKeys::Fetch { pinned_hash },
    )
    .await
}

fn keys_hash(args: &Args) -> anyhow::Result<[u8; 32]> {
    let hash = args.keys_hash.as_deref().context(
        "this transport needs --keys-hash HEX: the SHA-256 of the gateway's key configuration \
         (the vault's ohttpKeysHash), so that no relay or exit can hand you its own key",
    )?;
    <[u8; 32]>::from_hex(hash.trim_start_matches("0x"))
        .ok()
        .context("--keys-hash must be 64 hex digits")
}

/// The request the options describe.
fn request(args: &Args) -> anyhow::Result<HttpRequest> {
    let url = &args.url;
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        bail!("the URL must be http:// or https://, not {scheme}://");
    }
    // An IPv6 host comes in brackets already.
    let host = url.host_str().context("the URL has no host")?;
    let port = url.port_or_known_default().context("the URL has no port")?;
    let authority = format!("{host}:{port}");
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path = format!("{path}?{query}");
    }
    let method = match (&args.method, &args.data) {
        (Some(method), _) => method.clone(),
        (None, Some(_)) => Method::POST,
        (None, None) => Method::GET,
    };
    let mut request = HttpRequest::new(method, scheme, &authority, &path);
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("header {header:?} is not `Name: value`"))?;
        let name = HeaderName::try_from(name.trim())
            .with_context(|| format!("{:?} is not a header name", name.trim()))?;
        let value = HeaderValue::try_from(value.trim())
            .with_context(|| format!("the value of {name} is not a header value"))?;
        request.headers.append(name, value);
    }
    if let Some(data) = &args.data {
        request.body = Bytes::from(data.clone());
    }
    Ok(request)
}

fn print(response: &HttpResponse, include: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if include {
        writeln!(out, "{}", response.status)?;
        for (name, value) in &response.headers {
            writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
        writeln!(out)?;
    }
    out.write_all(&response.body)?;
    if include && !response.trailers.is_empty() {
        writeln!(out)?;
        for (name, value) in &response.trailers {
            writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: Args,
    }

    fn parse(line: &[&str]) -> anyhow::Result<HttpRequest> {
        let mut argv = vec!["fetch", "--via", "direct"];
        argv.extend_from_slice(line);
        request(&Command::try_parse_from(argv)?.args)
    }

    #[test]
    fn urls_become_requests_with_explicit_ports() {
        let get = parse(&["https://provider.example/v1/models?limit=2"]).unwrap();
        assert_eq!(get.method, Method::GET);
        assert_eq!(get.authority, "provider.example:443");
        assert_eq!(get.path, "/v1/models?limit=2");
        let post = parse(&["-d", "x", "-H", "Content-Type: a/b", "http://[::1]:8080/"]).unwrap();
        assert_eq!(post.method, Method::POST);
        assert_eq!(post.authority, "[::1]:8080");
        assert_eq!(post.headers["content-type"], "a/b");
        assert_eq!(post.body, Bytes::from_static(b"x"));
        assert!(parse(&["ftp://host/file"]).is_err());
        assert!(parse(&["-H", "x-value: a\u{7f}b", "http://h/"]).is_err());
        assert!(parse(&["-H", "no colon", "http://h/"]).is_err());
        assert!(parse(&["-H", "bad name: v", "http://h/"]).is_err());
    }
}

//! HTTP/1.1 over any byte stream (a TCP connection, a SOCKS tunnel, a Tor circuit): the
//! adapter stream transports share. An `https` request runs TLS (rustls) over the stream, so
//! it is end to end with the target: the proxy or the Tor exit sees only ciphertext.

use std::sync::Arc;

use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{HttpRequest, HttpResponse, NetError};

/// Largest response body a stream transport reads, in bytes.
pub(crate) const MAX_RESPONSE: usize = 16 << 20;

/// The certificates a stream transport trusts for `https` targets.
#[derive(Clone)]
pub struct TlsRoots(Arc<rustls::ClientConfig>);

impl std::fmt::Debug for TlsRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsRoots").finish_non_exhaustive()
    }
}

impl Default for TlsRoots {
    fn default() -> Self {
        Self::webpki()
    }
}

impl TlsRoots {
    /// The Mozilla root programme (`webpki-roots`): public HTTPS targets. Built once per
    /// process and shared (transports ask for it on every call).
    pub fn webpki() -> Self {
        static WEBPKI: std::sync::OnceLock<TlsRoots> = std::sync::OnceLock::new();
        WEBPKI
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                Self::from_store(roots)
            })
            .clone()
    }

    /// Only the given certificates (DER): a private gateway, or tests.
    pub fn only(certificates: &[Vec<u8>]) -> Result<Self, NetError> {
        let mut roots = rustls::RootCertStore::empty();
        for der in certificates {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| NetError::BadMessage(format!("trust anchor: {e}")))?;
        }
        Ok(Self::from_store(roots))
    }

    fn from_store(roots: rustls::RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|builder| builder.with_root_certificates(roots).with_no_client_auth())
            .expect("ring supports the default protocol versions");
        Self(Arc::new(config))
    }
}

/// Refuses a request a stream transport cannot carry, before any connection is made.
pub(crate) fn check_scheme(request: &HttpRequest) -> Result<(), NetError> {
    if request.scheme != "http" && request.scheme != "https" {
        return Err(NetError::Unexpected {
            peer: "target",
            detail: format!(
                "scheme {:?}: stream transports speak http and https only",
                request.scheme
            ),
        });
    }
    Ok(())
}

/// [`exchange_plain`] for `http`; for `https`, first a TLS handshake over `stream` with the
/// target named by the request's authority, checked against `roots`.
pub(crate) async fn exchange<S>(
    stream: S,
    request: HttpRequest,
    roots: &TlsRoots,
) -> Result<HttpResponse, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    check_scheme(&request)?;
    if request.scheme == "http" {
        return exchange_plain(stream, request).await;
    }
    let (host, _) = crate::socks::split_authority(&request.authority)?;
    let name = rustls::pki_types::ServerName::try_from(host.clone())
        .map_err(|_| NetError::BadMessage(format!("{host:?} is not a TLS server name")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::clone(&roots.0))
        .connect(name, stream)
        .await
        .map_err(|e| NetError::Io {
            peer: "target (TLS)",
            detail: e.to_string(),
        })?;
    exchange_plain(tls, request).await
}

/// Sends `request` over `stream` (HTTP/1.1, one request, the connection closed after) and
/// reads the whole response, trailers included.
async fn exchange_plain<S>(stream: S, request: HttpRequest) -> Result<HttpResponse, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| io(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(request.method)
        .uri(request.path.as_str());
    if let Some(headers) = builder.headers_mut() {
        *headers = request.headers;
        let host = request
            .authority
            .parse()
            .map_err(|_| NetError::BadMessage("invalid authority".into()))?;
        headers.insert(header::HOST, host);
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    let outgoing = builder
        .body(Full::new(request.body))
        .map_err(|e| NetError::BadMessage(e.to_string()))?;
    let response = sender
        .send_request(outgoing)
        .await
        .map_err(|e| io(e.to_string()))?;
    let (parts, body) = response.into_parts();
    let collected = Limited::new(body, MAX_RESPONSE)
        .collect()
        .await
        .map_err(|_| NetError::TooLarge {
            what: "response",
            limit: MAX_RESPONSE,
        })?;
    driver.abort();
    Ok(HttpResponse {
        status: parts.status,
        headers: parts.headers,
        trailers: collected.trailers().cloned().unwrap_or_default(),
        body: collected.to_bytes(),
    })
}

fn io(detail: String) -> NetError {
    NetError::Io {
        peer: "target",
        detail,
    }
}

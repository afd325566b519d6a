//! HTTP/1.1 over any byte stream (a TCP connection, a SOCKS tunnel): the adapter stream
//! transports share.

use http::{Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{HttpRequest, HttpResponse, NetError};

/// Largest response body a stream transport reads, in bytes.
pub(crate) const MAX_RESPONSE: usize = 16 << 20;

/// Refuses a request a stream transport cannot carry safely, before any connection is made.
pub(crate) fn check_scheme(request: &HttpRequest) -> Result<(), NetError> {
    if request.scheme != "http" {
        return Err(NetError::Unexpected {
            peer: "target",
            detail: format!(
                "scheme {:?}: stream transports speak plain HTTP only so far (TLS inside the \
                 tunnel is not built yet)",
                request.scheme
            ),
        });
    }
    Ok(())
}

/// Sends `request` over `stream` (HTTP/1.1, one request, the connection closed after) and
/// reads the whole response, trailers included.
pub(crate) async fn exchange<S>(stream: S, request: HttpRequest) -> Result<HttpResponse, NetError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    check_scheme(&request)?;
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

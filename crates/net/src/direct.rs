//! The direct transport: a plain TCP connection to the target. **It hides nothing** — the
//! target sees the caller's address — and exists for tests and local development only.

use tokio::net::TcpStream;

use crate::{
    HttpRequest, HttpResponse, IsolationId, NetError, Transport,
    stream::{TlsRoots, check_scheme, exchange},
};

/// Connects straight to the target; one connection per call.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectTransport;

impl Transport for DirectTransport {
    async fn send(
        &self,
        request: HttpRequest,
        _isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        check_scheme(&request)?;
        let stream = TcpStream::connect(request.authority.as_str())
            .await
            .map_err(|e| NetError::Io {
                peer: "target",
                detail: e.to_string(),
            })?;
        exchange(stream, request, &TlsRoots::webpki()).await
    }
}

//! SOCKS5 (RFC 1928) for Tor and Nym clients: each call opens its own tunnel, and calls with
//! different isolation ids use different SOCKS credentials (RFC 1929), which Tor's
//! `IsolateSOCKSAuth` (on by default) maps to different circuits.

use std::net::SocketAddr;

use tokio_socks::tcp::Socks5Stream;

use crate::{
    HttpRequest, HttpResponse, IsolationId, NetError, Transport,
    stream::{TlsRoots, check_scheme, exchange},
};

/// Sends each request through a SOCKS5 proxy (Tor's `SocksPort`, Nym's socks5 client).
#[derive(Clone, Debug)]
pub struct Socks5Transport {
    proxy: SocketAddr,
    roots: TlsRoots,
}

impl Socks5Transport {
    /// A transport through the SOCKS5 proxy at `proxy`; `https` targets are checked against
    /// the Mozilla roots.
    pub fn new(proxy: SocketAddr) -> Self {
        Self {
            proxy,
            roots: TlsRoots::webpki(),
        }
    }

    /// The same, trusting only `roots` for `https` targets.
    pub fn with_roots(proxy: SocketAddr, roots: TlsRoots) -> Self {
        Self { proxy, roots }
    }

    /// The SOCKS username and password an isolation id maps to.
    pub fn credentials(isolation: IsolationId) -> (String, String) {
        (format!("nullgate-{:016x}", isolation.0), "x".into())
    }
}

impl Transport for Socks5Transport {
    async fn send(
        &self,
        request: HttpRequest,
        isolation: IsolationId,
    ) -> Result<HttpResponse, NetError> {
        check_scheme(&request)?;
        let (host, port) = split_authority(&request.authority)?;
        let (user, password) = Self::credentials(isolation);
        // The proxy resolves the name: no DNS lookup leaves this machine.
        let stream = Socks5Stream::connect_with_password(
            self.proxy,
            (host.as_str(), port),
            &user,
            &password,
        )
        .await
        .map_err(|e| NetError::Io {
            peer: "SOCKS5 proxy",
            detail: e.to_string(),
        })?;
        exchange(stream, request, &self.roots).await
    }
}

pub(crate) fn split_authority(authority: &str) -> Result<(String, u16), NetError> {
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| NetError::BadMessage(format!("authority {authority:?} has no port")))?;
    let port = port
        .parse()
        .map_err(|_| NetError::BadMessage(format!("authority {authority:?} has a bad port")))?;
    Ok((host.trim_matches(['[', ']']).to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_and_credentials() {
        assert_eq!(
            split_authority("a.onion:80").unwrap(),
            ("a.onion".into(), 80)
        );
        assert_eq!(split_authority("[::1]:8080").unwrap(), ("::1".into(), 8080));
        assert!(split_authority("no-port").is_err());
        assert!(split_authority("host:99999").is_err());
        assert_ne!(
            Socks5Transport::credentials(IsolationId(1)),
            Socks5Transport::credentials(IsolationId(2))
        );
    }
}

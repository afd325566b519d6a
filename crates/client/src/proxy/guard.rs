//! The guard in front of every route: only local programs may spend the wallet's credits.
//!
//! The proxy needs no key, so whoever can reach it pays with the user's notes. The socket is
//! loopback-only; what is left are web pages in the user's browser:
//!
//! - **DNS rebinding**: a page on `evil.example` whose name now resolves to 127.0.0.1 sends
//!   `Host: evil.example`. Only `localhost` and loopback IP literals (`127.0.0.1`, `[::1]`,
//!   any port) are accepted as `Host`.
//! - **Cross-site requests** to `http://127.0.0.1:8787` itself: browsers send `Origin` on
//!   every cross-origin `fetch` and form POST, and `Sec-Fetch-*` on every request to a
//!   loopback address (a "potentially trustworthy" origin), `<img>` and no-cors GETs
//!   included. Agent SDKs send neither, so either header means a browser and gets 403.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request},
    http::header,
    middleware::Next,
    response::Response,
};

use super::error::{ApiError, Dialect};

/// Refuses (403) a request from a non-loopback peer, with a `Host` that is not loopback, or
/// carrying `Origin` or a `Sec-Fetch-*` header; passes anything else on.
pub(super) async fn guard(request: Request, next: Next) -> Response {
    match check(&request) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.in_dialect(Dialect::of_path(request.uri().path())),
    }
}

fn check(request: &Request) -> Result<(), ApiError> {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>()
        && !peer.ip().is_loopback()
    {
        return Err(ApiError::forbidden(
            "nullgate_peer_not_loopback",
            "the nullgate proxy answers programs on this machine only",
        ));
    }
    let headers = request.headers();
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(host), None) => host.to_str().ok(),
        (None, _) => request.uri().authority().map(|a| a.as_str()),
        (Some(_), Some(_)) => None,
    };
    if !host.is_some_and(is_loopback_host) {
        return Err(ApiError::forbidden(
            "nullgate_host_not_allowed",
            "the Host header must be 127.0.0.1, localhost or [::1] (with any port): another \
             name pointing here is a DNS rebinding attempt by a web page",
        ));
    }
    if headers.contains_key(header::ORIGIN)
        || headers
            .keys()
            .any(|name| name.as_str().starts_with("sec-fetch-"))
    {
        return Err(ApiError::forbidden(
            "nullgate_browser_request",
            "requests carrying an Origin or Sec-Fetch-* header come from a web page; the \
             nullgate proxy serves local programs only (point your agent's base URL here)",
        ));
    }
    Ok(())
}

/// `localhost` or a loopback IP literal (IPv6 in brackets), each with an optional port.
fn is_loopback_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((v6, rest)) => {
                let port = match rest {
                    "" => None,
                    rest => match rest.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return false,
                    },
                };
                return port.is_none_or(is_port)
                    && v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
            }
            None => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    port.is_none_or(is_port)
        && (name.eq_ignore_ascii_case("localhost")
            || name
                .parse::<Ipv4Addr>()
                .is_ok_and(|ip| IpAddr::V4(ip).is_loopback()))
}

fn is_port(port: &str) -> bool {
    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_hosts() {
        for good in [
            "127.0.0.1",
            "127.0.0.1:8787",
            "localhost",
            "LocalHost:1",
            "[::1]",
            "[::1]:8787",
            "127.0.0.2:80",
        ] {
            assert!(is_loopback_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8787",
            "localhost.",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:+80",
            "127.1",
            "0.0.0.0:8787",
            "10.0.0.1",
            "[::1",
            "[::1]x",
            "[::2]:80",
            "::1",
            "127.0.0.1:80:80",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}

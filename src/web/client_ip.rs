//! The client's address for rate limits. Behind a reverse proxy every request comes from the proxy,
//! so `X-Forwarded-For` is honoured, but only when the direct peer is listed in
//! `http.trusted_proxies`; otherwise anyone could claim any address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::state::AppState;

#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        Ok(Self(resolve(peer, forwarded, &state.config().trusted_proxies)))
    }
}

/// Walks `X-Forwarded-For` from the right, skipping trusted proxies; the first other address is
/// the client.
pub fn resolve(peer: IpAddr, forwarded: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let Some(list) = forwarded else { return peer };
    let mut client = peer;
    for hop in list.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&ip) => client = ip,
            Ok(ip) => return ip,
            Err(_) => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            resolve(client, Some("1.2.3.4"), &[proxy]),
            client,
            "untrusted peer cannot spoof"
        );
        assert_eq!(resolve(proxy, Some("1.2.3.4, 203.0.113.9"), &[proxy]), client);
        assert_eq!(resolve(proxy, Some("203.0.113.9, 10.0.0.1"), &[proxy]), client);
        assert_eq!(resolve(proxy, None, &[proxy]), proxy);
        assert_eq!(resolve(proxy, Some("garbage"), &[proxy]), proxy);
    }
}

//! Who is calling: the peer address, or — when the peer is a trusted proxy — the
//! nearest untrusted address in `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use axum::{extract::ConnectInfo, http::Request};
use ipnet::IpNet;

/// The client address of a request. Without connection info (in-process tests)
/// it is the unspecified address.
pub fn client_ip<B>(req: &Request<B>, trusted: &[IpNet]) -> IpAddr {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    resolve(peer, forwarded_for(req), trusted)
}

/// Whether the direct peer of this request is one of the trusted proxies.
pub fn peer_is_trusted<B>(req: &Request<B>, trusted: &[IpNet]) -> bool {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| is_trusted(c.0.ip(), trusted))
}

fn forwarded_for<B>(req: &Request<B>) -> Vec<IpAddr> {
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect()
}

/// Whether `ip` (IPv4-mapped IPv6 read as IPv4) is in one of the trusted networks.
pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// Walks the chain from the nearest hop outwards, skipping trusted proxies.
fn resolve(peer: IpAddr, chain: Vec<IpAddr>, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut client = peer;
    for hop in chain.into_iter().rev() {
        client = hop;
        if !is_trusted(hop, trusted) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            resolve(ip("203.0.113.9"), vec![ip("1.2.3.4")], &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_are_skipped_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // spoofed, real client, inner proxy
        let chain = vec![ip("1.2.3.4"), ip("198.51.100.7"), ip("10.0.0.2")];
        assert_eq!(resolve(ip("10.0.0.1"), chain, &trusted), ip("198.51.100.7"));
        // A trusted peer without the header is the client.
        assert_eq!(resolve(ip("10.0.0.1"), vec![], &trusted), ip("10.0.0.1"));
    }
}

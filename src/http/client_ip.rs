//! The client IP of a request, decided once and put in the request extensions as [`ClientIp`],
//! so the rate limiter, the login lockout and the audit trail all key on the same address.
//!
//! It is the TCP peer, unless the peer is one of `TRUSTED_PROXIES`: then it is the rightmost
//! `X-Forwarded-For` entry that is not itself a trusted proxy (catalogue R4/R5, ASVS 4.1.3 and
//! 15.3.4). Entries to the left of it were written by the client and prove nothing. Security
//! choices:
//! - Only `X-Forwarded-For` is read; `Forwarded` and `X-Real-IP` are ignored. A header the
//!   proxy does not rewrite passes through from the client unchanged, so reading two headers
//!   lets the client pick the one the proxy does not manage (the shipped nginx config sets XFF).
//! - A header that cannot be read (not an address, a port, too many entries, too long) gives
//!   the peer: the proxy's own address. Everyone behind it then shares one bucket, which is safe;
//!   a guessable fallback would let a client choose its key.
//! - IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`, dual-stack listeners) are read as IPv4.
//!
//! What a client is *held accountable as* is [`address_block`]: the address for IPv4, the /64
//! for IPv6, since one host is routinely given a whole /64 and can rotate through it at will
//! (catalogue R10). The rate limiter and the login lockout both key on it, through this one
//! function, so the two never disagree about who a client is.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::HeaderMap,
    middleware::Next,
    response::Response,
};
use ipnet::IpNet;

use crate::state::AppState;

/// Longest `X-Forwarded-For` read (all field lines together), in bytes; longer gives the peer.
pub const MAX_FORWARDED_BYTES: usize = 1024;

/// Most `X-Forwarded-For` entries read; more gives the peer (real chains have a handful).
pub const MAX_FORWARDED_ENTRIES: usize = 16;

pub use crate::audit::ClientIp;

/// Prefix length of the IPv6 block one client is held accountable for.
pub const IPV6_CLIENT_PREFIX: u8 = 64;

/// The block of addresses one client is held accountable for: an IPv4 address on its own (/32),
/// an IPv6 address's /64 (its host bits cleared). IPv4-mapped IPv6 addresses count as IPv4.
pub fn address_block(ip: IpAddr) -> IpNet {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
        IpAddr::V6(v6) => IpNet::new(IpAddr::V6(v6), IPV6_CLIENT_PREFIX)
            .map_or_else(|_| IpNet::from(IpAddr::V6(v6)), |net| net.trunc()),
    }
}

/// The client IP of a request from `peer` with `headers`, believing forwarded headers only from
/// `trusted` proxies.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    forwarded_client(headers, trusted).unwrap_or(peer)
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The rightmost untrusted `X-Forwarded-For` entry (the leftmost one if all are trusted), or
/// `None` when the header is absent or unreadable.
fn forwarded_client(headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let lines = headers.get_all("x-forwarded-for");
    let mut total = 0;
    let mut entries = Vec::new();
    for line in &lines {
        total += line.len();
        if total > MAX_FORWARDED_BYTES {
            return None;
        }
        for entry in line.to_str().ok()?.split(',') {
            entries.push(entry.trim());
            if entries.len() > MAX_FORWARDED_ENTRIES {
                return None;
            }
        }
    }
    let mut client = None;
    for entry in entries.iter().rev() {
        // `IpAddr` parsing refuses ports, brackets, zone ids, `unknown` and `999.1.1.1`.
        let ip = entry.parse::<IpAddr>().ok()?.to_canonical();
        client = Some(ip);
        if !is_trusted(ip, trusted) {
            break;
        }
    }
    client
}

/// Middleware: computes [`ClientIp`] from the connection and the headers. Without connect info
/// (router tests), nothing is inserted and consumers fall back as they would for the peer.
pub async fn attach_client_ip(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(peer) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
    {
        let ip = client_ip(peer, request.headers(), &state.config.trusted_proxies);
        request.extensions_mut().insert(ClientIp(ip));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// L5: one shared keying for the rate limiter and the lockout: IPv4 by address, IPv6 by /64.
    #[test]
    fn address_blocks_are_the_ipv4_address_or_the_ipv6_64() {
        let block = |s: &str| address_block(ip(s)).to_string();
        assert_eq!(block("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            block("2001:db8:1:2:aaaa::1"),
            block("2001:db8:1:2:bbbb:cccc:dddd:eeee")
        );
        assert_ne!(block("2001:db8:1:2::1"), block("2001:db8:1:3::1"));
        assert_eq!(block("192.0.2.1"), "192.0.2.1/32");
        assert_ne!(block("192.0.2.1"), block("192.0.2.2"));
        assert_eq!(block("::ffff:192.0.2.1"), "192.0.2.1/32");
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    fn proxies() -> Vec<IpNet> {
        vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_the_headers() {
        let mut headers = xff(&["203.0.113.9"]);
        headers.insert("forwarded", HeaderValue::from_static("for=1.1.1.1"));
        headers.insert("x-real-ip", HeaderValue::from_static("1.1.1.1"));
        assert_eq!(
            client_ip(ip("127.0.0.3"), &headers, &proxies()),
            ip("127.0.0.3")
        );
        assert_eq!(client_ip(ip("127.0.0.1"), &headers, &[]), ip("127.0.0.1"));
    }

    #[test]
    fn trusted_peer_gives_the_rightmost_untrusted_entry() {
        let p = proxies();
        let peer = ip("127.0.0.1");
        assert_eq!(
            client_ip(peer, &xff(&["203.0.113.9"]), &p),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer, &xff(&["1.1.1.1, 203.0.113.9"]), &p),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(peer, &xff(&["1.1.1.1, 203.0.113.9, 10.1.2.3"]), &p),
            ip("203.0.113.9")
        );
        // Several field lines are one list, in order.
        assert_eq!(
            client_ip(peer, &xff(&["1.1.1.1", "203.0.113.9, 10.0.0.7"]), &p),
            ip("203.0.113.9")
        );
        // All trusted: the leftmost (an internal client).
        assert_eq!(
            client_ip(peer, &xff(&["10.9.9.9, 10.0.0.2"]), &p),
            ip("10.9.9.9")
        );
        assert_eq!(
            client_ip(peer, &xff(&["2001:db8::1"]), &p),
            ip("2001:db8::1")
        );
        // Only X-Forwarded-For counts.
        let mut forwarded = HeaderMap::new();
        forwarded.insert("forwarded", HeaderValue::from_static("for=203.0.113.9"));
        assert_eq!(client_ip(peer, &forwarded, &p), peer);
    }

    #[test]
    fn malformed_forwarded_headers_give_the_peer() {
        let p = proxies();
        let peer = ip("127.0.0.1");
        let many = vec!["203.0.113.9"; 100].join(", ");
        let long = format!("{}203.0.113.9", " ".repeat(8 * 1024));
        for bad in [
            "unknown",
            "999.1.1.1",
            "203.0.113.9:443",
            "[2001:db8::1]:8080",
            "[2001:db8::1]",
            "fe80::1%eth0",
            "",
            ",",
            "1.1.1.1, unknown",
            "203.0.113.9 1.1.1.1",
            many.as_str(),
            long.as_str(),
        ] {
            assert_eq!(client_ip(peer, &xff(&[bad]), &p), peer, "{bad:?}");
        }
        let mut opaque = HeaderMap::new();
        opaque.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"203.0.113.\xff").unwrap(),
        );
        assert_eq!(client_ip(peer, &opaque, &p), peer);
    }

    #[test]
    fn mapped_ipv4_peers_are_read_as_ipv4() {
        let p = proxies();
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &xff(&["203.0.113.9"]), &p),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("::ffff:192.0.2.1"), &HeaderMap::new(), &p),
            ip("192.0.2.1")
        );
    }
}

//! Fetching a client ID metadata document: the one place this server fetches a URL a stranger
//! chose, so the one place guarded against SSRF (MCP security best practices, "SSRF").
//!
//! - **Scheme**: https only; plain http only for a listed loopback origin (below).
//! - **Address**: the host is resolved here, and every address must be public: private,
//!   shared, loopback, link-local (cloud metadata at 169.254.169.254), documentation,
//!   benchmarking, multicast and reserved ranges are refused, IPv4-mapped IPv6 judged as IPv4
//!   ([`ipnet`] ranges, no hand parsing). The connection is then pinned to the address
//!   checked, so a DNS answer that changes between check and use (rebinding) changes nothing.
//! - **Loopback**: never in production. Outside it, only the exact origins (scheme, host and
//!   port) of `OAUTH_LOOPBACK_METADATA_ORIGINS`, for a local client under development: allowing
//!   any loopback port would let anyone who reaches a development server use it as an oracle
//!   for what listens on its machine (a refusal, a timeout and a non-JSON answer read
//!   differently). Every other loopback URL is refused before any connection is attempted.
//! - **Bounds**: 3 s to connect, 5 s in all, 64 KiB of body, no proxy, no redirect followed (a
//!   3xx is a refusal), no credentials sent.

use std::{
    net::{IpAddr, SocketAddr},
    sync::LazyLock,
    time::Duration,
};

use ipnet::IpNet;
use url::{Host, Url};

/// Largest document read.
pub(super) const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest URL accepted as a client id.
pub(super) const MAX_URL_LEN: usize = 2048;

/// Ranges never fetched (RFC 6890 special-purpose registries; loopback handled apart).
static BLOCKED: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ]
    .iter()
    .map(|net| net.parse().expect("valid CIDR"))
    .collect()
});

/// Why a document was not fetched or not accepted; the text is for the client and the audit
/// log (it names no address the client did not give).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Refused(pub &'static str);

/// Whether `ip` may be fetched. Loopback only when `allow_loopback` (a listed origin).
#[must_use]
pub(super) fn address_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if ip.is_loopback() {
        return allow_loopback;
    }
    !BLOCKED.iter().any(|net| net.contains(&ip))
}

/// Whether `host` is a loopback name or address.
#[must_use]
pub(super) fn is_loopback_host(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Whether `url`'s origin is one of `loopback_origins` (normalized by the configuration as
/// [`Url::origin`] serializes them): the only loopback URLs ever fetched.
fn listed(url: &Url, loopback_origins: &[String]) -> bool {
    let origin = url.origin().ascii_serialization();
    loopback_origins.contains(&origin)
}

/// Checks the URL's shape: https (http only for a listed loopback origin), a host, a path
/// other than `/`, no credentials, no fragment. `loopback_origins` is empty in production.
pub(super) fn check_url(text: &str, loopback_origins: &[String]) -> Result<Url, Refused> {
    if text.len() > MAX_URL_LEN {
        return Err(Refused("the client id URL is too long"));
    }
    let url = Url::parse(text).map_err(|_| Refused("the client id is not a URL"))?;
    let host = url.host().ok_or(Refused("the client id URL has no host"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) && listed(&url, loopback_origins) => {}
        _ => return Err(Refused("a client id URL must use https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused("a client id URL must not carry credentials"));
    }
    if url.fragment().is_some() || url.path() == "/" || url.path().is_empty() {
        return Err(Refused(
            "a client id URL needs a path and no fragment (client ID metadata document)",
        ));
    }
    Ok(url)
}

/// Resolves `url`'s host and checks every address; returns the one to connect to. Loopback
/// addresses pass only for a listed origin.
async fn resolve(url: &Url, loopback_origins: &[String]) -> Result<SocketAddr, Refused> {
    let allow_loopback = listed(url, loopback_origins);
    let port = url
        .port_or_known_default()
        .ok_or(Refused("the client id URL has no port"))?;
    let addresses: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        Some(Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name.to_owned(), port));
            tokio::time::timeout(CONNECT_TIMEOUT, lookup)
                .await
                .map_err(|_| Refused("the client id URL's host did not resolve in time"))?
                .map_err(|_| Refused("the client id URL's host does not resolve"))?
                .collect()
        }
        None => return Err(Refused("the client id URL has no host")),
    };
    if addresses.is_empty() {
        return Err(Refused("the client id URL's host does not resolve"));
    }
    if addresses
        .iter()
        .any(|a| !address_allowed(a.ip(), allow_loopback))
    {
        return Err(Refused(
            "the client id URL points at a private, loopback or reserved address",
        ));
    }
    Ok(addresses[0])
}

/// Fetches the document at `url` under the rules above; returns its bytes.
pub(super) async fn fetch(url: &Url, loopback_origins: &[String]) -> Result<Vec<u8>, Refused> {
    let address = resolve(url, loopback_origins).await?;
    crate::dust::install_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .no_proxy()
        .user_agent(crate::dust::USER_AGENT);
    if let Some(Host::Domain(name)) = url.host() {
        builder = builder.resolve(name, address);
    }
    let client = builder
        .build()
        .map_err(|_| Refused("the client id URL could not be fetched"))?;
    let mut response = client
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|_| Refused("the client id URL could not be fetched"))?;
    if response.status().is_redirection() {
        return Err(Refused(
            "the client id URL redirects; redirects are not followed",
        ));
    }
    if response.status() != reqwest::StatusCode::OK {
        return Err(Refused("the client id URL did not answer 200"));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(Refused("the client metadata document is too large"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| Refused("the client id URL could not be fetched"))?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(Refused("the client metadata document is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!address_allowed(ip.parse().unwrap(), true), "{ip}");
        }
        assert!(!address_allowed("127.0.0.1".parse().unwrap(), false));
        assert!(!address_allowed("::1".parse().unwrap(), false));
        assert!(address_allowed("127.0.0.1".parse().unwrap(), true));
        assert!(address_allowed("93.184.215.14".parse().unwrap(), false));
        assert!(address_allowed("2606:4700::1111".parse().unwrap(), false));
    }

    #[test]
    fn urls_need_https_a_path_and_no_credentials() {
        let listed = ["http://127.0.0.1:9".to_owned()];
        assert!(check_url("https://client.example/meta.json", &[]).is_ok());
        assert!(check_url("http://client.example/meta.json", &listed).is_err());
        assert!(check_url("http://127.0.0.1:9/meta.json", &listed).is_ok());
        assert!(check_url("http://127.0.0.1:9/meta.json", &[]).is_err());
        assert!(check_url("https://client.example/", &[]).is_err());
        assert!(check_url("https://u:p@client.example/m", &[]).is_err());
        assert!(check_url("https://client.example/m#f", &[]).is_err());
        assert!(check_url("ftp://client.example/m", &[]).is_err());
    }

    #[test]
    fn only_the_listed_loopback_origins_pass() {
        let listed = ["http://127.0.0.1:9".to_owned()];
        for other in [
            "http://127.0.0.1:10/meta.json",
            "http://127.0.0.2:9/meta.json",
            "http://localhost:9/meta.json",
            "http://[::1]:9/meta.json",
        ] {
            assert!(check_url(other, &listed).is_err(), "{other}");
        }
    }

    #[tokio::test]
    async fn a_loopback_address_of_an_unlisted_origin_is_refused_before_connecting() {
        let listed = ["http://127.0.0.1:9".to_owned()];
        for (url, refused) in [
            ("https://127.0.0.1:9/m", true),
            ("https://127.0.0.1:10/m", true),
            ("https://localhost:10/m", true),
            ("http://127.0.0.1:9/m", false),
        ] {
            let url = Url::parse(url).unwrap();
            assert_eq!(resolve(&url, &listed).await.is_err(), refused, "{url}");
        }
    }
}

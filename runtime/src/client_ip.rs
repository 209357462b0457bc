//! Client identity for per-IP limits: the socket peer, or — behind trusted proxies — the
//! first untrusted hop of the forwarding header, read from the right.
//!
//! ```
//! use shieldwall_runtime::client_ip::{TrustedProxies, rate_ident};
//!
//! let proxies = TrustedProxies::parse(["10.0.0.0/8", "127.0.0.1"]).unwrap();
//! assert!(proxies.is_trusted("10.1.2.3".parse().unwrap()));
//!
//! // IPv6 clients are keyed by their /64: one host cannot mint unlimited identities.
//! let a = rate_ident("2001:db8:1:2:aaaa::1".parse().unwrap(), 64);
//! let b = rate_ident("2001:db8:1:2:bbbb::9".parse().unwrap(), 64);
//! assert_eq!(a, b);
//! ```
//!
//! # Why not a crate
//!
//! Common extractors take the *leftmost* `X-Forwarded-For` entry, which the client writes
//! itself: anyone can then pick their own rate-limit bucket. Here the header is only read
//! when the socket peer is a configured trusted proxy, and then from the right, skipping
//! trusted hops, so the address used is the one the outermost trusted proxy saw.
//!
//! # Configuring it
//!
//! - **nginx** on the same host, with `proxy_set_header X-Forwarded-For
//!   $proxy_add_x_forwarded_for;`: trust `127.0.0.1` (and `::1`).
//! - **A cloud load balancer** (AWS ALB, GCP HTTPS LB, Azure Front Door…), which appends
//!   the client address to `X-Forwarded-For`: trust the load balancer's subnet, e.g. the
//!   VPC range `10.0.0.0/16` — never `0.0.0.0/0`.
//! - A proxy that writes RFC 7239 `Forwarded` instead: choose [`ForwardedHeader::Forwarded`].
//!
//! Only one header is read, the one configured: with `X-Forwarded-For` configured, a
//! client-sent `Forwarded` header is ignored, and the reverse.
//!
//! # The client's scheme behind a TLS-terminating proxy
//!
//! Behind nginx, Caddy or a cloud load balancer that terminates TLS, the app's own socket
//! is plain HTTP whatever the client used. The same trusted proxies also say which scheme
//! the client used, in the header family configured above: `X-Forwarded-Proto` beside
//! `X-Forwarded-For`, the `proto=` parameter of `Forwarded` with
//! [`ForwardedHeader::Forwarded`]. That scheme — from a trusted socket peer only, never
//! from anyone else — is the request's [`ClientScheme`], and it decides:
//!
//! - **HSTS**: sent when the client is on HTTPS ([`crate::headers`]);
//! - **the HTTP policy**: a request the proxy received over plain HTTP is rejected (400
//!   `https-required`, the default) or redirected to `https://` with
//!   [`HttpPolicy::Redirect`](crate::tls::HttpPolicy), exactly like the plain listener
//!   beside the app's own HTTPS ([`crate::tls`]);
//! - **cross-site request protection**: an `Origin` on this host but with the other scheme
//!   is another origin ([`crate::csrf`]);
//! - **secure cookies**: a handler takes [`ClientScheme`] as an argument and marks its
//!   cookies `Secure` when [`ClientScheme::is_https`].
//!
//! Without a forwarded scheme (or from an untrusted peer) the connection decides: TLS on
//! the app's own listener is HTTPS. When the app has its own TLS *and* a trusted proxy
//! forwards a scheme (a proxy that re-encrypts to the app), the proxy's word wins: the hop
//! from the proxy is TLS, but the client may have used plain HTTP.
//!
//! Several values (`X-Forwarded-Proto: https, http`, or several `proto=` in `Forwarded`)
//! count as HTTPS only when every one says `https`: a client can write its own value to the
//! left of what the proxy appends, so it can only ever downgrade itself, never upgrade.
//! The proxy must overwrite (or append to) what the client sent:
//!
//! ```text
//! # nginx, in front of the app on 127.0.0.1:3000, trusting 127.0.0.1
//! proxy_set_header Host              $http_host;
//! proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
//! proxy_set_header X-Forwarded-Proto $scheme;
//! ```
//!
//! A proxy that passes the client's own `X-Forwarded-Proto` through unchanged lets that
//! client choose its scheme; it can then only skip the HTTPS policy for its own requests.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{Extensions, HeaderMap, HeaderName, header, request::Parts};

use crate::server::Transport;

/// Default IPv6 prefix length used as one client identity.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// Which forwarding header trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, cloud load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// A CIDR that does not parse.
///
/// Refused too: a range wider than a `/8` (which would believe much of the internet's
/// forwarding headers: any client could name its own address and scheme), and a range with
/// host bits set (`10.0.0.1/8`, `10.9.8.7/0`), whose writer meant something narrower.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("trusted proxy {entry:?}: {why}")]
pub struct BadCidr {
    /// The entry as written.
    pub entry: String,
    /// What is wrong and what to write instead.
    pub why: &'static str,
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<ipnet::IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// No trusted proxies: the socket peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parse CIDR ranges or single addresses.
    pub fn parse<I, T>(cidrs: I) -> Result<Self, BadCidr>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let nets = cidrs
            .into_iter()
            .map(|c| {
                let c = c.as_ref().trim();
                let bad = |why| BadCidr {
                    entry: c.to_string(),
                    why,
                };
                let net = c
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        bad("not an IP address or CIDR range (write \"10.0.0.0/8\" or \"2001:db8::/32\")")
                    })?;
                if net.addr() != net.network() {
                    return Err(bad(
                        "the address has bits set beyond the prefix: write the network (\"10.0.0.0/8\") or the one address (\"10.0.0.1\")",
                    ));
                }
                // An IPv4-mapped IPv6 range is an IPv4 range 96 bits further on.
                let v4_prefix = match net {
                    ipnet::IpNet::V4(n) => Some(n.prefix_len()),
                    ipnet::IpNet::V6(n) if n.network().to_ipv4_mapped().is_some() => {
                        Some(n.prefix_len().saturating_sub(96))
                    }
                    ipnet::IpNet::V6(_) => None,
                };
                let too_wide = match v4_prefix {
                    Some(p) => p < 8,
                    None => net.prefix_len() < 8,
                };
                if too_wide {
                    return Err(bad(
                        "wider than a /8: every client in it could name its own address and scheme; list your proxies' own ranges (\"10.0.0.0/16\")",
                    ));
                }
                Ok(net)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            nets,
            header: ForwardedHeader::default(),
        })
    }

    /// Read this header from trusted proxies (default `X-Forwarded-For`).
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether any proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from socket peer `peer` with these headers.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        let name: &HeaderName = match self.header {
            ForwardedHeader::XForwardedFor => &X_FORWARDED_FOR,
            ForwardedHeader::Forwarded => &header::FORWARDED,
        };
        // Later header lines were appended later: walk lines and entries from the right.
        // Entries are split as bytes: a client's non-ASCII bytes make its own entry
        // unreadable, never the address a proxy appended to the same line.
        let lines: Vec<&[u8]> = headers.get_all(name).iter().map(|v| v.as_bytes()).collect();
        for line in lines.iter().rev() {
            for entry in line.rsplit(|b| *b == b',') {
                let entry = std::str::from_utf8(entry).ok();
                let hop = match self.header {
                    ForwardedHeader::XForwardedFor => entry.and_then(parse_node),
                    ForwardedHeader::Forwarded => {
                        entry.and_then(forwarded_for).and_then(parse_node)
                    }
                };
                let Some(hop) = hop else {
                    // An entry a trusted proxy did not write sensibly: stop at the last
                    // address we can vouch for.
                    return client;
                };
                client = hop;
                if !self.is_trusted(hop) {
                    return hop;
                }
            }
        }
        client
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

impl TrustedProxies {
    /// The scheme a trusted proxy says the client used (see the [module docs](self)):
    /// `None` when `peer` is not a trusted proxy or the proxy named no scheme; `Https`
    /// only when every scheme named is `https`.
    pub fn forwarded_scheme(&self, peer: IpAddr, headers: &HeaderMap) -> Option<ClientScheme> {
        if self.nets.is_empty() || !self.is_trusted(peer) {
            return None;
        }
        let mut seen = false;
        let mut all_https = true;
        let mut note = |v: &str| {
            seen = true;
            all_https &= v.trim().trim_matches('"').eq_ignore_ascii_case("https");
        };
        match self.header {
            ForwardedHeader::XForwardedFor => {
                for line in headers.get_all(&X_FORWARDED_PROTO) {
                    match line.to_str() {
                        Ok(line) => line.split(',').for_each(&mut note),
                        Err(_) => note(""),
                    }
                }
            }
            ForwardedHeader::Forwarded => {
                for line in headers.get_all(header::FORWARDED) {
                    let Ok(line) = line.to_str() else {
                        note("");
                        continue;
                    };
                    for pair in line.split([',', ';']) {
                        if let Some((k, v)) = pair.split_once('=')
                            && k.trim().eq_ignore_ascii_case("proto")
                        {
                            note(v);
                        }
                    }
                }
            }
        }
        seen.then_some(if all_https {
            ClientScheme::Https
        } else {
            ClientScheme::Http
        })
    }
}

/// How the client reached the app: over HTTPS or plain HTTP — the connection's own scheme
/// or, from a trusted proxy, the scheme it forwarded (see the [module docs](self)).
///
/// An extractor, for decisions such as the `Secure` attribute of a cookie:
///
/// ```
/// use axum::http::header::SET_COOKIE;
/// use shieldwall_runtime::client_ip::ClientScheme;
///
/// async fn login(scheme: ClientScheme) -> [(axum::http::HeaderName, String); 1] {
///     let secure = if scheme.is_https() { "; Secure" } else { "" };
///     [(SET_COOKIE, format!("sid=…; HttpOnly; SameSite=Lax; Path=/{secure}"))]
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientScheme {
    /// Plain HTTP.
    Http,
    /// HTTPS.
    Https,
}

impl ClientScheme {
    /// Whether the client is on HTTPS.
    pub fn is_https(self) -> bool {
        self == Self::Https
    }

    /// The scheme of a request, from its extensions: the one the app's stack decided (from
    /// a trusted proxy), or else the connection's: HTTPS when the server marked it TLS.
    pub fn of(ext: &Extensions) -> Self {
        match ext.get::<ClientScheme>() {
            Some(s) => *s,
            None if ext.get::<Transport>() == Some(&Transport::Tls) => Self::Https,
            None => Self::Http,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientScheme {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self::of(&parts.extensions))
    }
}

/// The `for=` parameter of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, `"[2001:db8::1]"`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end]
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    s.parse::<SocketAddr>()
        .ok()
        .map(|sa| sa.ip().to_canonical())
}

/// The socket peer's address, if the server recorded it.
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    peer_of(&parts.extensions)
}

/// The socket peer's address from a request's extensions.
pub fn peer_of(ext: &axum::http::Extensions) -> Option<IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

/// The address as a rate-limit identity: IPv6 masked to `v6_prefix` bits.
pub fn rate_ident(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let prefix = u32::from(v6_prefix.min(128));
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn trusting_everyone_is_refused() {
        // Every spelling of "believe any client's forwarding headers", and ranges whose
        // host bits say the writer meant something narrower.
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "10.9.8.7/0",
            "0.0.0.0/1",
            "128.0.0.0/1",
            "127.0.0.1/1",
            "8.0.0.0/7",
            "2000::/3",
            "::ffff:0:0/96",
            "10.0.0.1/8",
            "2001:db8::1/32",
        ] {
            let e = TrustedProxies::parse([bad]).unwrap_err();
            assert_eq!(e.entry, bad, "{bad}");
        }
        assert!(TrustedProxies::parse(["10.0.0.0/8", "0.0.0.0/0"]).is_err());
        for good in [
            "10.0.0.0/8",
            "10.1.2.3",
            "10.1.2.3/32",
            "172.16.0.0/12",
            "173.245.48.0/20",
            "2400:cb00::/32",
            "fd00::/8",
            "::1",
            "::ffff:10.0.0.0/104",
        ] {
            assert!(TrustedProxies::parse([good]).is_ok(), "{good}");
        }
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_spoofing_changes_nothing() {
        let t = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let h = headers("x-forwarded-for", &["1.1.1.1"]);
        assert_eq!(t.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::none().client(ip("203.0.113.9"), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_chain_read_from_the_right() {
        let t = TrustedProxies::parse(["10.0.0.0/8", "192.168.1.1"]).unwrap();
        // client sent a spoofed entry; the trusted proxies appended the real address
        let h = headers("x-forwarded-for", &["6.6.6.6, 198.51.100.7, 192.168.1.1"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // split across header lines
        let h = headers(
            "x-forwarded-for",
            &["6.6.6.6", "198.51.100.7", "192.168.1.1"],
        );
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // no header: the proxy itself
        assert_eq!(t.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        // garbage written to the right of the chain: stop at what we can vouch for
        let h = headers("x-forwarded-for", &["198.51.100.7, nonsense"]);
        assert_eq!(t.client(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn forwarded_header() {
        let t = TrustedProxies::parse(["127.0.0.1"])
            .unwrap()
            .header(ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &["for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https"],
        );
        assert_eq!(t.client(ip("127.0.0.1"), &h), ip("2001:db8::7"));
        // with Forwarded configured, X-Forwarded-For is ignored
        let h = headers("x-forwarded-for", &["6.6.6.6"]);
        assert_eq!(t.client(ip("127.0.0.1"), &h), ip("127.0.0.1"));
    }

    #[test]
    fn a_non_text_entry_does_not_hide_what_the_proxy_appended() {
        // nginx's `$proxy_add_x_forwarded_for` appends the peer to the client's own value on
        // one line; a byte that is not visible ASCII in the client's part must not make the
        // whole line unreadable (found by fuzz/fuzz_targets/forwarded.rs).
        let raw = |name: &str, v: &[u8]| {
            let mut h = HeaderMap::new();
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
            h
        };
        let xff = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let fwd = xff.clone().header(ForwardedHeader::Forwarded);
        let proxy = ip("10.0.0.2");
        let h = raw("x-forwarded-for", b"1.2.3.4\xff, 198.51.100.7");
        assert_eq!(xff.client(proxy, &h), ip("198.51.100.7"));
        let h = raw("forwarded", b"for=1.2.3.4\xff, for=198.51.100.7");
        assert_eq!(fwd.client(proxy, &h), ip("198.51.100.7"));
        // Behind a trusted hop, such an entry is one nobody vouches for: stop there.
        let h = raw("x-forwarded-for", b"6.6.6.6, \xff, 10.0.0.7");
        assert_eq!(xff.client(proxy, &h), ip("10.0.0.7"));
    }

    #[test]
    fn mapped_and_ports() {
        let t = TrustedProxies::parse(["::ffff:10.0.0.0/104", "10.0.0.0/8"]).unwrap();
        let h = headers("x-forwarded-for", &["198.51.100.7:5555"]);
        assert_eq!(t.client(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.7"));
        assert!(TrustedProxies::parse(["10.0.0.0/33"]).is_err());
        assert!(TrustedProxies::parse(["nope"]).is_err());
    }

    #[test]
    fn forwarded_schemes() {
        let xff = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
        let fwd = xff.clone().header(ForwardedHeader::Forwarded);
        let proxy = ip("10.0.0.2");
        let https = Some(ClientScheme::Https);
        let http = Some(ClientScheme::Http);
        let xfp = |v: &[&str]| headers("x-forwarded-proto", v);
        let fw = |v: &[&str]| headers("forwarded", v);

        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["https"])), https);
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["HTTPS"])), https);
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["http"])), http);
        assert_eq!(xff.forwarded_scheme(proxy, &HeaderMap::new()), None);
        // Every value must say https: a client's own value can only downgrade.
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["https, https"])), https);
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["http, https"])), http);
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["https", "http"])), http);
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&["wss"])), http);
        assert_eq!(xff.forwarded_scheme(proxy, &xfp(&[""])), http);
        // From anyone else, or with no proxy trusted, nothing is believed.
        assert_eq!(
            xff.forwarded_scheme(ip("203.0.113.9"), &xfp(&["https"])),
            None
        );
        assert_eq!(
            TrustedProxies::none().forwarded_scheme(proxy, &xfp(&["https"])),
            None
        );
        // Only the configured family is read.
        assert_eq!(xff.forwarded_scheme(proxy, &fw(&["proto=https"])), None);
        assert_eq!(fwd.forwarded_scheme(proxy, &xfp(&["https"])), None);

        assert_eq!(
            fwd.forwarded_scheme(proxy, &fw(&["for=198.51.100.7;proto=https"])),
            https
        );
        assert_eq!(
            fwd.forwarded_scheme(proxy, &fw(&["For=\"[2001:db8::7]\";Proto=\"https\";by=x"])),
            https
        );
        assert_eq!(
            fwd.forwarded_scheme(proxy, &fw(&["proto=https, for=198.51.100.7;proto=http"])),
            http
        );
        assert_eq!(
            fwd.forwarded_scheme(proxy, &fw(&["proto=https", "for=1.2.3.4;proto=http"])),
            http
        );
        assert_eq!(
            fwd.forwarded_scheme(proxy, &fw(&["for=198.51.100.7"])),
            None
        );
    }

    #[test]
    fn client_scheme_of_a_request() {
        let mut ext = Extensions::new();
        assert_eq!(ClientScheme::of(&ext), ClientScheme::Http);
        ext.insert(Transport::Tls);
        assert_eq!(ClientScheme::of(&ext), ClientScheme::Https);
        // What the stack decided from a trusted proxy wins over the connection.
        ext.insert(ClientScheme::Http);
        assert_eq!(ClientScheme::of(&ext), ClientScheme::Http);
    }

    #[test]
    fn ipv6_prefix() {
        assert_eq!(rate_ident(ip("2001:db8::1"), 128), ip("2001:db8::1"));
        assert_eq!(rate_ident(ip("2001:db8:0:0:ffff::1"), 48), ip("2001:db8::"));
        assert_eq!(rate_ident(ip("::ffff:1.2.3.4"), 64), ip("1.2.3.4"));
    }
}

//! `X-Forwarded-For`, `X-Forwarded-Proto` and RFC 7239 `Forwarded`, through the public
//! `TrustedProxies::{client, forwarded_scheme}`; each input line is one header line, read in
//! both header families.
//!
//! Invariants: from an untrusted peer the headers change nothing; whatever a client wrote,
//! an untrusted address the trusted proxy appends is the client, and once the chain
//! names an untrusted address, entries written to its left cannot change it; every
//! address form (`a.b.c.d`, `a.b.c.d:port`, bare and bracketed IPv6 with a port, quoted)
//! reads back as the address; a forwarded scheme is HTTPS only when every value says so,
//! so adding a value never upgrades and a proxy's appended `http` always downgrades.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use shieldwall_runtime::client_ip::{ClientScheme, ForwardedHeader, TrustedProxies};

static XFF: LazyLock<TrustedProxies> = LazyLock::new(|| {
    TrustedProxies::parse(["10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8"]).unwrap()
});
static FWD: LazyLock<TrustedProxies> =
    LazyLock::new(|| XFF.clone().header(ForwardedHeader::Forwarded));

const TRUSTED_PEERS: [&str; 3] = ["10.0.0.2", "::ffff:10.0.0.2", "::1"];
const UNTRUSTED_PEER: &str = "203.0.113.9";
const REAL_CLIENT: &str = "198.51.100.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn headers(name: &'static str, lines: &[Vec<u8>]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in lines {
        h.append(
            HeaderName::from_static(name),
            HeaderValue::from_bytes(line).unwrap(),
        );
    }
    h
}

/// One family: the forwarding header's name, how a proxy writes an address, the scheme
/// header's name and how a proxy writes a scheme.
struct Family {
    proxies: &'static TrustedProxies,
    name: &'static str,
    node: fn(&str) -> String,
    scheme_name: &'static str,
    scheme: fn(&str) -> String,
}

fn families() -> [Family; 2] {
    [
        Family {
            proxies: &XFF,
            name: "x-forwarded-for",
            node: |a| a.to_string(),
            scheme_name: "x-forwarded-proto",
            scheme: |s| s.to_string(),
        },
        Family {
            proxies: &FWD,
            name: "forwarded",
            node: |a| format!("for=\"{a}\""),
            scheme_name: "forwarded",
            scheme: |s| format!("proto={s}"),
        },
    ]
}

fn with_line(lines: &[Vec<u8>], line: String, front: bool) -> Vec<Vec<u8>> {
    let mut out = lines.to_vec();
    if front {
        out.insert(0, line.into_bytes());
    } else {
        out.push(line.into_bytes());
    }
    out
}

/// An address taken from the input's bytes, so every form below is tried on many.
fn address(data: &[u8]) -> IpAddr {
    let mut b = [0u8; 16];
    for (i, x) in data.iter().take(17).skip(1).enumerate() {
        b[i] = *x;
    }
    if data.first().is_some_and(|f| f & 1 == 0) {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(b))
    }
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<Vec<u8>> = shieldwall_fuzz::lines(data)
        .into_iter()
        .filter(|l| HeaderValue::from_bytes(l).is_ok())
        .map(<[u8]>::to_vec)
        .collect();
    for f in &families() {
        let h = headers(f.name, &lines);
        let untrusted = ip(UNTRUSTED_PEER);
        assert_eq!(f.proxies.client(untrusted, &h), untrusted);
        assert_eq!(f.proxies.forwarded_scheme(untrusted, &h), None);
        for peer in TRUSTED_PEERS.map(ip) {
            let client = f.proxies.client(peer, &h);
            // The proxy appends the address it saw, on a line of its own or (nginx's
            // `$proxy_add_x_forwarded_for`) after the client's last line: that is the client.
            let mut joined = lines.clone();
            match joined.last_mut() {
                Some(last) => {
                    last.extend_from_slice(format!(", {}", (f.node)(REAL_CLIENT)).as_bytes())
                }
                None => joined.push((f.node)(REAL_CLIENT).into_bytes()),
            }
            for appended in [with_line(&lines, (f.node)(REAL_CLIENT), false), joined] {
                assert_eq!(
                    f.proxies.client(peer, &headers(f.name, &appended)),
                    ip(REAL_CLIENT),
                    "{appended:?}"
                );
            }
            // Entries to the left of an untrusted hop cannot move the client.
            if !f.proxies.is_trusted(client) {
                for spoof in ["6.6.6.6", "10.0.0.9", "::1", "garbage", ""] {
                    let spoofed = with_line(&lines, (f.node)(spoof), true);
                    assert_eq!(
                        f.proxies.client(peer, &headers(f.name, &spoofed)),
                        client,
                        "{lines:?} with {spoof:?} in front"
                    );
                }
            }

            // Schemes: all-https or nothing; adding values only ever downgrades.
            let sh = headers(f.scheme_name, &lines);
            let scheme = f.proxies.forwarded_scheme(peer, &sh);
            for value in ["https", "http", "HTTPS", "x"] {
                for front in [true, false] {
                    let more = with_line(&lines, (f.scheme)(value), front);
                    let after = f
                        .proxies
                        .forwarded_scheme(peer, &headers(f.scheme_name, &more));
                    assert!(after.is_some(), "{more:?}");
                    if after == Some(ClientScheme::Https) {
                        assert_ne!(scheme, Some(ClientScheme::Http), "{lines:?} + {value}");
                    }
                    if !value.eq_ignore_ascii_case("https") {
                        assert_eq!(after, Some(ClientScheme::Http), "{more:?}");
                    }
                }
            }
        }
    }

    // Every way of writing an address reads back as that address.
    let addr = address(data);
    if !XFF.is_trusted(addr) {
        let canonical = addr.to_canonical();
        let forms = match addr {
            IpAddr::V4(a) => vec![format!("{a}"), format!("{a}:443"), format!("\"{a}\"")],
            IpAddr::V6(a) => vec![
                format!("{a}"),
                format!("[{a}]"),
                format!("[{a}]:8080"),
                format!("\"[{a}]:8080\""),
            ],
        };
        let proxy = ip(TRUSTED_PEERS[0]);
        for form in forms {
            let h = headers("x-forwarded-for", &[form.clone().into_bytes()]);
            assert_eq!(XFF.client(proxy, &h), canonical, "X-Forwarded-For: {form}");
            let h = headers("forwarded", &[format!("for={form}").into_bytes()]);
            assert_eq!(FWD.client(proxy, &h), canonical, "Forwarded: for={form}");
        }
    }
});

//! Client identity for per-IP limits.
//!
//! The client IP is the socket peer (`ConnectInfo<SocketAddr>`, which
//! [`crate::app::serve`] provides). IPv4-mapped IPv6 addresses are treated as IPv4, and
//! IPv6 clients are keyed by their /64 prefix (configurable), so one host cannot mint
//! unlimited identities.
//!
//! ```
//! use shieldwall_runtime::client_ip::rate_ident;
//! let a = rate_ident("2001:db8:1:2:aaaa::1".parse().unwrap(), 64);
//! let b = rate_ident("2001:db8:1:2:bbbb::9".parse().unwrap(), 64);
//! assert_eq!(a, b);
//! ```

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

/// Default IPv6 prefix length used as one client identity.
pub const DEFAULT_IPV6_PREFIX: u8 = 64;

/// The socket peer's address, if the server recorded it.
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
}

/// The address as a rate-limit identity: IPv6 masked to `v6_prefix` bits.
pub fn rate_ident(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let prefix = u32::from(v6_prefix.min(128));
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

//! Origins: CORS configuration (`Cors::origins`, whose normalization also feeds the
//! cross-site request protection's trusted origins) and the `Origin` request header as the
//! app's CORS layer answers it. Line 1: a configured origin; line 2: a request's `Origin`.
//!
//! Invariants: a configured origin that is accepted normalizes to `http(s)://host[:port]`
//! in lower case, with no user information, path, query or default port, as a valid header
//! value (the layer would silently drop any other), and normalizing again changes nothing;
//! a port that is not a port number is refused rather than dropped; the layer allows the
//! normalized origin, and allows a request's `Origin` only when it is byte for byte a
//! listed origin; `Cors::any()` allows every origin.
#![no_main]

use axum::http::{HeaderValue, Uri};
use libfuzzer_sys::fuzz_target;
use shieldwall_runtime::cors::Cors;
use shieldwall_runtime::fuzzing::cors_allow_origin;

/// The port text of a configured origin's authority, if it names one.
fn port_text(origin: &str) -> Option<&str> {
    let rest = &origin[origin.find("://")? + 3..];
    let auth = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let auth = &auth[auth.rfind('@').map_or(0, |i| i + 1)..];
    let after_host = match auth.strip_prefix('[') {
        Some(v6) => &v6[v6.find(']')? + 1..],
        None => &auth[auth.find(':')?..],
    };
    after_host.strip_prefix(':')
}

fuzz_target!(|data: &[u8]| {
    let lines = shieldwall_fuzz::lines(data);
    let Some(configured) = shieldwall_fuzz::text(lines[0]) else {
        return;
    };
    let cors = Cors::origins([configured]);
    let request = lines.get(1).and_then(|r| HeaderValue::from_bytes(r).ok());
    match cors.allowed_origins() {
        Ok(list) => {
            if let Some(p) = port_text(configured.trim())
                && !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
            {
                assert!(
                    p.parse::<u16>().is_ok(),
                    "{configured:?}: port {p} was dropped"
                );
            }
            for n in &list {
                assert!(
                    n.starts_with("https://") || n.starts_with("http://"),
                    "{n:?}"
                );
                assert!(!n.bytes().any(|b| b.is_ascii_uppercase()), "{n:?}");
                assert!(
                    !n.contains('@') && !n.contains('?') && !n.contains('#'),
                    "{n:?}"
                );
                assert!(!n[n.find("://").unwrap() + 3..].contains('/'), "{n:?}");
                let uri: Uri = n.parse().expect("a normalized origin is a URI");
                let default = if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                };
                assert_ne!(uri.port_u16(), Some(default), "{n:?}");
                assert_eq!(
                    Cors::origins([n]).allowed_origins().as_deref(),
                    Ok([n.clone()].as_slice()),
                    "normalizing {n:?} again"
                );
                let value =
                    HeaderValue::from_str(n).expect("a normalized origin is a header value");
                assert_eq!(
                    cors_allow_origin(&cors, value.clone()).as_ref(),
                    Some(&value),
                    "{configured:?} → {n:?} is not allowed"
                );
            }
            if let Some(r) = &request {
                match cors_allow_origin(&cors, r.clone()) {
                    Some(v) => {
                        assert_eq!(&v, r);
                        assert!(list.iter().any(|n| n.as_bytes() == r.as_bytes()), "{r:?}");
                    }
                    None => assert!(
                        list.is_empty() || !list.iter().any(|n| n.as_bytes() == r.as_bytes()),
                        "{r:?} is listed"
                    ),
                }
            }
        }
        Err(_) => assert!(cors.validate().is_err()),
    }
    if let Some(r) = request {
        assert_eq!(
            cors_allow_origin(&Cors::any(), r)
                .as_ref()
                .map(HeaderValue::as_bytes),
            Some(b"*".as_slice())
        );
    }
});

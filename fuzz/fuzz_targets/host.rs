//! `Host` and the request target's authority (`hosts::AllowedHosts`): the normalization,
//! both ways a host is matched, and the request check.
//!
//! Invariants: normalizing is idempotent and gives a lower-case name without port or
//! trailing dot (IPv6 in brackets); the shortcut for hosts already in normal form never
//! admits what the full match refuses, and `allows` is exactly the full match; case never
//! matters; a listed host is admitted as written and with a port, and a wildcard admits
//! strict subdomains only; the loopback default admits loopback names only; and a request
//! naming one host in `Host` passes the check exactly when that host is allowed, while two
//! `Host` headers or a `Host` that names another host than the target are refused.
#![no_main]

use std::net::IpAddr;
use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, Uri, header};
use libfuzzer_sys::fuzz_target;
use shieldwall_runtime::fuzzing::{host_check, host_decisions, host_normalize};
use shieldwall_runtime::hosts::AllowedHosts;

static LISTED: LazyLock<AllowedHosts> = LazyLock::new(|| {
    AllowedHosts::parse("api.example.com,*.example.org,10.1.2.3,[::1],xn--bcher-kva.example")
        .unwrap()
});

fn is_loopback_name(h: &str) -> bool {
    h == "localhost"
        || h.ends_with(".localhost")
        || h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check(hosts: &AllowedHosts, value: &str) {
    let (shortcut, full) = host_decisions(hosts, value);
    let allows = hosts.allows(value);
    if shortcut {
        assert_eq!(
            full,
            Some(true),
            "{value:?}: the shortcut admits what the full match refuses"
        );
    }
    assert_eq!(allows, full == Some(true), "{value:?}");
    for variant in [value.to_ascii_uppercase(), value.to_ascii_lowercase()] {
        assert_eq!(hosts.allows(&variant), allows, "{value:?} vs {variant:?}");
    }
    // The request check, Host header only.
    if let Ok(v) = HeaderValue::from_str(value) {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, v.clone());
        let root = Uri::from_static("/");
        assert_eq!(host_check(hosts, &h, &root), allows, "Host: {value:?}");
        h.append(header::HOST, v);
        assert!(!host_check(hosts, &h, &root), "two Host headers");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = shieldwall_fuzz::text(data) else {
        // Not UTF-8: never a host.
        if let Ok(v) = HeaderValue::from_bytes(data) {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, v);
            assert!(!host_check(&LISTED, &h, &Uri::from_static("/")));
        }
        return;
    };
    let lines: Vec<&str> = text.split('\n').collect();
    let value = lines[0];

    if let Some(n) = host_normalize(value) {
        assert_eq!(host_normalize(&n).as_deref(), Some(n.as_str()), "{value:?}");
        assert!(!n.bytes().any(|b| b.is_ascii_uppercase()), "{n:?}");
        assert!(!n.ends_with('.'), "{n:?}");
        if n.starts_with('[') {
            assert!(n.ends_with(']') && n[1..n.len() - 1].parse::<std::net::Ipv6Addr>().is_ok());
        } else {
            assert!(!n.contains(':'), "{n:?}");
        }
    }

    check(&LISTED, value);
    check(&AllowedHosts::loopback(), value);
    if AllowedHosts::loopback().allows(value) {
        let n = host_normalize(value).expect("an admitted host normalizes");
        assert!(is_loopback_name(&n), "{value:?} → {n:?} is not loopback");
    }
    assert!(AllowedHosts::any().allows(value) || host_normalize(value).is_none());

    // The input's other lines as an allowed-hosts list: what is listed is admitted.
    let entries = &lines[1..];
    let any = entries.iter().any(|e| e.trim() == "*");
    if let (false, Ok(hosts)) = (any, AllowedHosts::list(entries)) {
        check(&hosts, value);
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Some(domain) = entry.strip_prefix("*.") {
                let sub = format!("a.{domain}");
                if sub.trim_end_matches('.').len() <= 253 {
                    assert!(hosts.allows(&sub), "{entry:?} admits {sub:?}");
                }
            } else {
                assert!(hosts.allows(entry), "{entry:?} is listed");
                let with_port = format!("{entry}:8443");
                assert!(hosts.allows(&with_port), "{with_port:?}");
            }
            check(&hosts, entry);
        }
        // The target's authority must agree with Host.
        if let (Ok(uri), Ok(v)) = (
            format!("http://{value}/").parse::<Uri>(),
            HeaderValue::from_str("other.example"),
        ) && uri.authority().is_some()
            && host_normalize(value).is_some_and(|n| n != "other.example")
        {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, v);
            assert!(
                !host_check(&hosts, &h, &uri),
                "{value:?} vs Host: other.example"
            );
        }
    }
});

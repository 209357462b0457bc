//! Trusted hosts: requests naming any other host are refused with 400 problem+json.
//!
//! ```
//! use shieldwall_runtime::hosts::AllowedHosts;
//!
//! let hosts = AllowedHosts::list(["api.example.com", "*.example.org"]).unwrap();
//! assert!(hosts.allows("api.example.com"));
//! assert!(hosts.allows("API.example.com:8443"));   // case and port do not matter
//! assert!(hosts.allows("eu.cdn.example.org"));     // wildcard: any subdomain depth
//! assert!(!hosts.allows("example.org"));           // …but not the parent itself
//! assert!(!hosts.allows("evil.example"));
//! assert!(!hosts.allows("api.example.com.evil.example"));
//! ```
//!
//! The host a request names is its URI authority (HTTP/2 `:authority`, or an HTTP/1.1
//! absolute-form target) or else its `Host` header. Two `Host` headers, a `Host` that
//! disagrees with the authority, or a malformed host are refused like an unknown one.
//!
//! # The default: loopback only
//!
//! Without configuration ([`AllowedHosts::loopback`]) only loopback names are accepted:
//! `localhost`, `*.localhost`, `127.0.0.0/8` and `[::1]`. That keeps development and
//! tests working (a browser on `http://localhost:3000`, a test client on
//! `http://127.0.0.1:PORT`) while a deployed app that has not named its hosts refuses every
//! request with a 400 (and logs once what to set) instead of silently answering to any
//! `Host` — the precondition for password-reset poisoning and cache poisoning. Production
//! names its hosts with `SHIELDWALL_ALLOWED_HOSTS=api.example.com,*.example.com` or
//! [`crate::app::Shieldwall::allowed_hosts`]. Accepting any host is possible but must be
//! said: `AllowedHosts::any()` or `SHIELDWALL_ALLOWED_HOSTS=*`.
//!
//! A request with no host at all (HTTP/1.0, or an in-process `oneshot` test) passes the
//! loopback default, and is refused once hosts are listed.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, StatusCode, Uri, header};

use crate::error::Problem;

/// Why a host list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostsError {
    /// The list is empty.
    #[error("the allowed-hosts list is empty: name at least one host, e.g. `api.example.com`")]
    Empty,
    /// An entry is not a host name, IP address or `*.domain` wildcard.
    #[error("allowed host {host:?}: {why}")]
    Invalid {
        /// The entry.
        host: String,
        /// What is wrong and what to write instead.
        why: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Loopback,
    Any,
    List(Vec<Pattern>),
}

/// The hosts an app answers to. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts {
    rule: Rule,
}

impl Default for AllowedHosts {
    fn default() -> Self {
        Self::loopback()
    }
}

impl AllowedHosts {
    /// Loopback names only (the default): `localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`.
    pub fn loopback() -> Self {
        Self {
            rule: Rule::Loopback,
        }
    }

    /// Any host. Only for apps behind a proxy that already enforces the host.
    pub fn any() -> Self {
        Self { rule: Rule::Any }
    }

    /// Exactly these hosts: names (`api.example.com`), IP addresses (`10.0.0.5`, `[::1]`)
    /// and wildcards (`*.example.com`: every subdomain, not `example.com` itself). A lone
    /// `*` means [`AllowedHosts::any`]. Ports are not part of the match.
    pub fn list<I, T>(hosts: I) -> Result<Self, HostsError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut patterns = Vec::new();
        for h in hosts {
            let raw = h.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            if raw == "*" {
                return Ok(Self::any());
            }
            patterns.push(parse_pattern(raw)?);
        }
        if patterns.is_empty() {
            return Err(HostsError::Empty);
        }
        Ok(Self {
            rule: Rule::List(patterns),
        })
    }

    /// Parse a comma-separated list (the `SHIELDWALL_ALLOWED_HOSTS` format).
    pub fn parse(csv: &str) -> Result<Self, HostsError> {
        Self::list(csv.split(','))
    }

    /// Whether `host` (a `Host` header value, port allowed) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        if self.allows_as_is(host) {
            return true;
        }
        match normalize(host) {
            Some(h) => self.allows_normalized(&h),
            None => false,
        }
    }

    /// The common case without normalizing: `name` or `name:port` where `name` is already
    /// in normal form and equals an allowed name. Anything else (and every refusal) takes
    /// the full path.
    pub(crate) fn allows_as_is(&self, raw: &str) -> bool {
        let (name, port) = match raw.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (raw, None),
        };
        if port.is_some_and(|p| !is_port(p)) {
            return false;
        }
        match &self.rule {
            Rule::Any => false,
            Rule::Loopback => name == "localhost" || name == "127.0.0.1",
            Rule::List(patterns) => patterns
                .iter()
                .any(|p| matches!(p, Pattern::Exact(e) if e == name)),
        }
    }

    pub(crate) fn allows_normalized(&self, host: &str) -> bool {
        match &self.rule {
            Rule::Any => true,
            Rule::Loopback => is_loopback(host),
            Rule::List(patterns) => patterns.iter().any(|p| match p {
                Pattern::Exact(e) => e == host,
                Pattern::Subdomains(suffix) => {
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                }
            }),
        }
    }

    /// Check a request; the refusal is a 400 problem.
    #[allow(clippy::result_large_err)]
    #[cfg(test)]
    pub(crate) fn check(&self, parts: &axum::http::request::Parts) -> Result<(), Problem> {
        self.check_request(&parts.headers, &parts.uri)
    }

    /// [`AllowedHosts::check`] on a request's headers and target.
    #[allow(clippy::result_large_err)]
    pub(crate) fn check_request(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Problem> {
        if self.rule == Rule::Any {
            return Ok(());
        }
        let mut hosts = headers.get_all(header::HOST).iter();
        let header_host = hosts.next();
        if hosts.next().is_some() {
            return Err(refusal("The request has more than one Host header."));
        }
        let header_host = match header_host.map(|v| v.to_str()) {
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => return Err(refusal("The Host header is not valid.")),
            None => None,
        };
        let authority = uri.authority().map(|a| a.as_str());
        let named = match (authority, header_host) {
            (Some(a), Some(h)) => {
                if normalize(a) != normalize(h) {
                    return Err(refusal(
                        "The Host header disagrees with the request target.",
                    ));
                }
                Some(a)
            }
            (a, h) => a.or(h),
        };
        match named {
            None if self.rule == Rule::Loopback => Ok(()),
            None => Err(refusal("The request names no host.")),
            Some(h) if self.allows(h) => Ok(()),
            Some(_) => {
                if self.rule == Rule::Loopback && !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        target: "shieldwall::hosts",
                        "refusing a request for a non-loopback host: only loopback hosts are \
                         allowed until the app names its hosts (SHIELDWALL_ALLOWED_HOSTS or \
                         Shieldwall::allowed_hosts)"
                    );
                }
                Err(refusal("This server does not serve the requested host."))
            }
        }
    }
}

static WARNED: AtomicBool = AtomicBool::new(false);

fn refusal(detail: &'static str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "unknown-host", "Bad Request").with_detail(detail)
}

fn parse_pattern(raw: &str) -> Result<Pattern, HostsError> {
    let invalid = |why| HostsError::Invalid {
        host: raw.to_string(),
        why,
    };
    if raw.contains("://") || raw.contains('/') {
        return Err(invalid(
            "write a host name without scheme or path, e.g. `api.example.com`",
        ));
    }
    if let Some(rest) = raw.strip_prefix("*.") {
        let h = host_only(rest).ok_or_else(|| invalid("not a valid domain after `*.`"))?;
        if h.parse::<IpAddr>().is_ok() || !h.contains('.') && h != "localhost" {
            return Err(invalid(
                "a wildcard needs a domain of at least two labels, e.g. `*.example.com`",
            ));
        }
        return Ok(Pattern::Subdomains(format!(".{h}")));
    }
    if raw.contains('*') {
        return Err(invalid(
            "`*` is only allowed alone or as a leading `*.` label",
        ));
    }
    let h = normalize(raw).ok_or_else(|| invalid("not a valid host name or IP address"))?;
    let port = if raw.starts_with('[') {
        !raw.ends_with(']')
    } else {
        host_only(raw).is_none_or(|bare| bare != h)
    };
    if port {
        return Err(invalid("write the host without a port"));
    }
    Ok(Pattern::Exact(h.into_owned()))
}

/// A bare host (no port), lower-cased, trailing dot removed, or `None` if not a valid name.
/// Borrows when the name already is in that form (the common case: no copy per request).
fn host_only(s: &str) -> Option<Cow<'_, str>> {
    // One trailing dot (the root label) is a spelling of the same name; two are no name.
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return None;
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // Digits and dots: an IPv4 address or nothing (never a name).
        return trimmed
            .parse::<std::net::Ipv4Addr>()
            .is_ok()
            .then_some(Cow::Borrowed(trimmed));
    }
    let labels_ok = trimmed.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    if !labels_ok {
        return None;
    }
    Some(if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(trimmed.to_ascii_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    })
}

/// `Host` value → normalized host without port. IPv6 literals keep their brackets.
pub(crate) fn normalize(value: &str) -> Option<Cow<'_, str>> {
    let value = value.trim_ascii();
    if value.starts_with('[') || value.bytes().filter(|b| *b == b':').count() > 1 {
        if let Ok(v6) = value.parse::<std::net::Ipv6Addr>() {
            return Some(Cow::Owned(format!("[{v6}]")));
        }
        let rest = value.strip_prefix('[')?;
        let (addr, after) = rest.split_once(']')?;
        let ip: std::net::Ipv6Addr = addr.parse().ok()?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return Some(Cow::Owned(format!("[{ip}]")));
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (value, None),
    };
    if port.is_some_and(|p| !is_port(p)) {
        return None;
    }
    host_only(host)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use axum::http::request::Parts;

    #[test]
    fn one_trailing_dot_at_most() {
        let hosts = AllowedHosts::list(["api.example.com", "*.example.org"]).unwrap();
        assert!(
            hosts.allows("api.example.com."),
            "the root label is a valid spelling"
        );
        assert!(hosts.allows("x.example.org.:8080"));
        for bad in [
            "api.example.com..",
            "api.example.com.....:8080",
            "x.example.org...",
            "api.example.com..:443",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        let loopback = AllowedHosts::loopback();
        for bad in ["localhost...", "127.0.0.1..", "localhost..:3000"] {
            assert!(!loopback.allows(bad), "{bad}");
        }
        assert!(AllowedHosts::list(["api.example.com.."]).is_err());
    }

    fn parts(host: Option<&str>, uri: &str) -> Parts {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn loopback_default() {
        let d = AllowedHosts::default();
        for ok in [
            "localhost",
            "LOCALHOST:3000",
            "app.localhost",
            "127.0.0.1:8080",
            "[::1]:3000",
            "127.9.9.9",
        ] {
            assert!(d.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "10.0.0.1",
            "localhost.evil.example",
            "[::2]",
            "0.0.0.0",
        ] {
            assert!(!d.allows(bad), "{bad}");
        }
        assert!(
            d.check(&parts(None, "/")).is_ok(),
            "no host passes the default"
        );
        assert!(d.check(&parts(Some("evil.example"), "/")).is_err());
    }

    #[test]
    fn list_and_wildcards() {
        let h = AllowedHosts::parse("api.example.com, *.example.org,10.1.2.3,[::1]").unwrap();
        assert!(h.allows("api.example.com."));
        assert!(h.allows("a.b.example.org"));
        assert!(!h.allows("example.org"));
        assert!(!h.allows("badexample.org"));
        assert!(h.allows("10.1.2.3:80"));
        assert!(h.allows("[0:0:0:0:0:0:0:1]:8443"));
        assert!(!h.allows("api.example.com:notaport"));
        assert!(!h.allows("api.example.com@evil.example"));
        assert!(!h.allows(""));
        // Only ASCII whitespace is trimmed, as HTTP does (U+0085 was trimmed; found by
        // fuzz/fuzz_targets/host.rs).
        assert!(!h.allows("\u{85}api.example.com"));
        assert!(!h.allows("api.example.com\u{a0}"));
        assert!(h.allows(" api.example.com\t"));
        assert!(
            h.check(&parts(None, "/")).is_err(),
            "a listed app needs a host"
        );
    }

    #[test]
    fn bad_entries_are_refused() {
        assert_eq!(AllowedHosts::parse(" , "), Err(HostsError::Empty));
        for bad in [
            "https://example.com",
            "example.com/x",
            "*.com",
            "a.*.example.com",
            "ex ample.com",
            "example.com:443",
            // An IPv6 address with a port is refused like a name with one (it was accepted,
            // its port silently ignored; found by fuzz/fuzz_targets/host.rs).
            "[::1]:443",
            "[2001:db8::1]:",
            "*",
        ] {
            let r = AllowedHosts::parse(bad);
            if bad == "*" {
                assert_eq!(r.unwrap(), AllowedHosts::any());
            } else {
                assert!(r.is_err(), "{bad}");
            }
        }
    }

    #[test]
    fn conflicting_or_duplicate_hosts() {
        let h = AllowedHosts::parse("api.example.com").unwrap();
        let p = parts(Some("api.example.com"), "http://evil.example/x");
        assert!(h.check(&p).is_err());
        let p = parts(Some("api.example.com"), "http://api.example.com/x");
        assert!(h.check(&p).is_ok());
        let mut p = parts(Some("api.example.com"), "/");
        p.headers
            .append(header::HOST, "evil.example".parse().unwrap());
        assert!(h.check(&p).is_err());
        let p = parts(None, "https://api.example.com/x");
        assert!(h.check(&p).is_ok(), "HTTP/2 :authority counts");
    }
}

//! Property tests of the parsers that read attacker bytes: whatever arrives, they answer
//! (never panic), and what they accept means what it says — checked against small
//! reference models and by round trips. The fuzz targets in `fuzz/` hammer the same entry
//! points with coverage guidance; these run on every `cargo test`.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use proptest::prelude::*;

use crate::auth::api_key::{ApiKeys, MemoryKeyStore, NewKey};
use crate::auth::jwt::{bearer, token68};
use crate::client_ip::{ForwardedHeader, TrustedProxies};
use crate::cors::Cors;
use crate::error::{FieldError, Problem, Rejection};
use crate::hosts::{AllowedHosts, normalize};
use crate::static_files::safe_segments;

fn is_token68_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

// ---- Authorization: Bearer / token68 -------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn bearer_and_token68_answer_every_input(value in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(Some(token)) = bearer(&value) {
            prop_assert!(!token.is_empty());
            prop_assert_eq!(token, token.trim_ascii());
            // A slice of the header value, after the scheme.
            prop_assert!(value.len() > token.len());
            prop_assert!(value[..6].eq_ignore_ascii_case(b"bearer"));
        }
        let reference = value.iter().all(|b| is_token68_byte(*b));
        match token68(&value) {
            Ok(s) => {
                prop_assert!(reference);
                prop_assert_eq!(s.as_bytes(), &value[..]);
            }
            Err(_) => prop_assert!(!reference),
        }
    }

    #[test]
    fn a_bearer_token_is_read_back_whatever_the_spelling(
        token in "[A-Za-z0-9._~+/=-]{1,200}",
        scheme in prop::sample::select(&["Bearer", "bearer", "BEARER", "bEaReR"][..]),
        spaces in 1usize..4,
        trailing in 0usize..3,
    ) {
        let value = format!("{scheme}{}{token}{}", " ".repeat(spaces), " ".repeat(trailing));
        let got = bearer(value.as_bytes()).map_err(|_| TestCaseError::fail("refused"))?;
        prop_assert_eq!(got, Some(token.as_bytes()));
        prop_assert_eq!(token68(token.as_bytes()).ok(), Some(token.as_str()));
    }

    #[test]
    fn other_schemes_are_not_bearer_credentials(
        scheme in prop::sample::select(&["Basic", "Bearerx", "Token", "Digest", "bearer:"][..]),
        rest in "[ -~]{0,50}",
    ) {
        let value = format!("{scheme} {rest}");
        prop_assert!(matches!(bearer(value.as_bytes()), Ok(None)));
    }
}

// ---- API keys --------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Each created key authenticates as its owner; arbitrary bytes, and every one-byte
    /// change of a real key, never do.
    #[test]
    fn only_the_exact_key_authenticates(
        owners in prop::collection::vec("[a-z_]{1,12}", 1..6),
        garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..160), 0..8),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let keys = ApiKeys::new(MemoryKeyStore::new());
        let created: Vec<_> = owners
            .iter()
            .map(|o| keys.create(NewKey::new(o.clone())).expect("created"))
            .collect();
        for (owner, c) in owners.iter().zip(&created) {
            let p = keys.verify(c.key.as_bytes()).expect("a created key verifies");
            prop_assert_eq!(p.subject(), owner.as_str());
        }
        for g in &garbage {
            prop_assert!(keys.verify(g).is_err());
            // Garbage behind a real id and the right prefix is still garbage.
            let mut framed = format!("swk_{}_", created[0].id).into_bytes();
            framed.extend_from_slice(g);
            prop_assert!(keys.verify(&framed).is_err());
        }
        for (at, byte) in &edits {
            let mut key = created[0].key.clone().into_bytes();
            let i = at.index(key.len());
            if key[i] == *byte {
                continue;
            }
            key[i] = *byte;
            prop_assert!(keys.verify(&key).is_err(), "edited at {} to {:?}", i, byte);
        }
    }
}

// ---- X-Forwarded-For and Forwarded -------------------------------------------------------

/// One hop of a forwarding chain: an address (trusted proxy or not), or an entry no proxy
/// writes sensibly.
#[derive(Debug, Clone)]
enum Hop {
    Ip(IpAddr),
    Garbage(&'static str),
}

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        // Trusted ranges below: 10.0.0.0/8 and fd00::/8.
        (any::<u8>(), any::<u8>()).prop_map(|(a, b)| IpAddr::from([10, a, b, 1])),
        any::<u16>().prop_map(|x| IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, x])),
        // Untrusted.
        (1u8..=9, any::<u8>()).prop_map(|(a, b)| IpAddr::from([a, 1, b, 7])),
        any::<u16>().prop_map(|x| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, x])),
        // An IPv4-mapped IPv6 address of a trusted proxy is that proxy.
        any::<u8>().prop_map(|a| IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0x0a00, u16::from(a)])),
    ]
}

fn hop() -> impl Strategy<Value = Hop> {
    prop_oneof![
        8 => addr().prop_map(Hop::Ip),
        1 => prop::sample::select(&["unknown", "", "_hidden", "1.2.3", "[::1", "999.1.1.1", "evil.example"][..]).prop_map(Hop::Garbage),
    ]
}

fn trusted(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets()[0] == 10,
        IpAddr::V6(v6) => v6.segments()[0] & 0xff00 == 0xfd00,
    }
}

/// The client address by the rule, written out: walk from the right; the first address that
/// is not a trusted proxy is the client; an entry that is not an address stops the walk at
/// the last address vouched for; a chain of only proxies ends at its leftmost.
fn reference_client(peer: IpAddr, chain: &[Hop]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in chain.iter().rev() {
        match hop {
            Hop::Garbage(_) => return client,
            Hop::Ip(ip) => {
                client = ip.to_canonical();
                if !trusted(client) {
                    return client;
                }
            }
        }
    }
    client
}

/// Spell a hop as a proxy might: with or without a port, brackets, quotes, spaces.
fn spell(hop: &Hop, forwarded: bool, style: u8) -> String {
    let text = match hop {
        Hop::Garbage(g) => g.to_string(),
        Hop::Ip(IpAddr::V4(v4)) => match style % 3 {
            0 => v4.to_string(),
            1 => format!("{v4}:{}", 1000 + u16::from(style)),
            _ => format!(" {v4} "),
        },
        Hop::Ip(IpAddr::V6(v6)) => match style % 3 {
            0 if !forwarded => v6.to_string(),
            1 => format!("[{v6}]:{}", 1000 + u16::from(style)),
            _ => format!("[{v6}]"),
        },
    };
    if forwarded {
        let quoted = text.contains(':') || text.contains('[');
        let value = if quoted {
            format!("\"{}\"", text.trim())
        } else {
            text
        };
        match style % 4 {
            0 => format!("for={value}"),
            1 => format!("For={value};proto=https"),
            2 => format!("by=10.9.9.9;for={value}"),
            _ => format!(" for={value};host=api.example.com"),
        }
    } else {
        text
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_client_address_follows_the_chain_rule(
        peer in addr(),
        chain in prop::collection::vec(hop(), 0..8),
        styles in prop::collection::vec(any::<u8>(), 8),
        // Where the chain is cut into separate header lines.
        cuts in prop::collection::vec(any::<bool>(), 8),
        forwarded: bool,
    ) {
        let proxies = TrustedProxies::parse(["10.0.0.0/8", "fd00::/8"])
            .unwrap()
            .header(if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor });
        let name = if forwarded { header::FORWARDED } else { header::HeaderName::from_static("x-forwarded-for") };
        let mut headers = HeaderMap::new();
        let mut line: Vec<String> = Vec::new();
        for (i, hop) in chain.iter().enumerate() {
            line.push(spell(hop, forwarded, styles[i]));
            if cuts[i] || i + 1 == chain.len() {
                headers.append(name.clone(), HeaderValue::from_str(&line.join(",")).unwrap());
                line.clear();
            }
        }
        let want = reference_client(peer, &chain);
        prop_assert_eq!(proxies.client(peer, &headers), want, "chain {:?} headers {:?}", chain, headers);
    }

    #[test]
    fn forwarding_headers_from_anyone_are_ignored_and_nothing_panics(
        peer in addr(),
        lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..4),
        forwarded: bool,
    ) {
        let proxies = TrustedProxies::parse(["10.0.0.0/8", "fd00::/8"])
            .unwrap()
            .header(if forwarded { ForwardedHeader::Forwarded } else { ForwardedHeader::XForwardedFor });
        let mut headers = HeaderMap::new();
        for l in &lines {
            if let Ok(v) = HeaderValue::from_bytes(l) {
                headers.append(header::FORWARDED, v.clone());
                headers.append("x-forwarded-for", v.clone());
                headers.append("x-forwarded-proto", v);
            }
        }
        let client = proxies.client(peer, &headers);
        let _ = proxies.forwarded_scheme(peer, &headers);
        if !trusted(peer) {
            prop_assert_eq!(client, peer.to_canonical(), "an untrusted peer cannot name another client");
            prop_assert!(proxies.forwarded_scheme(peer, &headers).is_none());
        }
    }
}

// ---- Host / authority ------------------------------------------------------------------------

fn label() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "api",
                "example",
                "com",
                "org",
                "eu",
                "cdn",
                "evil",
                "xn--bcher-kva",
                "a-b",
                "1"
            ][..]
        )
        .prop_map(str::to_string),
        "[a-z0-9][a-z0-9-]{0,8}[a-z0-9]",
    ]
}

fn name() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(label(), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Hosts allowed by a list of exact names and wildcards, against a label-wise
    /// reference; spelled with any case, trailing dot or port.
    #[test]
    fn allowed_hosts_match_label_by_label(
        exact in prop::collection::vec(name(), 1..3),
        wild in prop::collection::vec(prop::collection::vec(label(), 2..4), 0..2),
        host in name(),
        pick in prop::option::of(any::<prop::sample::Index>()),
        upper: bool,
        dot: bool,
        port in prop::option::of(any::<u16>()),
    ) {
        let mut list: Vec<String> = exact.iter().map(|l| l.join(".")).collect();
        list.extend(wild.iter().map(|l| format!("*.{}", l.join("."))));
        let Ok(hosts) = AllowedHosts::list(list.iter()) else {
            // All-digit names are refused as hosts; nothing to check for this list.
            prop_assume!(false);
            unreachable!();
        };
        // Half the time, ask for a listed name (or a subdomain of a wildcard).
        let host: Vec<String> = match pick {
            Some(i) if !exact.is_empty() => exact[i.index(exact.len())].clone(),
            _ => host,
        };
        let reference = exact.contains(&host)
            || wild.iter().any(|w| host.len() > w.len() && host[host.len() - w.len()..] == w[..]);
        let mut text = host.join(".");
        if upper {
            text = text.to_ascii_uppercase();
        }
        if dot {
            text.push('.');
        }
        if let Some(p) = port {
            text = format!("{text}:{p}");
        }
        prop_assert_eq!(hosts.allows(&text), reference, "{} against {:?}", text, list);
    }

    /// The fast path never decides differently from the full one, and nothing panics.
    #[test]
    fn the_fast_host_path_agrees_with_the_full_one(
        host in prop_oneof!["\\PC{0,40}", "[a-zA-Z0-9.:\\[\\]-]{0,40}", "(api\\.example\\.com|localhost|127\\.0\\.0\\.1|\\[::1\\])(:[0-9]{0,6})?\\.?"],
        which in 0u8..3,
    ) {
        let hosts = match which {
            0 => AllowedHosts::loopback(),
            1 => AllowedHosts::list(["api.example.com", "*.example.org", "[::1]", "127.0.0.1"]).unwrap(),
            _ => AllowedHosts::any(),
        };
        // `any()` too needs a well-formed host (the request check skips it altogether).
        let full = normalize(&host).is_some_and(|n| hosts.allows_normalized(&n));
        prop_assert_eq!(hosts.allows(&host), full, "{:?}", host);
        if let Some(n) = normalize(&host) {
            // Normal form is a fixed point.
            let again = normalize(&n).map(|a| a.into_owned());
            prop_assert_eq!(again, Some(n.into_owned()));
        }
    }

    /// A request's host: one `Host` header agreeing with the target's authority.
    #[test]
    fn a_request_names_one_host(
        hosts_in in prop::collection::vec(prop::sample::select(&["api.example.com", "API.example.com:443", "evil.example", "api.example.com.evil.example", "[::1]"][..]), 0..3),
        authority in prop::option::of(prop::sample::select(&["api.example.com", "api.example.com:443", "evil.example"][..])),
    ) {
        let allowed = AllowedHosts::list(["api.example.com"]).unwrap();
        let mut headers = HeaderMap::new();
        for h in &hosts_in {
            headers.append(header::HOST, HeaderValue::from_static(h));
        }
        let uri: Uri = match authority {
            Some(a) => format!("https://{a}/x").parse().unwrap(),
            None => "/x".parse().unwrap(),
        };
        let ok = allowed.check_request(&headers, &uri).is_ok();
        let named: Vec<&str> = authority.into_iter().chain(hosts_in.iter().copied()).collect();
        let reference = hosts_in.len() <= 1
            && !named.is_empty()
            && named.iter().all(|n| n.to_ascii_lowercase().trim_end_matches(":443") == "api.example.com");
        prop_assert_eq!(ok, reference, "Host {:?} authority {:?}", hosts_in, authority);
    }
}

// ---- Origin -----------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever is listed, the origins kept are canonical (`scheme://host[:port]`, lower
    /// case, no default port, no path) and canonicalising again changes nothing.
    #[test]
    fn listed_origins_are_canonical(
        origin in prop_oneof![
            "\\PC{0,40}",
            "(HTTPS|https|http|ftp|Http)://[a-zA-Z0-9.@*-]{1,20}(:[0-9]{1,5})?(/|/x|\\?q)?",
        ],
    ) {
        if let Ok(kept) = Cors::origins([origin.as_str()]).allowed_origins() {
            if origin.trim().is_empty() {
                prop_assert!(kept.is_empty(), "a blank entry is skipped");
                return Ok(());
            }
            prop_assert_eq!(kept.len(), 1);
            let o = &kept[0];
            let uri: Uri = o.parse().expect("a kept origin is a URI");
            prop_assert!(matches!(uri.scheme_str(), Some("http" | "https")));
            prop_assert_eq!(o.to_ascii_lowercase(), o.clone());
            prop_assert!(!o.ends_with(":443") || o.starts_with("http:"));
            prop_assert!(!o.ends_with(":80") || o.starts_with("https:"));
            prop_assert!(!o["https://".len()..].contains('/'));
            prop_assert!(!o.contains('@') && !o.contains('*'));
            prop_assert_eq!(Cors::origins([o.as_str()]).allowed_origins().ok(), Some(kept.clone()));
        }
    }
}

// ---- Static file paths ------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// No accepted path can leave the root or name a hidden file, however it is encoded.
    #[test]
    fn static_paths_never_escape(
        raw in prop_oneof![
            "\\PC{0,60}",
            "(/(\\.|\\.\\.|%2e|%2E|%2f|%5c|%00|a|b\\.css|\\.git|%252e|~|:|C:))*{0,6}",
        ],
    ) {
        if let Some(segments) = safe_segments(&raw) {
            prop_assert!(!segments.is_empty());
            let mut path = std::path::PathBuf::from("/srv/root");
            path.extend(&segments);
            prop_assert!(path.starts_with("/srv/root"));
            for s in &segments {
                prop_assert!(!s.is_empty() && !s.starts_with('.'), "{:?}", s);
                prop_assert!(!s.contains(['/', '\\', '\0', ':', '%']), "{:?}", s);
                let mut comps = std::path::Path::new(s).components();
                prop_assert!(matches!(comps.next(), Some(std::path::Component::Normal(_))));
                prop_assert!(comps.next().is_none());
            }
        }
    }

    /// Safe names, percent-encoded any way, come back as they were.
    #[test]
    fn encoded_safe_paths_round_trip(
        segments in prop::collection::vec("[a-zA-Z0-9_ é~-][a-zA-Z0-9_. é~-]{0,12}", 1..5),
        encode_all: bool,
    ) {
        let set = if encode_all { percent_encoding::NON_ALPHANUMERIC } else { percent_encoding::CONTROLS };
        let raw: String = segments
            .iter()
            .map(|s| format!("/{}", percent_encoding::utf8_percent_encode(s, set)))
            .collect();
        let raw = raw.replace(' ', "%20");
        prop_assert_eq!(safe_segments(&raw), Some(segments));
    }
}

// ---- Problem rendering -----------------------------------------------------------------------

async fn body_json(res: axum::response::Response) -> serde_json::Value {
    use http_body_util::BodyExt;
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).expect("a problem body is JSON")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever text a problem carries (an attacker's field names and values reach field
    /// errors), the body is valid JSON that says exactly that, with the problem+json type.
    #[test]
    fn problems_render_any_text_faithfully(
        status in 400u16..600,
        title in "\\PC{0,30}",
        detail in prop::option::of(".{0,60}"),
        instance in prop::option::of("\\PC{0,30}"),
        errors in prop::collection::vec(("\\PC{0,20}", "[a-z_]{1,10}", ".{0,40}"), 0..4),
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        let mut problem = Problem::new(status, "bad-thing", title.clone());
        if let Some(d) = &detail {
            problem = problem.with_detail(d.clone());
        }
        if let Some(i) = &instance {
            problem = problem.with_instance(i.clone());
        }
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let res = axum::response::IntoResponse::into_response(problem);
        prop_assert_eq!(res.status(), status);
        prop_assert_eq!(res.headers()[header::CONTENT_TYPE].to_str().unwrap(), "application/problem+json");
        let json = rt.block_on(body_json(res));
        prop_assert_eq!(&json["title"], &serde_json::Value::from(title));
        prop_assert_eq!(&json["status"], &serde_json::Value::from(status.as_u16()));
        prop_assert_eq!(&json["type"], &serde_json::Value::from("urn:shieldwall:problem:bad-thing"));
        prop_assert_eq!(json.get("detail").cloned(), detail.map(serde_json::Value::from));
        prop_assert_eq!(json.get("instance").cloned(), instance.map(serde_json::Value::from));

        let field_errors: Vec<FieldError> = errors
            .iter()
            .map(|(f, c, m)| FieldError { field: f.clone(), code: c.clone(), message: m.clone() })
            .collect();
        let res = axum::response::IntoResponse::into_response(
            Rejection::Invalid(field_errors).into_problem("api"),
        );
        prop_assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let json = rt.block_on(body_json(res));
        let listed = json.get("errors").and_then(|e| e.as_array()).cloned().unwrap_or_default();
        prop_assert_eq!(listed.len(), errors.len());
        for (e, (f, c, m)) in listed.iter().zip(&errors) {
            prop_assert_eq!(&e["field"], &serde_json::Value::from(f.as_str()));
            prop_assert_eq!(&e["code"], &serde_json::Value::from(c.as_str()));
            prop_assert_eq!(&e["message"], &serde_json::Value::from(m.as_str()));
        }
    }
}

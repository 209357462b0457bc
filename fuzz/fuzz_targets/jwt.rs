//! Whole JWT verification with a fixed HS256 key, as a request runs it
//! (`fuzzing::verify_bearer`: verified-token cache, token68, header checks, signature,
//! claims). An input starting with `{` is a payload (or, when it has two lines, a header
//! and a payload) signed here with the key, so the fuzzer reaches the claim checks; any
//! other input is the token itself.
//!
//! Invariants: a token is accepted only when it is token68, its signature is HS256 under the
//! key (checked here with a separate HMAC), its header names no key location and an
//! accepted `typ`, and its claims are one object without duplicate keys whose `sub` is the
//! principal's, with `exp` not past, `nbf` and `iat` not in the future, no `aud`, and no
//! non-access purpose; the principal's roles and claims are the token's; the verified-token
//! cache never changes a decision (a verifier with it and one without agree, also on the
//! second sight); the direct `verify` never accepts what the request path refuses; and a
//! plainly valid payload (a subject, `exp` a minute ahead, roles and scope) is accepted.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use shieldwall_fuzz::{KEY, b64url_decode, sign, signed_by_key};
use shieldwall_runtime::auth::jwt::{Jwt, JwtVerifier};
use shieldwall_runtime::fuzzing::{jwt_verifier, strict_claims, token68, verify_bearer};
use shieldwall_runtime::principal::Principal;

static CACHED: LazyLock<JwtVerifier> = LazyLock::new(|| jwt_verifier(&Jwt::hs256(KEY)).unwrap());
static UNCACHED: LazyLock<JwtVerifier> =
    LazyLock::new(|| jwt_verifier(&Jwt::hs256(KEY).token_cache(0)).unwrap());

const HEADER: &[u8] = br#"{"alg":"HS256","typ":"JWT"}"#;
const LEEWAY: f64 = 5.0;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn part(token: &str, i: usize) -> Option<Vec<u8>> {
    b64url_decode(token.split('.').nth(i)?)
}

fn same(a: &Result<Principal, impl Sized>, b: &Result<Principal, impl Sized>) -> bool {
    match (a, b) {
        (Ok(a), Ok(b)) => a.subject() == b.subject() && a.claims() == b.claims(),
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// Everything an accepted token must be, checked here without the verifier's code.
fn check_accepted(token: &str, p: &Principal) {
    assert!(token68(token.as_bytes()).is_ok());
    assert!(
        signed_by_key(token),
        "accepted without a valid signature: {token}"
    );
    let header: Map<String, Value> =
        serde_json::from_slice(&part(token, 0).expect("a header")).expect("a JSON header");
    assert_eq!(header.get("alg"), Some(&Value::from("HS256")));
    for k in ["jku", "jwk", "x5u", "x5c"] {
        assert!(!header.contains_key(k), "{k} in an accepted header");
    }
    if let Some(t) = header.get("typ") {
        let t = t.as_str().expect("typ is text").to_ascii_lowercase();
        assert!(
            ["at+jwt", "application/at+jwt", "jwt"].contains(&t.as_str()),
            "{t}"
        );
    }
    let claims = strict_claims(&part(token, 1).expect("a payload")).expect("strict claims");
    assert_eq!(claims.get("sub").and_then(Value::as_str), Some(p.subject()));
    assert!(!p.subject().is_empty());
    let t = now();
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .expect("a numeric exp");
    assert!(exp + LEEWAY + 1.0 >= t, "expired: {exp} at {t}");
    for k in ["nbf", "iat"] {
        if let Some(v) = claims.get(k) {
            let v = v.as_f64().expect("numeric");
            assert!(v <= t + LEEWAY + 1.0, "{k} {v} is in the future at {t}");
        }
    }
    assert!(!claims.contains_key("aud"), "no audience is configured");
    for k in ["token_use", "token_type", "typ"] {
        if let Some(v) = claims.get(k) {
            let v = v.as_str().expect("a purpose is text").to_ascii_lowercase();
            assert!(v == "access" || v == "bearer", "{k}: {v}");
        }
    }
    let roles: Vec<&str> = match claims.get("roles") {
        Some(r) => r
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect(),
        None => Vec::new(),
    };
    assert_eq!(p.roles(), roles.as_slice());
    assert_eq!(p.claims(), Some(&Value::Object(claims)));
}

/// A payload any verifier must accept: a subject, `exp` a minute ahead, and only claims
/// that need nothing more.
fn plainly_valid(claims: &Map<String, Value>) -> bool {
    let t = now();
    claims
        .get("sub")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        && claims
            .get("exp")
            .and_then(Value::as_u64)
            .is_some_and(|e| e as f64 >= t + 60.0)
        && claims.iter().all(|(k, v)| match k.as_str() {
            "sub" | "exp" | "jti" | "name" => true,
            "scope" => v.is_string(),
            "roles" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            _ => false,
        })
}

fuzz_target!(|data: &[u8]| {
    let minted;
    let (token, plain): (&[u8], bool) = if data.first() == Some(&b'{') {
        let lines = shieldwall_fuzz::lines(data);
        let (header, payload) = match lines.as_slice() {
            [header, payload] => (*header, *payload),
            _ => (HEADER, data),
        };
        minted = sign(header, payload);
        let plain = header == HEADER && strict_claims(payload).is_ok_and(|c| plainly_valid(&c));
        (minted.as_bytes(), plain)
    } else {
        (data, false)
    };

    let uncached = verify_bearer(&UNCACHED, token);
    let first = verify_bearer(&CACHED, token);
    let second = verify_bearer(&CACHED, token);
    assert!(
        same(&uncached, &first) && same(&first, &second),
        "the cache changed a decision"
    );
    if let Ok(p) = &uncached {
        check_accepted(std::str::from_utf8(token).unwrap(), p);
    }
    if plain {
        assert!(
            uncached.is_ok(),
            "a plainly valid token was refused: {uncached:?}"
        );
    }
    if let Ok(text) = std::str::from_utf8(token)
        && UNCACHED.verify(text).is_ok()
    {
        assert!(
            uncached.is_ok(),
            "verify accepts what the request path refuses"
        );
    }
});

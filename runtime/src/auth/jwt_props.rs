//! Property tests of token verification: the strict claims visitor round-trips every JSON
//! object and refuses a duplicate key at any depth; signed tokens with random claims yield
//! exactly their principal; any change to a signed token is refused.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::{Jwt, StrictClaims};
use crate::error::Rejection;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Floats that print and parse back exactly (serde_json's default float parsing is
        // not always the nearest double; claims never rely on the last bit).
        any::<i32>().prop_map(|i| Value::from(f64::from(i) + 0.5)),
        "\\PC{0,12}".prop_map(Value::String),
        "[\"\\\\\\u{0}-\\u{1f}]{0,4}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}", json(), 1..6).prop_map(|m| m.into_iter().collect())
}

/// `v` as JSON text, with the first key of the `dup`-th object (in document order)
/// written twice when `dup` is reached. Returns whether a duplicate was written.
fn render(v: &Value, dup: &mut Option<usize>, out: &mut String) -> bool {
    match v {
        Value::Object(m) => {
            let here = match dup {
                Some(0) => {
                    *dup = None;
                    !m.is_empty()
                }
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            };
            let mut wrote = here;
            out.push('{');
            let mut first = true;
            for (i, (k, val)) in m.iter().enumerate() {
                let copies = if here && i == 0 { 2 } else { 1 };
                for _ in 0..copies {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    wrote |= render(val, dup, out);
                }
            }
            out.push('}');
            wrote
        }
        Value::Array(a) => {
            out.push('[');
            let mut wrote = false;
            for (i, val) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                wrote |= render(val, dup, out);
            }
            out.push(']');
            wrote
        }
        other => {
            out.push_str(&serde_json::to_string(other).unwrap());
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn strict_claims_round_trip_objects(claims in object()) {
        let text = serde_json::to_string(&Value::Object(claims.clone())).unwrap();
        let parsed: StrictClaims = serde_json::from_str(&text).expect("a JSON object parses");
        prop_assert_eq!(parsed.0, claims);
    }

    #[test]
    fn a_duplicate_key_anywhere_is_refused(claims in object(), at in 0usize..8) {
        let mut out = String::new();
        let mut dup = Some(at);
        let wrote = render(&Value::Object(claims), &mut dup, &mut out);
        let parsed = serde_json::from_str::<StrictClaims>(&out);
        if wrote {
            prop_assert!(parsed.is_err(), "accepted a duplicate: {}", out);
        } else {
            prop_assert!(parsed.is_ok(), "{}", out);
        }
    }

    #[test]
    fn strict_claims_answer_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = serde_json::from_slice::<StrictClaims>(&bytes);
    }

    /// A signed token with random claims yields exactly its subject, roles and scopes; any
    /// single-byte change to it is refused.
    #[test]
    fn signed_claims_come_back_and_edits_are_refused(
        sub in "\\PC{1,20}",
        roles in prop::collection::vec("[a-z:]{1,8}", 0..4),
        scopes in prop::collection::vec("[a-z:.]{1,8}", 0..4),
        extra in object(),
        edit in (any::<prop::sample::Index>(), any::<u8>()),
    ) {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = extra;
        for k in ["iat", "nbf", "token_use", "token_type", "typ", "scp", "aud", "iss"] {
            claims.remove(k);
        }
        claims.insert("sub".into(), sub.clone().into());
        claims.insert("exp".into(), (now + 600).into());
        claims.insert("roles".into(), roles.clone().into());
        claims.insert("scope".into(), scopes.join(" ").into());
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap();
        let verifier = Jwt::hs256(SECRET).token_cache(0).compile().unwrap();
        let p = verifier.verify(&token).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(p.subject(), sub.as_str());
        prop_assert_eq!(p.roles(), &roles[..]);
        prop_assert_eq!(p.scopes(), &scopes[..]);

        let (at, byte) = edit;
        let mut edited = token.clone().into_bytes();
        let i = at.index(edited.len());
        prop_assume!(edited[i] != byte);
        edited[i] = byte;
        // base64url without padding has slack bits in its last character: an edit that
        // decodes to the same bytes is the same token, not a forgery.
        let same = String::from_utf8(edited.clone()).ok().is_some_and(|t| {
            let d = |s: &str| {
                s.split('.')
                    .map(|p| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok())
                    .collect::<Vec<_>>()
            };
            t.split('.').count() == 3 && d(&t) == d(&token)
        });
        if !same {
            let text = std::str::from_utf8(&edited).unwrap_or("not utf-8");
            let refused = matches!(
                verifier.verify(text),
                Err(Rejection::InvalidToken | Rejection::MalformedCredentials(_))
            );
            prop_assert!(refused, "an edited token was accepted");
        }
    }
}

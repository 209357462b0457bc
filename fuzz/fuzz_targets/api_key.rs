//! The API-key header (`swk_<id>_<secret>`), through the public `ApiKeys::verify` on a
//! memory store holding one live key, one revoked and one expired.
//!
//! Invariants: a value is admitted exactly when it is the live key, byte for byte, and
//! then names its owner, roles and key id; the revoked and expired keys are never admitted;
//! and a value that is not even of the key's form is refused as malformed or invalid, never
//! as an outage.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use shieldwall_runtime::auth::api_key::{ApiKeyRecord, ApiKeyStore, ApiKeys, MemoryKeyStore};
use shieldwall_runtime::error::Rejection;
use shieldwall_runtime::principal::Credential;

const LIVE: &str = "swk_live1d_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";
const REVOKED: &str = "swk_rev0ked_cmV2b2tlZC1yZXZva2VkLXJldm9rZWQtcmV2b2tlZC0";
const EXPIRED: &str = "swk_exp1red_ZXhwaXJlZC1leHBpcmVkLWV4cGlyZWQtZXhwaXJlZC0";

fn record(key: &str, revoked: bool, expires_at: Option<u64>) -> ApiKeyRecord {
    let (id, secret) = key["swk_".len()..].split_once('_').expect("a key");
    ApiKeyRecord {
        id: id.into(),
        owner: format!("svc-{id}"),
        hash: Sha256::digest(secret.as_bytes()).into(),
        roles: vec!["reader".into()],
        scopes: vec!["reports:read".into()],
        expires_at,
        revoked,
    }
}

static KEYS: LazyLock<ApiKeys> = LazyLock::new(|| {
    let store = MemoryKeyStore::new();
    store.insert(record(LIVE, false, None)).unwrap();
    store.insert(record(REVOKED, true, None)).unwrap();
    store.insert(record(EXPIRED, false, Some(1))).unwrap();
    ApiKeys::new(store)
});

fuzz_target!(|data: &[u8]| {
    let result = KEYS.verify(data);
    match &result {
        Ok(p) => {
            assert_eq!(data, LIVE.as_bytes(), "only the live key is admitted");
            assert_eq!(p.subject(), "svc-live1d");
            assert_eq!(p.roles(), ["reader"]);
            assert!(matches!(p.credential(), Credential::ApiKey { id } if id == "live1d"));
        }
        Err(Rejection::InvalidToken | Rejection::MalformedCredentials(_)) => {
            assert_ne!(data, LIVE.as_bytes(), "the live key is admitted");
        }
        Err(other) => panic!("a memory store never fails: {other:?}"),
    }
    // The fuzzer's bytes spliced into the live key: admitted only when nothing changed.
    let mut spliced = LIVE.as_bytes().to_vec();
    let at = data
        .first()
        .map_or(0, |b| usize::from(*b) % (spliced.len() + 1));
    spliced.splice(
        at..(at + data.len().min(2)).min(spliced.len()),
        data.iter().copied(),
    );
    assert_eq!(KEYS.verify(&spliced).is_ok(), spliced == LIVE.as_bytes());
});

//! The verified-token cache: a bearer token whose signature and claims were verified once
//! is not verified again on every request while it stays valid.
//!
//! Clients send the same access token for its whole life (minutes), so re-verifying the
//! signature and re-parsing the claims on every request is repeated work. An entry is only
//! made for a token that passed every check of [`crate::auth::jwt`]; a hit then re-checks
//! everything that can change after that moment:
//!
//! - time: `exp` and `nbf` against the current time, with the same leeway as the full path
//!   (an entry whose token expired is a miss, and the full path refuses it);
//! - the key: an entry remembers the key that verified it; a key of the remote key set
//!   must still be in the current set (the same loaded key), so a key removed by rotation
//!   stops its tokens at once;
//! - revocation is not cached at all: it runs after authentication on every request.
//!
//! Entries are found by a randomly keyed hash of the token and then compared with the whole
//! token in constant time, so a client cannot probe for a cached token one byte at a time,
//! and a hash collision is only a miss. The cache is bounded (default
//! [`DEFAULT_CAPACITY`] tokens; [`crate::auth::jwt::Jwt::token_cache`] sets it, 0 turns it
//! off); a full shard drops its expired entries, then an arbitrary one. Tokens longer than
//! [`MAX_CACHED_TOKEN`] bytes are never cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::jwt::VerifierKey;
use crate::principal::Principal;

/// Default number of cached tokens.
pub const DEFAULT_CAPACITY: usize = 4096;
/// Longest token that is cached.
pub const MAX_CACHED_TOKEN: usize = 2048;
const SHARDS: usize = 16;

/// Which key verified a cached token.
#[derive(Clone)]
pub(crate) enum KeyRef {
    /// A configured key: it cannot change while the app runs.
    Static,
    /// A key of the remote key set, by kid: valid while the set still holds this key.
    Remote(String, Arc<VerifierKey>),
}

struct Entry {
    token: Box<[u8]>,
    principal: Principal,
    exp: u64,
    nbf: Option<u64>,
    key: KeyRef,
}

impl Entry {
    fn live(&self, now: u64, leeway: u64) -> bool {
        // The same comparisons as jsonwebtoken's validation.
        self.exp >= now.saturating_sub(leeway)
            && self.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
    }
}

/// See the [module docs](self).
pub(crate) struct TokenCache {
    hasher: ahash::RandomState,
    shards: Box<[Mutex<HashMap<u64, Entry>>]>,
    per_shard: usize,
    leeway: u64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("capacity", &(self.per_shard * SHARDS))
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache of about `capacity` tokens (`None` for 0).
    pub(crate) fn new(capacity: usize, leeway: u64) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        Some(Self {
            hasher: ahash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            leeway,
        })
    }

    fn shard(&self, h: u64) -> &Mutex<HashMap<u64, Entry>> {
        // The low bits pick the slot inside the map; take the shard from the high bits.
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    /// The principal of a cached, still valid token. `key_current` says whether a remote
    /// key is still the one loaded under its kid.
    pub(crate) fn get(
        &self,
        token: &[u8],
        now: u64,
        key_current: impl FnOnce(&str, &Arc<VerifierKey>) -> bool,
    ) -> Option<Principal> {
        if token.len() > MAX_CACHED_TOKEN {
            return None;
        }
        let h = self.hasher.hash_one(token);
        let (principal, key) = {
            let map = self.shard(h).lock().unwrap_or_else(PoisonError::into_inner);
            let e = map.get(&h)?;
            let same = constant_time_eq(&e.token, token);
            if !same || !e.live(now, self.leeway) {
                return None;
            }
            (e.principal.clone(), e.key.clone())
        };
        match key {
            KeyRef::Static => Some(principal),
            KeyRef::Remote(kid, k) => key_current(&kid, &k).then_some(principal),
        }
    }

    /// Remember a token that passed every check.
    pub(crate) fn insert(&self, token: &str, principal: &Principal, key: KeyRef, now: u64) {
        if token.len() > MAX_CACHED_TOKEN {
            return;
        }
        let Some(claims) = principal.claims() else {
            return;
        };
        let Some(exp) = claims.get("exp").and_then(serde_json::Value::as_u64) else {
            return;
        };
        let nbf = match claims.get("nbf") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(n) => Some(n),
                None => return,
            },
        };
        let entry = Entry {
            token: token.as_bytes().into(),
            principal: principal.clone(),
            exp,
            nbf,
            key,
        };
        if !entry.live(now, self.leeway) {
            return;
        }
        let h = self.hasher.hash_one(token.as_bytes());
        let mut map = self.shard(h).lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.per_shard && !map.contains_key(&h) {
            let leeway = self.leeway;
            map.retain(|_, e| e.live(now, leeway));
            if map.len() >= self.per_shard
                && let Some(victim) = map.keys().next().copied()
            {
                map.remove(&victim);
            }
        }
        map.insert(h, entry);
    }

    /// Tokens cached now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

/// Equality whose time depends only on the lengths: every word is compared, differences
/// are OR-ed together, and the result is read once at the end.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut acc = 0u64;
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (wa.remainder(), wb.remainder());
    for (x, y) in wa.zip(wb) {
        let x = u64::from_ne_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_ne_bytes(y.try_into().unwrap_or([0; 8]));
        acc |= x ^ y;
    }
    for (x, y) in ra.iter().zip(rb) {
        acc |= u64::from(x ^ y);
    }
    std::hint::black_box(acc) == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn equality() {
        let t = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";
        assert!(constant_time_eq(t, t));
        for i in 0..t.len() {
            let mut u = *t;
            u[i] ^= 1;
            assert!(!constant_time_eq(t, &u), "byte {i}");
        }
        assert!(!constant_time_eq(t, &t[..t.len() - 1]));
        assert!(constant_time_eq(b"", b""));
    }
}

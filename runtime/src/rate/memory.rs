//! The in-memory rate store: sharded maps of GCRA TATs with a hard cap on tracked keys.
//!
//! Each check takes one shard's mutex for a hash lookup and a few arithmetic operations,
//! so concurrent requests on the same key are serialised and counted exactly.
//!
//! Memory is bounded: each shard holds at most `capacity / SHARDS` keys. When a shard is
//! full, keys whose TAT is in the past are dropped first — such a key is at full budget, so
//! forgetting it changes no decision. If the shard is still full of active keys, a new key
//! is refused (429) rather than evicting an active one, which would reset its limit early.
//!
//! ```
//! use shieldwall_runtime::rate::memory::MemoryStore;
//! let store = MemoryStore::new(100_000);
//! assert_eq!(store.len(), 0);
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use super::{Decision, Quota, RateKey, gcra};

const SHARDS: usize = 64;

/// In-memory GCRA store.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<HashMap<RateKey, u64, ahash::RandomState>>]>,
    hasher: ahash::RandomState,
    shard_cap: usize,
}

impl MemoryStore {
    /// A store tracking at most `capacity` keys (rounded up to a multiple of 64).
    pub fn new(capacity: usize) -> Self {
        let shard_cap = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(ahash::RandomState::new())))
                .collect(),
            hasher: ahash::RandomState::new(),
            shard_cap,
        }
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check and, if admitted, charge one request against `key`.
    pub fn check(&self, key: &RateKey, quota: &Quota, now: u64) -> Decision {
        let shard = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut map = match self.shards[shard].lock() {
            Ok(m) => m,
            // A panic while holding the lock cannot leave a TAT half-written; keep going.
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(tat) = map.get_mut(key) {
            let (decision, new_tat) = gcra(Some(*tat), quota, now);
            if let Some(t) = new_tat {
                *tat = t;
            }
            return decision;
        }
        if map.len() >= self.shard_cap {
            map.retain(|_, tat| *tat > now);
            if map.len() >= self.shard_cap {
                tracing::warn!(
                    target: "shieldwall::rate",
                    "rate store full of active keys; refusing a new key"
                );
                return Decision {
                    allowed: false,
                    remaining: 0,
                    reset_secs: 1,
                };
            }
        }
        let (decision, new_tat) = gcra(None, quota, now);
        if let Some(t) = new_tat {
            map.insert(key.clone(), t);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::Ident;
    use std::sync::Arc;

    #[test]
    fn exact_under_threads() {
        let store = Arc::new(MemoryStore::new(1000));
        let quota = Quota::new(100, 60, 100);
        let key = RateKey { route: 1, limit: 0, ident: Ident::Global };
        let admitted: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    let key = key.clone();
                    s.spawn(move || (0..50).filter(|_| store.check(&key, &quota, 5).allowed).count())
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 100);
    }

    #[test]
    fn cap_holds_and_idle_keys_are_dropped() {
        let store = MemoryStore::new(64);
        let quota = Quota::new(1, 1, 1);
        for i in 0..1000u32 {
            let key = RateKey { route: 0, limit: 0, ident: Ident::Subject(i.to_string().into()) };
            store.check(&key, &quota, 1_000 + u64::from(i) * 2_000_000_000);
        }
        assert!(store.len() <= 64);
    }

    #[test]
    fn full_of_active_keys_refuses_new_ones_without_resetting_old() {
        let store = MemoryStore::new(64);
        let quota = Quota::new(1, 3600, 1);
        let now = 10;
        let mut refused_new = 0;
        for i in 0..10_000u32 {
            let key = RateKey { route: 0, limit: 0, ident: Ident::Subject(i.to_string().into()) };
            if !store.check(&key, &quota, now).allowed {
                refused_new += 1;
            }
        }
        assert!(store.len() <= 64);
        assert!(refused_new > 0);
        // every tracked key still has its limit: none is admitted again
        let tracked_again = (0..10_000u32)
            .filter(|i| {
                let key = RateKey { route: 0, limit: 0, ident: Ident::Subject(i.to_string().into()) };
                store.check(&key, &quota, now).allowed
            })
            .count();
        assert_eq!(tracked_again, 0);
    }
}

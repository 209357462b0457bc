//! The in-memory rate store: sharded maps of GCRA TATs with a hard cap on tracked keys.
//!
//! Each check takes one shard's mutex for a hash lookup and a few arithmetic operations,
//! so concurrent requests on the same key are serialised and counted exactly.
//!
//! Memory is bounded: each shard holds at most `capacity / 64` keys. When a shard is
//! full, keys whose TAT is in the past are dropped — such a key is at full budget, so
//! forgetting it changes no decision (at most once a second per shard, so a flood of new
//! keys cannot make every request scan the shard). If the shard is still full of active
//! keys, a new key is refused (429, logged) rather than evicting an active one, which would
//! reset its limit early.
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
    shards: Box<[Mutex<Shard>]>,
    hasher: ahash::RandomState,
    shard_cap: usize,
}

#[derive(Debug)]
struct Shard {
    map: HashMap<RateKey, u64, ahash::RandomState>,
    /// No purge of a full shard before this time: bounds the work an attacker can cause.
    next_purge: u64,
}

/// Shortest interval between two purges of one full shard.
const PURGE_INTERVAL: u64 = 1_000_000_000;

impl MemoryStore {
    /// A store tracking at most `capacity` keys (at least 64: one per shard).
    pub fn new(capacity: usize) -> Self {
        let shard_cap = (capacity / SHARDS).max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::with_hasher(ahash::RandomState::new()),
                        next_purge: 0,
                    })
                })
                .collect(),
            hasher: ahash::RandomState::new(),
            shard_cap,
        }
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.map.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Check and, if admitted, charge one request against `key`.
    pub fn check(&self, key: &RateKey, quota: &Quota, now: u64) -> Decision {
        let shard = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut guard = match self.shards[shard].lock() {
            Ok(m) => m,
            // A panic while holding the lock cannot leave a TAT half-written; keep going.
            Err(poisoned) => poisoned.into_inner(),
        };
        let Shard { map, next_purge } = &mut *guard;
        if let Some(tat) = map.get_mut(key) {
            let (decision, new_tat) = gcra(Some(*tat), quota, now);
            if let Some(t) = new_tat {
                *tat = t;
            }
            return decision;
        }
        if map.len() >= self.shard_cap {
            if now >= *next_purge {
                map.retain(|_, tat| *tat > now);
                *next_purge = now.saturating_add(PURGE_INTERVAL);
                if map.len() >= self.shard_cap {
                    // At most once a second per shard, not once per refused request.
                    tracing::warn!(
                        target: "shieldwall::rate",
                        tracked = map.len(),
                        "rate store shard full of active keys; refusing new keys"
                    );
                }
            }
            if map.len() >= self.shard_cap {
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

impl MemoryStore {
    /// Give back one request charged to `key` under `quota` (GCRA: move its TAT back by one
    /// emission interval). A key whose TAT falls to now or earlier is at full budget and is
    /// dropped. A key not tracked has nothing to give back.
    pub fn refund(&self, key: &RateKey, quota: &Quota, now: u64) {
        let shard = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut guard = match self.shards[shard].lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(tat) = guard.map.get_mut(key) {
            let back = tat.saturating_sub(quota.emission);
            if back <= now {
                guard.map.remove(key);
            } else {
                *tat = back;
            }
        }
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
        let key = RateKey {
            route: 1,
            limit: 0,
            ident: Ident::Global,
        };
        let admitted: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let store = store.clone();
                    let key = key.clone();
                    s.spawn(move || {
                        (0..50)
                            .filter(|_| store.check(&key, &quota, 5).allowed)
                            .count()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 100);
    }

    #[test]
    fn a_refund_gives_back_exactly_one_request() {
        let store = MemoryStore::new(1000);
        let quota = Quota::new(5, 60, 5);
        let key = RateKey {
            route: 1,
            limit: 0,
            ident: Ident::Username("alice".into()),
        };
        let now = 7;
        assert_eq!(
            (0..5)
                .filter(|_| store.check(&key, &quota, now).allowed)
                .count(),
            5
        );
        assert!(!store.check(&key, &quota, now).allowed);
        store.refund(&key, &quota, now);
        assert!(store.check(&key, &quota, now).allowed, "one back");
        assert!(!store.check(&key, &quota, now).allowed, "only one");
        // refunding everything leaves the key at full budget, and untracked
        for _ in 0..5 {
            store.refund(&key, &quota, now);
        }
        assert!(store.is_empty());
        store.refund(&key, &quota, now);
        assert_eq!(
            (0..8)
                .filter(|_| store.check(&key, &quota, now).allowed)
                .count(),
            5,
            "a refund never adds budget beyond the quota"
        );
    }

    #[test]
    fn cap_holds_and_idle_keys_are_dropped() {
        let store = MemoryStore::new(64);
        let quota = Quota::new(1, 1, 1);
        for i in 0..1000u32 {
            let key = RateKey {
                route: 0,
                limit: 0,
                ident: Ident::Subject(i.to_string().into()),
            };
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
            let key = RateKey {
                route: 0,
                limit: 0,
                ident: Ident::Subject(i.to_string().into()),
            };
            if !store.check(&key, &quota, now).allowed {
                refused_new += 1;
            }
        }
        assert!(store.len() <= 64);
        assert!(refused_new > 0);
        // every tracked key still has its limit: none is admitted again
        let tracked_again = (0..10_000u32)
            .filter(|i| {
                let key = RateKey {
                    route: 0,
                    limit: 0,
                    ident: Ident::Subject(i.to_string().into()),
                };
                store.check(&key, &quota, now).allowed
            })
            .count();
        assert_eq!(tracked_again, 0);
    }
}

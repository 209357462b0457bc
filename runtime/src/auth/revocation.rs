//! Token state shared by every instance: the revocation list (logout, admin revoke) and
//! refresh-token families (rotation with reuse detection).
//!
//! In memory for one instance, or in the shared Redis store (the same connection as the
//! rate limiter) so that a token revoked on one instance is refused on all of them.
//!
//! ```
//! use shieldwall_runtime::auth::revocation::TokenState;
//! let state = TokenState::memory();
//! # let _ = state;
//! ```
//!
//! While Redis is unreachable, revocation checks fail closed (503): a token that might be
//! revoked is not honoured.
//!
//! # The epoch: a state that may have forgotten refuses what came before it
//!
//! A revocation is an entry in the state, so a state that loses its entries un-revokes
//! tokens: the memory state when the process restarts, a Redis without persistence when
//! it restarts (or is flushed, or evicts keys under `maxmemory`). Logged-out and
//! admin-revoked access tokens would then work again for the rest of their lifetime. So
//! every state has an *epoch*, the Unix second it began, and refuses every token whose
//! `iat` is in that second or before, as if the whole world had been revoked then:
//!
//! - **Memory**: the second [`TokenState::memory`] was called. A process restart begins a
//!   new state, so every token issued before it is refused: everyone logs in again.
//! - **Redis**: a key without TTL, `shieldwall:tok:epoch`, holding the second it was
//!   created. It is read in the same `MGET` as the revocation keys (the check stays one
//!   round trip); when it is missing — a fresh, restarted or flushed Redis — the instance
//!   that notices creates it (`SET NX`, so every instance agrees on the first one written)
//!   with its own clock. A Redis that persists (AOF or RDB) keeps its epoch with its
//!   revocations, and a restart costs nothing; a volatile one that restarts logs everyone
//!   out, which is the price of not being able to tell which revocations it lost.
//!
//! The epoch is only ever *later* than the moment entries were lost (it is created when
//! the loss is first noticed), so it errs on the side of refusing. Whole seconds (token
//! times are whole seconds) make a token issued in the epoch's own second ambiguous: it is
//! refused, and the issuer ([`super::tokens::TokenIssuer`]) waits for the next second
//! before issuing, as it does after a subject revocation.
//!
//! What it applies to: every JWT checked against this state, whoever issued it. Another
//! issuer's tokens can be revoked here too (logout by `jti`, a subject revocation), and
//! those revocations are lost the same way, so they are refused the same way: their
//! clients fetch new tokens from their issuer. A token without `iat` cannot be placed
//! before or after the epoch and is refused (RFC 9068 requires `iat` in access tokens;
//! shieldwall's issuer always sets it).
//!
//! What it does not cover: a state that loses entries *and* keeps its epoch key. Redis
//! with `appendfsync everysec` may lose the last second of writes on a crash; a replica
//! promoted after a failover may lack the last writes its primary acknowledged; an
//! eviction policy other than `noeviction` may evict revocation keys (they have TTLs) while
//! the epoch (no TTL) stays. Run the token state on a Redis with `appendonly yes`,
//! `maxmemory-policy noeviction`, and no failover you do not trust with revocations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::rate::StoreError;

/// Outcome of presenting a refresh token of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's current one; the new one is now current.
    Rotated,
    /// An older token of the family was presented again: the family is revoked.
    Reused,
    /// The family is unknown, expired or revoked.
    Unknown,
}

#[derive(Debug, Default)]
struct Memory {
    /// key → (value, unix expiry)
    map: HashMap<String, (String, u64)>,
    /// The Unix second this state began (see the module docs).
    epoch: u64,
}

impl Memory {
    fn get(&mut self, key: &str, now: u64) -> Option<String> {
        match self.map.get(key) {
            Some((v, exp)) if *exp > now => Some(v.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }
    fn set(&mut self, key: String, value: String, exp: u64, now: u64) {
        if self.map.len() > 100_000 {
            self.map.retain(|_, (_, e)| *e > now);
        }
        self.map.insert(key, (value, exp));
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Memory(Arc<Mutex<Memory>>),
    #[cfg(feature = "redis")]
    Redis(crate::rate::redis::RedisStore),
}

/// Revocations and refresh families.
#[derive(Debug, Clone)]
pub struct TokenState {
    backend: Backend,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(feature = "redis")]
const ROTATE: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
if cur == ARGV[2] then return 1 end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
return 2
";

/// The Redis key holding the epoch (no TTL). Every other token-state key has a `kind:`
/// after the prefix, so no id can name this one.
const EPOCH_KEY: &str = "shieldwall:tok:epoch";

/// Create the epoch if it is missing and answer the one that stands.
#[cfg(feature = "redis")]
const EPOCH: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";

impl TokenState {
    /// State in this process's memory. Its epoch is now: tokens issued up to this second
    /// are refused (see the module docs), so create it when the process starts, not per
    /// request.
    pub fn memory() -> Self {
        Self {
            backend: Backend::Memory(Arc::new(Mutex::new(Memory {
                map: HashMap::new(),
                epoch: now(),
            }))),
        }
    }

    /// State shared through Redis (reusing the rate store's connection handling).
    #[cfg(feature = "redis")]
    pub fn redis(store: crate::rate::redis::RedisStore) -> Self {
        Self {
            backend: Backend::Redis(store),
        }
    }

    fn k(kind: &str, id: &str) -> String {
        format!("shieldwall:tok:{kind}:{id}")
    }

    async fn set(&self, key: String, value: &str, ttl_secs: u64) -> Result<(), StoreError> {
        let ttl = ttl_secs.max(1);
        match &self.backend {
            Backend::Memory(m) => {
                let now = now();
                m.lock().unwrap_or_else(|e| e.into_inner()).set(
                    key,
                    value.to_string(),
                    now + ttl,
                    now,
                );
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(key).arg(value).arg("EX").arg(ttl);
                r.query::<()>(cmd).await
            }
        }
    }

    /// Revoke one token by its `jti` until it would have expired anyway.
    pub async fn revoke_jti(&self, jti: &str, ttl_secs: u64) -> Result<(), StoreError> {
        self.set(Self::k("jti", jti), "1", ttl_secs).await
    }

    /// Revoke a whole refresh family (and the access tokens that carry its `fam`).
    pub async fn revoke_family(&self, fam: &str, ttl_secs: u64) -> Result<(), StoreError> {
        self.set(Self::k("famrev", fam), "1", ttl_secs).await?;
        match &self.backend {
            Backend::Memory(m) => {
                m.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .map
                    .remove(&Self::k("fam", fam));
                Ok(())
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("DEL");
                cmd.arg(Self::k("fam", fam));
                r.query::<()>(cmd).await
            }
        }
    }

    /// Revoke every token of `subject` issued up to now (admin revoke).
    pub async fn revoke_subject(&self, subject: &str, ttl_secs: u64) -> Result<(), StoreError> {
        self.set(Self::k("sub", subject), &now().to_string(), ttl_secs)
            .await
    }

    /// When `subject` was last revoked ([`TokenState::revoke_subject`]), in Unix seconds: every
    /// token of it issued in that second or before is refused.
    pub async fn subject_revoked_at(&self, subject: &str) -> Result<Option<u64>, StoreError> {
        let key = Self::k("sub", subject);
        let value = match &self.backend {
            Backend::Memory(m) => m.lock().unwrap_or_else(|e| e.into_inner()).get(&key, now()),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(key);
                r.query::<Option<String>>(cmd).await?
            }
        };
        value.as_deref().map(parse_marker).transpose()
    }

    /// The Unix second this state began: every token issued in it or before is refused
    /// (see the module docs). On Redis, a missing epoch is created now.
    pub async fn epoch(&self) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Memory(m) => Ok(m.lock().unwrap_or_else(|e| e.into_inner()).epoch),
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("GET");
                cmd.arg(EPOCH_KEY);
                match r.query::<Option<String>>(cmd).await? {
                    Some(v) => parse_epoch(&v),
                    None => self.create_epoch(r).await,
                }
            }
        }
    }

    /// Write the epoch if it is still missing (`SET NX`: the first instance to write wins)
    /// and answer the one that stands.
    #[cfg(feature = "redis")]
    async fn create_epoch(&self, r: &crate::rate::redis::RedisStore) -> Result<u64, StoreError> {
        let script = redis::Script::new(EPOCH);
        let mut inv = script.key(EPOCH_KEY);
        inv.arg(now());
        let value: String = r.invoke(inv).await?;
        tracing::warn!(
            target: "shieldwall::auth",
            epoch = %value,
            "the token state in Redis had no epoch (a new, restarted or flushed Redis): every token issued before now is refused"
        );
        parse_epoch(&value)
    }

    /// The last second in which a token for `subject` would be born refused: the later of
    /// the epoch and the subject's last revocation. The issuer waits until it is past.
    /// One read (one round trip on Redis, two when the epoch has to be created).
    pub(crate) async fn refused_until(&self, subject: &str) -> Result<u64, StoreError> {
        let key = Self::k("sub", subject);
        let (epoch, revoked) = match &self.backend {
            Backend::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let revoked = m.get(&key, now());
                (m.epoch, revoked)
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("MGET");
                cmd.arg(EPOCH_KEY).arg(key);
                let values = r.query::<Vec<Option<String>>>(cmd).await?;
                let epoch = match values.first().and_then(Option::as_deref) {
                    Some(v) => parse_epoch(v)?,
                    None => self.create_epoch(r).await?,
                };
                (epoch, values.get(1).cloned().flatten())
            }
        };
        let revoked = revoked
            .as_deref()
            .map(parse_marker)
            .transpose()?
            .unwrap_or(0);
        Ok(epoch.max(revoked))
    }

    /// Whether a token with these claims is revoked: its `jti` or family revoked, its
    /// subject revoked at or after its `iat`, or its `iat` in the state's epoch or before
    /// (a token without `iat` is refused: it cannot be placed after the epoch).
    pub async fn is_revoked(
        &self,
        jti: Option<&str>,
        fam: Option<&str>,
        subject: &str,
        iat: Option<u64>,
    ) -> Result<bool, StoreError> {
        let keys = [
            jti.map(|j| Self::k("jti", j)),
            fam.map(|f| Self::k("famrev", f)),
            Some(Self::k("sub", subject)),
        ];
        let (values, epoch): (Vec<Option<String>>, u64) = match &self.backend {
            Backend::Memory(m) => {
                let now = now();
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                let values = keys
                    .iter()
                    .map(|k| k.as_ref().and_then(|k| m.get(k, now)))
                    .collect();
                (values, m.epoch)
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                // The epoch rides in the same MGET: the check stays one round trip.
                let mut cmd = redis::cmd("MGET");
                for k in &keys {
                    // An absent claim asks for a key that never exists.
                    cmd.arg(k.as_deref().unwrap_or("shieldwall:tok:none"));
                }
                cmd.arg(EPOCH_KEY);
                let mut values = r.query::<Vec<Option<String>>>(cmd).await?;
                let epoch = match values.pop().flatten() {
                    Some(v) => parse_epoch(&v)?,
                    // A Redis without an epoch has lost (or never had) every entry: from
                    // now on, everything issued before now is refused.
                    None => self.create_epoch(r).await?,
                };
                (values, epoch)
            }
        };
        let Some(iat) = iat.filter(|iat| *iat > epoch) else {
            return Ok(true);
        };
        let revoked_jti_or_fam = values.iter().take(2).any(Option::is_some);
        let revoked_subject = values
            .get(2)
            .and_then(|v| v.as_deref())
            .map(parse_marker)
            .transpose()?
            .is_some_and(|at| iat <= at);
        Ok(revoked_jti_or_fam || revoked_subject)
    }

    /// Start a refresh family whose current token is `jti`.
    pub async fn start_family(
        &self,
        fam: &str,
        jti: &str,
        ttl_secs: u64,
    ) -> Result<(), StoreError> {
        self.set(Self::k("fam", fam), jti, ttl_secs).await
    }

    /// Present refresh token `jti` of `fam`; on success `new_jti` becomes current. Any other
    /// token of the family is a reuse: the family is revoked. The same call repeated (the
    /// Redis store sends a command again when its connection died before the answer came)
    /// answers [`Rotation::Rotated`] again: `new_jti` is fresh per call, so only the call
    /// that made it current can name it.
    pub async fn rotate(
        &self,
        fam: &str,
        jti: &str,
        new_jti: &str,
        ttl_secs: u64,
    ) -> Result<Rotation, StoreError> {
        match &self.backend {
            Backend::Memory(m) => {
                let now = now();
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                if m.get(&Self::k("famrev", fam), now).is_some() {
                    return Ok(Rotation::Unknown);
                }
                match m.get(&Self::k("fam", fam), now) {
                    None => Ok(Rotation::Unknown),
                    // The same call again (a retry whose first answer was lost): the new
                    // id is random per call, so only that call can name it.
                    Some(cur) if cur == new_jti => Ok(Rotation::Rotated),
                    Some(cur) if cur == jti => {
                        m.set(
                            Self::k("fam", fam),
                            new_jti.to_string(),
                            now + ttl_secs.max(1),
                            now,
                        );
                        Ok(Rotation::Rotated)
                    }
                    Some(_) => {
                        m.map.remove(&Self::k("fam", fam));
                        m.set(
                            Self::k("famrev", fam),
                            "1".into(),
                            now + ttl_secs.max(1),
                            now,
                        );
                        Ok(Rotation::Reused)
                    }
                }
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let script = redis::Script::new(ROTATE);
                let mut inv = script.key(Self::k("fam", fam));
                inv.key(Self::k("famrev", fam))
                    .arg(jti)
                    .arg(new_jti)
                    .arg(ttl_secs.max(1));
                let code: i64 = r.invoke(inv).await?;
                Ok(match code {
                    1 => Rotation::Rotated,
                    2 => Rotation::Reused,
                    _ => Rotation::Unknown,
                })
            }
        }
    }
}

/// An epoch as stored; anything else is a store fault (refuse rather than guess).
/// A subject's revocation marker: the Unix second of the revocation. Anything else (a store
/// edited by hand, another writer) fails closed: it must never read as "not revoked".
fn parse_marker(v: &str) -> Result<u64, StoreError> {
    v.parse().map_err(|_| {
        tracing::error!(target: "shieldwall::auth", value = v, "a subject's revocation marker is not a number of seconds");
        StoreError::Unavailable
    })
}

fn parse_epoch(v: &str) -> Result<u64, StoreError> {
    v.parse().map_err(|_| {
        tracing::error!(target: "shieldwall::auth", value = v, "the token state's epoch is not a number of seconds");
        StoreError::Unavailable
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_revocation_marker_that_is_not_a_time_fails_closed() {
        // A store edited by hand (or written by another version): a subject's marker that is
        // not a plain Unix second must never read as "not revoked".
        let s = TokenState::memory();
        s.revoke_subject("alice", 60).await.unwrap();
        // Issued after the state's epoch and after the revocation: a readable marker lets
        // it through, so only the marker's parsing decides below.
        let iat = now() + 2;
        assert!(!s.is_revoked(None, None, "alice", Some(iat)).await.unwrap());
        for bad in [
            "garbage",
            "1796111489.0",
            " 1796111490",
            "0x10",
            "1e99",
            "99999999999999999999999",
            "",
        ] {
            s.set(TokenState::k("sub", "alice"), bad, 60).await.unwrap();
            assert!(
                s.is_revoked(None, None, "alice", Some(iat)).await.is_err(),
                "{bad:?} read as a revocation time"
            );
            assert!(s.refused_until("alice").await.is_err(), "{bad:?}");
            assert!(s.subject_revoked_at("alice").await.is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn rotation_and_reuse() {
        let s = TokenState::memory();
        s.start_family("f", "a", 60).await.unwrap();
        assert_eq!(
            s.rotate("f", "a", "b", 60).await.unwrap(),
            Rotation::Rotated
        );
        assert_eq!(s.rotate("f", "a", "c", 60).await.unwrap(), Rotation::Reused);
        assert_eq!(
            s.rotate("f", "b", "d", 60).await.unwrap(),
            Rotation::Unknown
        );
        assert!(s.is_revoked(None, Some("f"), "u", None).await.unwrap());
    }

    /// Attack round 2, finding 1: a state that may have lost entries — a fresh one, as after
    /// a process restart — refuses every token issued before it began, whatever its `jti`,
    /// family or subject; and a token without `iat`, which cannot be placed after it.
    #[tokio::test]
    async fn a_fresh_state_refuses_tokens_issued_before_it() {
        let before = now() - 5;
        let s = TokenState::memory();
        assert!(
            s.is_revoked(Some("j"), Some("f"), "u", Some(before))
                .await
                .unwrap(),
            "a token issued before the state began (its revocation may be lost) was accepted"
        );
        assert!(
            s.is_revoked(Some("j"), Some("f"), "u", None).await.unwrap(),
            "a token without iat was accepted"
        );
        assert!(
            !s.is_revoked(Some("j"), Some("f"), "u", Some(now() + 2))
                .await
                .unwrap(),
            "a token issued after the state began was refused"
        );
    }

    /// A memory state that began `ago` seconds ago.
    fn state_since(ago: u64) -> TokenState {
        TokenState {
            backend: Backend::Memory(Arc::new(Mutex::new(Memory {
                map: HashMap::new(),
                epoch: now() - ago,
            }))),
        }
    }

    #[tokio::test]
    async fn revocations() {
        let s = state_since(100);
        let issued = now() - 50;
        assert!(
            !s.is_revoked(Some("j"), None, "u", Some(issued))
                .await
                .unwrap()
        );
        s.revoke_jti("j", 60).await.unwrap();
        assert!(
            s.is_revoked(Some("j"), None, "u", Some(issued))
                .await
                .unwrap()
        );
        assert_eq!(s.subject_revoked_at("v").await.unwrap(), None);
        s.revoke_subject("v", 60).await.unwrap();
        assert!(s.subject_revoked_at("v").await.unwrap().is_some());
        assert!(s.is_revoked(None, None, "v", Some(issued)).await.unwrap());
        assert!(
            !s.is_revoked(None, None, "v", Some(now() + 10))
                .await
                .unwrap()
        );
        // the issuer waits past the later of the epoch and the subject's revocation
        assert_eq!(s.refused_until("u").await.unwrap(), now() - 100);
        assert!(s.refused_until("v").await.unwrap() >= now() - 1);
    }
}

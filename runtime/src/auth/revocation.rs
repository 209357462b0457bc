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

impl TokenState {
    /// State in this process's memory.
    pub fn memory() -> Self {
        Self {
            backend: Backend::Memory(Arc::default()),
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
        Ok(value.and_then(|v| v.parse().ok()))
    }

    /// Whether a token with these claims is revoked.
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
        let values: Vec<Option<String>> = match &self.backend {
            Backend::Memory(m) => {
                let now = now();
                let mut m = m.lock().unwrap_or_else(|e| e.into_inner());
                keys.iter()
                    .map(|k| k.as_ref().and_then(|k| m.get(k, now)))
                    .collect()
            }
            #[cfg(feature = "redis")]
            Backend::Redis(r) => {
                let mut cmd = redis::cmd("MGET");
                for k in &keys {
                    // An absent claim asks for a key that never exists.
                    cmd.arg(k.as_deref().unwrap_or("shieldwall:tok:none"));
                }
                r.query::<Vec<Option<String>>>(cmd).await?
            }
        };
        let revoked_jti_or_fam = values.iter().take(2).any(Option::is_some);
        let revoked_subject = values
            .get(2)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|at| iat.is_none_or(|iat| iat <= at));
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn revocations() {
        let s = TokenState::memory();
        assert!(!s.is_revoked(Some("j"), None, "u", Some(1)).await.unwrap());
        s.revoke_jti("j", 60).await.unwrap();
        assert!(s.is_revoked(Some("j"), None, "u", Some(1)).await.unwrap());
        assert_eq!(s.subject_revoked_at("v").await.unwrap(), None);
        s.revoke_subject("v", 60).await.unwrap();
        assert!(s.subject_revoked_at("v").await.unwrap().is_some());
        assert!(s.is_revoked(None, None, "v", Some(1)).await.unwrap());
        assert!(
            !s.is_revoked(None, None, "v", Some(now() + 10))
                .await
                .unwrap()
        );
    }
}

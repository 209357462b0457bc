//! Password hashing with Argon2id, parameters per the OWASP Password Storage Cheat Sheet
//! (m = 19 MiB, t = 2, p = 1), and verification that takes the same time whether or not
//! the user exists.
//!
//! ```
//! use shieldwall_runtime::auth::passwords::Passwords;
//!
//! let pw = Passwords::new();
//! let hash = pw.hash("correct horse battery staple").unwrap();
//! assert!(pw.verify("correct horse battery staple", Some(&hash)));
//! assert!(!pw.verify("wrong", Some(&hash)));
//! // Unknown user: a dummy hash is verified instead, so the timing matches.
//! assert!(!pw.verify("anything", None));
//! ```
//!
//! # Off the async workers
//!
//! One Argon2 computation is tens of milliseconds of CPU. Run on a tokio worker, a burst of
//! logins (from many addresses, so no per-IP limit stops it) would stall every other request
//! served by that worker. In async code use [`Passwords::verify_async`] and
//! [`Passwords::hash_async`] (the token endpoint does): the work runs on tokio's blocking
//! pool, at most [`default_concurrency`] computations at once per process (half the cores,
//! at least one, so hashing never takes every core from the request workers). A call that
//! waits longer than the queue deadline (2 s by default) for its turn gives up with
//! [`PasswordError::Busy`], which the token endpoint answers with 503
//! `temporarily_unavailable`: under a flood, logins are shed instead of queueing without
//! bound. The bound and the deadline are set with [`Passwords::max_concurrent`] and
//! [`Passwords::queue_deadline`].
//!
//! ```
//! # async fn demo() -> Result<(), shieldwall_runtime::auth::passwords::PasswordError> {
//! use shieldwall_runtime::auth::passwords::Passwords;
//! let pw = Passwords::new();
//! let hash = pw.hash_async("correct horse battery staple").await?;
//! assert!(pw.verify_async("correct horse battery staple", Some(&hash)).await?);
//! # Ok(()) }
//! ```

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP minimum for Argon2id: 19 MiB of memory.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// OWASP: two iterations.
pub const ITERATIONS: u32 = 2;
/// OWASP: one degree of parallelism.
pub const PARALLELISM: u32 = 1;
/// Longest password accepted (longer inputs are refused before hashing: cheap DoS guard).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long an async hash or verification waits for its turn by default.
pub const DEFAULT_QUEUE_DEADLINE: Duration = Duration::from_secs(2);

/// Argon2 computations run at once by default: half the machine's cores, at least one.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() / 2)
        .unwrap_or(1)
        .max(1)
}

/// The process-wide bound shared by every [`Passwords`] that was not given its own.
fn shared_gate() -> Arc<tokio::sync::Semaphore> {
    static GATE: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    GATE.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(default_concurrency())))
        .clone()
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PasswordError {
    /// Empty, or longer than [`MAX_PASSWORD_BYTES`].
    #[error("a password must be 1 to {MAX_PASSWORD_BYTES} bytes long")]
    BadLength,
    /// The hasher failed.
    #[error("the password could not be hashed")]
    Hash,
    /// Every hashing slot stayed busy past the queue deadline (answer 503; retry later).
    #[error("the password hasher is saturated; try again later")]
    Busy,
}

/// Argon2id hasher and constant-time verifier.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    gate: Arc<tokio::sync::Semaphore>,
    queue_deadline: Duration,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passwords(argon2id)")
    }
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    /// Argon2id with the OWASP parameters; async work shares the process-wide bound.
    pub fn new() -> Self {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .unwrap_or_else(|_| Params::default());
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            gate: shared_gate(),
            queue_deadline: DEFAULT_QUEUE_DEADLINE,
        }
    }

    /// Run at most `n` async computations at once (at least one) for this hasher and its
    /// clones, instead of sharing the process-wide [`default_concurrency`] bound.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.gate = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// How long an async call waits for a free slot before [`PasswordError::Busy`]
    /// (default [`DEFAULT_QUEUE_DEADLINE`]).
    pub fn queue_deadline(mut self, deadline: Duration) -> Self {
        self.queue_deadline = deadline;
        self
    }

    /// [`Passwords::hash`] on the blocking pool, within the concurrency bound.
    pub async fn hash_async(&self, password: &str) -> Result<String, PasswordError> {
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::BadLength);
        }
        let password = zeroize::Zeroizing::new(password.to_owned());
        self.blocking(move |pw| pw.hash(&password)).await?
    }

    /// [`Passwords::verify`] on the blocking pool, within the concurrency bound. `Ok(false)`
    /// for a wrong password or an unknown user (`stored` = `None`), after the same work.
    pub async fn verify_async(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        // An over-long password is verified as the empty one (as `verify` does), without
        // copying it.
        let password = zeroize::Zeroizing::new(if password.len() > MAX_PASSWORD_BYTES {
            String::new()
        } else {
            password.to_owned()
        });
        let stored = stored.map(str::to_owned);
        self.blocking(move |pw| pw.verify(&password, stored.as_deref()))
            .await
    }

    /// Wait (up to the queue deadline) for a slot, then run `work` on the blocking pool. The
    /// slot is held by the blocking task itself, so a caller that goes away (a client that
    /// disconnects) does not free it before the computation ends.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Self) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_deadline, self.gate.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let out = work(&this);
            drop(permit);
            out
        })
        .await
        .map_err(|_| PasswordError::Hash)
    }

    /// Hash a password to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::BadLength);
        }
        self.argon
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|_| PasswordError::Hash)
    }

    /// Verify `password` against a stored PHC hash. `None` (no such user) verifies against a
    /// fixed dummy hash with the same parameters and returns false, so that an unknown user
    /// costs the same time as a wrong password.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let password = if password.len() > MAX_PASSWORD_BYTES {
            ""
        } else {
            password
        };
        let (hash, known) = match stored.and_then(|s| PasswordHash::new(s).ok()) {
            Some(h) => (h, true),
            None => (self.dummy(), false),
        };
        let ok = self
            .argon
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        ok && known
    }

    fn dummy(&self) -> PasswordHash {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let s = DUMMY.get_or_init(|| {
            self.hash("shieldwall-dummy-password-for-unknown-users")
                .unwrap_or_default()
        });
        PasswordHash::new(s).unwrap_or_else(|_| {
            // Unreachable with a working hasher; a fresh hash keeps timing comparable.
            PasswordHash::new(&self.hash("x").unwrap_or_default()).expect("argon2 works")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owasp_parameters_in_the_phc_string() {
        let h = Passwords::new().hash("pw").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }

    #[test]
    fn length_limits() {
        let pw = Passwords::new();
        assert_eq!(pw.hash(""), Err(PasswordError::BadLength));
        assert_eq!(
            pw.hash(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::BadLength)
        );
        assert!(!pw.verify(&"x".repeat(5000), None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn async_calls_agree_with_sync_ones() {
        let pw = Passwords::new();
        let hash = pw.hash_async("pw").await.unwrap();
        assert!(pw.verify("pw", Some(&hash)));
        assert!(pw.verify_async("pw", Some(&hash)).await.unwrap());
        assert!(!pw.verify_async("nope", Some(&hash)).await.unwrap());
        assert!(!pw.verify_async("pw", None).await.unwrap());
        assert_eq!(pw.hash_async("").await, Err(PasswordError::BadLength));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_queue_deadline_a_call_is_refused() {
        let pw = Passwords::new()
            .max_concurrent(1)
            .queue_deadline(Duration::from_millis(1));
        let hash = pw.hash("pw").unwrap();
        let calls: Vec<_> = (0..4)
            .map(|_| {
                let (pw, hash) = (pw.clone(), hash.clone());
                tokio::spawn(async move { pw.verify_async("pw", Some(&hash)).await })
            })
            .collect();
        let mut busy = 0;
        let mut verified = 0;
        for c in calls {
            match c.await.unwrap() {
                Ok(true) => verified += 1,
                Err(PasswordError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(
            verified >= 1 && busy >= 1,
            "verified {verified}, busy {busy}"
        );
    }
}

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

use std::sync::OnceLock;

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
}

/// Argon2id hasher and constant-time verifier.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
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
    /// Argon2id with the OWASP parameters.
    pub fn new() -> Self {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .unwrap_or_else(|_| Params::default());
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        }
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
}

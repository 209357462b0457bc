//! Encryption at rest: [`Encrypted<T>`] fields sealed under a [`Keyring`] with
//! XChaCha20-Poly1305.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use shieldwall_runtime::crypto::{Encrypted, Keyring};
//!
//! #[derive(Serialize, Deserialize)]
//! struct UserRow {
//!     username: String,
//!     phone: Encrypted<String>, // stored as "v1.k1.<base64url>", never in clear
//! }
//!
//! // SHIELDWALL_ENCRYPTION_KEYS=k1:<base64 of 32 random bytes> in real use (Keyring::from_env).
//! // This key is published here, so the production profile refuses it.
//! let keys = Keyring::parse("k1:7PS0YY6E4tLZ3+y8ZiI6MSRnh/SWx2W6tdbK9QamFvI=").unwrap();
//! let row = UserRow {
//!     username: "alice".into(),
//!     phone: keys.seal("users.phone/alice", &"+44 20 7946 0000".to_string()).unwrap(),
//! };
//! let stored = serde_json::to_string(&row).unwrap();
//! assert!(!stored.contains("7946"));
//!
//! let row: UserRow = serde_json::from_str(&stored).unwrap();
//! assert_eq!(keys.open("users.phone/alice", &row.phone).unwrap(), "+44 20 7946 0000");
//! // the context binds the ciphertext to its place: bob's row cannot borrow alice's phone
//! assert!(keys.open("users.phone/bob", &row.phone).is_err());
//! ```
//!
//! # Format
//!
//! `v1.<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>`, unpadded base64url, where
//!
//! - the cipher is XChaCha20-Poly1305 (the `chacha20poly1305` crate) with a 32-byte key and
//!   a random 24-byte nonce from the operating system for every seal: random nonces this long
//!   never repeat in practice, so equal values encrypt differently and no counter needs to
//!   be kept or shared between instances;
//! - the plaintext is the value serialized as JSON (`serde_json`), so any
//!   `Serialize + Deserialize` type can be a field;
//! - the associated data is `shieldwall.encrypted.v1 \0 <kid> \0 <context>`: it binds the
//!   ciphertext to the key id it names and to a context the caller chooses — a column name,
//!   better a column name and the row's key (`users.phone/alice`). A ciphertext moved to
//!   another column or row, or relabelled with another key id, fails to open instead of
//!   decrypting into the wrong place.
//!
//! Any change to a stored ciphertext — a flipped bit, a truncation, another kid — makes
//! [`Keyring::open`] fail with [`CryptoError::Decrypt`] (or [`CryptoError::Malformed`] /
//! [`CryptoError::UnknownKey`] when the text no longer parses or names no key we have).
//!
//! # Keys and rotation
//!
//! A [`Keyring`] holds named 32-byte keys, one of them *current*. [`Keyring::seal`] always
//! uses the current key and writes its id into the ciphertext; [`Keyring::open`] uses
//! whichever key the ciphertext names, so values sealed under an old key still open after a
//! rotation. To rotate:
//!
//! 1. generate a key (`openssl rand -base64 32`) and put it first:
//!    `SHIELDWALL_ENCRYPTION_KEYS=k2:<new>,k1:<old>` (or set
//!    `SHIELDWALL_ENCRYPTION_CURRENT=k2`); new values are sealed with `k2`;
//! 2. re-encrypt stored values with [`Keyring::reencrypt`] (only those for which
//!    [`Keyring::needs_reencrypt`] is true), at your own pace;
//! 3. when none is left under `k1`, remove it from the list.
//!
//! | variable | meaning |
//! |---|---|
//! | `SHIELDWALL_ENCRYPTION_KEYS` | `kid:base64key,kid:base64key,…` (standard or URL-safe base64 of 32 bytes; kids are 1–32 of `A-Z a-z 0-9 _ -`) |
//! | `SHIELDWALL_ENCRYPTION_KEYS_FILE` | a file holding that list (Docker / Kubernetes secrets) |
//! | `SHIELDWALL_ENCRYPTION_CURRENT` | the kid that seals (default: the first in the list) |
//!
//! In the production profile (the process's, see [`crate::config`]) every way of making a
//! keyring — [`Keyring::from_env`], [`Keyring::parse`], [`Keyring::new`], … — refuses a key
//! that is published or weak ([`crate::secrets::weakness`]): the example key above, a
//! published key from a tutorial, text used as key bytes, a sequence (`00 01 02 …`). In
//! every profile a key of one byte repeated is refused. And an app built with the
//! production profile is refused while a development keyring
//! ([`Keyring::generate_development`]) exists in the process.
//!
//! Key bytes live in [`Secret`]s: they are zeroed on drop and a [`Keyring`]'s `Debug` shows
//! only its key ids. Errors name the variable and the kid, never key material or plaintext.
//! An [`Encrypted<T>`] holds only ciphertext; its `Debug` shows the key id and length.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use rand::Rng as _;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::secrets::{Secret, SecretError};

/// The format version every ciphertext starts with.
pub const VERSION: &str = "v1";
/// Key length in bytes (XChaCha20-Poly1305).
pub const KEY_LEN: usize = 32;
/// Nonce length in bytes (XChaCha20's extended nonce).
pub const NONCE_LEN: usize = 24;
/// Authentication tag length in bytes.
pub const TAG_LEN: usize = 16;
/// Longest key id.
pub const MAX_KID_LEN: usize = 32;

/// The variable holding the key list.
pub const KEYS_VAR: &str = "SHIELDWALL_ENCRYPTION_KEYS";
/// The variable naming the current key.
pub const CURRENT_VAR: &str = "SHIELDWALL_ENCRYPTION_CURRENT";

const AAD_LABEL: &[u8] = b"shieldwall.encrypted.v1";

/// Whether a development keyring was generated in this process: the production profile
/// refuses to build then (see [`crate::config`]).
static DEVELOPMENT_KEYRING: AtomicBool = AtomicBool::new(false);

/// Whether [`Keyring::generate_development`] ran in this process.
pub(crate) fn development_keyring_generated() -> bool {
    DEVELOPMENT_KEYRING.load(Ordering::Acquire)
}

/// Why a key could not be configured or a value could not be sealed or opened. Never
/// contains key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The key list variable is missing or its file unreadable.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The key configuration is invalid.
    #[error("{name}: {why}")]
    InvalidKeys {
        /// The variable (or `keyring` for keys given in code).
        name: String,
        /// What is wrong, naming the key id, never the key.
        why: String,
    },
    /// The text is not a `v1.<kid>.<base64url>` ciphertext.
    #[error("not a shieldwall ciphertext: expected `v1.<kid>.<base64url>`")]
    Malformed,
    /// The ciphertext names a key the keyring does not have.
    #[error(
        "the ciphertext was sealed with key {kid:?}, which is not in the keyring: add it to SHIELDWALL_ENCRYPTION_KEYS"
    )]
    UnknownKey {
        /// The key id the ciphertext names.
        kid: String,
    },
    /// Authentication failed: the ciphertext was changed, belongs to another context, or
    /// was sealed with another key under the same id.
    #[error(
        "the ciphertext does not authenticate: it was altered, belongs to another context, or its key differs"
    )]
    Decrypt,
    /// The value could not be serialized for sealing.
    #[error("the value could not be serialized for encryption")]
    Encode,
    /// The decrypted value does not deserialize as the requested type.
    #[error("the decrypted value does not deserialize as the requested type")]
    Decode,
}

/// Named encryption keys, one of them current: see the [module docs](self).
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Secret<[u8; KEY_LEN]>)>,
    current: usize,
    development: bool,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_kid())
            .field("kids", &self.kids().collect::<Vec<_>>())
            .field("development", &self.development)
            .finish()
    }
}

fn invalid(name: &str, why: impl Into<String>) -> CryptoError {
    CryptoError::InvalidKeys {
        name: name.to_owned(),
        why: why.into(),
    }
}

fn check_kid(name: &str, kid: &str) -> Result<(), CryptoError> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            format!(
                "key id {kid:?} is not 1 to {MAX_KID_LEN} characters of A-Z, a-z, 0-9, '_' and '-'"
            ),
        ))
    }
}

/// Refuse a key that is one byte repeated (every profile) and, in production, a key that
/// is published — the example key in these docs among them — or otherwise weak
/// ([`crate::secrets::weakness`]).
fn check_key(
    name: &str,
    kid: &str,
    key: &[u8; KEY_LEN],
    production: bool,
) -> Result<(), CryptoError> {
    if key.iter().all(|b| *b == key[0]) {
        return Err(invalid(
            name,
            format!(
                "key {kid:?} is one byte repeated: use random bytes (`openssl rand -base64 32`)"
            ),
        ));
    }
    if production && let Some(weakness) = crate::secrets::weakness(key) {
        return Err(invalid(
            name,
            format!(
                "key {kid:?} {weakness}, and the production profile refuses it: generate one with `openssl rand -base64 32`"
            ),
        ));
    }
    Ok(())
}

/// Whether the process's profile is production (an unreadable profile counts as
/// production).
fn production() -> bool {
    crate::config::Profile::from_env().map_or(true, crate::config::Profile::is_production)
}

impl Keyring {
    /// A keyring with one key, which is current.
    pub fn new(kid: impl Into<String>, key: [u8; KEY_LEN]) -> Result<Self, CryptoError> {
        let kid = kid.into();
        let key = Secret::new(key);
        check_kid("keyring", &kid)?;
        check_key("keyring", &kid, key.expose(), production())?;
        Ok(Self {
            keys: vec![(kid, key)],
            current: 0,
            development: false,
        })
    }

    /// Add a key that opens existing ciphertexts; the current key is unchanged.
    pub fn add(mut self, kid: impl Into<String>, key: [u8; KEY_LEN]) -> Result<Self, CryptoError> {
        let kid = kid.into();
        let key = Secret::new(key);
        check_kid("keyring", &kid)?;
        check_key("keyring", &kid, key.expose(), production())?;
        if self.keys.iter().any(|(k, _)| *k == kid) {
            return Err(invalid("keyring", format!("key id {kid:?} is used twice")));
        }
        self.keys.push((kid, key));
        Ok(self)
    }

    /// Add a key and make it current: new values are sealed with it, and the keys already
    /// here keep opening what they sealed.
    pub fn rotate(self, kid: impl Into<String>, key: [u8; KEY_LEN]) -> Result<Self, CryptoError> {
        let kid = kid.into();
        let this = self.add(kid.clone(), key)?;
        this.with_current(&kid)
    }

    /// Make the key `kid` current.
    pub fn with_current(mut self, kid: &str) -> Result<Self, CryptoError> {
        self.current = self
            .keys
            .iter()
            .position(|(k, _)| k == kid)
            .ok_or_else(|| invalid("keyring", format!("no key has the id {kid:?}")))?;
        Ok(self)
    }

    /// Parse `kid:base64key,kid:base64key,…`; the first key is current.
    pub fn parse(spec: &str) -> Result<Self, CryptoError> {
        Self::parse_named(KEYS_VAR, spec, production())
    }

    fn parse_named(name: &str, spec: &str, production: bool) -> Result<Self, CryptoError> {
        let mut ring: Option<Self> = None;
        for (i, item) in spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .enumerate()
        {
            let Some((kid, b64)) = item.split_once(':') else {
                return Err(invalid(
                    name,
                    format!("entry {} is not `kid:base64key`", i + 1),
                ));
            };
            let kid = kid.trim();
            check_kid(name, kid)?;
            let key = decode_key(name, kid, b64.trim())?;
            check_key(name, kid, key.expose(), production)?;
            ring = Some(match ring {
                None => Self {
                    keys: vec![(kid.to_owned(), key)],
                    current: 0,
                    development: false,
                },
                Some(mut r) => {
                    if r.keys.iter().any(|(k, _)| k == kid) {
                        return Err(invalid(name, format!("key id {kid:?} is used twice")));
                    }
                    r.keys.push((kid.to_owned(), key));
                    r
                }
            });
        }
        ring.ok_or_else(|| {
            invalid(
                name,
                "no keys: write `kid:base64key` (generate a key with `openssl rand -base64 32`)",
            )
        })
    }

    /// The keyring from `SHIELDWALL_ENCRYPTION_KEYS` (or the file named by
    /// `SHIELDWALL_ENCRYPTION_KEYS_FILE`), current key `SHIELDWALL_ENCRYPTION_CURRENT` or
    /// the first. Not set is [`SecretError::Missing`].
    pub fn from_env() -> Result<Self, CryptoError> {
        Self::from_vars(|n| std::env::var(n).ok())?
            .ok_or_else(|| SecretError::Missing {
                name: KEYS_VAR.to_owned(),
            })
            .map_err(CryptoError::from)
    }

    /// [`Keyring::from_env`] reading variables through `vars`; `None` when no key list is
    /// set.
    pub fn from_vars(vars: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, CryptoError> {
        let Some((spec, origin)) = crate::secrets::read_var(KEYS_VAR, &vars)? else {
            return Ok(None);
        };
        let name = match origin {
            crate::secrets::Origin::Var => KEYS_VAR.to_owned(),
            crate::secrets::Origin::File => format!("{KEYS_VAR}_FILE"),
        };
        let production = crate::config::Profile::from_vars(&vars)
            .map_or(true, crate::config::Profile::is_production);
        let ring = Self::parse_named(&name, spec.expose(), production)?;
        match vars(CURRENT_VAR).filter(|v| !v.trim().is_empty()) {
            Some(kid) => ring.with_current(kid.trim()).map_err(|_| {
                invalid(
                    CURRENT_VAR,
                    format!("{:?} names no key in {name}", kid.trim()),
                )
            }),
            None => Ok(ring),
        }
        .map(Some)
    }

    /// [`Keyring::from_env`]; in the development profile, when no keys are set, a
    /// generated development keyring ([`Keyring::generate_development`], logged as a
    /// warning). In the production profile a missing key list is an error.
    pub fn from_env_or_development() -> Result<Self, CryptoError> {
        if let Some(ring) = Self::from_vars(|n| std::env::var(n).ok())? {
            return Ok(ring);
        }
        let production = crate::config::Profile::from_env()
            .map(crate::config::Profile::is_production)
            .unwrap_or(true);
        if production {
            return Err(SecretError::Missing {
                name: KEYS_VAR.to_owned(),
            }
            .into());
        }
        tracing::warn!(
            target: "shieldwall::crypto",
            "{KEYS_VAR} is not set: using a generated development key for this run only; \
             values sealed now cannot be opened after a restart"
        );
        Ok(Self::generate_development())
    }

    /// One random key with the id `dev`, marked as a development keyring
    /// ([`Keyring::is_development`]). What it seals cannot be opened by another process,
    /// so once one exists, an app built with the production profile in the same process
    /// is refused ([`crate::config`]).
    pub fn generate_development() -> Self {
        DEVELOPMENT_KEYRING.store(true, Ordering::Release);
        let mut key = [0u8; KEY_LEN];
        // The OS generator, panicking if it fails (as rand 0.8's `OsRng` did).
        UnwrapErr(SysRng).fill_bytes(&mut key);
        let key = Secret::new(key);
        Self {
            keys: vec![("dev".to_owned(), key)],
            current: 0,
            development: true,
        }
    }

    /// Whether this keyring was generated for development.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// The id of the key that seals.
    pub fn current_kid(&self) -> &str {
        &self.keys[self.current].0
    }

    /// Every key id, the current one included.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }

    /// Encrypt `value` with the current key, bound to `context` (a column name, better a
    /// column name and the row's key: `users.phone/alice`).
    pub fn seal<T: Serialize>(
        &self,
        context: &str,
        value: &T,
    ) -> Result<Encrypted<T>, CryptoError> {
        let plain = Zeroizing::new(serde_json::to_vec(value).map_err(|_| CryptoError::Encode)?);
        Ok(Encrypted::from_text(self.seal_bytes(context, &plain)?))
    }

    /// Decrypt `enc`, sealed for `context`, with the key it names.
    pub fn open<T: DeserializeOwned>(
        &self,
        context: &str,
        enc: &Encrypted<T>,
    ) -> Result<T, CryptoError> {
        let plain = self.open_bytes(context, &enc.text)?;
        serde_json::from_slice(&plain).map_err(|_| CryptoError::Decode)
    }

    /// Open `enc` and seal it again with the current key (same context), without
    /// deserializing the value. Run it over stored values after a rotation.
    pub fn reencrypt<T: ?Sized>(
        &self,
        context: &str,
        enc: &Encrypted<T>,
    ) -> Result<Encrypted<T>, CryptoError> {
        let plain = self.open_bytes(context, &enc.text)?;
        Ok(Encrypted::from_text(self.seal_bytes(context, &plain)?))
    }

    /// Whether `enc` was sealed with a key other than the current one.
    pub fn needs_reencrypt<T: ?Sized>(&self, enc: &Encrypted<T>) -> bool {
        enc.kid() != self.current_kid()
    }

    fn cipher(&self, index: usize) -> XChaCha20Poly1305 {
        // A 32-byte key always fits; `new_from_slice` avoids another copy of it here.
        XChaCha20Poly1305::new_from_slice(self.keys[index].1.expose())
            .unwrap_or_else(|_| unreachable!("keys are {KEY_LEN} bytes"))
    }

    fn seal_bytes(&self, context: &str, plain: &[u8]) -> Result<String, CryptoError> {
        let kid = self.current_kid();
        let mut nonce = [0u8; NONCE_LEN];
        UnwrapErr(SysRng).fill_bytes(&mut nonce);
        let aad = aad(kid, context);
        let sealed = self
            .cipher(self.current)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Encode)?;
        let mut payload = Vec::with_capacity(NONCE_LEN + sealed.len());
        payload.extend_from_slice(&nonce);
        payload.extend_from_slice(&sealed);
        Ok(format!(
            "{VERSION}.{kid}.{}",
            URL_SAFE_NO_PAD.encode(payload)
        ))
    }

    fn open_bytes(&self, context: &str, text: &str) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (kid, payload) = split(text)?;
        let index = self
            .keys
            .iter()
            .position(|(k, _)| k == kid)
            .ok_or_else(|| CryptoError::UnknownKey {
                kid: kid.to_owned(),
            })?;
        let (nonce, sealed) = payload.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
        let aad = aad(kid, context);
        self.cipher(index)
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Decrypt)
    }
}

fn aad(kid: &str, context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + kid.len() + context.len() + 2);
    aad.extend_from_slice(AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad.push(0);
    aad.extend_from_slice(context.as_bytes());
    aad
}

fn decode_key(name: &str, kid: &str, b64: &str) -> Result<Secret<[u8; KEY_LEN]>, CryptoError> {
    // The decoder's own error text can quote a byte of the input: it is never shown.
    let bytes = Zeroizing::new(
        [STANDARD, URL_SAFE]
            .iter()
            .find_map(|e| e.decode(b64).ok())
            .or_else(|| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(b64)
                    .ok()
            })
            .or_else(|| URL_SAFE_NO_PAD.decode(b64).ok())
            .ok_or_else(|| invalid(name, format!("key {kid:?} is not base64")))?,
    );
    let mut key = [0u8; KEY_LEN];
    if bytes.len() != KEY_LEN {
        return Err(invalid(
            name,
            format!(
                "key {kid:?} is {} bytes; keys are exactly {KEY_LEN} random bytes (`openssl rand -base64 32`)",
                bytes.len()
            ),
        ));
    }
    key.copy_from_slice(&bytes);
    let secret = Secret::new(key);
    key.zeroize();
    Ok(secret)
}

/// `v1.<kid>.<payload>` → (kid, decoded payload of at least nonce + tag).
fn split(text: &str) -> Result<(&str, Vec<u8>), CryptoError> {
    let mut parts = text.splitn(3, '.');
    let (Some(VERSION), Some(kid), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CryptoError::Malformed);
    };
    check_kid("ciphertext", kid).map_err(|_| CryptoError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| CryptoError::Malformed)?;
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    Ok((kid, payload))
}

/// A value of type `T` stored encrypted: see the [module docs](self).
///
/// It holds only the ciphertext text (`v1.<kid>.<base64url>`); [`Keyring::seal`] makes one
/// and [`Keyring::open`] reads it. Serde moves the text as a string, so a struct with
/// `Encrypted<…>` fields stores and loads like any other; deserializing checks the format
/// but decrypts nothing. `Debug` shows the key id and length only.
pub struct Encrypted<T: ?Sized> {
    text: String,
    _value: PhantomData<fn() -> T>,
}

impl<T: ?Sized> Encrypted<T> {
    fn from_text(text: String) -> Self {
        Self {
            text,
            _value: PhantomData,
        }
    }

    /// Check that `text` is a ciphertext in this format (nothing is decrypted).
    pub fn parse(text: impl Into<String>) -> Result<Self, CryptoError> {
        let text = text.into();
        split(&text)?;
        Ok(Self::from_text(text))
    }

    /// The text to store (`v1.<kid>.<base64url>`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text to store, owned.
    pub fn into_string(self) -> String {
        self.text
    }

    /// The id of the key it was sealed with.
    pub fn kid(&self) -> &str {
        self.text.split('.').nth(1).unwrap_or_default()
    }
}

impl<T: ?Sized> Clone for Encrypted<T> {
    fn clone(&self) -> Self {
        Self::from_text(self.text.clone())
    }
}

impl<T: ?Sized> PartialEq for Encrypted<T> {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<T: ?Sized> Eq for Encrypted<T> {}

impl<T: ?Sized> fmt::Debug for Encrypted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypted")
            .field("kid", &self.kid())
            .field("len", &self.text.len())
            .finish()
    }
}

impl<T: ?Sized> FromStr for Encrypted<T> {
    type Err = CryptoError;
    fn from_str(s: &str) -> Result<Self, CryptoError> {
        Self::parse(s)
    }
}

impl<T: ?Sized> Serialize for Encrypted<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, T: ?Sized> Deserialize<'de> for Encrypted<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> [u8; 32] {
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = n.wrapping_mul(31).wrapping_add(i as u8);
        }
        k
    }

    #[test]
    fn round_trip_and_format() {
        let ring = Keyring::new("k1", key(1)).unwrap();
        let enc = ring.seal("c", &"hello".to_string()).unwrap();
        assert!(enc.as_str().starts_with("v1.k1."));
        assert_eq!(enc.kid(), "k1");
        let enc: Encrypted<String> = Encrypted::parse(enc.into_string()).unwrap();
        assert_eq!(ring.open("c", &enc).unwrap(), "hello");
        // nonce (24) + "\"hello\"" (7) + tag (16) = 47 bytes → 63 base64url chars
        assert_eq!(enc.as_str().len(), "v1.k1.".len() + 63);
    }

    #[test]
    fn parse_errors_never_show_keys() {
        let k = STANDARD.encode(key(3));
        for (spec, want) in [
            ("", "no keys"),
            ("k1", "entry 1 is not `kid:base64key`"),
            ("k 1:AAAA", "key id \"k 1\""),
            ("k1:!!!notbase64!!!", "key \"k1\" is not base64"),
            ("k1:AAAA", "key \"k1\" is 3 bytes"),
        ] {
            let e = Keyring::parse(spec).unwrap_err().to_string();
            assert!(e.contains(want), "{spec}: {e}");
            assert!(!e.contains("notbase64") && !e.contains("AAAA"), "{e}");
        }
        let e = Keyring::parse(&format!("k1:{k},k1:{k}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("used twice") && !e.contains(&k), "{e}");
        let zero = STANDARD.encode([0u8; 32]);
        let e = Keyring::parse(&format!("k1:{zero}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("one byte repeated"), "{e}");
    }
}

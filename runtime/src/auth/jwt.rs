//! JWT bearer authentication on `jsonwebtoken` 12 (RFC 7519, RFC 8725, RFC 9068 claims).
//!
//! ```
//! use shieldwall_runtime::auth::jwt::Jwt;
//!
//! let jwt = Jwt::hs256(b"an-hmac-secret-of-at-least-32-bytes!".to_vec())
//!     .issuer("https://auth.example.com")
//!     .audience("api");
//! # let _ = jwt;
//! ```
//!
//! What is checked, in order, before the handler runs:
//!
//! 1. the `Authorization` header is at most 8 KiB and is one `Bearer <token68>` value;
//! 2. the header's `kid` names a configured key (no `kid` only when exactly one key is
//!    configured without one) or a key of the remote key set ([`Jwt::jwks`], see
//!    [`crate::auth::jwks`]); the key is never taken from `jku`, `x5u`, `x5c` or `jwk`;
//! 3. `alg` is in that key's allowlist (so `none`, and HS256 signed with an RSA public key,
//!    fail here), `typ` is an access-token type, `crit` names nothing unknown;
//! 4. the signature verifies;
//! 5. `exp` is present and numeric and not past (leeway 5 s by default), `nbf` and `iat`
//!    (when present: numeric) are not in the future, `iss` and `aud` match when configured
//!    (and are then required);
//! 6. the claims contain no duplicate key, and do not mark the token as a refresh token.
//!
//! Claims follow the JWT access-token profile (RFC 9068): `sub`, `scope` as a
//! space-separated string (`scp` as an array is accepted too) and `roles` as an array.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use super::jwks::{Jwks, JwksConfigError, RemoteKeys};
use super::token_cache::{KeyRef, TokenCache};

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Rejection;
use crate::principal::{Credential, Principal};

/// Largest `Authorization` header accepted; longer ones are refused before decoding.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;
/// Smallest HMAC secret accepted, for HS256. RFC 7518 §3.2 requires at least the hash
/// size, so a key that allows HS384 needs 48 bytes and one that allows HS512 needs 64.
pub const MIN_HMAC_SECRET_LEN: usize = 32;
/// Default clock-skew leeway for `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// Why a JWT configuration was refused at build time.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtConfigError {
    /// HMAC secret shorter than the hash of the strongest algorithm it allows
    /// ([`MIN_HMAC_SECRET_LEN`] for HS256, 48 bytes for HS384, 64 for HS512).
    #[error(
        "the HMAC secret{kid} is {len} bytes; at least {min} random bytes are required (generate one with `openssl rand -base64 {min}`)"
    )]
    HmacSecretTooShort {
        /// Length given.
        len: usize,
        /// Length required by the key's algorithms.
        min: usize,
        /// ` (kid "…")` or empty.
        kid: String,
    },
    /// A PEM or JWK key did not parse.
    #[error("the JWT key{kid} could not be read: it is not a valid {what} key")]
    BadKey {
        /// The expected kind.
        what: &'static str,
        /// ` (kid "…")` or empty.
        kid: String,
    },
    /// An algorithm that does not match the key's family.
    #[error("algorithm {alg:?} cannot be used with the {family} key{kid}")]
    AlgorithmMismatch {
        /// The algorithm.
        alg: Algorithm,
        /// The key family.
        family: &'static str,
        /// ` (kid "…")` or empty.
        kid: String,
    },
    /// No keys configured.
    #[error("no JWT keys are configured")]
    NoKeys,
    /// Two keys without a kid, or two keys with the same kid.
    #[error("JWT keys must have distinct kids when more than one key is configured")]
    AmbiguousKeys,
    /// The crypto backend failed its start-up self-test.
    #[error("the JWT crypto backend failed its start-up self-test: {0}")]
    SelfTest(&'static str),
    /// A required environment variable is missing or empty.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The remote key set ([`Jwt::jwks`]) is configured insecurely or invalidly.
    #[error(transparent)]
    Jwks(#[from] JwksConfigError),
    /// The secret file named by `NAME_FILE` cannot be used, or both variables are set.
    #[error(transparent)]
    Secret(crate::secrets::SecretError),
}

#[derive(Clone)]
enum KeyMaterial {
    Hmac(Vec<u8>),
    RsaPem(Vec<u8>),
    EcPem(Vec<u8>),
    EdPem(Vec<u8>),
    Ready(DecodingKey),
}

/// One verification key with its algorithm allowlist.
#[derive(Clone)]
pub struct JwtKey {
    kid: Option<String>,
    material: KeyMaterial,
    algorithms: Vec<Algorithm>,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl JwtKey {
    /// An HMAC secret; allows HS256 unless [`JwtKey::algorithms`] says otherwise.
    pub fn hmac(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            kid: None,
            material: KeyMaterial::Hmac(secret.into()),
            algorithms: vec![Algorithm::HS256],
        }
    }

    /// An RSA public key in PEM; allows RS256 unless told otherwise (PS* via `algorithms`).
    pub fn rsa_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self {
            kid: None,
            material: KeyMaterial::RsaPem(pem.into()),
            algorithms: vec![Algorithm::RS256],
        }
    }

    /// An EC public key in PEM (P-256 or P-384); allows ES256 unless told otherwise.
    pub fn ec_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self {
            kid: None,
            material: KeyMaterial::EcPem(pem.into()),
            algorithms: vec![Algorithm::ES256],
        }
    }

    /// An Ed25519 public key in PEM; allows EdDSA.
    pub fn ed_pem(pem: impl Into<Vec<u8>>) -> Self {
        Self {
            kid: None,
            material: KeyMaterial::EdPem(pem.into()),
            algorithms: vec![Algorithm::EdDSA],
        }
    }

    /// A ready `jsonwebtoken` key (for example from a JWK), with its allowlist.
    pub fn decoding_key(key: DecodingKey, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        Self {
            kid: None,
            material: KeyMaterial::Ready(key),
            algorithms: algorithms.into_iter().collect(),
        }
    }

    /// The key id tokens must name in their `kid` header.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithms this key accepts (its allowlist). Must match the key's family.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    fn kid_note(&self) -> String {
        self.kid
            .as_ref()
            .map(|k| format!(" (kid {k:?})"))
            .unwrap_or_default()
    }

    /// RFC 7518 §3.2: an HMAC key is at least as long as the hash of every algorithm it allows.
    fn check_hmac_len(&self, len: usize, kid: &str) -> Result<(), JwtConfigError> {
        let min = self
            .algorithms
            .iter()
            .map(|alg| match alg {
                Algorithm::HS384 => 48,
                Algorithm::HS512 => 64,
                _ => MIN_HMAC_SECRET_LEN,
            })
            .fold(MIN_HMAC_SECRET_LEN, usize::max);
        if len < min {
            return Err(JwtConfigError::HmacSecretTooShort {
                len,
                min,
                kid: kid.to_owned(),
            });
        }
        Ok(())
    }

    /// A ready key (from a JWK, say) gets the checks the typed constructors get.
    fn check_ready(&self, key: &DecodingKey, kid: &str) -> Result<(), JwtConfigError> {
        let bytes = key.try_get_as_bytes().ok();
        match key.family() {
            AlgorithmFamily::Hmac => self.check_hmac_len(bytes.map_or(0, <[u8]>::len), kid),
            // jsonwebtoken's Ed25519 verifier slices the first 32 bytes of the key: a shorter
            // one would panic on every request instead of failing here.
            AlgorithmFamily::Ed if bytes.is_none_or(|b| b.len() != 32) => {
                Err(JwtConfigError::BadKey {
                    what: "Ed25519",
                    kid: kid.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Check the key and pair it with the validation rules of `checks`.
    pub(crate) fn verifier(&self, checks: &Checks) -> Result<VerifierKey, JwtConfigError> {
        let k = self.compile()?;
        Ok(VerifierKey {
            validation: checks.validation(&k.algorithms),
            kid: k.kid,
            key: k.key,
            source: None,
        })
    }

    fn compile(&self) -> Result<CompiledKey, JwtConfigError> {
        let kid = self.kid_note();
        let (key, family) = match &self.material {
            KeyMaterial::Hmac(secret) => {
                self.check_hmac_len(secret.len(), &kid)?;
                let key = DecodingKey::from_secret(secret).map_err(|_| JwtConfigError::BadKey {
                    what: "HMAC",
                    kid: kid.clone(),
                })?;
                (key, "HMAC")
            }
            KeyMaterial::RsaPem(pem) => (
                DecodingKey::from_rsa_pem(pem).map_err(|_| JwtConfigError::BadKey {
                    what: "RSA",
                    kid: kid.clone(),
                })?,
                "RSA",
            ),
            KeyMaterial::EcPem(pem) => (
                DecodingKey::from_ec_pem(pem).map_err(|_| JwtConfigError::BadKey {
                    what: "EC",
                    kid: kid.clone(),
                })?,
                "EC",
            ),
            KeyMaterial::EdPem(pem) => (
                DecodingKey::from_ed_pem(pem).map_err(|_| JwtConfigError::BadKey {
                    what: "Ed25519",
                    kid: kid.clone(),
                })?,
                "Ed25519",
            ),
            KeyMaterial::Ready(key) => {
                self.check_ready(key, &kid)?;
                (key.clone(), family_name(key.family()))
            }
        };
        if self.algorithms.is_empty() {
            return Err(JwtConfigError::BadKey {
                what: "algorithm allowlist of the",
                kid,
            });
        }
        for alg in &self.algorithms {
            if !key.family().algorithms().contains(alg) {
                return Err(JwtConfigError::AlgorithmMismatch {
                    alg: *alg,
                    family,
                    kid,
                });
            }
        }
        Ok(CompiledKey {
            kid: self.kid.clone(),
            key,
            algorithms: self.algorithms.clone(),
        })
    }
}

fn family_name(f: jsonwebtoken::AlgorithmFamily) -> &'static str {
    match f {
        jsonwebtoken::AlgorithmFamily::Hmac => "HMAC",
        jsonwebtoken::AlgorithmFamily::Rsa => "RSA",
        jsonwebtoken::AlgorithmFamily::Ec => "EC",
        jsonwebtoken::AlgorithmFamily::Ed => "Ed25519",
    }
}

/// JWT bearer configuration: keys, issuer, audience, leeway, accepted token types.
#[derive(Clone, Debug)]
pub struct Jwt {
    keys: Vec<JwtKey>,
    jwks: Option<Jwks>,
    issuer: Vec<String>,
    audience: Vec<String>,
    leeway: Duration,
    accepted_typ: Vec<String>,
    allow_missing_typ: bool,
    cache_capacity: usize,
}

impl Jwt {
    /// No keys yet; add them with [`Jwt::key`].
    pub fn new() -> Self {
        Self {
            keys: Vec::new(),
            jwks: None,
            issuer: Vec::new(),
            audience: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            accepted_typ: vec!["at+jwt".into(), "application/at+jwt".into(), "JWT".into()],
            allow_missing_typ: true,
            cache_capacity: super::token_cache::DEFAULT_CAPACITY,
        }
    }

    /// One HS256 secret (at least 32 bytes, checked at build).
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        Self::new().key(JwtKey::hmac(secret))
    }

    /// One HS256 secret read from the environment variable `name`, or from the file named
    /// by `name_FILE` (Docker / Kubernetes secrets; see [`crate::secrets`]). Missing → error.
    pub fn hs256_from_env(name: &str) -> Result<Self, JwtConfigError> {
        use crate::secrets::{Secret, SecretError};
        match Secret::from_env(name) {
            Ok(secret) => Ok(Self::hs256(secret.expose().as_bytes().to_vec())),
            Err(SecretError::Missing { name }) => Err(JwtConfigError::MissingEnv(name)),
            Err(e) => Err(JwtConfigError::Secret(e)),
        }
    }

    /// The HMAC secrets of the static keys (for the production profile's checks).
    pub(crate) fn hmac_secrets(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().filter_map(|k| match &k.material {
            KeyMaterial::Hmac(secret) => Some(secret.as_slice()),
            KeyMaterial::Ready(key) if matches!(key.family(), AlgorithmFamily::Hmac) => {
                key.try_get_as_bytes().ok()
            }
            _ => None,
        })
    }

    /// Check every static key as [`Jwt::compile`] would (HMAC length, PEM and algorithm
    /// checks), without preparing a verifier: for the token issuer's signing secret, which
    /// is not the app's verification key when the app configures its own JWT.
    pub(crate) fn check_keys(&self) -> Result<(), JwtConfigError> {
        self.keys.iter().try_for_each(|k| k.compile().map(drop))
    }

    /// Add a verification key.
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Also verify with the keys of a remote key set (JWKS), fetched, cached and refreshed
    /// as [`crate::auth::jwks`] describes. Static keys ([`Jwt::key`]) may be combined with
    /// it: a token's `kid` is looked up among the static keys first. Calling this again
    /// replaces the key set.
    pub fn jwks(mut self, jwks: Jwks) -> Self {
        self.jwks = Some(jwks);
        self
    }

    /// Require and check `iss` (call again to accept several issuers).
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuer.push(iss.into());
        self
    }

    /// Require and check `aud` (call again to accept several audiences).
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audience.push(aud.into());
        self
    }

    /// Clock-skew leeway for `exp`/`nbf` (default 5 s). Keep it small.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// How many verified tokens to remember (default 4096; 0 turns the cache off). A
    /// remembered token skips signature verification and claim parsing on its next
    /// requests, while `exp`, `nbf`, the key that verified it and revocation are still
    /// checked every time; see [`crate::auth::token_cache`].
    pub fn token_cache(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Only accept these `typ` header values (case-insensitive), and require `typ`.
    /// The default accepts `at+jwt`, `application/at+jwt`, `JWT` or no `typ`.
    pub fn require_typ<I: IntoIterator<Item = T>, T: Into<String>>(mut self, typs: I) -> Self {
        self.accepted_typ = typs.into_iter().map(Into::into).collect();
        self.allow_missing_typ = false;
        self
    }

    /// The claim checks shared by every key.
    pub(crate) fn checks(&self) -> Checks {
        Checks {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            leeway: self.leeway.as_secs(),
        }
    }

    /// Validate the configuration and prepare a verifier. Runs the crypto self-test, and
    /// starts fetching the remote key set when one is configured and a tokio runtime runs.
    pub(crate) fn compile(&self) -> Result<JwtVerifier, JwtConfigError> {
        if self.keys.is_empty() && self.jwks.is_none() {
            return Err(JwtConfigError::NoKeys);
        }
        let checks = self.checks();
        let keys = self
            .keys
            .iter()
            .map(|k| k.verifier(&checks))
            .collect::<Result<Vec<_>, _>>()?;
        let mut kids = HashSet::new();
        for k in &keys {
            if !kids.insert(k.kid.clone()) || (keys.len() > 1 && k.kid.is_none()) {
                return Err(JwtConfigError::AmbiguousKeys);
            }
        }
        self_test()?;
        let remote = self.jwks.as_ref().map(|j| j.compile(checks)).transpose()?;
        Ok(JwtVerifier {
            keys,
            remote,
            accepted_typ: self.accepted_typ.clone(),
            allow_missing_typ: self.allow_missing_typ,
            cache: TokenCache::new(self.cache_capacity, self.leeway.as_secs()),
        })
    }
}

/// The claim checks every key of one [`Jwt`] shares (issuer, audience, leeway), applied to
/// a key's own algorithm allowlist.
#[derive(Clone, Debug)]
pub(crate) struct Checks {
    issuer: Vec<String>,
    audience: Vec<String>,
    leeway: u64,
}

impl Checks {
    fn validation(&self, algorithms: &[Algorithm]) -> Validation {
        let mut v = Validation::new(algorithms.first().copied().unwrap_or(Algorithm::RS256));
        v.algorithms = algorithms.to_vec();
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp"];
        if self.issuer.is_empty() {
            v.iss = None;
        } else {
            v.set_issuer(&self.issuer);
            required.push("iss");
        }
        if self.audience.is_empty() {
            // A token that names an audience is refused when we have none configured.
            v.validate_aud = true;
            v.aud = None;
        } else {
            v.set_audience(&self.audience);
            required.push("aud");
        }
        v.set_required_spec_claims(&required);
        v
    }
}

impl Default for Jwt {
    fn default() -> Self {
        Self::new()
    }
}

struct CompiledKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// One key ready to verify with: the key, its kid, and its validation rules (its algorithm
/// allowlist and the shared [`Checks`]).
pub(crate) struct VerifierKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
    /// The JWK it was read from, for a key of a remote set: an unchanged JWK keeps its
    /// loaded key across refreshes (and so its tokens in the verified-token cache).
    pub(crate) source: Option<serde_json::Value>,
}

impl VerifierKey {
    /// The algorithms this key accepts.
    #[cfg(test)]
    pub(crate) fn algorithms(&self) -> &[Algorithm] {
        &self.validation.algorithms
    }
}

/// A compiled JWT verifier. Built by the app from a [`Jwt`] configuration.
pub struct JwtVerifier {
    keys: Vec<VerifierKey>,
    remote: Option<RemoteKeys>,
    accepted_typ: Vec<String>,
    allow_missing_typ: bool,
    cache: Option<TokenCache>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Sign and verify a token with an ephemeral key, and check a forged one fails.
fn self_test() -> Result<(), JwtConfigError> {
    let secret: [u8; 32] = rand::random();
    let enc = EncodingKey::from_secret(&secret)
        .map_err(|_| JwtConfigError::SelfTest("cannot build an HMAC signing key"))?;
    let dec = DecodingKey::from_secret(&secret)
        .map_err(|_| JwtConfigError::SelfTest("cannot build an HMAC key"))?;
    let claims = serde_json::json!({ "sub": "self-test", "exp": 4_102_444_800u64 });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &enc)
        .map_err(|_| JwtConfigError::SelfTest("cannot sign"))?;
    let v = Validation::new(Algorithm::HS256);
    jsonwebtoken::decode::<Value>(&token, &dec, &v)
        .map_err(|_| JwtConfigError::SelfTest("cannot verify a valid token"))?;
    let mut forged = token.into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    if jsonwebtoken::decode::<Value>(&forged, &dec, &v).is_ok() {
        return Err(JwtConfigError::SelfTest("accepted a forged signature"));
    }
    Ok(())
}

/// Which key a token's header leads to.
enum Lookup<'a> {
    /// A static key.
    Static(&'a VerifierKey),
    /// A `kid` to look up in the remote key set.
    Remote(&'a RemoteKeys, String),
}

impl JwtVerifier {
    /// Readiness of the remote key set: `None` without one, else whether keys are loaded.
    pub(crate) fn jwks_loaded(&self) -> Option<bool> {
        self.remote.as_ref().map(RemoteKeys::is_loaded)
    }

    /// Verify a bearer token and build its principal, without waiting: a token whose `kid`
    /// is neither a static key nor in the cached remote key set is refused. Requests use
    /// [`JwtVerifier::verify_async`], which may refetch the remote key set first.
    pub fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(p) = self.cached(token.as_bytes(), now) {
            return Ok(p);
        }
        match self.lookup(token)? {
            Lookup::Static(key) => self.decode_and_cache(token, key, KeyRef::Static, now),
            Lookup::Remote(remote, kid) => {
                let key = remote.cached(&kid).ok_or(Rejection::InvalidToken)?;
                self.decode_and_cache(token, &key, KeyRef::Remote(kid, key.clone()), now)
            }
        }
    }

    /// [`JwtVerifier::verify`], except that a `kid` missing from the cached remote key set
    /// refetches the set (at most once per `min_refetch_interval`, one fetch shared by all
    /// waiting requests, each waiting at most the fetch timeout) before refusing the token.
    pub async fn verify_async(&self, token: &str) -> Result<Principal, Rejection> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(p) = self.cached(token.as_bytes(), now) {
            return Ok(p);
        }
        self.verify_fully(token, now).await
    }

    /// Every check, without the cache; a token that passes is remembered.
    async fn verify_fully(&self, token: &str, now: u64) -> Result<Principal, Rejection> {
        match self.lookup(token)? {
            Lookup::Static(key) => self.decode_and_cache(token, key, KeyRef::Static, now),
            Lookup::Remote(remote, kid) => {
                let key = remote
                    .get_or_refetch(&kid)
                    .await
                    .ok_or(Rejection::InvalidToken)?;
                self.decode_and_cache(token, &key, KeyRef::Remote(kid, key.clone()), now)
            }
        }
    }

    /// Verify the raw bytes of a bearer token: a token verified before and still live is
    /// answered from the cache (its bytes passed every check then); anything else must be a
    /// token68 value and goes through [`JwtVerifier::verify_async`].
    pub(crate) async fn verify_bearer(&self, raw: &[u8]) -> Result<Principal, Rejection> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(p) = self.cached(raw, now) {
            return Ok(p);
        }
        self.verify_fully(token68(raw)?, now).await
    }

    /// A token verified before, still live, whose key is still loaded.
    fn cached(&self, token: &[u8], now: u64) -> Option<Principal> {
        self.cache.as_ref()?.get(token, now, |kid, key| {
            self.remote
                .as_ref()
                .and_then(|r| r.cached(kid))
                .is_some_and(|current| std::sync::Arc::ptr_eq(&current, key))
        })
    }

    fn decode_and_cache(
        &self,
        token: &str,
        key: &VerifierKey,
        key_ref: KeyRef,
        now: u64,
    ) -> Result<Principal, Rejection> {
        let p = decode(token, key, now)?;
        if let Some(cache) = &self.cache {
            cache.insert(token, &p, key_ref, now);
        }
        Ok(p)
    }

    /// Tokens in the verified-token cache.
    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cache.as_ref().map_or(0, TokenCache::len)
    }

    /// The header checks that need no key, then the key the header leads to.
    fn lookup(&self, token: &str) -> Result<Lookup<'_>, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::InvalidToken)?;
        // Never trust keys or key locations carried by the token itself.
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(Rejection::InvalidToken);
        }
        match header.typ.as_deref() {
            None if self.allow_missing_typ => {}
            Some(t) if self.accepted_typ.iter().any(|a| a.eq_ignore_ascii_case(t)) => {}
            _ => return Err(Rejection::InvalidToken),
        }
        let kid = header.kid;
        let static_key = match kid.as_deref() {
            Some(kid) => self.keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
            None if self.keys.len() == 1 && self.keys[0].kid.is_none() => self.keys.first(),
            None => None,
        };
        if let Some(key) = static_key {
            return Ok(Lookup::Static(key));
        }
        match (&self.remote, kid) {
            // Only an algorithm the remote set may use can make it worth a refetch.
            (Some(remote), Some(kid)) if remote.allows(header.alg) => {
                Ok(Lookup::Remote(remote, kid))
            }
            _ => Err(Rejection::InvalidToken),
        }
    }
}

/// The remote key set of a verifier (for the JWKS tests).
#[cfg(test)]
pub(crate) fn verifier_remote(v: &JwtVerifier) -> &RemoteKeys {
    v.remote.as_ref().expect("a remote key set")
}

fn decode(token: &str, key: &VerifierKey, now: u64) -> Result<Principal, Rejection> {
    let data = jsonwebtoken::decode::<StrictClaims>(token, &key.key, &key.validation)
        .map_err(|_| Rejection::InvalidToken)?;
    // A token issued in the future (beyond the clock-skew leeway) would outlive every
    // revocation, which ends the tokens issued up to a point in time; `iat`, when present,
    // must be a NumericDate that is not after now.
    if let Some(iat) = data.claims.0.get("iat") {
        let latest = now.saturating_add(key.validation.leeway) as f64;
        if !iat.as_f64().is_some_and(|iat| iat <= latest) {
            return Err(Rejection::InvalidToken);
        }
    }
    principal_from_claims(data.claims.0)
}

fn principal_from_claims(claims: Map<String, Value>) -> Result<Principal, Rejection> {
    // A refresh token (or any non-access purpose) is never an access token.
    for purpose in ["token_use", "token_type", "typ"] {
        if let Some(v) = claims.get(purpose) {
            let ok = v.as_str().is_some_and(|s| {
                s.eq_ignore_ascii_case("access") || s.eq_ignore_ascii_case("bearer")
            });
            if !ok {
                return Err(Rejection::InvalidToken);
            }
        }
    }
    let subject = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Rejection::InvalidToken),
    };
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or(Rejection::InvalidToken)?,
        Some(_) => return Err(Rejection::InvalidToken),
    };
    let mut scopes = match claims.get("scope") {
        None => Vec::new(),
        Some(Value::String(s)) => s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(Rejection::InvalidToken),
    };
    match claims.get("scp") {
        None => {}
        Some(Value::Array(a)) => {
            for v in a {
                scopes.push(v.as_str().ok_or(Rejection::InvalidToken)?.to_owned());
            }
        }
        Some(_) => return Err(Rejection::InvalidToken),
    }
    Ok(Principal::from_parts(
        subject,
        Credential::Jwt,
        roles,
        scopes,
        Some(Value::Object(claims)),
    ))
}

/// Claims as a JSON object that refuses duplicate keys at every depth.
pub(crate) struct StrictClaims(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictClaims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_any(StrictVisitor)? {
            Value::Object(m) => Ok(StrictClaims(m)),
            _ => Err(de::Error::custom("claims must be a JSON object")),
        }
    }
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(de::Error::custom("duplicate claim"));
            }
        }
        Ok(Value::Object(out))
    }
}

/// Extract the bearer token from an `Authorization` header value, as raw bytes (checked
/// with [`token68`] before anything but the verified-token cache sees them).
///
/// `Ok(None)`: a non-Bearer scheme (treated as no bearer credentials).
pub(crate) fn bearer(value: &[u8]) -> Result<Option<&[u8]>, Rejection> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(Rejection::MalformedCredentials(
            "The Authorization header is too large.",
        ));
    }
    let Some(split) = value.iter().position(|b| *b == b' ') else {
        if value.eq_ignore_ascii_case(b"bearer") {
            return Err(Rejection::MalformedCredentials(
                "The bearer token is empty.",
            ));
        }
        return Ok(None);
    };
    let (scheme, rest) = value.split_at(split);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return Ok(None);
    }
    let token = rest.trim_ascii();
    if token.is_empty() {
        return Err(Rejection::MalformedCredentials(
            "The bearer token is empty.",
        ));
    }
    Ok(Some(token))
}

/// The token as text when it is a token68 value (RFC 7235 §2.1); JWS compact serialisation
/// only uses its base64url subset and '.'.
pub(crate) fn token68(token: &[u8]) -> Result<&str, Rejection> {
    // Branch-free over the whole token, so the compiler checks many bytes per instruction.
    let ok = token.iter().fold(true, |ok, &b| {
        ok & (b.is_ascii_alphanumeric()
            | (b == b'-')
            | (b == b'_')
            | (b == b'.')
            | (b == b'~')
            | (b == b'+')
            | (b == b'/')
            | (b == b'='))
    });
    // All bytes are then ASCII, so the conversion cannot fail.
    match std::str::from_utf8(token) {
        Ok(s) if ok => Ok(s),
        _ => Err(Rejection::MalformedCredentials(
            "The bearer token is not a valid token68 value.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn mint(claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET).unwrap(),
        )
        .unwrap()
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn valid_token_yields_principal() {
        let v = Jwt::hs256(SECRET).compile().unwrap();
        let t = mint(
            serde_json::json!({"sub": "alice", "exp": now() + 60, "roles": ["admin"], "scope": "a b"}),
        );
        let p = v.verify(&t).unwrap();
        assert_eq!(p.subject(), "alice");
        assert_eq!(p.roles(), ["admin"]);
        assert_eq!(p.scopes(), ["a", "b"]);
    }

    #[test]
    fn cached_tokens_still_expire() {
        let v = Jwt::hs256(SECRET).leeway(Duration::ZERO).compile().unwrap();
        let t = mint(serde_json::json!({"sub": "alice", "exp": now() + 1}));
        assert!(v.verify(&t).is_ok());
        assert_eq!(v.cached_tokens(), 1, "a verified token is cached");
        assert!(v.verify(&t).is_ok(), "served from the cache");
        std::thread::sleep(Duration::from_millis(2100));
        assert!(
            matches!(v.verify(&t), Err(Rejection::InvalidToken)),
            "an expired token is refused even though it was cached"
        );
    }

    #[test]
    fn cached_tokens_wait_for_nbf() {
        // Verified with a large leeway, so nbf in the future passes; the cache must apply
        // the same rule, not a looser one: a second verifier without leeway refuses.
        let t = mint(serde_json::json!({"sub": "a", "exp": now() + 600, "nbf": now() + 300}));
        let strict = Jwt::hs256(SECRET).leeway(Duration::ZERO).compile().unwrap();
        assert!(strict.verify(&t).is_err());
        assert!(strict.verify(&t).is_err());
        assert_eq!(strict.cached_tokens(), 0, "a refused token is never cached");
    }

    #[test]
    fn cache_compares_the_whole_token() {
        let v = Jwt::hs256(SECRET).compile().unwrap();
        let t = mint(serde_json::json!({"sub": "alice", "exp": now() + 60, "roles": ["admin"]}));
        assert!(v.verify(&t).is_ok());
        // Same header and claims, a different signature: never the cached principal.
        let mut forged = t.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(matches!(v.verify(&forged), Err(Rejection::InvalidToken)));
        // A prefix of the cached token is not it either.
        assert!(v.verify(&t[..t.len() - 1]).is_err());
    }

    #[test]
    fn cache_is_bounded_and_can_be_off() {
        let v = Jwt::hs256(SECRET).token_cache(64).compile().unwrap();
        for i in 0..1000 {
            let t = mint(serde_json::json!({"sub": format!("u{i}"), "exp": now() + 60}));
            assert!(v.verify(&t).is_ok());
        }
        assert!(v.cached_tokens() <= 64, "{}", v.cached_tokens());
        assert!(v.cached_tokens() >= 32, "{}", v.cached_tokens());
        let off = Jwt::hs256(SECRET).token_cache(0).compile().unwrap();
        let t = mint(serde_json::json!({"sub": "a", "exp": now() + 60}));
        assert!(off.verify(&t).is_ok());
        assert_eq!(off.cached_tokens(), 0);
    }

    #[test]
    fn short_secret_refused() {
        let e = Jwt::hs256(b"short".to_vec()).compile().unwrap_err();
        assert!(matches!(
            e,
            JwtConfigError::HmacSecretTooShort { len: 5, .. }
        ));
    }

    #[test]
    fn hmac_secret_must_cover_the_hash_size() {
        for (alg, min) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let short = Jwt::new().key(JwtKey::hmac(vec![7u8; min - 1]).algorithms([alg]));
            let e = short.compile().unwrap_err();
            assert_eq!(
                e,
                JwtConfigError::HmacSecretTooShort {
                    len: min - 1,
                    min,
                    kid: String::new()
                },
                "{alg:?}"
            );
            Jwt::new()
                .key(JwtKey::hmac(vec![7u8; min]).algorithms([alg]))
                .compile()
                .unwrap();
        }
        // The strongest algorithm allowed decides.
        let e = Jwt::new()
            .key(JwtKey::hmac(vec![7u8; 48]).algorithms([Algorithm::HS256, Algorithm::HS512]))
            .compile()
            .unwrap_err();
        assert!(matches!(
            e,
            JwtConfigError::HmacSecretTooShort {
                len: 48,
                min: 64,
                ..
            }
        ));
    }

    #[test]
    fn ready_keys_get_the_same_checks() {
        let short = DecodingKey::from_secret(&[7u8; 16]).unwrap();
        let e = Jwt::new()
            .key(JwtKey::decoding_key(short, [Algorithm::HS256]))
            .compile()
            .unwrap_err();
        assert!(matches!(
            e,
            JwtConfigError::HmacSecretTooShort {
                len: 16,
                min: 32,
                ..
            }
        ));
        // A truncated Ed25519 key would make jsonwebtoken panic on every request.
        let truncated = DecodingKey::from_ed_components("AAAA").unwrap();
        let e = Jwt::new()
            .key(JwtKey::decoding_key(truncated, [Algorithm::EdDSA]))
            .compile()
            .unwrap_err();
        assert!(matches!(
            e,
            JwtConfigError::BadKey {
                what: "Ed25519",
                ..
            }
        ));
    }

    #[test]
    fn strict_claims_refuse_duplicates() {
        let r: Result<StrictClaims, _> = serde_json::from_str(r#"{"sub":"a","sub":"b"}"#);
        assert!(r.is_err());
        let r: Result<StrictClaims, _> = serde_json::from_str(r#"{"x":{"y":1,"y":2}}"#);
        assert!(r.is_err());
        let r: Result<StrictClaims, _> = serde_json::from_str(r#"{"x":{"y":1},"z":[1,{"a":2}]}"#);
        assert!(r.is_ok());
    }

    #[test]
    fn bearer_parsing() {
        let t = |v: &[u8]| bearer(v).map(|t| t.map(|t| token68(t).map(str::to_owned)));
        assert_eq!(
            t(b"Bearer abc.def.ghi").unwrap().unwrap().unwrap(),
            "abc.def.ghi"
        );
        assert_eq!(t(b"bearer abc").unwrap().unwrap().unwrap(), "abc");
        assert!(t(b"Basic dXNlcjpwYXNz").unwrap().is_none());
        assert!(bearer(b"Bearer ").is_err());
        assert!(t(b"Bearer a b").unwrap().unwrap().is_err());
        assert!(t(b"Bearer a\xffb").unwrap().unwrap().is_err());
        assert!(bearer(&vec![b'a'; MAX_AUTHORIZATION_LEN + 1]).is_err());
    }
}

#[cfg(test)]
#[path = "jwt_props.rs"]
mod props;

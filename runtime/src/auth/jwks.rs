//! Remote key sets (JWKS, RFC 7517): verification keys fetched from the identity
//! provider's HTTPS URL, cached, and refreshed — so a provider can rotate its signing keys
//! without the app restarting.
//!
//! ```
//! use std::time::Duration;
//! use shieldwall_runtime::auth::jwks::Jwks;
//! use shieldwall_runtime::auth::jwt::Jwt;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let jwt = Jwt::new()
//!     .jwks(
//!         Jwks::new("https://idp.example.com/.well-known/jwks.json")?
//!             .refresh_every(Duration::from_secs(300))
//!             .min_refetch_interval(Duration::from_secs(30))
//!             .timeout(Duration::from_secs(5))
//!             .max_bytes(256 * 1024),
//!     )
//!     .issuer("https://idp.example.com")
//!     .audience("api");
//!
//! // Or let OpenID Connect discovery find the key set:
//! // GET https://idp.example.com/.well-known/openid-configuration → `jwks_uri`.
//! let jwt = Jwt::new()
//!     .jwks(Jwks::discover("https://idp.example.com")?)
//!     .issuer("https://idp.example.com")
//!     .audience("api");
//! # let _ = jwt;
//! # Ok(()) }
//! ```
//!
//! How the key set is kept:
//!
//! - **Fetched** when the app is built (in the background; or on the first request when
//!   `build()` ran outside a tokio runtime), then **refreshed** every `refresh_every`
//!   (default 5 min). A token naming a `kid` that is not in the cached set **refetches** the
//!   set — at most once per `min_refetch_interval` (default 30 s), so tokens with made-up
//!   kids cannot make the app hammer the provider. Concurrent requests share one fetch; none
//!   waits longer than the fetch `timeout`. A `kid` that is known is looked up in the cached
//!   set without waiting for anything.
//! - **Bounded**: one fetch (discovery included) must finish within `timeout` (default
//!   5 s), and a body larger than `max_bytes` (default 256 KiB) is abandoned.
//! - **Fail closed**: a fetch that fails — unreachable, timed out, not HTTP 200, over the
//!   size cap, not JSON, or without a single usable key — changes nothing: the last good
//!   keys stay in use, and a token naming any other `kid` gets 401. Until the first fetch
//!   succeeds every token that needs the remote set gets 401. A failure streak is logged
//!   once (`shieldwall::auth` target, `warn`), its end once (`info`); while failing, the set
//!   is retried every `min_refetch_interval`.
//! - **Replaced whole**: a successful fetch replaces the cached set, so a key the provider
//!   removed stops verifying at the next refresh.
//!
//! Which keys are used, and with which algorithms:
//!
//! - RSA (at least 2048 bits; RS256/384/512, PS256/384/512), EC P-256 (ES256), EC P-384
//!   (ES384) and Ed25519 (EdDSA) keys that carry a `kid`. A key whose `use` is not `sig`,
//!   whose `key_ops` lacks `verify`, or whose `kid` repeats an earlier key's is skipped.
//! - A key's `alg`, when present, must be in the set's allowlist ([`Jwks::algorithms`],
//!   default: every asymmetric algorithm above) and fit the key, and is then the only
//!   algorithm the key verifies; a key without `alg` verifies the allowlisted algorithms of
//!   its family and curve. `none` is never an algorithm.
//! - Symmetric (`oct`) keys are never taken from a remote set: a shared secret published
//!   at a URL is no secret, and an HMAC key would let anyone who read it sign tokens. HMAC
//!   algorithms cannot be put in the allowlist either.
//! - A token's own `jku`, `x5u`, `x5c` and `jwk` headers are never followed or used: such
//!   a token is refused (see [`crate::auth::jwt`]). Only the configured URL is fetched.
//! - Static keys ([`crate::auth::jwt::Jwt::key`]) and a remote set combine: a `kid` is
//!   looked up among the static keys first.
//!
//! Transport: HTTPS only (rustls with the `ring` provider, Mozilla's root certificates
//! from `webpki-roots`, or only the CAs given to [`Jwks::ca_certificates_pem`]); redirects
//! are not followed; credentials in the URL are refused. Plain `http://` is accepted only
//! for a literal loopback address (`127.0.0.0/8`, `::1`) and only after
//! [`Jwks::allow_http_loopback`] — for tests and local development, never for a provider
//! across a network. A discovery document must name the configured issuer exactly (OpenID
//! Connect Discovery §4.3), and its `jwks_uri` obeys the same rules.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::jwt::{Checks, JwtKey, VerifierKey};

/// Default interval between scheduled refreshes.
pub const DEFAULT_REFRESH_EVERY: Duration = Duration::from_secs(300);
/// Default minimum interval between two fetches (unknown-kid refetches included).
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Default bound on one fetch, discovery included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on a key set's (or discovery document's) body.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// Smallest RSA modulus used from a remote key set.
pub const MIN_RSA_BITS: usize = 2048;
/// The default algorithm allowlist: every asymmetric algorithm jsonwebtoken verifies.
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Why a remote key set configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksConfigError {
    /// The URL does not parse or is not usable.
    #[error("the JWKS URL {url:?} is not usable: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: &'static str,
    },
    /// A plain `http://` URL to a host that is not a loopback address.
    #[error(
        "the JWKS URL {0:?} is not HTTPS: keys fetched over plain HTTP can be replaced by anyone on the path; use https:// (plain http:// is only possible for a loopback address such as 127.0.0.1, with .allow_http_loopback())"
    )]
    NotHttps(String),
    /// A plain `http://` loopback URL without [`Jwks::allow_http_loopback`].
    #[error(
        "the JWKS URL {0:?} uses plain http://: call .allow_http_loopback() on the Jwks to allow this for a loopback address (tests and local development only), or use https://"
    )]
    HttpNotAllowed(String),
    /// An HMAC algorithm in the allowlist.
    #[error(
        "{0:?} cannot be allowed for a remote key set: a shared secret must never come from a URL; allow asymmetric algorithms only (RS*, PS*, ES256, ES384, EdDSA)"
    )]
    HmacAlgorithm(Algorithm),
    /// The allowlist is empty.
    #[error("the JWKS algorithm allowlist is empty")]
    NoAlgorithms,
    /// A duration or size that cannot work.
    #[error("JWKS setting {name}: {why}")]
    BadSetting {
        /// The setting.
        name: &'static str,
        /// What is wrong and what to write instead.
        why: &'static str,
    },
    /// The CA certificates given to [`Jwks::ca_certificates_pem`] did not parse.
    #[error(
        "the JWKS CA certificates could not be read: give one or more PEM `CERTIFICATE` blocks"
    )]
    BadCaCertificates,
}

/// Where the key set comes from.
#[derive(Clone, Debug)]
enum Source {
    /// The key set's own URL.
    KeySet(Uri),
    /// An issuer whose discovery document names the key set's URL.
    Discovery {
        /// The issuer, exactly as configured (the document must name it so).
        issuer: String,
        /// `{issuer}/.well-known/openid-configuration`.
        config: Uri,
    },
}

/// A remote key set (JWKS) configuration, given to [`crate::auth::jwt::Jwt::jwks`].
/// See the [module docs](self) for what is fetched, when, and which keys are used.
#[derive(Clone)]
pub struct Jwks {
    source: Source,
    refresh_every: Duration,
    min_refetch_interval: Duration,
    timeout: Duration,
    max_bytes: usize,
    algorithms: Vec<Algorithm>,
    allow_http_loopback: bool,
    ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("source", &self.source)
            .field("refresh_every", &self.refresh_every)
            .field("min_refetch_interval", &self.min_refetch_interval)
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .field("algorithms", &self.algorithms)
            .field("allow_http_loopback", &self.allow_http_loopback)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// Keys from the key set at `url` (an `https://` URL).
    pub fn new(url: impl AsRef<str>) -> Result<Self, JwksConfigError> {
        Ok(Self::with_source(Source::KeySet(parse_url(url.as_ref())?)))
    }

    /// Keys from the key set that OpenID Connect discovery names for `issuer`: the
    /// `jwks_uri` of `{issuer}/.well-known/openid-configuration`, whose `issuer` must be
    /// `issuer` exactly. The discovered URL is remembered until a fetch from it fails.
    pub fn discover(issuer: impl AsRef<str>) -> Result<Self, JwksConfigError> {
        let issuer = issuer.as_ref();
        let parsed = parse_url(issuer)?;
        if parsed.query().is_some() {
            return Err(JwksConfigError::BadUrl {
                url: issuer.to_owned(),
                why: "an issuer has no query",
            });
        }
        let config = parse_url(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))?;
        Ok(Self::with_source(Source::Discovery {
            issuer: issuer.to_owned(),
            config,
        }))
    }

    fn with_source(source: Source) -> Self {
        Self {
            source,
            refresh_every: DEFAULT_REFRESH_EVERY,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            allow_http_loopback: false,
            ca_pem: None,
        }
    }

    /// Scheduled refresh interval (default 5 min). At least `min_refetch_interval`.
    pub fn refresh_every(mut self, every: Duration) -> Self {
        self.refresh_every = every;
        self
    }

    /// Least time between two fetches (default 30 s): an unknown `kid` refetches the set
    /// only if the last fetch started at least this long ago, and a failing set is retried
    /// at this pace.
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// Bound on one fetch, discovery included (default 5 s); also the longest a request
    /// waits for a refetch.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Largest body accepted (default 256 KiB); a larger key set is a failed fetch.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The algorithms keys of this set may verify (default [`DEFAULT_ALGORITHMS`]).
    /// Asymmetric algorithms only.
    pub fn algorithms(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algs.into_iter().collect();
        self
    }

    /// Allow a plain `http://` URL to a literal loopback address (`127.0.0.0/8`, `::1`),
    /// for the set and for a discovered `jwks_uri`. For tests and local development: on a
    /// loopback address no network is crossed. Any other `http://` URL is refused anyway.
    pub fn allow_http_loopback(mut self) -> Self {
        self.allow_http_loopback = true;
        self
    }

    /// Trust only these CA certificates (PEM) for the provider's HTTPS certificate, instead
    /// of the Mozilla root set — for a provider whose certificate a private CA issued.
    pub fn ca_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Check the configuration and build the shared key cache; start fetching when a
    /// tokio runtime is running.
    pub(crate) fn compile(&self, checks: Checks) -> Result<RemoteKeys, JwksConfigError> {
        match &self.source {
            Source::KeySet(uri) => self.check_scheme(uri)?,
            Source::Discovery { config, .. } => self.check_scheme(config)?,
        }
        if self.algorithms.is_empty() {
            return Err(JwksConfigError::NoAlgorithms);
        }
        if let Some(alg) = self
            .algorithms
            .iter()
            .find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(JwksConfigError::HmacAlgorithm(*alg));
        }
        if self.timeout.is_zero() {
            return Err(JwksConfigError::BadSetting {
                name: "timeout",
                why: "must be more than zero, e.g. 5 s",
            });
        }
        if self.max_bytes == 0 {
            return Err(JwksConfigError::BadSetting {
                name: "max_bytes",
                why: "must be more than zero, e.g. 256 KiB",
            });
        }
        if self.min_refetch_interval.is_zero() {
            return Err(JwksConfigError::BadSetting {
                name: "min_refetch_interval",
                why: "must be more than zero (it bounds how often unknown kids can make the app fetch), e.g. 30 s",
            });
        }
        if self.refresh_every < self.min_refetch_interval {
            return Err(JwksConfigError::BadSetting {
                name: "refresh_every",
                why: "must be at least min_refetch_interval",
            });
        }
        let client = self.client()?;
        let remote = RemoteKeys {
            inner: Arc::new(Inner {
                cfg: self.clone(),
                checks,
                client,
                keys: RwLock::new(Arc::new(HashMap::new())),
                state: Mutex::new(FetchState::default()),
                discovered: Mutex::new(None),
                started: AtomicBool::new(false),
                failing: AtomicBool::new(false),
                wake: Arc::new(Notify::new()),
            }),
        };
        remote.inner.start();
        Ok(remote)
    }

    fn check_scheme(&self, uri: &Uri) -> Result<(), JwksConfigError> {
        if uri.scheme_str() == Some("http") && !self.allow_http_loopback {
            return Err(JwksConfigError::HttpNotAllowed(uri.to_string()));
        }
        Ok(())
    }

    fn client(&self) -> Result<HttpClient, JwksConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(pem) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject;
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|_| JwksConfigError::BadCaCertificates)?;
                    roots
                        .add(cert)
                        .map_err(|_| JwksConfigError::BadCaCertificates)?;
                }
                if roots.is_empty() {
                    return Err(JwksConfigError::BadCaCertificates);
                }
            }
        }
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| JwksConfigError::BadSetting {
                name: "TLS",
                why: "the crypto provider supports no safe TLS version",
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.timeout));
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let connector = if self.allow_http_loopback {
            // Every URL is checked before it is fetched: http only to a loopback address.
            builder.https_or_http()
        } else {
            builder.https_only()
        }
        .enable_http1()
        .wrap_connector(http);
        Ok(Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector))
    }
}

/// Parse a JWKS or issuer URL: `https://`, or `http://` to a literal loopback address
/// (still subject to [`Jwks::allow_http_loopback`]); no credentials.
fn parse_url(url: &str) -> Result<Uri, JwksConfigError> {
    let bad = |why| JwksConfigError::BadUrl {
        url: url.to_owned(),
        why,
    };
    let uri: Uri = url.parse().map_err(|_| bad("not a valid absolute URL"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| bad("no host; write https://host/path"))?;
    if authority.as_str().contains('@') {
        return Err(bad("credentials in the URL are not allowed"));
    }
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(authority.host()) => Ok(uri),
        Some("http") => Err(JwksConfigError::NotHttps(url.to_owned())),
        _ => Err(bad("the scheme must be https")),
    }
}

/// A literal loopback address (names such as `localhost` are not trusted to resolve there).
fn is_loopback(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// The cached keys by kid.
type KeyMap = HashMap<String, Arc<VerifierKey>>;

/// The shared, refreshed key cache of one configured [`Jwks`]; held by the JWT verifier.
pub(crate) struct RemoteKeys {
    inner: Arc<Inner>,
}

impl fmt::Debug for RemoteKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteKeys")
            .field("config", &self.inner.cfg)
            .field("keys", &self.inner.snapshot().len())
            .finish_non_exhaustive()
    }
}

impl RemoteKeys {
    /// Readiness: whether a key set has been loaded (the last good one counts).
    pub(crate) fn is_loaded(&self) -> bool {
        !self.inner.snapshot().is_empty()
    }

    /// Whether some key of this set could verify `alg`.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.inner.cfg.algorithms.contains(&alg)
    }

    /// The cached key named `kid`, without waiting.
    pub(crate) fn cached(&self, kid: &str) -> Option<Arc<VerifierKey>> {
        self.inner.snapshot().get(kid).cloned()
    }

    /// The key named `kid`: from the cache, or after a refetch when one may start (or is
    /// running); waits at most the fetch timeout.
    pub(crate) async fn get_or_refetch(&self, kid: &str) -> Option<Arc<VerifierKey>> {
        self.inner.start();
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if let Some(mut done) = Inner::trigger(&self.inner) {
            let _ = tokio::time::timeout(self.inner.cfg.timeout, done.wait_for(|d| *d)).await;
        }
        self.cached(kid)
    }
}

#[derive(Default)]
struct FetchState {
    /// Set while a fetch runs; turns `true` when it ends.
    in_flight: Option<watch::Receiver<bool>>,
    /// When the last fetch started.
    last_attempt: Option<Instant>,
    /// Whether the last finished fetch succeeded.
    last_ok: bool,
}

struct Inner {
    cfg: Jwks,
    checks: Checks,
    client: HttpClient,
    keys: RwLock<Arc<KeyMap>>,
    state: Mutex<FetchState>,
    /// The `jwks_uri` discovery found, until a fetch from it fails.
    discovered: Mutex<Option<Uri>>,
    started: AtomicBool,
    /// In a failure streak (logged once when it starts and once when it ends).
    failing: AtomicBool,
    /// Wakes the scheduled refresh when any fetch ends, so it reschedules from then.
    wake: Arc<Notify>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why one fetch failed (logged, never sent to a client).
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("answered HTTP {0} (only 200 is accepted; redirects are not followed)")]
    Status(u16),
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body could not be read: {0}")]
    Read(String),
    #[error("not a JSON key set (an object with a `keys` array)")]
    NotKeySet,
    #[error("no usable key in the set ({0})")]
    NoUsableKeys(String),
    #[error("discovery document refused: {0}")]
    Discovery(String),
}

impl Inner {
    fn snapshot(&self) -> Arc<KeyMap> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Start the scheduled refresh (the first fetch runs at once). Idempotent.
    fn start(self: &Arc<Self>) {
        if self.started.load(Ordering::Relaxed) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(schedule(Arc::downgrade(self), self.wake.clone()));
    }

    /// Start a fetch unless one started less than `min_refetch_interval` ago; join the
    /// running one if there is one. `None`: throttled, nothing to wait for.
    fn trigger(this: &Arc<Self>) -> Option<watch::Receiver<bool>> {
        // Outside a tokio runtime nothing can be fetched: the cache is all there is.
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut st = lock(&this.state);
        if let Some(rx) = &st.in_flight {
            return Some(rx.clone());
        }
        let now = Instant::now();
        if st
            .last_attempt
            .is_some_and(|t| now < t + this.cfg.min_refetch_interval)
        {
            return None;
        }
        st.last_attempt = Some(now);
        let (tx, rx) = watch::channel(false);
        st.in_flight = Some(rx.clone());
        drop(st);
        let done = Done {
            inner: this.clone(),
            tx,
            ok: false,
        };
        runtime.spawn(async move {
            let mut done = done;
            done.ok = done.inner.refresh().await;
        });
        Some(rx)
    }

    /// One fetch, bounded by the timeout; on success the cache is replaced.
    async fn refresh(&self) -> bool {
        let result = match tokio::time::timeout(self.cfg.timeout, self.fetch()).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(self.cfg.timeout)),
        };
        metrics::counter!(
            "shieldwall_jwks_refresh_total",
            "result" => if result.is_ok() { "ok" } else { "error" },
        )
        .increment(1);
        match result {
            Ok((keys, skipped)) => {
                let old = self.snapshot();
                let changed = old.len() != keys.len() || keys.keys().any(|k| !old.contains_key(k));
                if changed {
                    let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
                    kids.sort_unstable();
                    tracing::info!(
                        target: "shieldwall::auth",
                        source = %self.source_url(),
                        kids = ?kids,
                        "JWKS key set loaded"
                    );
                    for (kid, why) in &skipped {
                        tracing::warn!(
                            target: "shieldwall::auth",
                            source = %self.source_url(),
                            kid = kid.as_deref().unwrap_or("(none)"),
                            "JWKS key skipped: {why}"
                        );
                    }
                }
                // A key whose JWK did not change stays the same loaded key, so tokens it
                // verified stay in the verified-token cache; a changed or withdrawn one
                // does not.
                let mut keys = keys;
                let previous = self.snapshot();
                for (kid, key) in keys.iter_mut() {
                    if let Some(old) = previous.get(kid)
                        && old.source.is_some()
                        && old.source == key.source
                    {
                        *key = old.clone();
                    }
                }
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        target: "shieldwall::auth",
                        source = %self.source_url(),
                        "JWKS fetch succeeded again"
                    );
                }
                true
            }
            Err(e) => {
                if let Source::Discovery { .. } = self.cfg.source {
                    lock(&self.discovered).take();
                }
                if !self.failing.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        target: "shieldwall::auth",
                        source = %self.source_url(),
                        error = %e,
                        cached_keys = self.snapshot().len(),
                        "JWKS fetch failed; keeping the last good keys, tokens naming any other kid are refused"
                    );
                }
                false
            }
        }
    }

    fn source_url(&self) -> String {
        match &self.cfg.source {
            Source::KeySet(uri) => uri.to_string(),
            Source::Discovery { config, .. } => config.to_string(),
        }
    }

    async fn fetch(&self) -> Result<(KeyMap, Vec<Skipped>), FetchError> {
        let uri = match &self.cfg.source {
            Source::KeySet(uri) => uri.clone(),
            Source::Discovery { issuer, config } => {
                let known = lock(&self.discovered).clone();
                match known {
                    Some(uri) => uri,
                    None => {
                        let uri = self.discover(issuer, config).await?;
                        *lock(&self.discovered) = Some(uri.clone());
                        uri
                    }
                }
            }
        };
        let body = self.get(&uri).await?;
        parse_key_set(&body, &self.cfg.algorithms, &self.checks)
    }

    async fn discover(&self, issuer: &str, config: &Uri) -> Result<Uri, FetchError> {
        let body = self.get(config).await?;
        let doc: Value =
            serde_json::from_slice(&body).map_err(|_| FetchError::Discovery("not JSON".into()))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(FetchError::Discovery(format!(
                "its issuer is not {issuer:?}"
            )));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| FetchError::Discovery("no jwks_uri".into()))?;
        let uri = parse_url(jwks_uri)
            .map_err(|e| FetchError::Discovery(format!("jwks_uri refused: {e}")))?;
        self.cfg
            .check_scheme(&uri)
            .map_err(|e| FetchError::Discovery(format!("jwks_uri refused: {e}")))?;
        Ok(uri)
    }

    /// GET `uri`: HTTP 200 and at most `max_bytes`, or an error.
    async fn get(&self, uri: &Uri) -> Result<Bytes, FetchError> {
        let req = Request::get(uri.clone())
            .header(
                header::ACCEPT,
                "application/jwk-set+json, application/json;q=0.9",
            )
            .header(header::USER_AGENT, "shieldwall-jwks")
            .body(Empty::new())
            .map_err(|e| FetchError::Unreachable(e.to_string()))?;
        let res = self
            .client
            .request(req)
            .await
            .map_err(|e| FetchError::Unreachable(error_chain(&e)))?;
        if res.status() != StatusCode::OK {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        let max = self.cfg.max_bytes;
        let declared = res
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        match Limited::new(res.into_body(), max).collect().await {
            Ok(body) => Ok(body.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge(max)),
            Err(e) => Err(FetchError::Read(e.to_string())),
        }
    }
}

/// `error: cause: cause`, for the log.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// Ends a fetch however its task ends (even cancelled): clears the in-flight marker,
/// records the outcome, and wakes the waiters.
struct Done {
    inner: Arc<Inner>,
    tx: watch::Sender<bool>,
    ok: bool,
}

impl Drop for Done {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.inner.state);
            st.in_flight = None;
            st.last_ok = self.ok;
        }
        let _ = self.tx.send(true);
        self.inner.wake.notify_one();
    }
}

/// The scheduled refresh: the first fetch at once, then `refresh_every` after the last
/// successful fetch and `min_refetch_interval` after a failed one (whoever started it).
/// Ends with the key cache.
async fn schedule(inner: Weak<Inner>, wake: Arc<Notify>) {
    loop {
        let running = {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let due = {
                let st = lock(&inner.state);
                match (&st.in_flight, st.last_attempt) {
                    (Some(_), _) | (None, None) => None,
                    (None, Some(t)) => Some(
                        t + if st.last_ok {
                            inner.cfg.refresh_every
                        } else {
                            inner.cfg.min_refetch_interval
                        },
                    ),
                }
            };
            match due {
                Some(due) if Instant::now() < due => Err(due),
                _ => Ok(Inner::trigger(&inner)),
            }
        };
        match running {
            // Holds no reference to the cache while it sleeps or waits.
            Err(due) => {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = wake.notified() => {}
                }
            }
            Ok(Some(mut done)) => {
                let _ = done.wait_for(|d| *d).await;
            }
            Ok(None) => {
                // Throttled (another fetch just started and ended): look again shortly.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A key left out of the set: its kid (if any) and why.
type Skipped = (Option<String>, &'static str);

/// Parse a key set, keeping the usable keys. No usable key at all is an error.
fn parse_key_set(
    body: &[u8],
    allowlist: &[Algorithm],
    checks: &Checks,
) -> Result<(KeyMap, Vec<Skipped>), FetchError> {
    let doc: Value = serde_json::from_slice(body).map_err(|_| FetchError::NotKeySet)?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(FetchError::NotKeySet)?;
    let mut keys = KeyMap::new();
    let mut skipped = Vec::new();
    for entry in entries {
        match remote_key(entry, allowlist, checks) {
            Ok((kid, key)) => match keys.entry(kid) {
                Entry::Occupied(e) => {
                    skipped.push((
                        Some(e.key().clone()),
                        "another key in the set has the same kid",
                    ));
                }
                Entry::Vacant(e) => {
                    e.insert(Arc::new(key));
                }
            },
            Err(skip) => skipped.push(skip),
        }
    }
    if keys.is_empty() {
        let why = if skipped.is_empty() {
            "the set is empty".to_owned()
        } else {
            skipped
                .iter()
                .map(|(_, why)| *why)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(FetchError::NoUsableKeys(why));
    }
    Ok((keys, skipped))
}

/// One JWK → a verifier key with its algorithm allowlist, or why it is skipped.
fn remote_key(
    entry: &Value,
    allowlist: &[Algorithm],
    checks: &Checks,
) -> Result<(String, VerifierKey), Skipped> {
    let kid = match entry.get("kid") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        _ => return Err((None, "no kid (keys of a remote set must have one)")),
    };
    let skip = |why| Err((Some(kid.clone()), why));
    if entry.get("kty").and_then(Value::as_str) == Some("oct") {
        return skip("a symmetric (oct) key is never taken from a remote key set");
    }
    let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
        return skip("not a readable JWK");
    };
    if let Some(use_) = &jwk.common.public_key_use
        && *use_ != jsonwebtoken::jwk::PublicKeyUse::Signature
    {
        return skip("its use is not sig");
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return skip("its key_ops do not include verify");
    }
    let fitting: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            if rsa_bits(&p.n) < MIN_RSA_BITS {
                return skip("an RSA key under 2048 bits");
            }
            &RSA_ALGORITHMS
        }
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return skip("an unsupported elliptic curve"),
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return skip("an unsupported OKP curve"),
        },
        AlgorithmParameters::OctetKey(_) => {
            return skip("a symmetric (oct) key is never taken from a remote key set");
        }
        _ => return skip("an unsupported key type"),
    };
    let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
        Some(declared) => {
            let Some(alg) = signature_algorithm(declared) else {
                return skip("its alg is not a supported signature algorithm");
            };
            if !allowlist.contains(&alg) {
                return skip("its alg is not in the key set's algorithm allowlist");
            }
            if !fitting.contains(&alg) {
                return skip("its alg does not fit the key");
            }
            vec![alg]
        }
        None => {
            let algs: Vec<Algorithm> = fitting
                .iter()
                .copied()
                .filter(|a| allowlist.contains(a))
                .collect();
            if algs.is_empty() {
                return skip("no allowlisted algorithm fits the key");
            }
            algs
        }
    };
    let Ok(key) = DecodingKey::from_jwk(&jwk) else {
        return skip("unreadable key material");
    };
    match JwtKey::decoding_key(key, algorithms)
        .kid(kid.clone())
        .verifier(checks)
    {
        Ok(mut key) => {
            key.source = Some(entry.clone());
            Ok((kid, key))
        }
        Err(_) => skip("the key failed its checks"),
    }
}

/// The signature algorithm a JWK `alg` names, if it is one (never `none`, never HMAC —
/// HMAC keys are refused before this — never an encryption algorithm).
fn signature_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Bit length of a base64url RSA modulus (0 when it does not decode).
fn rsa_bits(n: &str) -> usize {
    use base64::Engine as _;
    let Ok(bytes) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n.trim_end_matches('='))
    else {
        return 0;
    };
    match bytes.iter().position(|b| *b != 0) {
        None => 0,
        Some(i) => (bytes.len() - i - 1) * 8 + (8 - bytes[i].leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::{Jwt, JwtConfigError, verifier_remote};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// An RSA JWK whose modulus has `bits` bits (material is never used to verify here).
    fn rsa(kid: &str, bits: usize) -> Value {
        let mut n = vec![0xabu8; bits / 8];
        n[0] = 0x80;
        json!({"kty": "RSA", "kid": kid, "n": b64(&n), "e": "AQAB"})
    }

    fn ec(kid: &str, crv: &str, len: usize) -> Value {
        json!({"kty": "EC", "kid": kid, "crv": crv, "x": b64(&vec![1u8; len]), "y": b64(&vec![2u8; len])})
    }

    fn ed(kid: &str) -> Value {
        json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(&[3u8; 32])})
    }

    fn with(mut v: Value, k: &str, x: Value) -> Value {
        v[k] = x;
        v
    }

    fn parse(keys: Vec<Value>, allow: &[Algorithm]) -> Result<(KeyMap, Vec<Skipped>), FetchError> {
        let body = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
        parse_key_set(&body, allow, &Jwt::new().checks())
    }

    fn algs(map: &KeyMap, kid: &str) -> Vec<Algorithm> {
        map[kid].algorithms().to_vec()
    }

    #[test]
    fn urls_must_be_https_or_opted_in_loopback_http() {
        assert!(Jwks::new("https://idp.example.com/jwks.json").is_ok());
        assert!(matches!(
            Jwks::new("http://idp.example.com/jwks.json"),
            Err(JwksConfigError::NotHttps(_))
        ));
        // Loopback names are not trusted to resolve to loopback; only literal addresses.
        assert!(matches!(
            Jwks::new("http://localhost:8080/jwks.json"),
            Err(JwksConfigError::NotHttps(_))
        ));
        assert!(matches!(
            Jwks::new("ftp://idp.example.com/jwks.json"),
            Err(JwksConfigError::BadUrl { .. })
        ));
        assert!(matches!(
            Jwks::new("https://user:pass@idp.example.com/jwks.json"),
            Err(JwksConfigError::BadUrl { .. })
        ));
        assert!(matches!(
            Jwks::new("/jwks.json"),
            Err(JwksConfigError::BadUrl { .. })
        ));
        for url in ["http://127.0.0.1:1/jwks.json", "http://[::1]:1/jwks.json"] {
            let jwks = Jwks::new(url).unwrap();
            let e = Jwt::new().jwks(jwks.clone()).compile().unwrap_err();
            assert!(
                matches!(e, JwtConfigError::Jwks(JwksConfigError::HttpNotAllowed(_))),
                "{e}"
            );
            Jwt::new()
                .jwks(jwks.allow_http_loopback())
                .compile()
                .unwrap();
        }
    }

    #[test]
    fn discovery_url_is_the_issuers_well_known_document() {
        for issuer in ["https://idp.example.com", "https://idp.example.com/"] {
            let Source::Discovery { config, .. } = Jwks::discover(issuer).unwrap().source else {
                panic!("not discovery");
            };
            assert_eq!(
                config.to_string(),
                "https://idp.example.com/.well-known/openid-configuration"
            );
        }
        let Source::Discovery { config, .. } = Jwks::discover("https://idp.example.com/realms/a")
            .unwrap()
            .source
        else {
            panic!("not discovery");
        };
        assert_eq!(
            config.to_string(),
            "https://idp.example.com/realms/a/.well-known/openid-configuration"
        );
        assert!(Jwks::discover("http://idp.example.com").is_err());
    }

    #[test]
    fn insecure_or_unworkable_settings_are_refused_at_build() {
        let jwks = || Jwks::new("https://idp.example.com/jwks.json").unwrap();
        let refused = |j: Jwks| Jwt::new().jwks(j).compile().unwrap_err();
        assert_eq!(
            refused(jwks().algorithms([Algorithm::RS256, Algorithm::HS256])),
            JwtConfigError::Jwks(JwksConfigError::HmacAlgorithm(Algorithm::HS256))
        );
        assert_eq!(
            refused(jwks().algorithms([])),
            JwtConfigError::Jwks(JwksConfigError::NoAlgorithms)
        );
        for (j, name) in [
            (jwks().timeout(Duration::ZERO), "timeout"),
            (jwks().max_bytes(0), "max_bytes"),
            (
                jwks().min_refetch_interval(Duration::ZERO),
                "min_refetch_interval",
            ),
            (
                jwks().refresh_every(Duration::from_secs(1)),
                "refresh_every",
            ),
        ] {
            assert!(
                matches!(refused(j), JwtConfigError::Jwks(JwksConfigError::BadSetting { name: n, .. }) if n == name),
                "{name}"
            );
        }
        assert_eq!(
            refused(jwks().ca_certificates_pem("not a certificate")),
            JwtConfigError::Jwks(JwksConfigError::BadCaCertificates)
        );
        // A JWKS alone is enough keys; static keys still get their own checks.
        Jwt::new().jwks(jwks()).compile().unwrap();
        assert!(matches!(
            Jwt::new()
                .key(crate::auth::jwt::JwtKey::hmac(vec![1u8; 8]))
                .jwks(jwks())
                .compile(),
            Err(JwtConfigError::HmacSecretTooShort { .. })
        ));
    }

    #[test]
    fn key_families_get_their_algorithms() {
        let (keys, skipped) = parse(
            vec![
                rsa("rsa", 2048),
                ec("p256", "P-256", 32),
                ec("p384", "P-384", 48),
                ed("ed"),
            ],
            &DEFAULT_ALGORITHMS,
        )
        .unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(algs(&keys, "rsa"), RSA_ALGORITHMS);
        assert_eq!(algs(&keys, "p256"), [Algorithm::ES256]);
        assert_eq!(algs(&keys, "p384"), [Algorithm::ES384]);
        assert_eq!(algs(&keys, "ed"), [Algorithm::EdDSA]);
        // The set's allowlist narrows keys without `alg`.
        let (keys, _) = parse(
            vec![rsa("rsa", 2048)],
            &[Algorithm::PS256, Algorithm::ES256],
        )
        .unwrap();
        assert_eq!(algs(&keys, "rsa"), [Algorithm::PS256]);
    }

    #[test]
    fn a_keys_alg_must_be_allowlisted_and_fit() {
        let (keys, skipped) = parse(
            vec![
                with(rsa("ok", 2048), "alg", json!("RS256")),
                with(rsa("not-allowed", 2048), "alg", json!("PS512")),
                with(rsa("wrong-family", 2048), "alg", json!("ES256")),
                with(ec("wrong-curve", "P-256", 32), "alg", json!("ES384")),
                with(rsa("none", 2048), "alg", json!("none")),
                with(rsa("hmac", 2048), "alg", json!("HS256")),
                with(rsa("enc", 2048), "alg", json!("RSA-OAEP")),
            ],
            &[Algorithm::RS256, Algorithm::ES256, Algorithm::ES384],
        )
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(algs(&keys, "ok"), [Algorithm::RS256]);
        let kids: Vec<_> = skipped.iter().map(|(k, _)| k.as_deref().unwrap()).collect();
        assert_eq!(
            kids,
            [
                "not-allowed",
                "wrong-family",
                "wrong-curve",
                "none",
                "hmac",
                "enc"
            ]
        );
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let secret = json!({"kty": "oct", "kid": "oct", "k": b64(&[7u8; 64]), "alg": "HS256"});
        let (keys, skipped) = parse(
            vec![
                rsa("good", 2048),
                secret,
                json!({"kty": "oct", "kid": "oct-no-alg", "k": b64(&[7u8; 64])}),
                rsa("small", 1024),
                with(rsa("enc", 2048), "use", json!("enc")),
                with(rsa("ops", 2048), "key_ops", json!(["encrypt"])),
                with(rsa("verify-ops", 2048), "key_ops", json!(["verify"])),
                json!({"kty": "RSA", "n": b64(&[0x80; 256]), "e": "AQAB"}),
                ec("p521", "P-521", 66),
                json!({"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64(&[1; 32])}),
                ed("short")
                    .as_object()
                    .map(|o| {
                        let mut o = o.clone();
                        o.insert("x".into(), json!(b64(&[1u8; 16])));
                        Value::Object(o)
                    })
                    .unwrap(),
                json!({"kty": "weird", "kid": "weird"}),
                json!("not even an object"),
                rsa("good", 4096),
            ],
            &DEFAULT_ALGORITHMS,
        )
        .unwrap();
        let mut kept: Vec<_> = keys.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["good", "verify-ops"]);
        assert_eq!(skipped.len(), 12, "{skipped:?}");
        assert!(
            skipped
                .iter()
                .any(|(k, why)| k.as_deref() == Some("oct") && why.contains("oct"))
        );
        assert!(
            skipped
                .iter()
                .any(|(k, why)| k.as_deref() == Some("good") && why.contains("same kid"))
        );
    }

    #[test]
    fn garbage_is_not_a_key_set() {
        let checks = Jwt::new().checks();
        for body in [&b"<html>"[..], b"{}", b"{\"keys\": {}}", b"[]", b"null"] {
            assert!(matches!(
                parse_key_set(body, &DEFAULT_ALGORITHMS, &checks),
                Err(FetchError::NotKeySet)
            ));
        }
        assert!(matches!(
            parse(vec![], &DEFAULT_ALGORITHMS),
            Err(FetchError::NoUsableKeys(_))
        ));
        assert!(matches!(
            parse(vec![rsa("small", 1024)], &DEFAULT_ALGORITHMS),
            Err(FetchError::NoUsableKeys(_))
        ));
    }

    #[test]
    fn rsa_modulus_bits() {
        assert_eq!(rsa_bits(&b64(&[0x80; 256])), 2048);
        assert_eq!(rsa_bits(&b64(&[0x00, 0x80, 0x01])), 16);
        assert_eq!(rsa_bits(&b64(&[0x01; 256])), 2041);
        assert_eq!(rsa_bits("!!"), 0);
    }

    /// A key set served over HTTPS with a self-signed certificate.
    async fn tls_server(body: &'static str) -> (String, String) {
        use hyper_util::rt::TokioIo;
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let ca_pem = cert.cert.pem();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(Bytes::from_static(body.as_bytes())),
                        ))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (url, ca_pem)
    }

    const P256_SET: &str = r#"{"keys":[{"kty":"EC","kid":"k1","crv":"P-256","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"}]}"#;

    #[tokio::test]
    async fn fetches_over_https_from_a_trusted_ca_only() {
        let (url, ca_pem) = tls_server(P256_SET).await;
        let fast = |j: Jwks| {
            j.timeout(Duration::from_secs(2))
                .min_refetch_interval(Duration::from_millis(100))
        };
        // The private CA is trusted: the set loads.
        let trusted = fast(Jwks::new(&url).unwrap().ca_certificates_pem(ca_pem))
            .compile(Jwt::new().checks())
            .unwrap();
        assert!(trusted.get_or_refetch("k1").await.is_some());
        // The Mozilla roots do not know the self-signed certificate: fail closed.
        let untrusted = fast(Jwks::new(&url).unwrap())
            .compile(Jwt::new().checks())
            .unwrap();
        assert!(untrusted.get_or_refetch("k1").await.is_none());
        assert!(untrusted.inner.failing.load(Ordering::Acquire));
    }

    /// A plain-HTTP key set on 127.0.0.1, served by `rt`.
    fn http_server(rt: &tokio::runtime::Runtime, body: &'static str) -> String {
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
            let app = axum::Router::new().route(
                "/jwks.json",
                axum::routing::get(move || async move { body }),
            );
            tokio::spawn(async move { axum::serve(listener, app).await });
            url
        })
    }

    #[test]
    fn built_outside_a_runtime_fetches_on_first_use() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let url = http_server(&rt, P256_SET);
        // Built outside any runtime: nothing is spawned, and the cache is empty.
        let jwt = Jwt::new().jwks(
            Jwks::new(&url)
                .unwrap()
                .allow_http_loopback()
                .min_refetch_interval(Duration::from_millis(100))
                .timeout(Duration::from_secs(2)),
        );
        let verifier = jwt.compile().unwrap();
        let remote = verifier_remote(&verifier);
        assert!(!remote.inner.started.load(Ordering::Acquire));
        assert!(remote.cached("k1").is_none());
        // Without a runtime a lookup cannot fetch, and does not panic.
        assert!(Inner::trigger(&remote.inner).is_none());
        // The first use inside a runtime fetches and starts the schedule.
        assert!(rt.block_on(remote.get_or_refetch("k1")).is_some());
        assert!(remote.inner.started.load(Ordering::Acquire));
    }

    #[test]
    fn an_unchanged_key_stays_the_same_loaded_key_across_refreshes() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let url = http_server(&rt, P256_SET);
        let jwt = Jwt::new().jwks(
            Jwks::new(&url)
                .unwrap()
                .allow_http_loopback()
                .refresh_every(Duration::from_millis(100))
                .min_refetch_interval(Duration::from_millis(100))
                .timeout(Duration::from_secs(2)),
        );
        let verifier = jwt.compile().unwrap();
        let remote = verifier_remote(&verifier);
        let first = rt.block_on(remote.get_or_refetch("k1")).unwrap();
        // Let the schedule refetch the (same) set a few times.
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(450)).await });
        let later = remote.cached("k1").unwrap();
        assert!(
            Arc::ptr_eq(&first, &later),
            "an unchanged JWK keeps its loaded key"
        );
    }

    #[tokio::test]
    async fn unreachable_set_fails_closed_and_requests_wait_at_most_the_timeout() {
        // A listener that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let _hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        let remote = Jwks::new(&url)
            .unwrap()
            .allow_http_loopback()
            .timeout(Duration::from_millis(200))
            .min_refetch_interval(Duration::from_millis(100))
            .compile(Jwt::new().checks())
            .unwrap();
        let started = std::time::Instant::now();
        assert!(remote.get_or_refetch("k1").await.is_none());
        let waited = started.elapsed();
        assert!(waited < Duration::from_millis(700), "{waited:?}");
        assert!(remote.cached("k1").is_none());
    }
}

//! HTTPS with rustls: TLS 1.2 and 1.3 only, modern suites, PEM files reloaded on change.
//!
//! ```no_run
//! use std::time::Duration;
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::tls::{HttpPolicy, Tls};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! Shieldwall::new()
//!     // or SHIELDWALL_TLS_CERT / SHIELDWALL_TLS_KEY
//!     .tls(Tls::files("/etc/app/cert.pem", "/etc/app/key.pem").reload_every(Duration::from_secs(30)))
//!     .listen("0.0.0.0:443")
//!     // a plain listener for browsers that type http:// (SHIELDWALL_HTTP_ADDR)
//!     .http_listener("0.0.0.0:80", HttpPolicy::Redirect)
//!     // .routes(routes![...])
//!     .server()?
//!     .serve()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # What is negotiated
//!
//! rustls with the *ring* provider (no C toolchain needed, unlike aws-lc-rs), protocol
//! versions TLS 1.3 and TLS 1.2 only (rustls implements nothing older: a TLS 1.0/1.1
//! ClientHello is answered with a `protocol_version` alert), and only AEAD suites with
//! forward secrecy:
//!
//! - TLS 1.3: `TLS13_AES_256_GCM_SHA384`, `TLS13_AES_128_GCM_SHA256`,
//!   `TLS13_CHACHA20_POLY1305_SHA256`
//! - TLS 1.2: `ECDHE_{ECDSA,RSA}_WITH_{AES_256_GCM_SHA384,AES_128_GCM_SHA256,CHACHA20_POLY1305_SHA256}`
//!
//! Key exchange: X25519, P-256, P-384. ALPN offers `h2` then `http/1.1`.
//!
//! # Certificates
//!
//! [`Tls::files`] takes a PEM certificate chain (leaf first) and a PEM private key (PKCS#8,
//! PKCS#1 or SEC1). Both are loaded when the server is built — unreadable files, a missing
//! certificate or key, or a key that does not belong to the certificate are [`TlsError`]s
//! that stop start-up. Afterwards the files are polled (default every 10 s): when either
//! changes, the pair is loaded and checked again and, if good, used for every new
//! handshake; a bad pair is logged and the previous certificate stays. No restart.
//!
//! With the `acme` feature, [`Tls::acme`] obtains and renews certificates from Let's
//! Encrypt through rustls-acme (TLS-ALPN-01 challenges on the same port).
//!
//! # Plain HTTP
//!
//! A plain listener beside HTTPS either rejects every request with 400 problem+json
//! ([`HttpPolicy::Reject`], the default: an API client that sent a token over plain HTTP
//! has already leaked it, and a redirect would hide the bug) or redirects with 308 to the
//! same host and path over HTTPS ([`HttpPolicy::Redirect`], for browsers). The redirect
//! runs after the trusted-host check, so it never points to a host the app does not own.
//!
//! # Behind a TLS-terminating proxy
//!
//! When nginx, Caddy or a load balancer terminates TLS, configure the proxy as trusted
//! ([`TrustedProxies`](crate::client_ip::TrustedProxies), `SHIELDWALL_TRUSTED_PROXIES`) and
//! have it send `X-Forwarded-Proto` (or `Forwarded: proto=`). The scheme it forwards is
//! then the client's: HSTS is sent when the client is on HTTPS, and a request the proxy
//! received over plain HTTP gets the same policy as the plain listener above — rejected by
//! default, or redirected to `https://` the same host, on port 443 or the one given to
//! `Shieldwall::public_https_port` (`SHIELDWALL_PUBLIC_HTTPS_PORT`). The same headers from
//! any other peer are ignored. If the app also has its own TLS, a trusted proxy's scheme
//! still decides (the proxy may re-encrypt a request the client sent in clear); see
//! [`crate::client_ip`].
//!
//! ```no_run
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::client_ip::TrustedProxies;
//! use shieldwall_runtime::tls::HttpPolicy;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // nginx on this host: `proxy_set_header X-Forwarded-Proto $scheme;` (and X-Forwarded-For)
//! Shieldwall::new()
//!     .trusted_proxies(TrustedProxies::parse(["127.0.0.1", "::1"])?)
//!     .http_policy(HttpPolicy::Redirect) // plain http:// through nginx → 308 to https://
//!     // .routes(routes![...])
//!     .server()?
//!     .serve()
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};

use crate::error::Problem;

/// Default interval between checks of the certificate files.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Why a TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read.
    #[error("TLS: cannot read {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("TLS: {0:?} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)")]
    NoCertificate(PathBuf),
    /// The key file holds no usable PEM private key.
    #[error("TLS: {0:?} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(PathBuf),
    /// The key is not usable or does not belong to the certificate.
    #[error("TLS: the key in {key:?} does not fit the certificate in {cert:?}: {why}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Config(String),
    /// Let's Encrypt needs at least one domain.
    #[error("TLS: ACME needs at least one domain")]
    AcmeNoDomain,
}

/// What plain HTTP gets: on the listener beside HTTPS, and through a trusted
/// TLS-terminating proxy (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpPolicy {
    /// 400 problem+json for every request (the default: APIs).
    #[default]
    Reject,
    /// 308 to `https://` the same host and path (browsers).
    Redirect,
}

impl std::str::FromStr for HttpPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reject" | "false" | "0" | "no" => Ok(Self::Reject),
            "redirect" | "true" | "1" | "yes" => Ok(Self::Redirect),
            other => Err(format!("{other:?}: write `redirect` or `reject`")),
        }
    }
}

impl HttpPolicy {
    /// The answer to a request that arrived over plain HTTP while HTTPS listens on
    /// `https_port`.
    pub(crate) fn respond(self, parts: &Parts, https_port: u16) -> Response {
        let host = parts
            .uri
            .authority()
            .map(|a| a.host().to_string())
            .or_else(|| {
                let h = parts.headers.get(header::HOST)?.to_str().ok()?;
                let h = if h.starts_with('[') {
                    h.split_inclusive(']').next()?
                } else {
                    h.split(':').next()?
                };
                Some(h.to_string())
            })
            .filter(|h| !h.is_empty());
        let target = match (self, host) {
            (Self::Redirect, Some(host)) => {
                let pq = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
                let url = if https_port == 443 {
                    format!("https://{host}{pq}")
                } else {
                    format!("https://{host}:{https_port}{pq}")
                };
                HeaderValue::from_str(&url).ok()
            }
            _ => None,
        };
        match target {
            Some(location) => {
                let mut res = StatusCode::PERMANENT_REDIRECT.into_response();
                res.headers_mut().insert(header::LOCATION, location);
                res
            }
            None => Problem::new(StatusCode::BAD_REQUEST, "https-required", "Bad Request")
                .with_detail("This server only accepts requests over HTTPS.")
                .into_response(),
        }
    }
}

#[derive(Debug, Clone)]
enum Source {
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    #[cfg(feature = "acme")]
    Acme {
        domains: Vec<String>,
        contact: Vec<String>,
        cache: PathBuf,
        production: bool,
    },
}

/// Where the server's certificate comes from. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Tls {
    source: Source,
    reload_every: Duration,
}

impl Tls {
    /// A PEM certificate chain and private key, reloaded when the files change.
    pub fn files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::Files {
                cert: cert.into(),
                key: key.into(),
            },
            reload_every: DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// Certificates from Let's Encrypt (`production = false`: the staging directory),
    /// cached in `cache_dir`, for `domains`, with `contact` e-mail addresses.
    #[cfg(feature = "acme")]
    pub fn acme<I, T>(
        domains: I,
        contact: &[&str],
        cache_dir: impl Into<PathBuf>,
        production: bool,
    ) -> Self
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        Self {
            source: Source::Acme {
                domains: domains
                    .into_iter()
                    .map(|d| d.as_ref().to_string())
                    .collect(),
                contact: contact.iter().map(|c| format!("mailto:{c}")).collect(),
                cache: cache_dir.into(),
                production,
            },
            reload_every: DEFAULT_RELOAD_INTERVAL,
        }
    }

    /// How often the certificate files are checked for changes (`Duration::ZERO`: never).
    pub fn reload_every(mut self, every: Duration) -> Self {
        self.reload_every = every;
        self
    }

    /// Load the certificate now and make the rustls configuration; starts the reload
    /// task (or the ACME task) when a tokio runtime is running.
    pub fn load(&self) -> Result<LoadedTls, TlsError> {
        match &self.source {
            Source::Files { cert, key } => {
                let resolver = Arc::new(ReloadingResolver {
                    current: RwLock::new(Arc::new(load_pair(cert, key)?)),
                    stamp: RwLock::new(stamp(cert, key)),
                    cert: cert.clone(),
                    key: key.clone(),
                });
                if !self.reload_every.is_zero() && tokio::runtime::Handle::try_current().is_ok() {
                    tokio::spawn(watch(Arc::downgrade(&resolver), self.reload_every));
                }
                Ok(LoadedTls {
                    config: Arc::new(server_config(resolver, false)?),
                    acme: false,
                })
            }
            #[cfg(feature = "acme")]
            Source::Acme {
                domains,
                contact,
                cache,
                production,
            } => {
                use futures_util::StreamExt;
                if domains.is_empty() {
                    return Err(TlsError::AcmeNoDomain);
                }
                let mut state =
                    rustls_acme::AcmeConfig::new_with_provider(domains, Arc::new(provider()))
                        .contact(contact)
                        .cache(rustls_acme::caches::DirCache::new(cache.clone()))
                        .directory_lets_encrypt(*production)
                        .state();
                let resolver = state.resolver();
                if tokio::runtime::Handle::try_current().is_ok() {
                    tokio::spawn(async move {
                        while let Some(event) = state.next().await {
                            match event {
                                Ok(ok) => tracing::info!(target: "shieldwall::tls", "ACME: {ok:?}"),
                                Err(err) => {
                                    tracing::error!(target: "shieldwall::tls", "ACME: {err:?}")
                                }
                            }
                        }
                    });
                }
                Ok(LoadedTls {
                    config: Arc::new(server_config(resolver, true)?),
                    acme: true,
                })
            }
        }
    }
}

/// A loaded TLS configuration, ready for the server.
#[derive(Debug, Clone)]
pub struct LoadedTls {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) acme: bool,
}

impl LoadedTls {
    /// The rustls server configuration.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }
}

/// The ring provider restricted to the suites and groups listed in the module docs.
pub fn provider() -> CryptoProvider {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    let suites: Vec<SupportedCipherSuite> = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    CryptoProvider {
        cipher_suites: suites,
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        ..rustls::crypto::ring::default_provider()
    }
}

fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    acme: bool,
) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if acme {
        #[cfg(feature = "acme")]
        config
            .alpn_protocols
            .push(rustls_acme::acme::ACME_TLS_ALPN_NAME.to_vec());
    }
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Load and check a certificate chain and its key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_path_buf()));
    }
    let der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(key.to_path_buf()))?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| TlsError::KeyMismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        why: e.to_string(),
    })
}

type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let c = std::fs::metadata(cert).ok()?;
    let k = std::fs::metadata(key).ok()?;
    Some((c.modified().ok()?, c.len(), k.modified().ok()?, k.len()))
}

/// Serves the current certificate; [`watch`] swaps it when the files change.
#[derive(Debug)]
struct ReloadingResolver {
    current: RwLock<Arc<CertifiedKey>>,
    stamp: RwLock<Stamp>,
    cert: PathBuf,
    key: PathBuf,
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

impl ReloadingResolver {
    /// Reload if the files changed. Returns whether a new certificate is in use.
    fn poll(&self) -> bool {
        let now = stamp(&self.cert, &self.key);
        {
            let last = self
                .stamp
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last == now || now.is_none() {
                return false;
            }
        }
        match load_pair(&self.cert, &self.key) {
            Ok(ck) => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(ck);
                *self
                    .stamp
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
                tracing::info!(target: "shieldwall::tls", cert = ?self.cert, "TLS certificate reloaded");
                true
            }
            Err(e) => {
                // Keep serving the previous pair; try again at the next change. A
                // half-written pair (cert updated, key not yet) lands here too.
                *self
                    .stamp
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
                tracing::warn!(target: "shieldwall::tls", error = %e, "TLS certificate not reloaded");
                false
            }
        }
    }
}

async fn watch(resolver: Weak<ReloadingResolver>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(r) = resolver.upgrade() else { return };
        let _ = tokio::task::spawn_blocking(move || r.poll()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, ck.cert.pem()).unwrap();
        std::fs::write(&k, ck.signing_key.serialize_pem()).unwrap();
        (c, k)
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sw-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn loads_and_checks_pairs() {
        let d = tmp("load");
        let (c1, k1) = pair(&d, "one");
        let (_c2, k2) = pair(&d, "two");
        assert!(load_pair(&c1, &k1).is_ok());
        assert!(matches!(
            load_pair(&c1, &k2),
            Err(TlsError::KeyMismatch { .. })
        ));
        assert!(matches!(
            load_pair(&k1, &k1),
            Err(TlsError::NoCertificate(_))
        ));
        assert!(matches!(load_pair(&c1, &c1), Err(TlsError::NoKey(_))));
        assert!(matches!(
            load_pair(&d.join("none"), &k1),
            Err(TlsError::Read { .. })
        ));
        let loaded = Tls::files(&c1, &k1)
            .reload_every(Duration::ZERO)
            .load()
            .unwrap();
        assert_eq!(
            loaded.config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn only_modern_suites() {
        let p = provider();
        assert_eq!(p.cipher_suites.len(), 9);
        for s in &p.cipher_suites {
            let name = format!("{:?}", s.suite());
            assert!(name.contains("GCM") || name.contains("CHACHA20"), "{name}");
            assert!(
                name.starts_with("TLS13") || name.contains("ECDHE"),
                "{name}"
            );
        }
    }

    #[test]
    fn reload_swaps_only_good_pairs() {
        let d = tmp("reload");
        let (c, k) = pair(&d, "live");
        let r = ReloadingResolver {
            current: RwLock::new(Arc::new(load_pair(&c, &k).unwrap())),
            stamp: RwLock::new(stamp(&c, &k)),
            cert: c.clone(),
            key: k.clone(),
        };
        assert!(!r.poll(), "unchanged files: nothing to do");
        let before = r.current.read().unwrap().cert[0].clone();
        // A mismatched pair (new cert, old key) is refused and the old one kept.
        let (c2, k2) = pair(&d, "next");
        std::fs::copy(&c2, &c).unwrap();
        assert!(!r.poll());
        assert_eq!(r.current.read().unwrap().cert[0], before);
        std::fs::copy(&k2, &k).unwrap();
        assert!(r.poll());
        assert_ne!(r.current.read().unwrap().cert[0], before);
        let _ = std::fs::remove_dir_all(d);
    }

    /// Configuration only: without a tokio runtime no ACME task starts, so nothing is
    /// sent to Let's Encrypt (which these machines cannot reach).
    #[cfg(feature = "acme")]
    #[test]
    fn acme_configuration() {
        let d = tmp("acme");
        let none: [&str; 0] = [];
        assert!(matches!(
            Tls::acme(none, &["ops@example.com"], &d, false).load(),
            Err(TlsError::AcmeNoDomain)
        ));
        let loaded = Tls::acme(["api.example.com"], &["ops@example.com"], &d, false)
            .load()
            .unwrap();
        assert!(loaded.acme);
        assert!(
            loaded
                .config
                .alpn_protocols
                .contains(&b"acme-tls/1".to_vec())
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn http_policy() {
        let parts = axum::http::Request::get("/a?b=1")
            .header("host", "api.example.com:8080")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let res = HttpPolicy::Redirect.respond(&parts, 8443);
        assert_eq!(res.status(), 308);
        assert_eq!(
            res.headers()["location"],
            "https://api.example.com:8443/a?b=1"
        );
        let res = HttpPolicy::Redirect.respond(&parts, 443);
        assert_eq!(res.headers()["location"], "https://api.example.com/a?b=1");
        let res = HttpPolicy::Reject.respond(&parts, 443);
        assert_eq!(res.status(), 400);
        assert_eq!("redirect".parse::<HttpPolicy>(), Ok(HttpPolicy::Redirect));
    }
}

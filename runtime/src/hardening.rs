//! App-wide hardening: the layer stack `build()` wraps around the routes, in the one fixed
//! order of the design, and the `SHIELDWALL_*` settings that configure it.
//!
//! ```
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::cors::Cors;
//! use shieldwall_runtime::headers::SecurityHeaders;
//! use shieldwall_runtime::hosts::AllowedHosts;
//!
//! let router: axum::Router = Shieldwall::new()
//!     .allowed_hosts(AllowedHosts::list(["api.example.com", "*.example.com"]).unwrap())
//!     .security_headers(SecurityHeaders::api().hsts_preload())
//!     .cors(Cors::origins(["https://app.example.com"]))
//!     .build()
//!     .unwrap();
//! # let _ = router;
//! ```
//!
//! Every request, whatever route or fallback it reaches, passes:
//!
//! 1. **request id**: a fresh UUID v4 in `X-Request-Id` (a client-sent one is replaced:
//!    ids are ours, so logs cannot be spoofed), copied to the response;
//! 2. trace/log and 3. metrics (slots for the observability layers);
//! 4. **catch panic** ([`crate::fallback`]);
//! 5. **trusted host** ([`crate::hosts`]);
//! 6. **HTTPS redirect or reject** for the plain listener beside HTTPS, and for requests a
//!    trusted proxy received over plain HTTP ([`crate::tls`], [`crate::client_ip`]), then
//!    `TRACE`/`CONNECT` refused;
//! 7. **security headers** ([`crate::headers`]) on every response, refusals included;
//! 8. **CORS** ([`crate::cors`]), then cross-site request protection for cookie requests
//!    ([`crate::csrf`]);
//!
//! and then the router: static files ([`crate::static_files`]), the routes with their own
//! policy, and the 404/405 fallbacks, every error rendered as problem+json.
//!
//! | variable | effect |
//! |---|---|
//! | `SHIELDWALL_ADDR` | address `serve()` binds (default `127.0.0.1:3000`) |
//! | `SHIELDWALL_TLS_CERT`, `SHIELDWALL_TLS_KEY` | PEM certificate chain and key: serve HTTPS (both or neither) |
//! | `SHIELDWALL_TLS_RELOAD_SECS` | seconds between checks of the PEM files (default 10; 0 = never) |
//! | `SHIELDWALL_HTTP_ADDR` | a plain-HTTP listener beside HTTPS |
//! | `SHIELDWALL_HTTP_REDIRECT` | `reject` (default: 400) or `redirect` (308 to HTTPS) for plain HTTP: on that listener, and through a trusted proxy |
//! | `SHIELDWALL_PUBLIC_HTTPS_PORT` | the port clients reach HTTPS on, for redirects (default: the app's own HTTPS port; 443 behind a proxy) |
//! | `SHIELDWALL_ALLOWED_HOSTS` | comma-separated hosts, `*.domain` wildcards; `*` = any (default: loopback only) |
//! | `SHIELDWALL_CORS_ORIGINS` | comma-separated origins (`https://app.example.com`); `*` = any, without credentials |
//! | `SHIELDWALL_CORS_CREDENTIALS` | `true`: listed origins may send credentials |
//! | `SHIELDWALL_SECURITY_HEADERS` | `api` (default), `strict` or `relaxed` |
//! | `SHIELDWALL_HSTS_PRELOAD` | `true`: add `preload` to HSTS |
//! | `SHIELDWALL_MAX_CONNECTIONS` | connections served at once (default 4096) |
//! | `SHIELDWALL_MAX_CONNECTIONS_PER_IP` | connections one client address may hold (default 64, or a quarter of the above if smaller; trusted proxies exempt; see [`crate::server`]) |
//! | `SHIELDWALL_REQUEST_TIMEOUT_SECS` | request timeout in seconds (default 30) |
//! | `SHIELDWALL_WRITE_TIMEOUT_SECS` | seconds a response may wait for a peer that accepts nothing (default 30; see [`crate::server`]) |
//! | `SHIELDWALL_RESPONSE_TIMEOUT_SECS` | seconds a body of known length may take to send (default 120) |
//! | `SHIELDWALL_STATIC_DIR`, `SHIELDWALL_STATIC_PATH` | serve a directory (at `/static` unless the path is given) |
//! | `SHIELDWALL_SENTRY_DSN`, `SHIELDWALL_SENTRY_ENVIRONMENT` | feature `sentry`: report 5xx and panics (see `crate::sentry`) |

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::client_ip::{ClientScheme, TrustedProxies};
use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};

use crate::app::{BuildError, ConfigError};
use crate::cors::Cors;
use crate::csrf::Csrf;
use crate::error::conform;
use crate::fallback::{X_REQUEST_ID, method_refusal, panic_response, refused_method};
use crate::headers::{CompiledHeaders, Preset, SecurityHeaders, carries_credentials};
use crate::hosts::AllowedHosts;
use crate::server::{Limits, Server, Transport};
use crate::static_files::StaticFiles;
use crate::tls::{HttpPolicy, Tls};

/// Default address `serve()` binds.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

/// The app-wide settings held by the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hardening {
    pub(crate) hosts: AllowedHosts,
    pub(crate) headers: SecurityHeaders,
    pub(crate) cors: Option<Cors>,
    pub(crate) csrf: Csrf,
    pub(crate) statics: Vec<StaticFiles>,
    pub(crate) tls: Option<Tls>,
    pub(crate) http_policy: HttpPolicy,
    /// The port clients reach HTTPS on, for redirects (`None`: the app's own HTTPS port
    /// for its plain listener, 443 behind a proxy).
    pub(crate) public_https_port: Option<u16>,
    pub(crate) limits: Limits,
    pub(crate) addr: Option<String>,
    pub(crate) http_addr: Option<String>,
    #[cfg(feature = "sentry")]
    pub(crate) sentry: Option<crate::sentry::SentryConfig>,
}

/// What the routes need from CORS: their methods, and whether any authenticates or takes
/// a body; and the header API keys are read from.
#[derive(Debug, Default)]
pub(crate) struct RouteNeeds {
    pub(crate) methods: Vec<Method>,
    pub(crate) auth: bool,
    pub(crate) body: bool,
    /// Some route may be satisfied by an API key: CORS allows [`RouteNeeds::key_header`].
    pub(crate) api_key: bool,
    /// The header API keys are read from, when API keys are configured: it marks a request
    /// as carrying credentials, and error reports scrub it.
    pub(crate) key_header: Option<HeaderName>,
}

impl RouteNeeds {
    /// Collect from the routes' policies; `key_header`: the header API keys are read from,
    /// when API-key authentication is configured.
    pub(crate) fn of<'a>(
        policies: impl Iterator<Item = &'a crate::policy::Policy>,
        key_header: Option<&HeaderName>,
    ) -> Self {
        let mut needs = Self::default();
        for p in policies {
            let m = Method::from_bytes(p.method.as_str().as_bytes()).unwrap_or(Method::GET);
            if !needs.methods.contains(&m) {
                needs.methods.push(m.clone());
            }
            if matches!(m, Method::POST | Method::PUT | Method::PATCH) {
                needs.body = true;
            }
            if matches!(p.access, crate::policy::Access::Authenticated(_)) {
                needs.auth = true;
            }
        }
        needs.api_key = key_header.is_some() && needs.auth;
        needs.key_header = key_header.cloned();
        needs
    }
}

fn invalid(name: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        why: why.into(),
    }
}

fn flag(name: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(invalid(name, format!("{other:?}: write `true` or `false`"))),
    }
}

fn secs(name: &'static str, v: &str) -> Result<Duration, ConfigError> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| invalid(name, format!("{v:?}: write a whole number of seconds")))
}

/// A deadline that must be at least one second: zero would refuse every request.
fn positive_secs(name: &'static str, v: &str) -> Result<Duration, ConfigError> {
    let d = secs(name, v)?;
    if d.is_zero() {
        return Err(invalid(name, "0 would cut every request: write at least 1"));
    }
    Ok(d)
}

impl Hardening {
    /// Apply the `SHIELDWALL_*` variables `get` returns (see the module docs).
    pub(crate) fn env(
        &mut self,
        get: impl Fn(&'static str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if let Some(a) = get("SHIELDWALL_ADDR") {
            self.addr = Some(a.trim().to_string());
        }
        match (get("SHIELDWALL_TLS_CERT"), get("SHIELDWALL_TLS_KEY")) {
            (Some(c), Some(k)) => {
                let mut tls = Tls::files(c.trim(), k.trim());
                if let Some(s) = get("SHIELDWALL_TLS_RELOAD_SECS") {
                    tls = tls.reload_every(secs("SHIELDWALL_TLS_RELOAD_SECS", &s)?);
                }
                self.tls = Some(tls);
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(invalid(
                    "SHIELDWALL_TLS_KEY",
                    "SHIELDWALL_TLS_CERT is set: name the PEM private key too",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "SHIELDWALL_TLS_CERT",
                    "SHIELDWALL_TLS_KEY is set: name the PEM certificate chain too",
                ));
            }
        }
        if let Some(a) = get("SHIELDWALL_HTTP_ADDR") {
            self.http_addr = Some(a.trim().to_string());
        }
        if let Some(v) = get("SHIELDWALL_HTTP_REDIRECT") {
            self.http_policy = v
                .parse()
                .map_err(|e: String| invalid("SHIELDWALL_HTTP_REDIRECT", e))?;
        }
        if let Some(v) = get("SHIELDWALL_PUBLIC_HTTPS_PORT") {
            let port = v.trim().parse::<u16>().ok().filter(|p| *p > 0);
            self.public_https_port = Some(port.ok_or_else(|| {
                invalid(
                    "SHIELDWALL_PUBLIC_HTTPS_PORT",
                    format!("{v:?}: write a port number from 1 to 65535, e.g. 443"),
                )
            })?);
        }
        if let Some(v) = get("SHIELDWALL_ALLOWED_HOSTS") {
            self.hosts = AllowedHosts::parse(&v)
                .map_err(|e| invalid("SHIELDWALL_ALLOWED_HOSTS", e.to_string()))?;
        }
        if let Some(v) = get("SHIELDWALL_CORS_ORIGINS") {
            let mut cors = Cors::parse(&v);
            if let Some(c) = get("SHIELDWALL_CORS_CREDENTIALS") {
                cors = cors.credentials(flag("SHIELDWALL_CORS_CREDENTIALS", &c)?);
            }
            cors.validate()
                .map_err(|e| invalid("SHIELDWALL_CORS_ORIGINS", e.to_string()))?;
            self.cors = Some(cors);
        }
        if let Some(v) = get("SHIELDWALL_SECURITY_HEADERS") {
            let p: Preset = v
                .parse()
                .map_err(|e: String| invalid("SHIELDWALL_SECURITY_HEADERS", e))?;
            self.headers = SecurityHeaders::preset(p);
        }
        if let Some(v) = get("SHIELDWALL_HSTS_PRELOAD")
            && flag("SHIELDWALL_HSTS_PRELOAD", &v)?
        {
            self.headers = std::mem::take(&mut self.headers).hsts_preload();
        }
        if let Some(v) = get("SHIELDWALL_MAX_CONNECTIONS") {
            let n = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(
                        "SHIELDWALL_MAX_CONNECTIONS",
                        format!("{v:?}: write a positive number, e.g. 4096"),
                    )
                })?;
            self.limits = std::mem::take(&mut self.limits).max_connections(n);
        }
        if let Some(v) = get("SHIELDWALL_MAX_CONNECTIONS_PER_IP") {
            let n = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    invalid(
                        "SHIELDWALL_MAX_CONNECTIONS_PER_IP",
                        format!("{v:?}: write a positive number, e.g. 64"),
                    )
                })?;
            self.limits = std::mem::take(&mut self.limits).max_connections_per_ip(n);
        }
        if let Some(v) = get("SHIELDWALL_REQUEST_TIMEOUT_SECS") {
            let d = positive_secs("SHIELDWALL_REQUEST_TIMEOUT_SECS", &v)?;
            self.limits = std::mem::take(&mut self.limits).request_timeout(d);
        }
        if let Some(v) = get("SHIELDWALL_WRITE_TIMEOUT_SECS") {
            let d = positive_secs("SHIELDWALL_WRITE_TIMEOUT_SECS", &v)?;
            self.limits = std::mem::take(&mut self.limits).write_timeout(d);
        }
        if let Some(v) = get("SHIELDWALL_RESPONSE_TIMEOUT_SECS") {
            let d = positive_secs("SHIELDWALL_RESPONSE_TIMEOUT_SECS", &v)?;
            self.limits = std::mem::take(&mut self.limits).response_timeout(d);
        }
        if let Some(dir) = get("SHIELDWALL_STATIC_DIR") {
            let at = get("SHIELDWALL_STATIC_PATH").unwrap_or_else(|| "/static".into());
            self.statics.push(StaticFiles::new(at.trim(), dir.trim()));
        }
        #[cfg(feature = "sentry")]
        if let Some(dsn) = get("SHIELDWALL_SENTRY_DSN") {
            let mut cfg = crate::sentry::SentryConfig::new(&dsn)
                .map_err(|e| invalid("SHIELDWALL_SENTRY_DSN", e.to_string()))?;
            if let Some(env) = get("SHIELDWALL_SENTRY_ENVIRONMENT") {
                cfg = cfg.environment(env.trim());
            }
            self.sentry = Some(cfg);
        }
        Ok(())
    }

    /// Check everything `build()` can check without binding a socket.
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        self.headers.validate()?;
        if let Some(c) = &self.cors {
            c.validate()?;
        }
        self.csrf.validate()?;
        Ok(())
    }

    /// Wrap the router in the fixed layer stack.
    #[cfg(test)]
    pub(crate) fn stack(&self, router: Router, needs: &RouteNeeds) -> Result<Router, BuildError> {
        self.stack_with_proxies(router, needs, TrustedProxies::none())
    }

    /// The stack, keeping an incoming `X-Request-Id` only from a trusted proxy and
    /// believing only a trusted proxy's forwarded scheme.
    pub(crate) fn stack_with_proxies(
        &self,
        mut router: Router,
        needs: &RouteNeeds,
        proxies: TrustedProxies,
    ) -> Result<Router, BuildError> {
        self.validate()?;
        for s in &self.statics {
            let svc = s.service()?;
            router = if s.mount() == "/" {
                router.fallback_service(svc)
            } else {
                router.nest_service(s.mount(), svc)
            };
        }
        let cors_origins = self
            .cors
            .as_ref()
            .map(Cors::trusted_origins)
            .unwrap_or_default();
        let csrf = self.csrf.layer(&cors_origins)?;
        let cors = match &self.cors {
            Some(cors) => {
                let mut cors = cors.clone();
                if let Some(key) = needs.key_header.as_ref().filter(|_| needs.api_key) {
                    cors = cors.allow_headers([key.as_str()]);
                }
                Some(cors.layer(&needs.methods, needs.auth, needs.body)?)
            }
            None => None,
        };
        // Unboxed from here to the router: each optional layer is an `Either`, so a request
        // crosses the whole stack without allocating a future per layer.
        let inner = ServiceBuilder::new()
            .layer(tower::util::option_layer(cors))
            .layer(tower::util::option_layer(csrf))
            .service(router);
        let cfg = Arc::new(GuardConfig {
            hosts: self.hosts.clone(),
            http_policy: self.http_policy,
            public_https_port: self.public_https_port,
            proxies: proxies.clone(),
            headers: self.headers.compile(),
            key_header: needs.key_header.clone(),
        });
        let guard = Guard {
            inner,
            cfg: cfg.clone(),
        };
        // Error tracking sees the final responses and a panic's message on its way up; it
        // is the one boxed layer, and only when configured.
        #[allow(unused_mut)]
        let mut core = tower::util::Either::Left(guard);
        #[cfg(feature = "sentry")]
        if let Some(sentry) = &self.sentry {
            let sentry = sentry.clone().scrubbing(needs.key_header.clone());
            let boxed: BoxCloneSyncService<Request, Response, Infallible> =
                BoxCloneSyncService::new(tower::Layer::layer(&sentry.layer(), core));
            core = tower::util::Either::Right(boxed);
        }
        #[cfg(not(feature = "sentry"))]
        let core: tower::util::Either<
            _,
            BoxCloneSyncService<Request, Response, Infallible>,
        > = core;
        let front = Front {
            inner: core,
            proxies: Arc::new(proxies),
            cfg,
        };
        Ok(Router::new().fallback_service(front))
    }

    /// The listening configuration for `build()`'s router.
    pub(crate) fn server(&self, router: Router) -> Result<Server, BuildError> {
        let tls = self.tls.as_ref().map(Tls::load).transpose()?;
        let addr = self
            .addr
            .clone()
            .unwrap_or_else(|| DEFAULT_ADDR.to_string());
        Ok(Server::new(
            router,
            self.headers.compile(),
            tls,
            self.limits.clone(),
            addr,
            self.http_addr.clone(),
        ))
    }
}

/// A client's own `X-Request-Id` is dropped (a fresh one is generated); one set by a
/// trusted proxy (see [`crate::client_ip`]) is kept, so ids follow a request across hops.
fn keep_request_id_from_trusted_proxy(mut req: Request, proxies: &TrustedProxies) -> Request {
    let trusted = !proxies.is_empty()
        && crate::client_ip::peer_of(req.extensions()).is_some_and(|p| proxies.is_trusted(p));
    let valid = req.headers().get(&X_REQUEST_ID).is_some_and(|v| {
        !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    });
    if !(trusted && valid) {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

#[derive(Debug)]
struct GuardConfig {
    hosts: AllowedHosts,
    http_policy: HttpPolicy,
    public_https_port: Option<u16>,
    /// Whose forwarded scheme is believed (the client-address list).
    proxies: TrustedProxies,
    headers: CompiledHeaders,
    /// The configured API-key header: a request carrying it carries credentials.
    key_header: Option<HeaderName>,
}

/// Trusted host → HTTPS redirect or reject → refused methods; on the way out the error
/// contract and the security headers.
#[derive(Debug, Clone)]
struct Guard<S> {
    inner: S,
    cfg: Arc<GuardConfig>,
}

impl GuardConfig {
    /// The generic 500 for a caught panic, with the security headers (HSTS when the
    /// request came over TLS; `no-store`, as for credentials).
    fn panic_response(
        &self,
        panic: &(dyn std::any::Any + Send),
        id: Option<HeaderValue>,
        tls: bool,
    ) -> Response {
        let mut res = panic_response(panic, id);
        self.headers.apply(res.headers_mut(), tls, true);
        res
    }

    /// The scheme a trusted proxy forwarded for this request, if any (see
    /// [`crate::client_ip`]). Free when no proxy is trusted.
    fn forwarded_scheme(&self, req: &Request) -> Option<ClientScheme> {
        if self.proxies.is_empty() {
            return None;
        }
        let peer = crate::client_ip::peer_of(req.extensions())?;
        self.proxies.forwarded_scheme(peer, req.headers())
    }

    /// Host, HTTPS policy, refused methods: the refusal, if any. The request is only taken
    /// apart on the (rare) refusal paths. `forwarded`: the scheme a trusted proxy says the
    /// client used, which decides over the connection's own.
    #[allow(clippy::result_large_err)] // the refusal is the response itself
    fn refuse(&self, req: Request, forwarded: Option<ClientScheme>) -> Result<Request, Response> {
        if let Err(p) = self.hosts.check_request(req.headers(), req.uri()) {
            return Err(p.into_response());
        }
        let plain_https_port = match (forwarded, req.extensions().get::<Transport>()) {
            // Plain HTTP as the client saw it, TLS terminated (or never used) by the proxy.
            (Some(ClientScheme::Http), _) => Some(self.public_https_port.unwrap_or(443)),
            (None, Some(Transport::PlainBesideTls { https_port })) => {
                Some(self.public_https_port.unwrap_or(*https_port))
            }
            _ => None,
        };
        if let Some(https_port) = plain_https_port {
            let (parts, _) = req.into_parts();
            return Err(self.http_policy.respond(&parts, https_port));
        }
        if refused_method(req.method()) {
            return Err(method_refusal().into_response());
        }
        Ok(req)
    }
}

impl<S> Service<Request> for Guard<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // HTTPS as the client saw it: a trusted proxy's word, or else the connection's.
        let forwarded = self.cfg.forwarded_scheme(&req);
        let tls = match forwarded {
            Some(scheme) => {
                // For what runs inside (CSRF, handlers taking `ClientScheme`); only behind
                // a trusted proxy, so a direct request inserts nothing.
                req.extensions_mut().insert(scheme);
                scheme.is_https()
            }
            None => req.extensions().get::<Transport>() == Some(&Transport::Tls),
        };
        let credentialed = carries_credentials(req.headers(), self.cfg.key_header.as_ref());
        let stamp = Stamp {
            cfg: self.cfg.clone(),
            tls,
            credentialed,
        };
        match self.cfg.refuse(req, forwarded) {
            Err(res) => GuardFuture::Done {
                res: Some(stamp.apply(res)),
            },
            Ok(req) => GuardFuture::Inner {
                fut: self.inner.call(req),
                stamp: Some(stamp),
            },
        }
    }
}

struct Stamp {
    cfg: Arc<GuardConfig>,
    tls: bool,
    credentialed: bool,
}

impl Stamp {
    fn apply(self, res: Response) -> Response {
        let mut res = conform(res);
        self.cfg
            .headers
            .apply(res.headers_mut(), self.tls, self.credentialed);
        res
    }
}

pin_project_lite::pin_project! {
    #[project = GuardProj]
    enum GuardFuture<F> {
        Inner { #[pin] fut: F, stamp: Option<Stamp> },
        Done { res: Option<Response> },
    }
}

impl<F> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardProj::Inner { fut, stamp } => match fut.poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(res)) => Poll::Ready(Ok(match stamp.take() {
                    Some(s) => s.apply(res),
                    None => res,
                })),
                Poll::Ready(Err(e)) => match e {},
            },
            GuardProj::Done { res } => Poll::Ready(Ok(res.take().unwrap_or_else(|| {
                crate::error::Rejection::Internal
                    .into_problem("api")
                    .into_response()
            }))),
        }
    }
}

/// The front of the stack: the request id (a client's own is replaced unless a trusted
/// proxy set it), the request's span, access line and metrics, and panics caught into a
/// generic 500. One service and one future for the three, with nothing boxed.
#[derive(Debug, Clone)]
struct Front<S> {
    inner: S,
    proxies: Arc<TrustedProxies>,
    /// For the security headers of a panic's 500 (made outside the guard).
    cfg: Arc<GuardConfig>,
}

/// A fresh request id: a random UUID v4, in one shared allocation (the request and the
/// response carry the same bytes).
pub(crate) fn new_request_id() -> HeaderValue {
    let mut buf = [0u8; 36];
    uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(buf))
        .unwrap_or_else(|_| HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let mut req = keep_request_id_from_trusted_proxy(req, &self.proxies);
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) => v.clone(),
            None => {
                let v = new_request_id();
                req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
                v
            }
        };
        let watch = crate::observe::Watch::begin(&req, Some(&id));
        // For a panic's 500, made out here: HSTS goes with TLS.
        let tls = req.extensions().get::<Transport>() == Some(&Transport::Tls);
        let called = {
            let _e = watch.span().enter();
            std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req)))
        };
        match called {
            Ok(fut) => FrontFuture {
                state: FrontState::Running {
                    fut: AssertUnwindSafe(fut).catch_unwind(),
                },
                id: Some(id),
                watch,
                cfg: self.cfg.clone(),
                tls,
            },
            Err(panic) => FrontFuture {
                state: FrontState::Done {
                    res: Some(
                        self.cfg
                            .panic_response(panic.as_ref(), Some(id.clone()), tls),
                    ),
                },
                id: Some(id),
                watch,
                cfg: self.cfg.clone(),
                tls,
            },
        }
    }
}

pin_project_lite::pin_project! {
    #[project = FrontStateProj]
    enum FrontState<F> {
        Running { #[pin] fut: CatchUnwind<AssertUnwindSafe<F>> },
        Done { res: Option<Response> },
    }
}

pin_project_lite::pin_project! {
    /// Future of [`Front`].
    struct FrontFuture<F> {
        #[pin]
        state: FrontState<F>,
        id: Option<HeaderValue>,
        watch: crate::observe::Watch,
        cfg: Arc<GuardConfig>,
        tls: bool,
    }
}

impl<F> Future for FrontFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let res = {
            let _e = this.watch.span().enter();
            match this.state.project() {
                FrontStateProj::Running { fut } => match fut.poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Ok(res))) => res,
                    Poll::Ready(Ok(Err(e))) => match e {},
                    Poll::Ready(Err(panic)) => {
                        this.cfg
                            .panic_response(panic.as_ref(), this.id.clone(), *this.tls)
                    }
                },
                FrontStateProj::Done { res } => res.take().unwrap_or_else(|| {
                    this.cfg
                        .panic_response(&"polled after completion", None, *this.tls)
                }),
            }
        };
        let mut res = res;
        this.watch.end(&res);
        if let Some(id) = this.id.take() {
            res.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        Poll::Ready(Ok(res))
    }
}

/// Used by the doc tests and unit tests: the stack over a plain router.
#[cfg(test)]
pub(crate) fn wrap(router: Router, h: &Hardening) -> Router {
    h.stack(router, &RouteNeeds::default()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use std::collections::HashMap;
    use tower::ServiceExt;

    fn front<S>(inner: S) -> Front<S> {
        Front {
            inner,
            proxies: Arc::new(TrustedProxies::none()),
            cfg: Arc::new(GuardConfig {
                hosts: AllowedHosts::default(),
                http_policy: HttpPolicy::default(),
                public_https_port: None,
                proxies: TrustedProxies::none(),
                headers: SecurityHeaders::api().compile(),
                key_header: None,
            }),
        }
    }

    #[tokio::test]
    async fn panics_become_generic_500s_carrying_the_request_id() {
        use http_body_util::BodyExt;
        let svc = front(tower::service_fn(|req: Request| {
            if req.uri().path() == "/sync" {
                panic!("secret in a panic raised by call");
            }
            async move {
                if req.uri().path() == "/boom" {
                    panic!("secret database password in panic text");
                }
                Ok::<_, Infallible>(Response::new(Body::from("fine")))
            }
        }));
        for path in ["/boom", "/sync"] {
            let req = Request::get(path)
                .header("x-request-id", "client-chosen")
                .body(Body::empty())
                .unwrap();
            let res = svc.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 500);
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
            assert_eq!(res.headers()["cache-control"], "no-store");
            let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert_ne!(id, "client-chosen", "a client's own id is replaced");
            assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert!(!text.contains("secret"), "{text}");
            assert!(text.contains(&format!("urn:uuid:{id}")), "{text}");
        }
        let ok = svc
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert!(ok.headers().contains_key("x-request-id"));
    }

    fn env(pairs: &[(&'static str, &str)]) -> Result<Hardening, ConfigError> {
        let map: HashMap<&'static str, String> =
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let mut h = Hardening::default();
        h.env(|k| map.get(k).cloned())?;
        Ok(h)
    }

    #[test]
    fn env_settings() {
        let h = env(&[
            ("SHIELDWALL_ALLOWED_HOSTS", "api.example.com,*.example.com"),
            (
                "SHIELDWALL_CORS_ORIGINS",
                "https://app.example.com, https://admin.example.com",
            ),
            ("SHIELDWALL_HTTP_REDIRECT", "redirect"),
            ("SHIELDWALL_SECURITY_HEADERS", "strict"),
            ("SHIELDWALL_TLS_CERT", "/c.pem"),
            ("SHIELDWALL_TLS_KEY", "/k.pem"),
            ("SHIELDWALL_PUBLIC_HTTPS_PORT", "8443"),
            ("SHIELDWALL_WRITE_TIMEOUT_SECS", "7"),
            ("SHIELDWALL_RESPONSE_TIMEOUT_SECS", "90"),
            ("SHIELDWALL_MAX_CONNECTIONS_PER_IP", "12"),
        ])
        .unwrap();
        let limits = format!("{:?}", h.limits);
        assert!(
            limits.contains("max_connections_per_ip: Some(12)"),
            "{limits}"
        );
        assert!(limits.contains("write_timeout: 7s"), "{limits}");
        assert!(limits.contains("response_timeout: 90s"), "{limits}");
        assert_eq!(h.public_https_port, Some(8443));
        assert!(h.hosts.allows("x.example.com") && !h.hosts.allows("evil.example"));
        assert_eq!(h.cors.unwrap().allowed_origins().unwrap().len(), 2);
        assert_eq!(h.http_policy, HttpPolicy::Redirect);
        assert_eq!(h.headers.preset_name(), Preset::Strict);
        assert!(h.tls.is_some());
    }

    #[test]
    fn bad_env_settings_name_the_variable() {
        for (k, v) in [
            ("SHIELDWALL_ALLOWED_HOSTS", "https://x.example"),
            ("SHIELDWALL_CORS_ORIGINS", "null"),
            ("SHIELDWALL_HTTP_REDIRECT", "maybe"),
            ("SHIELDWALL_SECURITY_HEADERS", "lax"),
            ("SHIELDWALL_TLS_CERT", "/c.pem"),
            ("SHIELDWALL_MAX_CONNECTIONS", "0"),
            ("SHIELDWALL_MAX_CONNECTIONS_PER_IP", "0"),
            ("SHIELDWALL_MAX_CONNECTIONS_PER_IP", "many"),
            ("SHIELDWALL_REQUEST_TIMEOUT_SECS", "0"),
            ("SHIELDWALL_WRITE_TIMEOUT_SECS", "0"),
            ("SHIELDWALL_RESPONSE_TIMEOUT_SECS", "soon"),
            ("SHIELDWALL_PUBLIC_HTTPS_PORT", "0"),
            ("SHIELDWALL_PUBLIC_HTTPS_PORT", "https"),
        ] {
            let err = env(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains("SHIELDWALL_"), "{err}");
        }
        let err = env(&[
            ("SHIELDWALL_CORS_ORIGINS", "*"),
            ("SHIELDWALL_CORS_CREDENTIALS", "true"),
        ]);
        assert!(err.is_err());
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn stack_order_and_headers() {
        let router = Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .route("/panic", axum::routing::get(boom));
        let app = wrap(router, &Hardening::default());
        let res = app
            .clone()
            .oneshot(
                Request::get("/")
                    .header("host", "localhost")
                    .header("x-request-id", "spoofed")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let id = res.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, "spoofed");
        assert_eq!(id.len(), 36);
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let res = app
            .clone()
            .oneshot(
                Request::get("/")
                    .header("host", "evil.example")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(
            res.headers()["x-content-type-options"],
            "nosniff",
            "refusals are stamped too"
        );
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .method("TRACE")
                    .uri("/")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), 405);
        let res = app
            .oneshot(Request::get("/panic").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), 500);
        assert!(res.headers().contains_key("x-request-id"));
    }
}

//! Error tracking (feature `sentry`): every 5xx the app answers, and every caught panic,
//! is reported to a Sentry-compatible endpoint as an envelope.
//!
//! ```
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::sentry::SentryConfig;
//!
//! let sentry = SentryConfig::new("https://publickey@o1.ingest.sentry.io/42")
//!     .unwrap()
//!     .environment("production");
//! let router: axum::Router = Shieldwall::new().sentry(sentry).build().unwrap();
//! # let _ = router;
//! ```
//!
//! Or set `SHIELDWALL_SENTRY_DSN` (and optionally `SHIELDWALL_SENTRY_ENVIRONMENT`) and use
//! [`crate::app::Shieldwall::env`].
//!
//! - **What is sent**: the level, a message (`HTTP 500 … on GET /route`, or the panic
//!   message — which the client never sees), the request method, the URL *without* its
//!   query string, the request headers with credentials replaced by `[Filtered]`, and the
//!   tags `request_id` (the `X-Request-Id` the client received), `route` and `status`.
//! - **What is never sent**: request or response bodies, query strings, and the values of
//!   `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie`, `X-API-Key`, the
//!   header API keys are read from (`ApiKeys::header`, whatever its name), or any header
//!   whose name mentions a token, secret, password, session, key or auth.
//! - **Delivery** never delays or fails a response: each report is sent from its own task,
//!   bounded by a timeout (default 5 s); at most 64 reports are in flight, further ones
//!   are dropped (and logged on target `shieldwall::sentry`).
//!
//! The layer sits just below the panic catcher: it sees the final (problem+json) responses
//! of the routes, fallbacks and refusals, and observes a panic's message on its way up.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, Method, header};
use axum::response::Response;
use futures_util::FutureExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::fallback::X_REQUEST_ID;
use crate::observe::RouteLabel;
use crate::server::Transport;

/// Replacement for a scrubbed header value.
pub const FILTERED: &str = "[Filtered]";

/// Headers whose values are never sent.
const SCRUBBED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Substrings of header names whose values are never sent.
const SCRUBBED_PARTS: &[&str] = &[
    "auth", "token", "secret", "passw", "session", "cookie", "key", "csrf", "xsrf",
];

/// Reports in flight at once; beyond, reports are dropped.
const MAX_IN_FLIGHT: usize = 64;

/// A DSN that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid Sentry DSN: {0} (expected `https://<public key>@<host>/<project id>`)")]
pub struct DsnError(&'static str);

/// A parsed DSN: where envelopes go and the key that authenticates them.
#[derive(Clone)]
struct Dsn {
    raw: String,
    public_key: String,
    endpoint: String,
}

impl Dsn {
    fn parse(dsn: &str) -> Result<Self, DsnError> {
        let dsn = dsn.trim();
        let (scheme, rest) = dsn.split_once("://").ok_or(DsnError("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(DsnError("the scheme must be http or https"));
        }
        let (userinfo, rest) = rest.split_once('@').ok_or(DsnError("no public key"))?;
        let public_key = userinfo.split(':').next().unwrap_or_default();
        if public_key.is_empty() {
            return Err(DsnError("no public key"));
        }
        let (host, path) = rest.split_once('/').ok_or(DsnError("no project id"))?;
        if host.is_empty() || host.contains(['?', '#']) {
            return Err(DsnError("no host"));
        }
        let path = path.trim_end_matches('/');
        let (prefix, project) = match path.rsplit_once('/') {
            Some((p, id)) => (format!("/{p}"), id),
            None => (String::new(), path),
        };
        if project.is_empty() || !project.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(DsnError("no project id"));
        }
        Ok(Self {
            raw: dsn.to_string(),
            public_key: public_key.to_string(),
            endpoint: format!("{scheme}://{host}{prefix}/api/{project}/envelope/"),
        })
    }
}

/// Where and how to report 5xx responses and panics.
#[derive(Clone)]
pub struct SentryConfig {
    dsn: Dsn,
    environment: Option<String>,
    release: Option<String>,
    timeout: Duration,
    /// The app's API-key header (`ApiKeys::header`), scrubbed whatever its name.
    key_header: Option<HeaderName>,
}

impl std::fmt::Debug for SentryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentryConfig")
            .field("endpoint", &self.dsn.endpoint)
            .field("environment", &self.environment)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SentryConfig {
    /// Report to this DSN (`https://<public key>@<host>/<project id>`).
    pub fn new(dsn: &str) -> Result<Self, DsnError> {
        Ok(Self {
            dsn: Dsn::parse(dsn)?,
            environment: None,
            release: None,
            timeout: Duration::from_secs(5),
            key_header: None,
        })
    }

    /// The `environment` attribute of every event.
    pub fn environment(mut self, env: impl Into<String>) -> Self {
        self.environment = Some(env.into());
        self
    }

    /// The `release` attribute of every event.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// Bound on one delivery (connect and send); default 5 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The envelope endpoint derived from the DSN.
    pub fn endpoint(&self) -> &str {
        &self.dsn.endpoint
    }

    /// Also scrub the header API keys are read from (set by `build()`).
    pub(crate) fn scrubbing(mut self, key_header: Option<HeaderName>) -> Self {
        self.key_header = key_header;
        self
    }

    pub(crate) fn layer(&self) -> SentryLayer {
        // Reports name the route: keep the label on every response.
        crate::observe::ROUTE_LABELS.store(true, std::sync::atomic::Ordering::Relaxed);
        SentryLayer {
            reporter: Arc::new(Reporter::new(self.clone())),
        }
    }
}

/// Sends events.
struct Reporter {
    cfg: SentryConfig,
    client: Option<Client<HttpsConnector<HttpConnector>, Body>>,
    in_flight: Arc<Semaphore>,
}

impl Reporter {
    fn new(cfg: SentryConfig) -> Self {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()
            .map(|b| {
                let tls = b.with_root_certificates(roots).with_no_client_auth();
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(cfg.timeout));
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(connector)
            });
        Self {
            cfg,
            client,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Queue one event; never blocks.
    fn report(&self, event: Value, event_id: String) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(permit) = self.in_flight.clone().try_acquire_owned() else {
            tracing::warn!(target: "shieldwall::sentry", "too many reports in flight; dropped one");
            return;
        };
        let body = envelope(&self.cfg.dsn.raw, &event_id, &event);
        let req = axum::http::Request::post(&self.cfg.dsn.endpoint)
            .header(header::CONTENT_TYPE, "application/x-sentry-envelope")
            .header(
                "x-sentry-auth",
                format!(
                    "Sentry sentry_version=7, sentry_key={}, sentry_client=shieldwall/{}",
                    self.cfg.dsn.public_key,
                    env!("CARGO_PKG_VERSION")
                ),
            )
            .body(Body::from(body));
        let Ok(req) = req else {
            return;
        };
        let timeout = self.cfg.timeout;
        handle.spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, client.request(req)).await {
                Ok(Ok(res)) if res.status().is_success() => {}
                Ok(Ok(res)) => tracing::warn!(
                    target: "shieldwall::sentry",
                    status = res.status().as_u16(),
                    "the error tracker refused a report"
                ),
                Ok(Err(e)) => tracing::warn!(
                    target: "shieldwall::sentry",
                    error = %e,
                    "could not deliver a report"
                ),
                Err(_) => tracing::warn!(
                    target: "shieldwall::sentry",
                    "delivering a report timed out"
                ),
            }
        });
    }
}

/// The envelope: header line, item header line, event payload.
fn envelope(dsn: &str, event_id: &str, event: &Value) -> Vec<u8> {
    let payload = serde_json::to_vec(event).unwrap_or_default();
    let mut out = serde_json::to_vec(&json!({
        "event_id": event_id,
        "dsn": dsn,
        "sent_at": rfc3339_now(),
    }))
    .unwrap_or_default();
    out.push(b'\n');
    out.extend(
        serde_json::to_vec(&json!({"type": "event", "length": payload.len()})).unwrap_or_default(),
    );
    out.push(b'\n');
    out.extend(payload);
    out.push(b'\n');
    out
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// UTC now as RFC 3339 (seconds precision).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days.cast_signed() + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn new_event_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Whether a header's value must never leave the process.
fn scrubbed(name: &str) -> bool {
    SCRUBBED.contains(&name) || SCRUBBED_PARTS.iter().any(|p| name.contains(p))
}

/// The request headers, credentials (and the API-key header `key_header`, whatever its
/// name) replaced by [`FILTERED`].
fn scrub_headers(headers: &HeaderMap, key_header: Option<&HeaderName>) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        let n = name.as_str();
        let v = if scrubbed(n) || key_header == Some(name) {
            FILTERED.to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        match out.get_mut(n) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                out.insert(n.to_string(), Value::String(v));
            }
        }
    }
    out
}

/// What the layer keeps of a request: never its body or query.
struct Seen {
    method: Method,
    url: String,
    headers: Map<String, Value>,
    request_id: Option<String>,
}

impl Seen {
    fn of(req: &Request, key_header: Option<&HeaderName>) -> Self {
        let scheme = if req.extensions().get::<Transport>() == Some(&Transport::Tls) {
            "https"
        } else {
            "http"
        };
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let host = host.rsplit('@').next().unwrap_or(host);
        Self {
            method: req.method().clone(),
            url: format!("{scheme}://{host}{}", req.uri().path()),
            headers: scrub_headers(req.headers(), key_header),
            request_id: req
                .headers()
                .get(&X_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        }
    }

    fn event(self, cfg: &SentryConfig, status: u16, route: &str, panic: Option<&str>) -> Value {
        let mut tags = Map::new();
        if let Some(id) = &self.request_id {
            tags.insert("request_id".into(), id.clone().into());
        }
        tags.insert("route".into(), route.into());
        tags.insert("status".into(), status.to_string().into());
        let mut event = json!({
            "timestamp": unix_now(),
            "platform": "other",
            "level": "error",
            "logger": "shieldwall",
            "transaction": format!("{} {route}", self.method),
            "request": {
                "method": self.method.as_str(),
                "url": self.url,
                "headers": self.headers,
            },
            "tags": tags,
            "sdk": {"name": "shieldwall", "version": env!("CARGO_PKG_VERSION")},
        });
        let obj = event.as_object_mut().expect("an object");
        match panic {
            Some(message) => {
                obj.insert("level".into(), "fatal".into());
                obj.insert(
                    "exception".into(),
                    json!({"values": [{
                        "type": "panic",
                        "value": message,
                        "mechanism": {"type": "panic", "handled": false},
                    }]}),
                );
            }
            None => {
                let reason = axum::http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("Server Error");
                obj.insert(
                    "message".into(),
                    json!({"formatted": format!("HTTP {status} {reason} on {} {route}", self.method)}),
                );
            }
        }
        if let Some(e) = &cfg.environment {
            obj.insert("environment".into(), e.clone().into());
        }
        if let Some(r) = &cfg.release {
            obj.insert("release".into(), r.clone().into());
        }
        event
    }
}

/// The reporting layer of the fixed stack (between the panic catcher and the guard).
#[derive(Clone)]
pub(crate) struct SentryLayer {
    reporter: Arc<Reporter>,
}

impl<S> Layer<S> for SentryLayer {
    type Service = Sentry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Sentry {
            inner,
            reporter: self.reporter.clone(),
        }
    }
}

/// Service of [`SentryLayer`].
#[derive(Clone)]
pub(crate) struct Sentry<S> {
    inner: S,
    reporter: Arc<Reporter>,
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)")
}

impl<S> Service<Request> for Sentry<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let seen = Seen::of(&req, self.reporter.cfg.key_header.as_ref());
        let reporter = self.reporter.clone();
        let path = req.uri().path().to_string();
        // A panic is observed, reported, and passed on to the panic catcher above.
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => fut,
            Err(panic) => {
                let event = seen.event(&reporter.cfg, 500, &path, Some(panic_message(&*panic)));
                reporter.report(event, new_event_id());
                std::panic::resume_unwind(panic)
            }
        };
        Box::pin(async move {
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(res)) => {
                    let status = res.status().as_u16();
                    if status >= 500 {
                        let route = res
                            .extensions()
                            .get::<RouteLabel>()
                            .map_or(path, |r| r.0.to_string());
                        let event = seen.event(&reporter.cfg, status, &route, None);
                        reporter.report(event, new_event_id());
                    }
                    Ok(res)
                }
                Ok(Err(e)) => match e {},
                Err(panic) => {
                    let event = seen.event(&reporter.cfg, 500, &path, Some(panic_message(&*panic)));
                    reporter.report(event, new_event_id());
                    std::panic::resume_unwind(panic)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_endpoints() {
        let c = SentryConfig::new("https://abc@o1.ingest.sentry.io/42").unwrap();
        assert_eq!(c.endpoint(), "https://o1.ingest.sentry.io/api/42/envelope/");
        let c = SentryConfig::new("http://k:s@127.0.0.1:9000/sub/path/7").unwrap();
        assert_eq!(
            c.endpoint(),
            "http://127.0.0.1:9000/sub/path/api/7/envelope/"
        );
        for bad in [
            "o1.sentry.io/42",
            "https://o1.sentry.io/42",
            "ftp://k@h/1",
            "https://k@h/",
        ] {
            assert!(SentryConfig::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_scrubbed() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer t"),
            ("cookie", "sid=1"),
            ("x-api-key", "k"),
            ("x-auth-token", "t"),
            ("x-client-credential", "c"),
            ("accept", "application/json"),
        ] {
            h.insert(axum::http::HeaderName::from_static(k), v.parse().unwrap());
        }
        let m = scrub_headers(&h, None);
        assert_eq!(m["authorization"], FILTERED);
        assert_eq!(m["cookie"], FILTERED);
        assert_eq!(m["x-api-key"], FILTERED);
        assert_eq!(m["x-auth-token"], FILTERED);
        assert_eq!(m["accept"], "application/json");
        assert_eq!(m["x-client-credential"], "c", "no generic pattern matches");
        let custom = HeaderName::from_static("x-client-credential");
        let m = scrub_headers(&h, Some(&custom));
        assert_eq!(
            m["x-client-credential"], FILTERED,
            "the configured key header"
        );
    }

    #[test]
    fn env_variable() {
        let mut h = crate::hardening::Hardening::default();
        h.env(|k| (k == "SHIELDWALL_SENTRY_DSN").then(|| "http://k@127.0.0.1:9/3".into()))
            .unwrap();
        assert_eq!(
            h.sentry.unwrap().endpoint(),
            "http://127.0.0.1:9/api/3/envelope/"
        );
        let mut h = crate::hardening::Hardening::default();
        let err = h
            .env(|k| (k == "SHIELDWALL_SENTRY_DSN").then(|| "nonsense".into()))
            .unwrap_err();
        assert!(err.to_string().contains("SHIELDWALL_SENTRY_DSN"), "{err}");
    }

    #[test]
    fn envelope_shape() {
        let id = new_event_id();
        assert_eq!(id.len(), 32);
        let e = envelope("http://k@h/1", &id, &json!({"a": 1}));
        let text = String::from_utf8(e).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let item: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(item["length"], lines[2].len());
        assert!(rfc3339_now().ends_with('Z'));
    }
}

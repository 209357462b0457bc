//! Observability: structured logs with a request id on every line, typed security audit
//! events, and Prometheus metrics.
//!
//! ```no_run
//! use shieldwall_runtime::observe;
//! // SHIELDWALL_LOG=json switches to JSON lines on stdout; RUST_LOG filters.
//! observe::init_logging_from_env();
//! ```
//!
//! - **Request ids**: the front of the app's stack sets `X-Request-Id` and opens a
//!   `request` span carrying it (with the method), so every log line written while the
//!   request is handled carries the id, and writes one access line (with the matched route)
//!   when the response is ready — except for `/health` and `/ready`, which would only be
//!   noise. [`ObserveLayer`] does the span, access line and metrics for routers assembled
//!   by hand.
//! - **Audit events** ([`Audit`]) are typed: authentication success and failure,
//!   authorization denied, rate limited, validation failed, configuration refused; each
//!   carries the route, the principal id, the client IP and a fixed reason. Field values
//!   are recorded with `Debug`, which escapes CR and LF, so user-controlled text cannot
//!   forge a log line; tokens, keys, passwords and secrets are never fields of any event.
//! - **Metrics** ([`Metrics`]): `shieldwall_requests_total{route,method,outcome}` and
//!   `shieldwall_request_duration_seconds{route,outcome}` (outcome: ok, unauthenticated,
//!   forbidden, invalid, limited, error), `shieldwall_rate_store_seconds{store}` and
//!   `shieldwall_rate_store_errors_total{store}`, `shieldwall_jwks_refresh_total{result}`.
//!   Every label value comes from a closed set, never from the request as sent: `route` is
//!   the declared route template (`/users/{id}`) or `unmatched` (404s, 405s, static files,
//!   refusals before routing), `method` is one of the nine standard methods or `other`
//!   ([`method_label`]). A client sending random methods and paths therefore cannot grow
//!   the recorder (each distinct label set is a series kept for the life of the process).
//!   They are served on a separate listener ([`Metrics::serve`], `SHIELDWALL_METRICS_ADDR`),
//!   never on the public API port.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::{Layer, Service};
use tracing::Instrument;

/// Install the global tracing subscriber: JSON lines when `SHIELDWALL_LOG=json`, text
/// otherwise; `RUST_LOG` filters (default `info`). Does nothing if one is installed.
pub fn init_logging_from_env() {
    let json = std::env::var("SHIELDWALL_LOG").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    init_logging(json);
}

/// Install the global tracing subscriber (JSON or text) writing to stdout.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

/// A security audit event. Emitted on target `shieldwall::audit`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Audit<'a> {
    /// A caller authenticated.
    AuthSucceeded {
        /// Handler name.
        route: &'a str,
        /// Principal id.
        principal: &'a str,
        /// Client IP, if known.
        ip: Option<IpAddr>,
    },
    /// Authentication failed.
    AuthFailed {
        /// Handler name.
        route: &'a str,
        /// Client IP, if known.
        ip: Option<IpAddr>,
        /// Fixed reason (never the credential).
        reason: &'static str,
    },
    /// An authenticated caller was refused.
    AuthzDenied {
        /// Handler name.
        route: &'a str,
        /// Principal id.
        principal: &'a str,
        /// Client IP, if known.
        ip: Option<IpAddr>,
    },
    /// A request was rate limited.
    RateLimited {
        /// Handler name.
        route: &'a str,
        /// The quota as declared.
        limit: &'a str,
        /// Principal id, when the limit runs after authentication.
        principal: Option<&'a str>,
        /// Client IP, if known.
        ip: Option<IpAddr>,
    },
    /// Input failed validation.
    ValidationFailed {
        /// Handler name.
        route: &'a str,
        /// Principal id, if authenticated.
        principal: Option<&'a str>,
        /// Client IP, if known.
        ip: Option<IpAddr>,
        /// HTTP status (400, 413, 415, 422).
        status: u16,
    },
    /// The configuration was refused at start-up.
    ConfigRefused {
        /// The setting to fix.
        setting: &'a str,
        /// Why.
        reason: &'a str,
    },
}

impl Audit<'_> {
    /// Emit the event.
    pub fn emit(&self) {
        match *self {
            Self::AuthSucceeded {
                route,
                principal,
                ip,
            } => tracing::debug!(
                target: "shieldwall::audit",
                event = "authentication_succeeded", route, principal, ip = ?ip,
            ),
            Self::AuthFailed { route, ip, reason } => tracing::info!(
                target: "shieldwall::audit",
                event = "authentication_failed", route, ip = ?ip, reason,
            ),
            Self::AuthzDenied {
                route,
                principal,
                ip,
            } => tracing::info!(
                target: "shieldwall::audit",
                event = "authorization_denied", route, principal, ip = ?ip,
            ),
            Self::RateLimited {
                route,
                limit,
                principal,
                ip,
            } => tracing::info!(
                target: "shieldwall::audit",
                event = "rate_limited", route, limit, principal = ?principal, ip = ?ip,
            ),
            Self::ValidationFailed {
                route,
                principal,
                ip,
                status,
            } => tracing::info!(
                target: "shieldwall::audit",
                event = "validation_failed", route, principal = ?principal, ip = ?ip, status,
            ),
            Self::ConfigRefused { setting, reason } => tracing::error!(
                target: "shieldwall::audit",
                event = "configuration_refused", setting, reason,
            ),
        }
    }
}

/// Response extension naming the route (its declared path template, never the request's
/// path: it is a metric label) for metrics and logs; set by the generated handler, since the
/// app-wide layers run outside axum's routing.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// The outcome label of a response status.
pub fn outcome(status: u16) -> &'static str {
    match status {
        401 => "unauthenticated",
        403 => "forbidden",
        429 => "limited",
        400..=499 => "invalid",
        500..=599 => "error",
        _ => "ok",
    }
}

/// The `method` label of a request method: one of the nine standard methods, or `other`
/// for any extension method, so a client cannot mint label values (each distinct value is
/// a series the recorder keeps for the life of the process).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Set once a recorder is installed: without one, no metric labels are built per request.
static METRICS_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Set when something besides metrics and the access log reads [`RouteLabel`] (error
/// tracking).
pub(crate) static ROUTE_LABELS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether responses need their [`RouteLabel`]: metrics, the access log or error tracking
/// read it; without any of them it is not attached (one allocation less per request).
pub(crate) fn route_labels_wanted() -> bool {
    METRICS_ON.load(std::sync::atomic::Ordering::Relaxed)
        || ROUTE_LABELS.load(std::sync::atomic::Ordering::Relaxed)
        || tracing::enabled!(target: "shieldwall::access", tracing::Level::INFO)
}

/// The process's Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Install the Prometheus recorder (once per process; later calls share it).
    pub fn install() -> Option<Self> {
        static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
        HANDLE
            .get_or_init(|| {
                let buckets = [
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ];
                PrometheusBuilder::new()
                    .set_buckets(&buckets)
                    .ok()?
                    .install_recorder()
                    .ok()
            })
            .clone()
            .map(|handle| {
                METRICS_ON.store(true, std::sync::atomic::Ordering::Relaxed);
                Self { handle }
            })
    }

    /// The exposition text (Prometheus text format 0.0.4).
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Serve `GET /metrics` on its own listener (keep it off the public port).
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let m = self.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        );
        axum::serve(listener, app).await
    }
}

/// Paths whose requests are not logged one by one (probes would drown the log).
const QUIET_PATHS: &[&str] = &["/health", "/ready"];

/// One request watched from arrival to response: its span, and what the access line and
/// the metrics need. Nothing is measured when neither a log subscriber nor a metrics
/// recorder wants it.
#[derive(Debug)]
pub(crate) struct Watch {
    span: tracing::Span,
    /// `Some` when a metric or an access line will be written.
    start: Option<Instant>,
    /// The request's `method` label, from the closed set of [`method_label`].
    method: &'static str,
    quiet: bool,
}

impl Watch {
    /// Open the request's span (carrying `request_id`) and start the clock.
    pub(crate) fn begin(req: &Request, request_id: Option<&HeaderValue>) -> Self {
        let method = req.method();
        let quiet = QUIET_PATHS.contains(&req.uri().path());
        let span = match request_id.map(HeaderValue::to_str) {
            Some(Ok(id)) => tracing::info_span!("request", request_id = %id, method = %method),
            _ => tracing::info_span!("request", method = %method),
        };
        let log = !quiet && tracing::enabled!(target: "shieldwall::access", tracing::Level::INFO);
        let timed = log || METRICS_ON.load(std::sync::atomic::Ordering::Relaxed);
        Self {
            span,
            start: timed.then(Instant::now),
            method: method_label(method),
            quiet,
        }
    }

    /// The request's span (entered while its future is polled).
    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Record the response: metrics, and the access line.
    pub(crate) fn end(&self, res: &Response) {
        let Some(start) = self.start else {
            return;
        };
        let status = res.status().as_u16();
        let outcome = outcome(status);
        let route: &'static str = res
            .extensions()
            .get::<RouteLabel>()
            .map_or("unmatched", |r| r.0);
        let elapsed = start.elapsed();
        if METRICS_ON.load(std::sync::atomic::Ordering::Relaxed) {
            metrics::counter!(
                "shieldwall_requests_total",
                "route" => route,
                "method" => self.method,
                "outcome" => outcome,
            )
            .increment(1);
            metrics::histogram!(
                "shieldwall_request_duration_seconds",
                "route" => route,
                "outcome" => outcome,
            )
            .record(elapsed.as_secs_f64());
        }
        if !self.quiet {
            let _e = self.span.enter();
            tracing::info!(
                target: "shieldwall::access",
                route,
                status,
                outcome,
                micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            );
        }
    }
}

/// The trace + metrics layer: one span per request carrying its id, one access line, the
/// request counters and latency histogram. The app's stack does the same work inside its
/// own front service; this layer is for routers assembled by hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

/// Service of [`ObserveLayer`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let watch = Watch::begin(&req, req.headers().get("x-request-id"));
        let fut = self.inner.call(req).instrument(watch.span().clone());
        Box::pin(async move {
            let res = fut.await?;
            watch.end(&res);
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_a_closed_set() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for m in ["get", "M00001", "PROPFIND", &"X".repeat(8192)] {
            assert_eq!(
                method_label(&Method::from_bytes(m.as_bytes()).unwrap()),
                "other"
            );
        }
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(200), "ok");
        assert_eq!(outcome(401), "unauthenticated");
        assert_eq!(outcome(403), "forbidden");
        assert_eq!(outcome(422), "invalid");
        assert_eq!(outcome(429), "limited");
        assert_eq!(outcome(503), "error");
    }
}

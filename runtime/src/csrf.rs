//! Cross-site request forgery protection for cookie-authenticated browser requests.
//!
//! ```
//! use shieldwall_runtime::csrf::Csrf;
//!
//! // On by default; trust an extra origin that may post forms to this app:
//! let csrf = Csrf::new().trusted_origin("https://login.example.com");
//! assert!(csrf.validate().is_ok());
//! // A bearer-token-only API may also switch it off explicitly:
//! let _off = Csrf::disabled();
//! ```
//!
//! The check is tower-http's [`tower_http::csrf`] layer (the scheme of Go 1.25's
//! `CrossOriginProtection`): an unsafe method (`POST`, `PUT`, `PATCH`, `DELETE`) is refused
//! with 403 problem+json when the browser says it is cross-site (`Sec-Fetch-Site`), or
//! when its `Origin` is neither this host nor a trusted origin. No token state is kept.
//!
//! It applies only to requests that a browser could forge with ambient credentials: those
//! carrying a `Cookie` and no `Authorization` header. Bearer-token API calls are not
//! subject to it — a cross-site page cannot attach someone else's bearer token — so a pure
//! token API never sees it. Origins allowed by [`crate::cors::Cors`] are trusted too.
//!
//! # Schemes count
//!
//! tower-http's fallback for browsers that send no `Sec-Fetch-Site` compares the `Origin`'s
//! host and port with the request's `Host` only. Here the scheme must match too:
//! `Origin: http://api.example.com` posting to `https://api.example.com` comes from a page
//! served over plain HTTP — which anyone on the network path can write — and is refused
//! with the same 403 unless that origin is trusted. The request's scheme is the client's
//! ([`ClientScheme`]): behind a TLS-terminating proxy, the one a trusted proxy forwarded
//! (see [`crate::client_ip`]), so `Origin: https://…` through the proxy matches and the
//! same header sent directly over plain HTTP does not. Browsers that send
//! `Sec-Fetch-Site` already compare schemes (`same-origin` means same scheme too).

use std::convert::Infallible;
use std::task::{Context, Poll};

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, Ready, ready};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use crate::client_ip::ClientScheme;
use crate::error::Problem;

/// Why a CSRF configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CSRF trusted origin {origin:?}: {why}")]
pub struct CsrfError {
    /// The origin as given.
    pub origin: String,
    /// What is wrong.
    pub why: String,
}

/// Cross-site request protection settings. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Csrf {
    enabled: bool,
    trusted: Vec<String>,
}

impl Default for Csrf {
    fn default() -> Self {
        Self::new()
    }
}

impl Csrf {
    /// Protection on (the default), trusting only same-origin requests and CORS origins.
    pub fn new() -> Self {
        Self {
            enabled: true,
            trusted: Vec::new(),
        }
    }

    /// Protection off (an explicit loosening; only for apps without cookie sessions).
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            trusted: Vec::new(),
        }
    }

    /// Trust cross-origin requests from this origin (`https://host[:port]`).
    pub fn trusted_origin(mut self, origin: impl Into<String>) -> Self {
        self.trusted.push(origin.into());
        self
    }

    /// Whether the protection is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Check the trusted origins; `build()` calls this.
    pub fn validate(&self) -> Result<(), CsrfError> {
        self.tower_layer(&[]).map(|_| ())
    }

    fn tower_layer(&self, extra: &[String]) -> Result<tower_http::csrf::CsrfLayer, CsrfError> {
        let mut layer = tower_http::csrf::CsrfLayer::new();
        for o in self.trusted.iter().chain(extra) {
            layer = layer.add_trusted_origin(o).map_err(|e| CsrfError {
                origin: o.clone(),
                why: e.to_string(),
            })?;
        }
        Ok(layer)
    }

    /// The layer, trusting `extra` origins (the CORS origins) too; `None` when disabled.
    pub(crate) fn layer(&self, extra: &[String]) -> Result<Option<CookieCsrfLayer>, CsrfError> {
        if !self.enabled {
            return Ok(None);
        }
        Ok(Some(CookieCsrfLayer {
            inner: self.tower_layer(extra)?,
            trusted: self.trusted.iter().chain(extra).cloned().collect(),
        }))
    }
}

fn cross_site() -> Response {
    Problem::new(StatusCode::FORBIDDEN, "cross-site-request", "Forbidden")
        .with_detail("Cross-site requests with cookies are not accepted here.")
        .into_response()
}

fn rejection(_: tower_http::csrf::ProtectionError) -> Response {
    cross_site()
}

/// The case tower-http's `Origin`/`Host` fallback lets through although the origins
/// differ: an unsafe request without `Sec-Fetch-Site` whose untrusted `Origin` names this
/// host and port with the other scheme than the client's (see the [module docs](self)).
fn other_scheme_same_host(req: &Request, trusted: &[String]) -> bool {
    let h = req.headers();
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || h.get("sec-fetch-site").is_some_and(|v| !v.is_empty())
    {
        return false;
    }
    let Some(origin) = h.get(header::ORIGIN) else {
        return false;
    };
    if trusted.iter().any(|t| t.as_bytes() == origin.as_bytes()) {
        return false;
    }
    let Ok(uri) = Uri::try_from(origin.as_bytes()) else {
        return false;
    };
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return false;
    };
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| h.get(header::HOST).map(|v| v.as_bytes()));
    if host != Some(authority.as_str().as_bytes()) {
        // Another host: tower-http refuses it (unless trusted).
        return false;
    }
    let origin_https = scheme.eq_ignore_ascii_case("https");
    origin_https != ClientScheme::of(req.extensions()).is_https()
}

type Rejector = fn(tower_http::csrf::ProtectionError) -> Response;

/// Applies tower-http's CSRF check to cookie-carrying requests without `Authorization`,
/// with schemes compared.
#[derive(Debug, Clone)]
pub(crate) struct CookieCsrfLayer {
    inner: tower_http::csrf::CsrfLayer,
    trusted: Arc<[String]>,
}

impl<S: Clone> Layer<S> for CookieCsrfLayer {
    type Service = CookieCsrf<S>;
    fn layer(&self, inner: S) -> Self::Service {
        let checked = self
            .inner
            .clone()
            .with_rejection_response(rejection as Rejector)
            .layer(inner.clone());
        CookieCsrf {
            plain: inner,
            checked,
            trusted: self.trusted.clone(),
        }
    }
}

/// See [`CookieCsrfLayer`].
#[derive(Debug, Clone)]
pub(crate) struct CookieCsrf<S> {
    plain: S,
    checked: tower_http::csrf::Csrf<S, Rejector>,
    trusted: Arc<[String]>,
}

impl<S> Service<Request> for CookieCsrf<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Either<Oneshot<S, Request>, Oneshot<tower_http::csrf::Csrf<S, Rejector>, Request>>,
        Ready<Result<Response, Infallible>>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let h = req.headers();
        if h.contains_key(header::COOKIE) && !h.contains_key(header::AUTHORIZATION) {
            if other_scheme_same_host(&req, &self.trusted) {
                return Either::Right(ready(Ok(cross_site())));
            }
            Either::Left(Either::Right(self.checked.clone().oneshot(req)))
        } else {
            Either::Left(Either::Left(self.plain.clone().oneshot(req)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn status(req: Request) -> u16 {
        let svc = tower::service_fn(|_req: Request| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        let layer = Csrf::new()
            .layer(&["https://app.example.com".into()])
            .unwrap()
            .unwrap();
        layer
            .layer(svc)
            .oneshot(req)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut b = Request::post("/transfer").header("host", "bank.example");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn cookie_requests_are_checked() {
        let cross = [
            ("cookie", "sid=1"),
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(status(post(&cross)).await, 403);
        assert_eq!(
            status(post(&[
                ("cookie", "sid=1"),
                ("sec-fetch-site", "same-origin")
            ]))
            .await,
            200
        );
        assert_eq!(
            status(post(&[
                ("cookie", "sid=1"),
                ("origin", "https://app.example.com"),
                ("sec-fetch-site", "cross-site")
            ]))
            .await,
            200,
            "a CORS origin is trusted"
        );
        assert_eq!(
            status(post(&[
                ("cookie", "sid=1"),
                ("origin", "https://evil.example")
            ]))
            .await,
            403
        );
    }

    #[tokio::test]
    async fn schemes_must_match_without_sec_fetch_site() {
        // This plain-HTTP request (no TLS, no trusted proxy) is on http://bank.example.
        let plain = |origin: &str| post(&[("cookie", "sid=1"), ("origin", origin)]);
        assert_eq!(status(plain("http://bank.example")).await, 200);
        assert_eq!(status(plain("https://bank.example")).await, 403);
        // Over TLS (or as a trusted proxy said) it is on https://bank.example.
        let tls = |origin: &str| {
            let mut r = plain(origin);
            r.extensions_mut().insert(crate::server::Transport::Tls);
            r
        };
        assert_eq!(status(tls("https://bank.example")).await, 200);
        assert_eq!(status(tls("http://bank.example")).await, 403);
        let mut forwarded = plain("https://bank.example");
        forwarded.extensions_mut().insert(ClientScheme::Https);
        assert_eq!(status(forwarded).await, 200);
        // The browser's own verdict stands when it gives one.
        let mut r = plain("https://bank.example");
        r.headers_mut()
            .insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert_eq!(status(r).await, 200);
        // Safe methods are never checked.
        let mut r = plain("https://bank.example");
        *r.method_mut() = Method::GET;
        assert_eq!(status(r).await, 200);
    }

    #[tokio::test]
    async fn bearer_requests_are_not() {
        let h = [
            ("authorization", "Bearer x"),
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(status(post(&h)).await, 200);
        let no_cookie = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        assert_eq!(status(post(&no_cookie)).await, 200);
    }

    #[test]
    fn trusted_origins_are_validated() {
        assert!(
            Csrf::new()
                .trusted_origin("https://a.example/path")
                .validate()
                .is_err()
        );
        assert!(
            Csrf::new()
                .trusted_origin("https://a.example")
                .validate()
                .is_ok()
        );
    }
}

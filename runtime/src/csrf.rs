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

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

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
        }))
    }
}

fn rejection(_: tower_http::csrf::ProtectionError) -> Response {
    Problem::new(StatusCode::FORBIDDEN, "cross-site-request", "Forbidden")
        .with_detail("Cross-site requests with cookies are not accepted here.")
        .into_response()
}

type Rejector = fn(tower_http::csrf::ProtectionError) -> Response;

/// Applies tower-http's CSRF check to cookie-carrying requests without `Authorization`.
#[derive(Debug, Clone)]
pub(crate) struct CookieCsrfLayer {
    inner: tower_http::csrf::CsrfLayer,
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
        }
    }
}

/// See [`CookieCsrfLayer`].
#[derive(Debug, Clone)]
pub(crate) struct CookieCsrf<S> {
    plain: S,
    checked: tower_http::csrf::Csrf<S, Rejector>,
}

impl<S> Service<Request> for CookieCsrf<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future =
        Either<Oneshot<S, Request>, Oneshot<tower_http::csrf::Csrf<S, Rejector>, Request>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let h = req.headers();
        if h.contains_key(header::COOKIE) && !h.contains_key(header::AUTHORIZATION) {
            Either::Right(self.checked.clone().oneshot(req))
        } else {
            Either::Left(self.plain.clone().oneshot(req))
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

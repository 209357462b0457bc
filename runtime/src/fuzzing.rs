//! Entry points for the fuzz targets in `fuzz/`: thin wrappers that reach the parsers a
//! request's bytes go through but which are private to the runtime. Not for users: it is
//! compiled only with the `fuzzing` feature, is no stable API, and may change with any
//! release.
//!
//! Each wrapper calls the code a served request runs, never a copy of it; those that run a
//! future complete it on its first poll (static JWT keys, an in-memory body) or on a
//! current-thread runtime of their own (static files, which read the file system).

use std::convert::Infallible;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use tower::{Layer, ServiceExt};

use crate::auth::jwt::{self, Jwt, JwtConfigError, JwtVerifier, StrictClaims};
use crate::bench_support::ready;
use crate::cors::Cors;
use crate::error::Rejection;
use crate::hosts::{self, AllowedHosts};
use crate::principal::Principal;
use crate::static_files::{self, StaticService};

/// The bearer token of an `Authorization` value (`Ok(None)`: another scheme), as the
/// request path reads it.
pub fn bearer(value: &[u8]) -> Result<Option<&[u8]>, Rejection> {
    jwt::bearer(value)
}

/// The token as text when it is a token68 value.
pub fn token68(token: &[u8]) -> Result<&str, Rejection> {
    jwt::token68(token)
}

/// A verifier compiled from `jwt` as the app compiles it.
pub fn jwt_verifier(jwt: &Jwt) -> Result<JwtVerifier, JwtConfigError> {
    jwt.compile()
}

/// The request path's check of the raw bearer bytes: the verified-token cache, then the
/// token68 check and full verification. With static keys only (a remote key set would
/// wait on I/O and panic here).
pub fn verify_bearer(verifier: &JwtVerifier, raw: &[u8]) -> Result<Principal, Rejection> {
    ready(verifier.verify_bearer(raw))
}

/// A token's payload read as the verifier reads it: a JSON object whose keys are unique at
/// every depth.
pub fn strict_claims(json: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    serde_json::from_slice::<StrictClaims>(json).map(|c| c.0)
}

/// A `Host` value normalized for matching (lower case, no port, no trailing dot, IPv6 in
/// brackets), or `None` when it is malformed.
pub fn host_normalize(value: &str) -> Option<String> {
    hosts::normalize(value).map(|h| h.into_owned())
}

/// Both ways [`AllowedHosts::allows`] can decide: the shortcut for a host already in normal
/// form, and the full match of the normalized host (`None`: it does not normalize).
pub fn host_decisions(hosts: &AllowedHosts, value: &str) -> (bool, Option<bool>) {
    let full = hosts::normalize(value).map(|h| hosts.allows_normalized(&h));
    (hosts.allows_as_is(value), full)
}

/// Whether a request with these headers and this target passes the host check.
pub fn host_check(hosts: &AllowedHosts, headers: &HeaderMap, uri: &Uri) -> bool {
    hosts.check_request(headers, uri).is_ok()
}

/// The segments of a static-file request path, each decoded once, or `None` when unsafe.
pub fn static_segments(raw: &str) -> Option<Vec<String>> {
    static_files::safe_segments(raw)
}

/// Serve a `GET` of `target` (a path, possibly with a query, as the mount passes it on)
/// through `service`, with the request as received being `/static` + `target`: the status
/// and the whole body. `None` when `target` is not a request target.
pub fn static_get(service: &StaticService, target: &[u8]) -> Option<(StatusCode, Vec<u8>)> {
    let uri = Uri::try_from(target).ok()?;
    let original = Uri::try_from([b"/static".as_slice(), target].concat()).ok()?;
    let mut req = Request::new(Body::empty());
    *req.uri_mut() = uri;
    req.extensions_mut().insert(OriginalUri(original));
    let service = service.clone();
    Some(runtime().block_on(async move {
        let Ok(res) = service.oneshot(req).await;
        let status = res.status();
        let body = res.into_body().collect().await;
        (
            status,
            body.map(|b| b.to_bytes().to_vec()).unwrap_or_default(),
        )
    }))
}

/// The `Access-Control-Allow-Origin` the app's CORS layer (for an app whose routes answer
/// `GET` and `POST`) puts on the response to a `GET` from `origin`; `None` when there is none
/// or the configuration is refused.
pub fn cors_allow_origin(cors: &Cors, origin: HeaderValue) -> Option<HeaderValue> {
    let layer = cors.layer(&[Method::GET, Method::POST], true, true).ok()?;
    let inner =
        tower::service_fn(|_: Request| async { Ok::<_, Infallible>(Response::new(Body::empty())) });
    let mut req = Request::new(Body::empty());
    req.headers_mut().insert(header::ORIGIN, origin);
    let Ok(res) = ready(layer.layer(inner).oneshot(req));
    res.headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .cloned()
}

/// A realm as [`crate::app::Shieldwall::realm`] keeps it.
pub fn sanitize_realm(realm: &str) -> String {
    crate::error::sanitize_realm(realm)
}

/// A response as sent: status, headers and the whole body. The body must be in memory
/// (every problem document is).
pub fn response_parts(res: Response) -> (StatusCode, HeaderMap, Vec<u8>) {
    let (parts, body) = res.into_parts();
    let body = ready(body.collect())
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    (parts.status, parts.headers, body)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime")
    })
}

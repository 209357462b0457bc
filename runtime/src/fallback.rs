//! Fallbacks: unknown paths and methods, refused methods, and panics — all problem+json.
//!
//! ```
//! use axum::http::Method;
//! use shieldwall_runtime::fallback::refused_method;
//!
//! assert!(refused_method(&Method::TRACE));
//! assert!(!refused_method(&Method::GET));
//! ```
//!
//! - No route: 404 `urn:shieldwall:problem:not-found`; a route without the method: 405
//!   with `Allow` (axum's answer, rendered in the error contract).
//! - `TRACE` (cross-site tracing) and `CONNECT` are refused with 405 before routing, on
//!   every path, static files included.
//! - A panicking handler is caught: the client gets a generic 500 problem whose `instance`
//!   is `urn:uuid:<request id>` (the same id as its `X-Request-Id` header), never the panic
//!   text; the panic message is logged with the request id (target `shieldwall::panic`),
//!   and the connection and the server keep serving. It carries the security headers
//!   (HSTS when the request came over TLS) and `Cache-Control: no-store`.

use std::any::Any;

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Problem;

/// The request-id header every response carries.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Methods refused on every path: `TRACE` and `CONNECT`.
pub fn refused_method(method: &Method) -> bool {
    method == Method::TRACE || method == Method::CONNECT
}

/// The 405 for a refused method.
pub(crate) fn method_refusal() -> Problem {
    Problem::from_status(StatusCode::METHOD_NOT_ALLOWED).with_detail("This method is not served.")
}

/// The generic 500 for a caught panic (see the [module docs](self)); the panic text is
/// logged with the request id, never sent.
pub(crate) fn panic_response(panic: &(dyn Any + Send), id: Option<HeaderValue>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic payload)");
    let id_str = id
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown")
        .to_string();
    tracing::error!(
        target: "shieldwall::panic",
        request_id = %id_str,
        panic = message,
        "a handler panicked; answered 500"
    );
    let mut p = Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal Server Error",
    )
    .with_detail("The server could not handle this request.");
    if let Some(v) = id {
        p = p
            .with_instance(format!("urn:uuid:{id_str}"))
            .with_header(X_REQUEST_ID.clone(), v);
    }
    p.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_and_connect_are_refused() {
        assert!(refused_method(&Method::CONNECT));
        assert_eq!(method_refusal().status(), 405);
    }
}

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
//!   and the connection and the server keep serving.

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::CatchUnwind;
use tower::{Layer, Service};

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

/// Catches panics in the services below and answers a generic 500.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// See [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub(crate) struct CatchPanic<S> {
    inner: S,
}

impl<S> Service<Request> for CatchPanic<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = PanicFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let id = req.headers().get(&X_REQUEST_ID).cloned();
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(req))) {
            Ok(fut) => PanicFuture::Running {
                fut: AssertUnwindSafe(fut).catch_unwind(),
                id,
            },
            Err(panic) => PanicFuture::Done {
                res: Some(panic_response(panic.as_ref(), id)),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// Future of [`CatchPanic`].
    #[project = PanicProj]
    pub(crate) enum PanicFuture<F> {
        /// The inner future, unwinding caught.
        Running { #[pin] fut: CatchUnwind<AssertUnwindSafe<F>>, id: Option<HeaderValue> },
        /// Panicked while being called.
        Done { res: Option<Response> },
    }
}

impl<F> Future for PanicFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            PanicProj::Running { fut, id } => match fut.poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Ok(res)) => Poll::Ready(res),
                Poll::Ready(Err(panic)) => {
                    Poll::Ready(Ok(panic_response(panic.as_ref(), id.take())))
                }
            },
            PanicProj::Done { res } => Poll::Ready(Ok(res
                .take()
                .unwrap_or_else(|| panic_response(&"polled twice", None)))),
        }
    }
}

fn panic_response(panic: &(dyn Any + Send), id: Option<HeaderValue>) -> Response {
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
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn panics_become_generic_500s() {
        let svc = CatchPanicLayer.layer(tower::service_fn(|req: Request| async move {
            if req.uri().path() == "/boom" {
                panic!("secret database password in panic text");
            }
            Ok::<_, Infallible>(Response::new(Body::from("fine")))
        }));
        let req = Request::get("/boom")
            .header("x-request-id", "2b1c8a3e-0000-4000-8000-000000000001")
            .body(Body::empty())
            .unwrap();
        let res = svc.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), 500);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("secret"), "{text}");
        assert!(
            text.contains("urn:uuid:2b1c8a3e-0000-4000-8000-000000000001"),
            "{text}"
        );
        let ok = svc
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
    }

    #[test]
    fn trace_and_connect_are_refused() {
        assert!(refused_method(&Method::CONNECT));
        assert_eq!(method_refusal().status(), 405);
    }
}

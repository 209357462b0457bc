//! Items used by code that `#[secure]` generates. Not a public API.

pub use axum::Form;
pub use axum::Json;
pub use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
pub use axum::http::request::Parts;
pub use axum::response::{IntoResponse, Response};
pub use axum::routing::MethodRouter;

pub use crate::policy::{
    Access, AuthKind, Expr, Method, Per, Policy, Rate, Requirements, Role, RoleRef,
};
pub use crate::route::{Finish, Guard, RouteFactory, body_request};
pub use crate::validate::{form, json, query, validate, Validated};

use axum::handler::Handler;

/// Mount a generated handler for one method.
pub fn on<H, T, S>(method: Method, handler: H) -> MethodRouter<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    axum::routing::on(method.filter(), handler)
}

/// The name of a typed role.
pub fn role_name<R: Role>(role: &R) -> &'static str {
    role.name()
}

/// An argument in any but the last position must be a `FromRequestParts` extractor.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an axum extractor that can appear before the last argument",
    label = "not a `FromRequestParts` extractor",
    note = "every argument but the last must implement `axum::extract::FromRequestParts`; body extractors (`Json`, `Form`, `String`, `Bytes`) go last"
)]
pub trait PartsExtractor<S> {}
impl<T: FromRequestParts<S>, S> PartsExtractor<S> for T {}

/// The last argument must be a `FromRequest` (or `FromRequestParts`) extractor.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an axum extractor",
    label = "not a `FromRequest` or `FromRequestParts` extractor",
    note = "handler arguments must implement `axum::extract::FromRequestParts`, or `FromRequest` for the last one"
)]
pub trait LastExtractor<S, M> {}
impl<T: FromRequest<S, M>, S, M> LastExtractor<S, M> for T {}

/// Compile-time check of a non-last argument.
pub fn assert_parts<T: PartsExtractor<S>, S>() {}
/// Compile-time check of the last argument.
pub fn assert_last<T: LastExtractor<S, M>, S, M>() {}
/// Compile-time check of a validated argument.
pub fn assert_validated<T: Validated + ?Sized>() {}
/// Compile-time check of a deserialized argument.
pub fn assert_deserialize<T: serde::de::DeserializeOwned>() {}

//! Items used by code that `#[secure]` generates. Not a public API.

pub use axum::Form;
pub use axum::Json;
pub use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
pub use axum::http::request::Parts;
pub use axum::response::{IntoResponse, Response};
pub use axum::routing::MethodRouter;

pub use crate::policy::{
    Access, AuthKind, Expr, Method, OnOutage, Per, Policy, Rate, Requirements, Role, RoleRef,
};
pub use crate::route::{Finish, Guard, RouteFactory, body_request};
pub use crate::validate::{Validated, form, json, query, validate};

use std::future::Future;
use std::marker::PhantomData;

use axum::handler::Handler;
use serde::de::DeserializeOwned;

use crate::error::Rejection;

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

/// The handler's return type must be a response.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent as a response: it does not implement `IntoResponse`",
    label = "the handler's return type must implement `axum::response::IntoResponse`",
    note = "return `Json<{Self}>` (with `#[derive(Serialize)]`), a `String`, a `StatusCode`, or `Result<_, Problem>`; or implement `IntoResponse` for `{Self}`"
)]
pub trait Respond {
    /// Convert into a response.
    fn respond(self) -> Response;
}

impl<T: IntoResponse> Respond for T {
    fn respond(self) -> Response {
        self.into_response()
    }
}

/// Turn the handler's output into a response.
pub fn respond<T: Respond>(value: T) -> Response {
    value.respond()
}

/// Compile-time check of a validated argument.
pub fn assert_validated<T: Validated + ?Sized>() {}

/// The inner type of a `Json`, `Form`, `Query` or `Path` argument must be deserializable.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from the request: it does not implement `Deserialize`",
    label = "this type must `#[derive(Deserialize)]`",
    note = "add `#[derive(Deserialize)]` (from `shieldwall::prelude`) to `{Self}`"
)]
pub trait Deserializable {}
impl<T: DeserializeOwned> Deserializable for T {}

/// Compile-time check of a deserialized argument.
pub fn assert_deserialize<T: Deserializable>() {}

/// The inner type `T` of a `Json`, `Form`, `Query` or `Path` argument, for method dispatch.
///
/// Generated handlers read and validate through `(&Arg::<T>::NEW).json(..)` and
/// `(&Arg::<T>::NEW).check(..)` rather than calling [`json`] or [`validate`] directly. When
/// `T` lacks `Deserialize` or `Validate`, method resolution picks the `*Fallback` trait, so
/// the only error is the one from [`assert_deserialize`] or [`assert_validated`], at the
/// user's type, instead of a second one at the attribute. Those assertions are always
/// generated next to the call, so a program in which a fallback is chosen does not compile;
/// the fallbacks fail closed (500) all the same.
pub struct Arg<T>(PhantomData<fn() -> T>);

impl<T> Arg<T> {
    /// The dispatch value.
    pub const NEW: Self = Self(PhantomData);
}

/// Read `T` from the request (chosen when `T: Deserialize`).
pub trait Read<T> {
    /// A JSON body.
    fn json(&self, req: Request, limit: u64) -> impl Future<Output = Result<T, Rejection>>;
    /// An urlencoded form.
    fn form(&self, req: Request, limit: u64) -> impl Future<Output = Result<T, Rejection>>;
    /// The query string.
    fn query(&self, parts: &Parts) -> Result<T, Rejection>;
}

impl<T: DeserializeOwned> Read<T> for Arg<T> {
    fn json(&self, req: Request, limit: u64) -> impl Future<Output = Result<T, Rejection>> {
        json::<T>(req, limit)
    }
    fn form(&self, req: Request, limit: u64) -> impl Future<Output = Result<T, Rejection>> {
        form::<T>(req, limit)
    }
    fn query(&self, parts: &Parts) -> Result<T, Rejection> {
        query::<T>(parts)
    }
}

/// Fallback of [`Read`] for a `T` without `Deserialize`; never part of a program that builds.
pub trait ReadFallback<T> {
    /// Refuses (500).
    fn json(&self, req: Request, limit: u64) -> impl Future<Output = Result<T, Rejection>>;
    /// Refuses (500).
    fn form(&self, req: Request, limit: u64) -> impl Future<Output = Result<T, Rejection>>;
    /// Refuses (500).
    fn query(&self, parts: &Parts) -> Result<T, Rejection>;
}

impl<T> ReadFallback<T> for &Arg<T> {
    fn json(&self, _: Request, _: u64) -> impl Future<Output = Result<T, Rejection>> {
        std::future::ready(Err(Rejection::Internal))
    }
    fn form(&self, _: Request, _: u64) -> impl Future<Output = Result<T, Rejection>> {
        std::future::ready(Err(Rejection::Internal))
    }
    fn query(&self, _: &Parts) -> Result<T, Rejection> {
        Err(Rejection::Internal)
    }
}

/// Validate `T` (chosen when `T: Validate`).
pub trait Check<T> {
    /// Run the validation rules; failures are a 422.
    fn check(&self, value: &T) -> Result<(), Rejection>;
}

impl<T: Validated> Check<T> for Arg<T> {
    fn check(&self, value: &T) -> Result<(), Rejection> {
        validate(value)
    }
}

/// Fallback of [`Check`] for a `T` without `Validate`; never part of a program that builds.
pub trait CheckFallback<T> {
    /// Refuses (500).
    fn check(&self, value: &T) -> Result<(), Rejection>;
}

impl<T> CheckFallback<T> for &Arg<T> {
    fn check(&self, _: &T) -> Result<(), Rejection> {
        Err(Rejection::Internal)
    }
}

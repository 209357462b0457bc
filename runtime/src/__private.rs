//! Items used by code that `#[secure]` generates. Not a public API.

pub use axum::Form;
pub use axum::Json;
pub use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
pub use axum::http::request::Parts;
pub use axum::response::{IntoResponse, Response};
pub use axum::routing::MethodRouter;

pub use crate::policy::{
    Access, AuthKind, Expr, Method, OnOutage, Per, Policy, Rate, Requirements, Role, RoleRef,
};
pub use crate::route::{Finish, Guard, RouteFactory, body_request, check_entry, enforce_entry};
pub use crate::validate::{Validated, form, json, query, validate};

use std::future::Future;
use std::marker::PhantomData;

use axum::body::Body;
use axum::handler::Handler;
use serde::de::DeserializeOwned;
use validator::ValidationErrors;

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
/// `(&&&Arg::<T>::NEW).check(..)` rather than calling [`json`] or [`validate`] directly.
/// When `T` lacks `Deserialize`, or neither implements `Validate` nor is [`Plain`], method
/// resolution picks [`ReadFallback`] or [`UnvalidatedInner`], so the only error is the one
/// from [`assert_deserialize`] or [`assert_validated`], at the user's type, instead of a
/// second one at the attribute. Those assertions are always generated next to the call, so
/// a program in which a fallback is chosen does not compile; the fallbacks fail closed
/// (500) all the same.
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

// ---------------------------------------------------------------- validation by type
//
// Whether an argument is validated is decided by its type, never by how it is spelled: a
// rename (`use axum::Json as J`), an alias (`type J<T> = Json<T>`) or a re-export of `Json`,
// `Form`, `Query` or `Path` is validated like the original. The decision is made at compile
// time by method resolution on the concrete type ("autoref specialization"): each level is
// a trait implemented for one more `&` than the next, and the call `(&&&X::NEW).m()` picks
// the most referenced impl whose bounds hold. Nothing of it is left at run time but the
// chosen call.

/// Types with nothing to validate: strings, numbers, ids, and options, lists, boxes, maps
/// and tuples of them. A `Json`, `Form`, `Query` or `Path` of one needs no `Validate`.
pub trait Plain {}

macro_rules! plain {
    ($($t:ty),* $(,)?) => { $(impl Plain for $t {})* };
}
plain!(
    String,
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    (),
    uuid::Uuid,
);
plain!(
    std::num::NonZeroU8,
    std::num::NonZeroU16,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroU128,
    std::num::NonZeroUsize,
    std::num::NonZeroI8,
    std::num::NonZeroI16,
    std::num::NonZeroI32,
    std::num::NonZeroI64,
    std::num::NonZeroI128,
    std::num::NonZeroIsize,
);
impl<T: Plain> Plain for Option<T> {}
impl<T: Plain> Plain for Vec<T> {}
impl<T: Plain> Plain for Box<T> {}
impl<K, V: Plain, H> Plain for std::collections::HashMap<K, V, H> {}
impl<K, V: Plain> Plain for std::collections::BTreeMap<K, V> {}

macro_rules! plain_tuples {
    ($(($($t:ident),+)),* $(,)?) => { $(impl<$($t: Plain),+> Plain for ($($t,)+) {})* };
}
plain_tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H),
);

/// What a validated argument's content must satisfy: `T: Validate` ([`assert_validated`]).
pub struct Need<T>(PhantomData<fn() -> T>);

impl<T> Need<T> {
    const NEW: Self = Self(PhantomData);
}

/// The content of an argument with nothing to validate; trivially valid.
pub struct NoInput;

impl validator::Validate for NoInput {
    fn validate(&self) -> Result<(), ValidationErrors> {
        Ok(())
    }
}

/// Compile-time check of a validated argument: `T` is what the argument's type dispatch
/// found to validate (its content, or [`NoInput`] when there is nothing to validate).
pub fn assert_validated<T: Validated>(_: Need<T>) {}

/// Level 1 for the content `T` of a `Json`, `Form`, `Query` or `Path` written by name: `T`
/// implements `Validate`, so it is validated.
pub trait ValidateInner<T> {
    /// `T` must implement `Validate`.
    fn need(self) -> Need<T>;
    /// Run the validation rules; failures are a 422.
    fn check(self, value: &T) -> Result<(), Rejection>;
}

impl<T: Validated> ValidateInner<T> for &&&Arg<T> {
    fn need(self) -> Need<T> {
        Need::NEW
    }
    fn check(self, value: &T) -> Result<(), Rejection> {
        validate(value)
    }
}

/// Level 2: `T` is [`Plain`], nothing to validate.
pub trait PlainInner<T> {
    /// Nothing is required.
    fn need(self) -> Need<NoInput>;
    /// Nothing to check.
    fn check(self, value: &T) -> Result<(), Rejection>;
}

impl<T: Plain> PlainInner<T> for &&Arg<T> {
    fn need(self) -> Need<NoInput> {
        Need::NEW
    }
    fn check(self, _: &T) -> Result<(), Rejection> {
        Ok(())
    }
}

/// Level 3: `T` neither validates nor is plain. [`assert_validated`] refuses the program
/// at the user's type, so this is never part of a program that builds; it fails closed.
pub trait UnvalidatedInner<T> {
    /// `T` must implement `Validate`: this is the compile error.
    fn need(self) -> Need<T>;
    /// Refuses (500).
    fn check(self, value: &T) -> Result<(), Rejection>;
}

impl<T> UnvalidatedInner<T> for &Arg<T> {
    fn need(self) -> Need<T> {
        Need::NEW
    }
    fn check(self, _: &T) -> Result<(), Rejection> {
        Err(Rejection::Internal)
    }
}

/// The extractors whose content `#[secure]` validates, recognised by type: `Json`, `Form`,
/// `Query` and `Path`, under any name.
pub trait Input {
    /// The deserialized content.
    type Inner;
    /// The content, for validation.
    fn inner(&self) -> &Self::Inner;
}

macro_rules! input {
    ($($x:ident),*) => {$(
        impl<T> Input for $x<T> {
            type Inner = T;
            fn inner(&self) -> &T {
                &self.0
            }
        }
    )*};
}
input!(Json, Form, Query, Path);

/// A whole argument type `A` (spelled any way), for method dispatch by type: its
/// validation ([`ValidateArg`] … [`OtherArg`]), whether axum would read it around
/// `#[secure]` ([`WrappedArg`]), and how it is read ([`ReadOwnParts`], [`ReadOwnBody`]).
pub struct Probe<A>(PhantomData<fn() -> A>);

impl<A> Probe<A> {
    /// The dispatch value.
    pub const NEW: Self = Self(PhantomData);
}

/// Level 1: an [`Input`] whose content implements `Validate`: validated.
pub trait ValidateArg<A: Input> {
    /// The content must implement `Validate`.
    fn arg_need(self) -> Need<A::Inner>;
    /// Run the content's validation rules; failures are a 422.
    fn arg_check(self, value: &A) -> Result<(), Rejection>;
}

impl<A: Input> ValidateArg<A> for &&&&Probe<A>
where
    A::Inner: Validated,
{
    fn arg_need(self) -> Need<A::Inner> {
        Need::NEW
    }
    fn arg_check(self, value: &A) -> Result<(), Rejection> {
        validate(value.inner())
    }
}

/// Level 2: an [`Input`] of a [`Plain`] content: nothing to validate.
pub trait PlainArg<A> {
    /// Nothing is required.
    fn arg_need(self) -> Need<NoInput>;
    /// Nothing to check.
    fn arg_check(self, value: &A) -> Result<(), Rejection>;
}

impl<A: Input> PlainArg<A> for &&&Probe<A>
where
    A::Inner: Plain,
{
    fn arg_need(self) -> Need<NoInput> {
        Need::NEW
    }
    fn arg_check(self, _: &A) -> Result<(), Rejection> {
        Ok(())
    }
}

/// Level 3: an [`Input`] whose content neither validates nor is plain: the compile error
/// of [`assert_validated`], at the user's argument. Never part of a program that builds.
pub trait UnvalidatedArg<A: Input> {
    /// The content must implement `Validate`: this is the compile error.
    fn arg_need(self) -> Need<A::Inner>;
    /// Refuses (500).
    fn arg_check(self, value: &A) -> Result<(), Rejection>;
}

impl<A: Input> UnvalidatedArg<A> for &&Probe<A> {
    fn arg_need(self) -> Need<A::Inner> {
        Need::NEW
    }
    fn arg_check(self, _: &A) -> Result<(), Rejection> {
        Err(Rejection::Internal)
    }
}

/// Level 4: any other extractor (`Principal`, `HeaderMap`, `State`, …): no input to validate.
pub trait OtherArg<A> {
    /// Nothing is required.
    fn arg_need(self) -> Need<NoInput>;
    /// Nothing to check.
    fn arg_check(self, value: &A) -> Result<(), Rejection>;
}

impl<A> OtherArg<A> for &Probe<A> {
    fn arg_need(self) -> Need<NoInput> {
        Need::NEW
    }
    fn arg_check(self, _: &A) -> Result<(), Rejection> {
        Ok(())
    }
}

/// An argument that `#[secure]` reads and validates itself.
#[diagnostic::on_unimplemented(
    message = "an `Option<..>` or `Result<..>` of `Json`, `Form`, `Query` or `Path` is read by axum itself, which skips #[secure]'s validation",
    label = "take the extractor itself (bad input is answered 400/422)",
    note = "or opt out of validation with `validate = false` in #[secure(...)]"
)]
pub trait ReadBySecure {}

/// An argument read by `#[secure]`.
pub struct Direct;
impl ReadBySecure for Direct {}

/// An `Option` or `Result` of an [`Input`]: axum would read it, skipping validation.
pub struct SkipsValidation;

/// Compile-time check of a validated route's argument: not an optional input.
pub fn assert_read_by_secure<R: ReadBySecure>(_: R) {}

/// `Option<Input>` / `Result<Input, E>`, under any names.
pub trait WrappedArg {
    /// The compile error of [`assert_read_by_secure`].
    fn wrapped(self) -> SkipsValidation;
}

impl<A: Input> WrappedArg for &&Probe<Option<A>> {
    fn wrapped(self) -> SkipsValidation {
        SkipsValidation
    }
}

impl<A: Input, E> WrappedArg for &&Probe<Result<A, E>> {
    fn wrapped(self) -> SkipsValidation {
        SkipsValidation
    }
}

/// Any other argument.
pub trait DirectArg {
    /// Accepted.
    fn wrapped(self) -> Direct;
}

impl<A> DirectArg for &Probe<A> {
    fn wrapped(self) -> Direct {
        Direct
    }
}

/// Read a `Query` argument from the request head with shieldwall's reader, whatever its
/// name, so it answers like `Query` written by name (422 with the failing field).
pub trait ReadOwnParts<A> {
    /// Read the argument.
    fn read_parts<S>(
        self,
        parts: &mut Parts,
        state: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<A, Response>> + Send;
}

impl<T: DeserializeOwned + Send> ReadOwnParts<Query<T>> for &&Probe<Query<T>> {
    fn read_parts<S>(
        self,
        parts: &mut Parts,
        _: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<Query<T>, Response>> + Send {
        std::future::ready(query::<T>(parts).map(Query).map_err(|r| fin.reject(r)))
    }
}

/// Read any other head argument with its own axum extractor.
pub trait ReadAxumParts<A> {
    /// Read the argument.
    fn read_parts<S: Send + Sync>(
        self,
        parts: &mut Parts,
        state: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<A, Response>> + Send
    where
        A: FromRequestParts<S>;
}

impl<A> ReadAxumParts<A> for &Probe<A> {
    async fn read_parts<S: Send + Sync>(
        self,
        parts: &mut Parts,
        state: &S,
        fin: &Finish,
    ) -> Result<A, Response>
    where
        A: FromRequestParts<S>,
    {
        A::from_request_parts(parts, state)
            .await
            .map_err(|e| fin.reject_response(e.into_response()))
    }
}

/// Read a `Json`, `Form` or `Query` last argument with shieldwall's readers, whatever its
/// name: the route's body limit, 415/400/422 as for the extractor written by name.
pub trait ReadOwnBody<A> {
    /// Read the argument.
    fn read_body<S, M>(
        self,
        parts: Parts,
        body: Body,
        state: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<A, Response>> + Send;
}

impl<T: DeserializeOwned + Send> ReadOwnBody<Json<T>> for &&Probe<Json<T>> {
    fn read_body<S, M>(
        self,
        parts: Parts,
        body: Body,
        _: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<Json<T>, Response>> + Send {
        let read = json::<T>(Request::from_parts(parts, body), fin.body_limit());
        async move { read.await.map(Json).map_err(|r| fin.reject(r)) }
    }
}

impl<T: DeserializeOwned + Send> ReadOwnBody<Form<T>> for &&Probe<Form<T>> {
    fn read_body<S, M>(
        self,
        parts: Parts,
        body: Body,
        _: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<Form<T>, Response>> + Send {
        let read = form::<T>(Request::from_parts(parts, body), fin.body_limit());
        async move { read.await.map(Form).map_err(|r| fin.reject(r)) }
    }
}

impl<T: DeserializeOwned + Send> ReadOwnBody<Query<T>> for &&Probe<Query<T>> {
    fn read_body<S, M>(
        self,
        parts: Parts,
        _: Body,
        _: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<Query<T>, Response>> + Send {
        std::future::ready(query::<T>(&parts).map(Query).map_err(|r| fin.reject(r)))
    }
}

/// Read any other last argument with its own axum extractor, the body capped at the
/// route's limit.
pub trait ReadAxumBody<A> {
    /// Read the argument.
    fn read_body<S: Send + Sync, M>(
        self,
        parts: Parts,
        body: Body,
        state: &S,
        fin: &Finish,
    ) -> impl Future<Output = Result<A, Response>> + Send
    where
        A: FromRequest<S, M>;
}

impl<A> ReadAxumBody<A> for &Probe<A> {
    async fn read_body<S: Send + Sync, M>(
        self,
        parts: Parts,
        body: Body,
        state: &S,
        fin: &Finish,
    ) -> Result<A, Response>
    where
        A: FromRequest<S, M>,
    {
        let req = body_request(parts, body, fin)?;
        A::from_request(req, state)
            .await
            .map_err(|e| fin.reject_response(e.into_response()))
    }
}

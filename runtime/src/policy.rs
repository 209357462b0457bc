//! Route policies: what `#[secure(...)]` declares, as `'static` data built at compile time.
//!
//! The attribute expands to one `static` [`Policy`] per handler; nothing is parsed per
//! request. [`crate::app::Shieldwall::build`] turns each policy into a compiled route
//! (role names resolved to bit masks, rate quotas resolved to nanoseconds) once, at start-up.
//!
//! ```
//! use shieldwall_runtime::policy::*;
//!
//! static POLICY: Policy = Policy {
//!     method: Method::Get,
//!     path: "/users/{id}",
//!     handler: "get_user",
//!     access: Access::Authenticated(Requirements {
//!         auth: AuthKind::Any,
//!         roles: &[],
//!         scopes: &[],
//!         allow: Some(&Expr::Any(&[Expr::Role(RoleRef::Name("admin")), Expr::Owner("id")])),
//!     }),
//!     rates: &[],
//!     body_limit: None,
//!     validate: true,
//!     login: false,
//!     on_outage: None,
//! };
//! assert_eq!(POLICY.path_params().collect::<Vec<_>>(), ["id"]);
//! ```

use axum::http::request::Parts;

use crate::principal::Principal;
pub use crate::rate::OnOutage;

/// HTTP method of a secured route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET (also answers HEAD)
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
    /// OPTIONS
    Options,
}

impl Method {
    /// The method's name, upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
        }
    }

    pub(crate) fn filter(self) -> axum::routing::MethodFilter {
        use axum::routing::MethodFilter as F;
        match self {
            Self::Get => F::GET,
            Self::Post => F::POST,
            Self::Put => F::PUT,
            Self::Patch => F::PATCH,
            Self::Delete => F::DELETE,
            Self::Head => F::HEAD,
            Self::Options => F::OPTIONS,
        }
    }
}

/// Which authenticators may satisfy a route (`auth = "…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// Any configured authenticator (the default).
    Any,
    /// Only a JWT bearer token.
    Jwt,
    /// Only an API key.
    ApiKey,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// No authentication (`public`).
    Public,
    /// An authenticated principal meeting every requirement.
    Authenticated(Requirements),
}

/// The authorization requirements of a non-public route. All present parts must hold.
#[derive(Debug, Clone, Copy)]
pub struct Requirements {
    /// Which authenticators may satisfy the route.
    pub auth: AuthKind,
    /// The principal must hold any one of these roles (role hierarchy applies). Empty: no
    /// role requirement.
    pub roles: &'static [RoleRef],
    /// The principal must hold all of these scopes.
    pub scopes: &'static [&'static str],
    /// A policy expression that must evaluate to true.
    pub allow: Option<&'static Expr>,
}

/// A role named in a policy: a string, or a value of a type implementing [`Role`].
#[derive(Clone, Copy)]
pub enum RoleRef {
    /// `role = "admin"`
    Name(&'static str),
    /// `role = Role::Admin`: the name is obtained from the [`Role`] implementation.
    Typed(fn() -> &'static str),
}

impl RoleRef {
    /// The role's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Name(n) => n,
            Self::Typed(f) => f(),
        }
    }
}

impl std::fmt::Debug for RoleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

/// A typed role: implement it for an enum so that a misspelled role does not compile.
///
/// ```
/// use shieldwall_runtime::policy::Role;
///
/// enum AppRole { Admin, Editor }
///
/// impl Role for AppRole {
///     fn name(&self) -> &'static str {
///         match self { AppRole::Admin => "admin", AppRole::Editor => "editor" }
///     }
/// }
/// assert_eq!(AppRole::Admin.name(), "admin");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a shieldwall role",
    label = "this value's type does not implement `shieldwall::Role`",
    note = "write `impl shieldwall::Role for {Self} {{ fn name(&self) -> &'static str {{ … }} }}`, or name the role as a string: `role = \"admin\"`"
)]
pub trait Role {
    /// The role's name as it appears in tokens (`roles` claim) and API keys.
    fn name(&self) -> &'static str;
}

/// A policy expression (`allow = …`).
#[derive(Clone, Copy)]
pub enum Expr {
    /// `role("admin")`: holds the role (hierarchy applies).
    Role(RoleRef),
    /// `scope("users:read")`: holds the scope.
    Scope(&'static str),
    /// `owner("id")`: the path parameter `id` equals the principal's subject.
    Owner(&'static str),
    /// `any(a, b, …)`: at least one holds.
    Any(&'static [Expr]),
    /// `all(a, b, …)`: every one holds.
    All(&'static [Expr]),
    /// `not(a)`: `a` does not hold.
    Not(&'static Expr),
    /// A user predicate `fn(&Principal, &Parts) -> bool`, named by its path.
    Predicate(Predicate),
}

/// A user predicate for `allow = path::to::fn`.
pub type Predicate = fn(&Principal, &Parts) -> bool;

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Role(r) => write!(f, "role({r:?})"),
            Self::Scope(s) => write!(f, "scope({s:?})"),
            Self::Owner(p) => write!(f, "owner({p:?})"),
            Self::Any(xs) => f.debug_tuple("any").field(xs).finish(),
            Self::All(xs) => f.debug_tuple("all").field(xs).finish(),
            Self::Not(x) => f.debug_tuple("not").field(x).finish(),
            Self::Predicate(_) => f.write_str("predicate(..)"),
        }
    }
}

/// Whose budget a rate limit charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Per {
    /// The authenticated principal's subject (default on authenticated routes).
    User,
    /// The client IP (default on public routes); IPv6 keyed by prefix.
    Ip,
    /// The credential: the API key id, or the token subject for JWTs.
    Key,
    /// One budget shared by every caller of the route.
    Global,
}

impl Per {
    /// Whether this limit runs before authentication.
    pub fn is_pre_auth(self) -> bool {
        matches!(self, Self::Ip | Self::Global)
    }

    /// The keyword as written in the attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Ip => "ip",
            Self::Key => "key",
            Self::Global => "global",
        }
    }
}

/// One `rate = "…"` quota: `count` requests per `period_secs`, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub count: u32,
    /// Period length in seconds.
    pub period_secs: u64,
    /// Whose budget is charged.
    pub per: Per,
    /// Largest burst admitted at once (defaults to `count`).
    pub burst: u32,
    /// The quota as written, for logs and reports.
    pub text: &'static str,
}

/// Everything `#[secure(...)]` declares about one route.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// HTTP method.
    pub method: Method,
    /// axum 0.8 path (`/users/{id}`).
    pub path: &'static str,
    /// Name of the handler function.
    pub handler: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Rate quotas, all enforced.
    pub rates: &'static [Rate],
    /// Body cap in bytes; `None` uses the app-wide default.
    pub body_limit: Option<u64>,
    /// Whether `Json`/`Query`/`Form`/`Path` arguments are validated.
    pub validate: bool,
    /// The route checks credentials itself (`login`: a login or token endpoint).
    pub login: bool,
    /// `on_outage = "…"`; `None` takes the default (see [`Policy::outage_policy`]).
    pub on_outage: Option<OnOutage>,
}

impl Policy {
    /// Names of the path's `{captures}`, in order.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter_map(|seg| {
            seg.strip_prefix('{')
                .and_then(|s| s.strip_suffix('}'))
                .map(|s| s.trim_start_matches('*'))
        })
    }

    /// What the route's rate limits do while the shared store is down: as declared, else
    /// fail closed for `login` routes (brute force must not get easier during an outage)
    /// and fall back to a local limit elsewhere.
    pub fn outage_policy(&self) -> OnOutage {
        match self.on_outage {
            Some(o) => o,
            None if self.login => OnOutage::FailClosed,
            None => OnOutage::LocalFallback,
        }
    }

    /// Whether the route is `public`.
    pub fn is_public(&self) -> bool {
        matches!(self.access, Access::Public)
    }
}

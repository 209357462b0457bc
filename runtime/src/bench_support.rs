//! Hooks for the criterion benches in `benches/`: the real request-path code, reachable
//! without a server. Not a public API; it exists for measurement only and may change with
//! any release.
//!
//! Everything here calls the code a served request runs — the app is built by
//! [`Shieldwall::build`] and the route's steps are those of [`Guard::enter`] — so a bench
//! measures the runtime itself, never a copy of it.
//!
//! ```
//! use shieldwall_runtime::bench_support::jwt_verifier;
//! use shieldwall_runtime::auth::jwt::Jwt;
//!
//! let verifier = jwt_verifier(&Jwt::hs256(vec![7u8; 32])).expect("a valid configuration");
//! assert!(verifier.verify("not-a-token").is_err());
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::MethodRouter;

use crate::app::{BuildError, Shieldwall};
use crate::auth::jwt::{Jwt, JwtConfigError, JwtVerifier};
use crate::error::Rejection;
use crate::policy::{Access, AuthKind};
use crate::principal::{Enforced, Principal};
use crate::route::{CompiledRoute, Finish, Guard, SecureRoute};

/// A JWT verifier compiled from `jwt` exactly as [`Shieldwall::build`] compiles it
/// (configuration checks and crypto self-test included).
pub fn jwt_verifier(jwt: &Jwt) -> Result<JwtVerifier, JwtConfigError> {
    jwt.compile()
}

/// One route compiled by a real [`Shieldwall::build`] (role table, hierarchy, memory rate
/// store, compiled limits), whose policy steps can be run one request at a time.
#[derive(Debug, Clone)]
pub struct RouteCheck {
    route: Arc<CompiledRoute>,
}

impl RouteCheck {
    /// Build `app` with `route` as its only route and keep the compiled route.
    pub fn new<S>(app: Shieldwall<S>, route: SecureRoute<S>) -> Result<Self, BuildError>
    where
        S: Clone + Send + Sync + 'static,
    {
        // Mount a stand-in for the route's handlers that keeps the guard `build()` hands it.
        let slot = Arc::new(Mutex::new(None::<Guard>));
        let keep = slot.clone();
        let probe = SecureRoute::from_parts(route.policy(), move |guard| {
            *keep.lock().unwrap_or_else(PoisonError::into_inner) = Some(guard);
            MethodRouter::new()
        });
        drop(app.routes([probe]).build()?);
        let guard = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        let route = guard
            .as_ref()
            .and_then(Guard::route)
            .cloned()
            .unwrap_or_else(|| unreachable!("build() compiles and mounts every route it is given"));
        Ok(Self { route })
    }

    /// The route's enforcement handle, for running the whole [`Guard::enter`].
    pub fn guard(&self) -> Guard {
        Guard::new(self.route.clone())
    }

    /// Authenticate the request as the route would: read the `Authorization` header and
    /// verify its token with the app's configured authenticators.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Principal, Rejection> {
        let kind = match self.route.policy.access {
            Access::Authenticated(req) => req.auth,
            Access::Public => AuthKind::Any,
        };
        self.route.runtime.auth.authenticate(parts, kind).await
    }

    /// Everything [`Guard::enter`] runs but authentication itself, for a caller whose
    /// token has been verified into `principal`: the pre-authentication limits (if the
    /// route has any), roles (hierarchy applied), scopes, `allow`, the per-principal
    /// limits, and marking the request enforced with the principal stored for the handler.
    /// Returns the [`Finish`] a handler would get, or the refusal.
    #[allow(clippy::result_large_err)] // the refusal is the response itself
    pub fn admit(&self, principal: Principal, parts: &mut Parts) -> Result<Finish, Response> {
        ready(async {
            let mut fin = Finish::new(self.route.clone());
            self.route.pre_auth_limits(parts, &mut fin).await?;
            self.route.admit(principal, parts, &mut fin).await?;
            parts.extensions.insert(Enforced {
                handler: self.route.policy.handler,
                principal: fin.principal().cloned(),
            });
            Ok(fin)
        })
    }
}

/// Run a future that completes on its first poll — the policy steps on the in-memory rate
/// store, a JWT check against static keys, reading an in-memory body — without the cost of
/// an executor, so a bench measures the code and not the scheduling.
///
/// # Panics
///
/// If the future is not ready at once (it waits on I/O: a Redis store, a remote key set).
pub fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!(
            "bench_support::ready: the future waits on I/O; benches run on the in-memory \
             rate store and static keys"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Method, Per, Policy, Rate, Requirements, RoleRef};

    static POLICY: Policy = Policy {
        method: Method::Post,
        path: "/users",
        handler: "create_user",
        access: Access::Authenticated(Requirements {
            auth: AuthKind::Any,
            roles: &[RoleRef::Name("admin")],
            scopes: &["users:write"],
            allow: None,
        }),
        rates: &[Rate {
            count: 2,
            period_secs: 60,
            per: Per::User,
            burst: 2,
            text: "2/min",
        }],
        body_limit: None,
        validate: true,
        login: false,
        on_outage: None,
    };

    fn parts() -> Parts {
        axum::http::Request::new(()).into_parts().0
    }

    #[test]
    fn admit_runs_the_real_policy() {
        let route = SecureRoute::from_parts(&POLICY, |_| MethodRouter::<()>::new());
        let jwt = Jwt::hs256(vec![7u8; 32]);
        let check = RouteCheck::new(Shieldwall::new().jwt(jwt), route).unwrap();
        let admin = Principal::new("alice")
            .with_roles(["admin"])
            .with_scopes(["users:write"]);
        // The real limit applies: 2 admitted, the third refused with 429.
        assert!(check.admit(admin.clone(), &mut parts()).is_ok());
        assert!(check.admit(admin.clone(), &mut parts()).is_ok());
        let refused = check.admit(admin, &mut parts()).unwrap_err();
        assert_eq!(refused.status(), 429);
        // Roles and scopes are checked.
        let no_scope = Principal::new("bob").with_roles(["admin"]);
        assert_eq!(
            check.admit(no_scope, &mut parts()).unwrap_err().status(),
            403
        );
        let mut p = parts();
        let editor = Principal::new("carol")
            .with_roles(["editor"])
            .with_scopes(["users:write"]);
        assert_eq!(check.admit(editor, &mut p).unwrap_err().status(), 403);
        assert!(ready(check.authenticate(&p)).is_err());
    }
}

//! `build()` refuses insecure or incomplete configurations instead of serving them.

mod common;

use shieldwall::BuildError;
use shieldwall::auth::jwt::JwtConfigError;
use shieldwall::authz::RoleError;
use shieldwall::prelude::*;

#[secure(get "/me", auth)]
async fn me() -> &'static str {
    "me"
}

#[secure(get "/users/{id}", auth)]
async fn user_a(Path(id): Path<String>) -> String {
    id
}

#[secure(get "/users/{uid}", role = "admin")]
async fn user_b(Path(uid): Path<String>) -> String {
    uid
}

#[secure(post "/users/{id}", auth)]
async fn user_post(Path(id): Path<String>) -> String {
    id
}

#[secure(get "/keys", auth = "api_key")]
async fn keys() -> &'static str {
    "keys"
}

#[secure(get "/health", public)]
async fn health() -> &'static str {
    "ok"
}

#[test]
fn route_requiring_jwt_without_jwt_is_refused() {
    let e = Shieldwall::new()
        .routes(routes![health, me])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            BuildError::JwtNotConfigured {
                path: "/me",
                handler: "me",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains(".jwt("),
        "the message says what to do: {e}"
    );
    // public routes need no authenticator
    assert!(Shieldwall::new().routes(routes![health]).build().is_ok());
}

#[test]
fn duplicate_method_and_path_is_refused() {
    let e = Shieldwall::new()
        .jwt(common::jwt())
        .routes(routes![user_a, user_b])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            BuildError::DuplicateRoute {
                method: "GET",
                first: "user_a",
                second: "user_b",
                ..
            }
        ),
        "{e}"
    );
    // the same path with another method is fine
    assert!(
        Shieldwall::new()
            .jwt(common::jwt())
            .routes(routes![user_a, user_post])
            .build()
            .is_ok()
    );
}

#[test]
fn short_hmac_secret_is_refused() {
    let e = Shieldwall::new()
        .jwt(Jwt::hs256(vec![b'k'; 31]))
        .routes(routes![me])
        .build()
        .unwrap_err();
    assert!(
        matches!(
            e,
            BuildError::Jwt(JwtConfigError::HmacSecretTooShort { len: 31, .. })
        ),
        "{e}"
    );
    assert!(
        Shieldwall::new()
            .jwt(Jwt::hs256(vec![b'k'; 32]))
            .routes(routes![me])
            .build()
            .is_ok()
    );
}

#[test]
fn role_hierarchy_cycle_is_refused() {
    let e = Shieldwall::new()
        .jwt(common::jwt())
        .role_hierarchy(
            RoleHierarchy::new()
                .grant("admin", ["editor"])
                .grant("editor", ["admin"]),
        )
        .routes(routes![user_b])
        .build()
        .unwrap_err();
    assert!(matches!(e, BuildError::Roles(RoleError::Cycle(_))), "{e}");
    assert!(e.to_string().contains("admin -> editor -> admin"), "{e}");
}

#[test]
fn api_key_route_without_api_keys_is_refused() {
    let e = Shieldwall::new()
        .jwt(common::jwt())
        .routes(routes![keys])
        .build()
        .unwrap_err();
    assert!(matches!(e, BuildError::ApiKeysNotConfigured { .. }), "{e}");
}

#[test]
fn bad_key_material_is_refused() {
    let e = Shieldwall::new()
        .jwt(Jwt::new().key(JwtKey::rsa_pem(b"not a pem".to_vec())))
        .routes(routes![me])
        .build()
        .unwrap_err();
    assert!(
        matches!(e, BuildError::Jwt(JwtConfigError::BadKey { .. })),
        "{e}"
    );
    let e = Shieldwall::new()
        .jwt(Jwt::new().key(JwtKey::hmac(vec![1; 32]).algorithms([jsonwebtoken::Algorithm::RS256])))
        .routes(routes![me])
        .build()
        .unwrap_err();
    assert!(
        matches!(e, BuildError::Jwt(JwtConfigError::AlgorithmMismatch { .. })),
        "{e}"
    );
    let e = Shieldwall::new()
        .jwt(
            Jwt::new()
                .key(JwtKey::hmac(vec![1; 32]))
                .key(JwtKey::hmac(vec![2; 32])),
        )
        .routes(routes![me])
        .build()
        .unwrap_err();
    assert!(
        matches!(e, BuildError::Jwt(JwtConfigError::AmbiguousKeys)),
        "{e}"
    );
}

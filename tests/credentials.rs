//! Credentials end to end over real HTTP: the OAuth2 password flow with refresh rotation
//! and reuse detection, logout and admin revocation, API keys, brute-force limits, and
//! interoperability with an independent JWT implementation (PyJWT).

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;
use shieldwall::auth::api_key::{ApiKeys, MemoryKeyStore, NewKey};
use shieldwall::auth::passwords::Passwords;
use shieldwall::auth::tokens::{BoxFuture, TokenEndpoint, TokenIssuer, UserRecord, UserStore};
use shieldwall::prelude::*;

const TSECRET: &str = "credentials-test-secret-0123456789abcdef";
const TISS: &str = "https://accounts.test";
const TAUD: &str = "accounts-api";

struct Users(HashMap<String, UserRecord>);

impl UserStore for Users {
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        Box::pin(async move { Ok(self.0.get(username).cloned()) })
    }
}

fn users() -> Users {
    let pw = Passwords::new();
    let mut m = HashMap::new();
    for (name, password, roles, scopes) in [
        (
            "alice",
            "alice-password-1234",
            vec!["user"],
            vec!["profile:read"],
        ),
        (
            "root",
            "root-password-123456",
            vec!["admin"],
            vec!["profile:read", "users:write"],
        ),
    ] {
        m.insert(
            name.to_string(),
            UserRecord {
                subject: name.to_string(),
                password_hash: pw.hash(password).unwrap(),
                roles: roles.into_iter().map(String::from).collect(),
                scopes: scopes.into_iter().map(String::from).collect(),
                // One per account, the same in every instance (as a shared store has it).
                security_stamp: format!("{name}-stamp-1"),
            },
        );
    }
    Users(m)
}

#[derive(Clone)]
struct St {
    issuer: TokenIssuer,
}

#[secure(get "/me", auth = "jwt")]
async fn me(user: Principal) -> String {
    user.subject().to_string()
}

#[secure(post "/logout", auth = "jwt")]
async fn logout(State(st): State<St>, user: Principal) -> axum::http::StatusCode {
    st.issuer.logout(&user).await.unwrap();
    axum::http::StatusCode::NO_CONTENT
}

#[secure(post "/admin/revoke/{username}", role = "admin")]
async fn revoke(State(st): State<St>, Path(username): Path<String>) -> axum::http::StatusCode {
    st.issuer.revoke_subject(&username).await.unwrap();
    axum::http::StatusCode::NO_CONTENT
}

#[secure(get "/reports", auth = "api_key", scope = "reports:read", rate = "3/min per key")]
async fn reports(client: Principal) -> String {
    client.subject().to_string()
}

#[secure(get "/per-key", auth = "any", rate = "3/min per key")]
async fn per_key(client: Principal) -> String {
    client.subject().to_string()
}

#[secure(get "/per-user", auth = "any", rate = "3/min")]
async fn per_user(client: Principal) -> String {
    client.subject().to_string()
}

struct TestApp {
    base: String,
    keys: ApiKeys,
}

async fn app_with(issuer: TokenIssuer, jwt: Option<Jwt>) -> TestApp {
    let keys = ApiKeys::new(MemoryKeyStore::new());
    let mut sw = Shieldwall::with_state(St {
        issuer: issuer.clone(),
    });
    if let Some(jwt) = jwt {
        sw = sw.jwt(jwt);
    }
    let router = sw
        .api_keys(keys.clone())
        // The tests here log in at the same time on a 2-core CI machine, through the one
        // process-wide Argon2 bound: a queue past the default 2 s deadline would be a 503
        // (what `logins_do_not_stall_other_requests` in tests/accounts.rs is about), not
        // what these tests check.
        .tokens(
            TokenEndpoint::new(issuer, users())
                .passwords(Passwords::new().queue_deadline(Duration::from_secs(60))),
        )
        .routes(routes![me, logout, revoke, reports, per_key, per_user])
        .build()
        .unwrap();
    TestApp {
        base: serve(router).await,
        keys,
    }
}

fn issuer() -> TokenIssuer {
    TokenIssuer::hs256(TSECRET.as_bytes().to_vec())
        .issuer(TISS)
        .audience(TAUD)
}

async fn app() -> TestApp {
    app_with(issuer(), None).await
}

async fn token(base: &str, form: &[(&str, &str)]) -> Res {
    send(client().post(format!("{base}/token")).form(form)).await
}

async fn login(base: &str, user: &str, password: &str) -> (String, String) {
    let r = token(
        base,
        &[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert!(v["expires_in"].as_u64().is_some_and(|s| s > 0 && s <= 900));
    (
        v["access_token"].as_str().unwrap().into(),
        v["refresh_token"].as_str().unwrap().into(),
    )
}

async fn me_status(base: &str, access: &str) -> u16 {
    send(client().get(format!("{base}/me")).bearer_auth(access))
        .await
        .status
}

#[tokio::test]
async fn login_call_refresh_reuse_logout() {
    let a = app().await;
    let (access, refresh) = login(&a.base, "alice", "alice-password-1234").await;
    assert_eq!(me_status(&a.base, &access).await, 200);

    // A refresh token is never an access token.
    assert_eq!(me_status(&a.base, &refresh).await, 401);

    // Refresh rotates: a new pair, the old refresh token is spent.
    let r = token(
        &a.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let access2 = r.json()["access_token"].as_str().unwrap().to_string();
    let refresh2 = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);
    assert_eq!(me_status(&a.base, &access2).await, 200);

    // Reusing the old refresh token is theft: the whole family dies.
    let r = token(
        &a.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        me_status(&a.base, &access2).await,
        401,
        "family access tokens revoked"
    );
    let r = token(
        &a.base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh2),
        ],
    )
    .await;
    assert_eq!(
        r.json()["error"],
        "invalid_grant",
        "the newest refresh token is dead too"
    );

    // A fresh login, then logout: that access token and its refresh token are refused.
    let (access3, refresh3) = login(&a.base, "alice", "alice-password-1234").await;
    assert_eq!(me_status(&a.base, &access3).await, 200);
    let r = send(
        client()
            .post(format!("{base}/logout", base = a.base))
            .bearer_auth(&access3),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(me_status(&a.base, &access3).await, 401);
    let r = token(
        &a.base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh3),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn expired_access_token_is_refused_and_refresh_recovers() {
    let iss = issuer().access_ttl(Duration::from_secs(1));
    let jwt = iss.jwt().leeway(Duration::ZERO);
    let a = app_with(iss, Some(jwt)).await;
    let (access, refresh) = login(&a.base, "alice", "alice-password-1234").await;
    assert_eq!(me_status(&a.base, &access).await, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(me_status(&a.base, &access).await, 401, "expired");
    let r = token(
        &a.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = r.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(me_status(&a.base, &fresh).await, 200);
}

/// Also issue 11, finding 1: the one admin call ends alice's refresh families and the API
/// keys she owns (the builder attaches the app's keys to the issuer), and nobody else's.
#[tokio::test]
async fn admin_revokes_every_token_of_a_user() {
    let a = app().await;
    let alice_key = a
        .keys
        .create(NewKey::new("alice").scopes(["reports:read"]))
        .unwrap();
    let other_key = a
        .keys
        .create(NewKey::new("billing").scopes(["reports:read"]))
        .unwrap();
    let (alice, alice_refresh) = login(&a.base, "alice", "alice-password-1234").await;
    let (root, _) = login(&a.base, "root", "root-password-123456").await;
    let r = send(
        client()
            .post(format!("{}/admin/revoke/alice", a.base))
            .bearer_auth(&alice),
    )
    .await;
    r.assert_problem(403, "forbidden");
    let r = send(
        client()
            .post(format!("{}/admin/revoke/alice", a.base))
            .bearer_auth(&root),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(me_status(&a.base, &alice).await, 401);
    assert_eq!(me_status(&a.base, &root).await, 200);
    let r = token(
        &a.base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &alice_refresh),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.text);
    let reports = |key: &str| {
        client()
            .get(format!("{}/reports", a.base))
            .header("x-api-key", key)
    };
    send(reports(&alice_key.key))
        .await
        .assert_problem(401, "invalid-token");
    assert_eq!(send(reports(&other_key.key)).await.status, 200);
    // a login right after the revocation works (the issuer waits out its second)
    let (again, _) = login(&a.base, "alice", "alice-password-1234").await;
    assert_eq!(me_status(&a.base, &again).await, 200);
}

/// Finding 1 across instances: a subject revoked on one instance cannot refresh on
/// another, through a shared Redis token state (a `redis-server` of its own).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_revocation_ends_refresh_on_every_instance() {
    let Some(redis) = redis_server() else {
        return;
    };
    let store = shieldwall::rate::redis::RedisStore::new(&redis.url())
        .unwrap()
        .timeout(Duration::from_secs(5));
    let state = shieldwall::auth::revocation::TokenState::redis(store);
    let a = app_with(issuer().state(state.clone()), None).await;
    let b = app_with(issuer().state(state), None).await;
    let (_, refresh) = login(&a.base, "alice", "alice-password-1234").await;
    let (root, _) = login(&b.base, "root", "root-password-123456").await;
    let r = send(
        client()
            .post(format!("{}/admin/revoke/alice", b.base))
            .bearer_auth(&root),
    )
    .await;
    assert_eq!(r.status, 204);
    let r = token(
        &a.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant", "{}", r.text);
    let (again, _) = login(&a.base, "alice", "alice-password-1234").await;
    assert_eq!(me_status(&b.base, &again).await, 200);
}

#[tokio::test]
async fn uniform_errors_and_brute_force_limits() {
    let a = app().await;
    let wrong = token(
        &a.base,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ],
    )
    .await;
    let unknown = token(
        &a.base,
        &[
            ("grant_type", "password"),
            ("username", "mallory"),
            ("password", "nope"),
        ],
    )
    .await;
    assert_eq!((wrong.status, unknown.status), (400, 400));
    assert_eq!(
        wrong.text, unknown.text,
        "no user enumeration through the body"
    );
    assert_eq!(wrong.json()["error"], "invalid_grant");

    let r = token(&a.base, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    let r = token(
        &a.base,
        &[("grant_type", "password"), ("username", "alice")],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_request");
    let r = token(
        &a.base,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password-1234"),
            ("scope", "users:write"),
        ],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_scope");

    // 5 failed logins a minute per username and address (alice has 1: the wrong password;
    // the right password with a bad scope was not a failure, and the malformed request
    // never reached the check): then 429 from this address, even with the right password.
    for _ in 0..4 {
        let r = token(
            &a.base,
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "x"),
            ],
        )
        .await;
        assert_eq!(r.status, 400);
    }
    let r = token(
        &a.base,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password-1234"),
        ],
    )
    .await;
    r.assert_problem(429, "rate-limited");
    assert!(r.header("retry-after").is_some());
    // root is unaffected by alice's budget …
    let r = token(
        &a.base,
        &[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", "root-password-123456"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    // … until the per-IP limit (20/min) is spent.
    let mut statuses = Vec::new();
    for i in 0..20 {
        let u = format!("user{i}");
        statuses.push(
            token(
                &a.base,
                &[
                    ("grant_type", "password"),
                    ("username", &u),
                    ("password", "x"),
                ],
            )
            .await
            .status,
        );
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn api_keys_scopes_revocation_and_query_string() {
    let a = app().await;
    let reader = a
        .keys
        .create(NewKey::new("billing").scopes(["reports:read"]))
        .unwrap();
    let other = a
        .keys
        .create(NewKey::new("crm").scopes(["contacts:read"]))
        .unwrap();
    let url = format!("{}/reports", a.base);
    let r = send(client().get(&url).header("x-api-key", &reader.key)).await;
    assert_eq!((r.status, r.text.as_str()), (200, "billing"));
    let r = send(client().get(&url).header("x-api-key", &other.key)).await;
    r.assert_problem(403, "forbidden");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"reports:read\"")
    );
    // never from the query string
    let r = send(client().get(format!("{url}?api_key={}", reader.key))).await;
    r.assert_problem(400, "invalid-request");
    // a bearer token does not satisfy auth = "api_key"
    let (access, _) = login(&a.base, "alice", "alice-password-1234").await;
    send(client().get(&url).bearer_auth(&access))
        .await
        .assert_problem(401, "unauthenticated");
    // a forged secret for a real id
    let forged = format!("swk_{}_{}", reader.id, "A".repeat(43));
    send(client().get(&url).header("x-api-key", forged))
        .await
        .assert_problem(401, "invalid-token");
    // per key: 3/min (one used above)
    for _ in 0..2 {
        assert_eq!(
            send(client().get(&url).header("x-api-key", &reader.key))
                .await
                .status,
            200
        );
    }
    send(client().get(&url).header("x-api-key", &reader.key))
        .await
        .assert_problem(429, "rate-limited");
    // revoked
    assert!(a.keys.revoke(&other.id).unwrap());
    send(client().get(&url).header("x-api-key", &other.key))
        .await
        .assert_problem(401, "invalid-token");
}

// ---------------------------------------------------------------- login limits

/// The credentials app behind a trusted proxy on 127.0.0.1 (so `X-Forwarded-For` names the
/// client), with the rate limits in this Redis store or in memory.
#[allow(unused_mut, unused_variables)]
async fn app_behind_proxy(redis_url: Option<&str>) -> TestApp {
    let keys = ApiKeys::new(MemoryKeyStore::new());
    let issuer = issuer();
    let mut sw = Shieldwall::with_state(St {
        issuer: issuer.clone(),
    })
    .trusted_proxies(shieldwall::client_ip::TrustedProxies::parse(["127.0.0.1/32"]).unwrap());
    #[cfg(feature = "redis")]
    if let Some(url) = redis_url {
        // A generous bound per call: 100 logins at once on a loaded machine must not
        // read as an outage (which fails this login route closed, 503).
        let store = shieldwall::rate::redis::RedisStore::new(url)
            .unwrap()
            .timeout(Duration::from_secs(5));
        sw = sw.redis(store);
    }
    // Every verification runs (two at a time, none shed): the counts below are exact.
    let endpoint = TokenEndpoint::new(issuer, users()).passwords(
        Passwords::new()
            .max_concurrent(2)
            .queue_deadline(Duration::from_secs(300)),
    );
    let router = sw
        .api_keys(keys.clone())
        .tokens(endpoint)
        .routes(routes![me, logout, revoke, reports, per_key, per_user])
        .build()
        .unwrap();
    TestApp {
        base: serve(router).await,
        keys,
    }
}

async fn login_from(base: &str, ip: &str, user: &str, password: &str) -> u16 {
    send(
        client()
            .post(format!("{base}/token"))
            .header("x-forwarded-for", ip)
            .form(&[
                ("grant_type", "password"),
                ("username", user),
                ("password", password),
            ]),
    )
    .await
    .status
}

/// `n` logins at once, each from its own address `ip(i)`; how many got each status.
async fn parallel_logins(
    base: &str,
    n: usize,
    ip: impl Fn(usize) -> String,
    user: &str,
    password: &str,
) -> HashMap<u16, usize> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (base, ip, user, password) = (
                base.to_string(),
                ip(i),
                user.to_string(),
                password.to_string(),
            );
            tokio::spawn(async move { login_from(&base, &ip, &user, &password).await })
        })
        .collect();
    let mut counts = HashMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    counts
}

/// Issue 11, finding 10 (OWASP Authentication Cheat Sheet): the tight limit counts failed
/// logins per (username, client address), so an attacker cannot lock a known user out
/// from their own address; successful logins cost nothing; a looser per-username ceiling
/// caps failures from every address together. Concurrent guesses never get more failed
/// verifications than the budget.
async fn login_limits_hold(base: &str) {
    const ALICE: &str = "alice-password-1234";
    // The attacker spends alice's budget from their address: 5 failures, then 429 there,
    // even with the right password.
    for _ in 0..5 {
        assert_eq!(login_from(base, "10.0.0.66", "alice", "guess").await, 400);
    }
    assert_eq!(login_from(base, "10.0.0.66", "alice", "guess").await, 429);
    assert_eq!(login_from(base, "10.0.0.66", "alice", ALICE).await, 429);
    // alice, from her own address, is not locked out …
    assert_eq!(
        login_from(base, "10.0.0.7", "alice", ALICE).await,
        200,
        "an attacker's failures locked alice out from another address"
    );
    // … and her successful logins cost nothing: more than the failure budget in a row.
    for _ in 0..6 {
        assert_eq!(login_from(base, "10.0.0.7", "alice", ALICE).await, 200);
    }
    // A few failures of her own still leave her room (4 < 5), and a success after them.
    for _ in 0..4 {
        assert_eq!(login_from(base, "10.0.0.7", "alice", "typo").await, 400);
    }
    assert_eq!(login_from(base, "10.0.0.7", "alice", ALICE).await, 200);

    // 100 guesses at once from one address: exactly the budget of 5 is verified.
    let counts = parallel_logins(base, 100, |_| "10.0.0.99".into(), "mallory", "guess").await;
    assert_eq!(counts.get(&400), Some(&5), "{counts:?}");

    // 100 guesses at once from 100 addresses: the per-username ceiling (50 an hour) caps
    // them, exactly.
    let counts = parallel_logins(base, 100, |i| format!("10.1.{i}.1"), "root", "guess").await;
    assert_eq!(counts.get(&400), Some(&50), "{counts:?}");
    assert_eq!(counts.get(&429), Some(&50), "{counts:?}");
    // The documented trade-off: with the ceiling spent, root cannot log in from a fresh
    // address either, until it refills. alice is unaffected.
    assert_eq!(
        login_from(base, "10.2.0.1", "root", "root-password-123456").await,
        429
    );
    assert_eq!(login_from(base, "10.2.0.1", "alice", ALICE).await, 200);
}

/// A store that forgives case and surrounding spaces in usernames, as many do.
struct Forgiving(Users);

impl UserStore for Forgiving {
    fn find<'a>(&'a self, username: &'a str) -> BoxFuture<'a, Result<Option<UserRecord>, String>> {
        let key = username.trim().to_lowercase();
        Box::pin(async move { Ok(self.0.0.get(&key).cloned()) })
    }
}

/// Finding 10: the failed-login budgets belong to the account the store resolves, not to the
/// string typed. With a store that forgives case and spaces, spelling alice's name another
/// way does not buy an attacker a fresh budget.
#[tokio::test]
async fn login_limits_follow_the_account_not_its_spelling() {
    let router = Shieldwall::with_state(St { issuer: issuer() })
        .tokens(TokenEndpoint::new(issuer(), Forgiving(users())))
        .routes(routes![me])
        .build()
        .unwrap();
    let base = serve(router).await;
    let attempt = |name: &'static str| {
        let base = base.clone();
        async move {
            send(client().post(format!("{base}/token")).form(&[
                ("grant_type", "password"),
                ("username", name),
                ("password", "guess"),
            ]))
            .await
            .status
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("alice").await, 400);
    }
    for variant in [" alice", "alice ", "Alice", "\talice\n"] {
        assert_eq!(
            attempt(variant).await,
            429,
            "{variant:?} got a fresh budget"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limits_count_failures_per_user_and_address() {
    let a = app_behind_proxy(None).await;
    login_limits_hold(&a.base).await;
}

/// The same, with the limits in a shared Redis (a `redis-server` of its own).
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_limits_count_failures_per_user_and_address_in_redis() {
    let Some(redis) = redis_server() else {
        return;
    };
    let a = app_behind_proxy(Some(&redis.url())).await;
    login_limits_hold(&a.base).await;
}

/// A `redis-server` on a free port, stopped when dropped; `None` (test skipped) when Redis
/// is not installed, unless `SHIELDWALL_REQUIRE_REDIS=1`.
#[cfg(feature = "redis")]
fn redis_server() -> Option<RedisServer> {
    use std::process::Stdio;
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        if std::env::var("SHIELDWALL_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("SHIELDWALL_REQUIRE_REDIS=1 but redis-server is not on PATH");
        }
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let server = RedisServer { child, port };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not start on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

#[cfg(feature = "redis")]
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

#[cfg(feature = "redis")]
impl RedisServer {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

#[cfg(feature = "redis")]
impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- rate identities

/// An access token the test issuer would accept, for any subject.
fn issuer_token(sub: &str) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    let claims = serde_json::json!({
        "iss": TISS, "aud": TAUD, "sub": sub, "iat": now(), "exp": now() + 600,
    });
    jsonwebtoken::encode(
        &h,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TSECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Tokens minted by hand below are issued after the app's token state began: wait out the
/// state's first second, in which a token is born refused (see `auth::revocation`: the
/// epoch).
async fn past_epoch(issuer: &TokenIssuer) {
    let epoch = issuer.token_state().epoch().await.unwrap();
    while now() <= epoch {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issue 11, finding 9: rate buckets are namespaced by credential kind, so no claim can
/// name another credential's bucket: a token whose `sub` is `key:<id>` (the old bucket
/// name of that API key) spends its own budget, not the key's; and a token whose subject
/// equals an API key's owner does not share the owner's per-user budget.
#[tokio::test]
async fn rate_identities_of_different_credentials_never_collide() {
    let issuer = issuer();
    past_epoch(&issuer).await;
    let a = app_with(issuer, None).await;
    let key = a.keys.create(NewKey::new("billing")).unwrap();
    let get = |path: &str| client().get(format!("{}{path}", a.base));

    // per key: a token imitating the key's bucket name
    let imitation = issuer_token(&format!("key:{}", key.id));
    for _ in 0..3 {
        assert_eq!(
            send(get("/per-key").bearer_auth(&imitation)).await.status,
            200
        );
    }
    send(get("/per-key").bearer_auth(&imitation))
        .await
        .assert_problem(429, "rate-limited");
    let r = send(get("/per-key").header("x-api-key", &key.key)).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (200, "billing"),
        "the token drained the API key's budget"
    );

    // per user: a token for the subject that owns the key
    let owner = issuer_token("billing");
    for _ in 0..3 {
        assert_eq!(send(get("/per-user").bearer_auth(&owner)).await.status, 200);
    }
    send(get("/per-user").bearer_auth(&owner))
        .await
        .assert_problem(429, "rate-limited");
    let r = send(get("/per-user").header("x-api-key", &key.key)).await;
    assert_eq!(
        r.status, 200,
        "the token drained the key owner's budget: {}",
        r.text
    );
}

/// Finding 9, the shared store: every identity kind writes its own Redis key prefix, before
/// the part a client controls.
#[cfg(feature = "redis")]
#[test]
fn redis_bucket_keys_are_namespaced_by_credential_kind() {
    use shieldwall::rate::{Ident, RateKey};
    let store = shieldwall::rate::redis::RedisStore::new("redis://127.0.0.1:1/").unwrap();
    let key = |ident: Ident| {
        store.key(
            "GET /per-key#0",
            &RateKey {
                route: 0,
                limit: 0,
                ident,
            },
        )
    };
    let ip = std::net::IpAddr::from([10, 0, 0, 1]);
    let keys = [
        key(Ident::Subject("key:abc".into())),
        key(Ident::ApiKey("abc".into())),
        key(Ident::Subject("own:abc".into())),
        key(Ident::KeyOwner("abc".into())),
        key(Ident::Subject("usr:abc".into())),
        key(Ident::Username("abc".into())),
        key(Ident::Username("uip:10.0.0.1/abc".into())),
        key(Ident::UsernameFrom("abc".into(), ip)),
        key(Ident::Ip(ip)),
        key(Ident::Global),
    ];
    let distinct: std::collections::HashSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "{keys:#?}");
}

// ---------------------------------------------------------------- PyJWT interoperability

fn pyjwt_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import jwt"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("SHIELDWALL_REQUIRE_PYJWT").as_deref() == Ok("1") {
            panic!("SHIELDWALL_REQUIRE_PYJWT=1 but PyJWT is not installed (pip install PyJWT)");
        }
        eprintln!("SKIPPED: PyJWT is not installed (pip install PyJWT)");
    }
    ok
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn tokens_interoperate_with_pyjwt() {
    if !pyjwt_available() {
        return;
    }
    let a = app().await;
    let (access, _) = login(&a.base, "root", "root-password-123456").await;
    // PyJWT verifies what we issue …
    let verified = python(
        "import sys, json, jwt\n\
         c = jwt.decode(sys.argv[1], sys.argv[2], algorithms=['HS256'], audience=sys.argv[3], issuer=sys.argv[4], options={'require': ['exp', 'iat', 'sub', 'jti']})\n\
         h = jwt.get_unverified_header(sys.argv[1])\n\
         print(json.dumps({'sub': c['sub'], 'roles': c['roles'], 'typ': h['typ']}))",
        &[&access, TSECRET, TAUD, TISS],
    );
    let v: Value = serde_json::from_str(&verified).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"sub": "root", "roles": ["admin"], "typ": "at+jwt"})
    );
    // … and rejects it under another secret (so the check above was real).
    let out = Command::new("python3")
        .args(["-c", "import sys, jwt\njwt.decode(sys.argv[1], 'x' * 40, algorithms=['HS256'], audience=sys.argv[2])", &access, TAUD])
        .output()
        .unwrap();
    assert!(!out.status.success());

    // A token minted by PyJWT verifies here.
    let minted = python(
        "import sys, time, jwt\n\
         now = int(time.time())\n\
         print(jwt.encode({'sub': 'py-user', 'iss': sys.argv[2], 'aud': sys.argv[3], 'iat': now, 'exp': now + 60, 'roles': ['user']}, sys.argv[1], algorithm='HS256', headers={'typ': 'at+jwt'}))",
        &[TSECRET, TISS, TAUD],
    );
    let r = send(client().get(format!("{}/me", a.base)).bearer_auth(&minted)).await;
    assert_eq!((r.status, r.text.as_str()), (200, "py-user"));
    // PyJWT with the wrong key: refused here.
    let bad = python(
        "import sys, time, jwt\n\
         now = int(time.time())\n\
         print(jwt.encode({'sub': 'py-user', 'iss': sys.argv[1], 'aud': sys.argv[2], 'exp': now + 60}, 'y' * 40, algorithm='HS256'))",
        &[TISS, TAUD],
    );
    assert_eq!(me_status(&a.base, &bad).await, 401);
}

// ---------------------------------------------------------------- shared revocation

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_shared_through_redis() {
    let Ok(url) = std::env::var("SHIELDWALL_TEST_REDIS_URL") else {
        if std::env::var("SHIELDWALL_REQUIRE_REDIS").as_deref() == Ok("1") {
            panic!("SHIELDWALL_REQUIRE_REDIS=1 but SHIELDWALL_TEST_REDIS_URL is not set");
        }
        eprintln!(
            "SKIPPED: SHIELDWALL_TEST_REDIS_URL is not set (the Redis tests start their own servers; this one uses CI's)"
        );
        return;
    };
    // CI's machine is busy while this runs: give Redis more than the default 200 ms, as
    // the other Redis tests here do (a timeout is a 503, which is not what this tests).
    let store = shieldwall::rate::redis::RedisStore::new(&url)
        .unwrap()
        .timeout(Duration::from_secs(5));
    let state = shieldwall::auth::revocation::TokenState::redis(store);
    let a = app_with(issuer().state(state.clone()), None).await;
    let b = app_with(issuer().state(state), None).await;
    let (access, refresh) = login(&a.base, "alice", "alice-password-1234").await;
    assert_eq!(
        me_status(&b.base, &access).await,
        200,
        "instance B accepts A's token"
    );
    // rotation on B is seen by A: reusing on A revokes the family everywhere
    let r = token(
        &b.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = token(
        &a.base,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(
        me_status(&b.base, &access).await,
        401,
        "revoked on every instance"
    );
    // logout on B refuses the token on A
    let (access2, _) = login(&b.base, "alice", "alice-password-1234").await;
    assert_eq!(me_status(&a.base, &access2).await, 200);
    assert_eq!(
        send(
            client()
                .post(format!("{}/logout", b.base))
                .bearer_auth(&access2)
        )
        .await
        .status,
        204
    );
    assert_eq!(me_status(&a.base, &access2).await, 401);
}

/// A rotation whose reply was lost is sent again by the Redis store (its connection died
/// after the script ran). The same call, repeated, must not look like a reuse: that would
/// revoke an honest user's family. A replay of the old token (a new call, so a fresh new
/// id) is still a reuse.
#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_rotation_is_not_a_reuse() {
    use shieldwall::auth::revocation::{Rotation, TokenState};
    let Some(redis) = redis_server() else {
        return;
    };
    let store = shieldwall::rate::redis::RedisStore::new(&redis.url())
        .unwrap()
        .timeout(Duration::from_secs(5));
    for state in [TokenState::memory(), TokenState::redis(store)] {
        state.start_family("fam", "a", 60).await.unwrap();
        assert_eq!(
            state.rotate("fam", "a", "b", 60).await.unwrap(),
            Rotation::Rotated
        );
        // the retry of that very call
        assert_eq!(
            state.rotate("fam", "a", "b", 60).await.unwrap(),
            Rotation::Rotated,
            "a retried rotation revoked the family"
        );
        // a token of the family, issued after the state began
        let iat = state.epoch().await.unwrap() + 1;
        assert!(
            !state
                .is_revoked(None, Some("fam"), "u", Some(iat))
                .await
                .unwrap()
        );
        // the current token still rotates
        assert_eq!(
            state.rotate("fam", "b", "c", 60).await.unwrap(),
            Rotation::Rotated
        );
        // a replay of an old token is a new call: a reuse, and the family dies
        assert_eq!(
            state.rotate("fam", "a", "d", 60).await.unwrap(),
            Rotation::Reused
        );
        assert!(
            state
                .is_revoked(None, Some("fam"), "u", None)
                .await
                .unwrap()
        );
    }
}

// ---------------------------------------------------------------- attack round 2

const ALICE_PW: &str = "alice-password-1234";

/// Attack round 2, finding 2 (t_lockout.py): one address alone must never spend the
/// per-account ceiling, or it locks the victim out from everywhere. Two hours of one
/// attacker address guessing alice's password at the full rate its per-client budget
/// allows (it tries again every 20 s of a manual clock, until refused): alice, from her own
/// address, logs in every 10 minutes throughout, and at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_lock_a_user_out() {
    let clock = shieldwall::clock::ManualClock::new();
    let issuer = issuer();
    let router = Shieldwall::with_state(St {
        issuer: issuer.clone(),
    })
    .trusted_proxies(shieldwall::client_ip::TrustedProxies::parse(["127.0.0.1/32"]).unwrap())
    .clock(clock.clone())
    .tokens(TokenEndpoint::new(issuer, users()))
    .routes(routes![me])
    .build()
    .unwrap();
    let base = serve(router).await;
    let step = Duration::from_secs(20);
    let steps = 2 * 3600 / step.as_secs();
    let mut failures = 0;
    for i in 0..=steps {
        loop {
            match login_from(&base, "10.9.0.66", "alice", "a guess").await {
                400 => failures += 1,
                429 => break,
                other => panic!("the attacker's login answered {other}"),
            }
        }
        if i % 30 == 0 {
            assert_eq!(
                login_from(&base, "10.9.0.7", "alice", ALICE_PW).await,
                200,
                "alice is locked out after {failures} failures from one other address in {} s",
                i * step.as_secs()
            );
        }
        clock.advance(step);
    }
    // The attacker did guess, all along: at least the per-client budget each 15 minutes.
    assert!(failures >= 5 * 8, "only {failures} guesses");
}

/// Finding 2: a configuration where one address's failure budget is not well under the
/// per-account ceiling — one address could then spend the ceiling alone and lock the
/// account out — is refused at build.
#[test]
fn a_per_client_budget_reaching_the_ceiling_is_refused() {
    let build = |endpoint: TokenEndpoint| {
        Shieldwall::with_state(St { issuer: issuer() })
            .tokens(endpoint)
            .routes(routes![me])
            .build()
    };
    // the old defaults: 5 a minute from one address refills 300 an hour, against 50 an hour
    let r = build(
        TokenEndpoint::new(issuer(), users()).failed_logins_per_client(5, Duration::from_secs(60)),
    );
    let e = r.expect_err("a per-client budget of 5/min against 50/h was accepted");
    assert!(e.to_string().contains("failed_logins_per_client"), "{e}");
    // a burst as large as the ceiling
    assert!(
        build(
            TokenEndpoint::new(issuer(), users())
                .failed_logins_per_client(50, Duration::from_secs(86_400))
        )
        .is_err()
    );
    // the defaults build
    assert!(build(TokenEndpoint::new(issuer(), users())).is_ok());
}

#[derive(Clone)]
struct Pw {
    tokens: TokenEndpoint,
}

#[derive(Deserialize, Validate)]
struct Change {
    current: String,
}

#[secure(post "/me/password", auth = "jwt")]
async fn change_pw(
    State(st): State<Pw>,
    user: Principal,
    Json(body): Json<Change>,
) -> axum::http::StatusCode {
    use shieldwall::auth::tokens::TokenError;
    match st
        .tokens
        .change_password(&user, &body.current, "a new password 123456")
        .await
    {
        Ok(_) => axum::http::StatusCode::OK,
        Err(TokenError::InvalidGrant) => axum::http::StatusCode::FORBIDDEN,
        Err(TokenError::TooManyAttempts { retry_after_secs }) if retry_after_secs > 0 => {
            axum::http::StatusCode::TOO_MANY_REQUESTS
        }
        Err(TokenError::Unavailable) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Attack round 2, finding 11: the current-password check of
/// `TokenEndpoint::change_password` spends the failed-login budgets — per (account, client
/// address) and the per-account ceiling — so a stolen access token gives no more guesses
/// than the login form. Budgets here: 3 per address, 6 for the account, an hour each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_failures_spend_the_login_budgets() {
    let endpoint = TokenEndpoint::new(issuer(), users())
        .failed_logins_per_client(3, Duration::from_secs(3600))
        .failed_logins_per_username(6, Duration::from_secs(3600));
    let router = Shieldwall::with_state(Pw {
        tokens: endpoint.clone(),
    })
    .trusted_proxies(shieldwall::client_ip::TrustedProxies::parse(["127.0.0.1/32"]).unwrap())
    .tokens(endpoint)
    .routes(routes![change_pw])
    .build()
    .unwrap();
    let base = serve(router).await;
    let (stolen, _) = login(&base, "alice", ALICE_PW).await;
    let change = |ip: &str, current: &str| {
        send(
            client()
                .post(format!("{base}/me/password"))
                .header("x-forwarded-for", ip.to_string())
                .bearer_auth(&stolen)
                .json(&serde_json::json!({ "current": current })),
        )
    };
    // the attacker's address: 3 guesses, then refused without a verification
    for _ in 0..3 {
        assert_eq!(change("10.3.0.66", "a guess").await.status, 403);
    }
    assert_eq!(
        change("10.3.0.66", "a guess").await.status,
        429,
        "a fourth guess from one address through /me/password"
    );
    assert_eq!(
        login_from(&base, "10.3.0.66", "alice", ALICE_PW).await,
        429,
        "the guesses through /me/password did not spend the login budget of that address"
    );
    // other addresses: the account's ceiling (6) caps the guesses, logins included
    assert_eq!(login_from(&base, "10.3.1.1", "alice", "a guess").await, 400);
    for ip in ["10.3.1.2", "10.3.1.3"] {
        assert_eq!(change(ip, "a guess").await.status, 403);
    }
    assert_eq!(
        change("10.3.1.4", "a guess").await.status,
        429,
        "more guesses through /me/password than the account's ceiling"
    );
    assert_eq!(
        login_from(&base, "10.3.1.5", "alice", "a guess").await,
        429,
        "more failed logins than the account's ceiling, counting /me/password's"
    );
}

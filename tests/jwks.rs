//! Remote key sets (JWKS) over real HTTP: an identity provider on 127.0.0.1 whose key set
//! the test rotates, breaks and repairs, and an app (`shieldwall::serve`) verifying tokens
//! against it with a real client (`reqwest`). The provider counts every fetch, so the tests
//! can check when the app fetches — and that it never fetches where a token points it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shieldwall::Jwks;
use shieldwall::prelude::*;

const AUDIENCE: &str = "jwks-api";

/// Any authenticated caller: echoes the subject.
#[secure(get "/me", auth)]
async fn me(user: Principal) -> String {
    user.subject().to_owned()
}

// ---- the identity provider ---------------------------------------------------------------

/// How the provider answers `GET /jwks.json`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// The current key set.
    Serve,
    /// `200` with a body that is not JSON.
    Garbage,
    /// `500`.
    Error,
    /// A valid key set padded past the app's size cap.
    Oversize,
    /// Accepts the request and never answers.
    Hang,
}

struct IdpState {
    keys: Mutex<Vec<Value>>,
    mode: Mutex<Mode>,
    /// Delay before each key set answer (so concurrent requests overlap one fetch).
    delay: Mutex<Duration>,
    /// The `issuer` the discovery document names.
    issuer: Mutex<String>,
    /// The server's own base URL.
    base: Mutex<String>,
    jwks_hits: AtomicUsize,
    discovery_hits: AtomicUsize,
    /// Every request, whatever its path.
    all_hits: AtomicUsize,
}

/// A JWKS server on 127.0.0.1 (also serving an OpenID Connect discovery document).
struct Idp {
    base: String,
    state: Arc<IdpState>,
}

async fn jwks_doc(State(s): State<Arc<IdpState>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let delay = *s.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mode = *s.mode.lock().unwrap();
    let keys = s.keys.lock().unwrap().clone();
    match mode {
        Mode::Serve => Json(json!({ "keys": keys })).into_response(),
        Mode::Garbage => "<html>Service temporarily unavailable</html>".into_response(),
        Mode::Error => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Mode::Oversize => {
            let pad = "x".repeat(64 * 1024);
            Json(json!({ "keys": keys, "padding": pad })).into_response()
        }
        Mode::Hang => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn discovery_doc(State(s): State<Arc<IdpState>>) -> Response {
    s.discovery_hits.fetch_add(1, Ordering::SeqCst);
    let issuer = s.issuer.lock().unwrap().clone();
    let base = s.base.lock().unwrap().clone();
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{base}/jwks.json"),
        "authorization_endpoint": format!("{base}/authorize"),
    }))
    .into_response()
}

impl Idp {
    async fn start(keys: Vec<Value>) -> Self {
        let state = Arc::new(IdpState {
            keys: Mutex::new(keys),
            mode: Mutex::new(Mode::Serve),
            delay: Mutex::new(Duration::ZERO),
            issuer: Mutex::new(String::new()),
            base: Mutex::new(String::new()),
            jwks_hits: AtomicUsize::new(0),
            discovery_hits: AtomicUsize::new(0),
            all_hits: AtomicUsize::new(0),
        });
        let counting = state.clone();
        let router = axum::Router::new()
            .route("/jwks.json", axum::routing::get(jwks_doc))
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(discovery_doc),
            )
            .with_state(state.clone())
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    counting.all_hits.fetch_add(1, Ordering::SeqCst);
                    next.run(req)
                },
            ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}");
        *state.issuer.lock().unwrap() = base.clone();
        *state.base.lock().unwrap() = base.clone();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, state }
    }

    fn url(&self) -> String {
        format!("{}/jwks.json", self.base)
    }

    fn set_keys(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn set_delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    fn fetches(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Wait (at most 1 s) until the app has fetched more than `n` times.
    async fn wait_for_fetches_over(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.fetches() <= n {
            assert!(Instant::now() < deadline, "no fetch after {n} within 1 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Let the fetch's answer reach the app's cache.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- keys and tokens ---------------------------------------------------------------------

/// A signing key, its kid, and its public JWK.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

/// One 2048-bit RSA private key per process (generation is the slow part), PKCS#8 PEM.
fn rsa_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        use rsa::pkcs8::{EncodePrivateKey, LineEnding};
        rsa::PrivateKey::new(&mut rand::rng(), 2048)
            .expect("RSA keygen")
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 PEM")
            .to_string()
    })
}

fn p256_pem() -> String {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let secret = loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
            break k;
        }
    };
    secret
        .to_pkcs8_pem(LineEnding::LF)
        .expect("PKCS#8 PEM")
        .to_string()
}

fn signer(kid: &str, alg: Algorithm, key: EncodingKey) -> Signer {
    let mut jwk = Jwk::from_encoding_key(&key, alg).expect("a public JWK");
    jwk.common.key_id = Some(kid.to_owned());
    Signer {
        kid: kid.to_owned(),
        alg,
        key,
        jwk: serde_json::to_value(jwk).expect("JWK JSON"),
    }
}

/// An RS256 signer (the process's RSA key under `kid`).
fn rs256(kid: &str) -> Signer {
    signer(
        kid,
        Algorithm::RS256,
        EncodingKey::from_rsa_pem(rsa_pem().as_bytes()).expect("RSA signing key"),
    )
}

/// An ES256 signer with a fresh P-256 key.
fn es256(kid: &str) -> Signer {
    signer(
        kid,
        Algorithm::ES256,
        EncodingKey::from_ec_pem(p256_pem().as_bytes()).expect("EC signing key"),
    )
}

fn claims(issuer: &str, sub: &str) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({ "iss": issuer, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300 })
}

/// A valid access token signed by `s`, naming its kid.
fn token(s: &Signer, issuer: &str) -> String {
    token_with(s, issuer, |_| {})
}

fn token_with(s: &Signer, issuer: &str, f: impl FnOnce(&mut Header)) -> String {
    let mut h = Header::new(s.alg);
    h.typ = Some("at+jwt".into());
    h.kid = Some(s.kid.clone());
    f(&mut h);
    jsonwebtoken::encode(&h, &claims(issuer, &format!("sub-{}", s.kid)), &s.key)
        .expect("signing works")
}

// ---- the app -----------------------------------------------------------------------------

/// Small intervals so tests stay quick: refetch at most every 200 ms, 300 ms timeout.
fn fast(jwks: Jwks) -> Jwks {
    jwks.allow_http_loopback()
        .min_refetch_interval(Duration::from_millis(200))
        .refresh_every(Duration::from_secs(60))
        .timeout(Duration::from_millis(300))
        .max_bytes(16 * 1024)
}

struct App {
    base: String,
    client: reqwest::Client,
    issuer: String,
}

impl App {
    async fn start(jwt: Jwt, issuer: &str) -> Self {
        // The floods below open hundreds of connections from one address at once: above
        // the default per-address cap, which is not what these tests are about.
        let server = Shieldwall::new()
            .jwt(jwt.issuer(issuer).audience(AUDIENCE))
            .routes(routes![me])
            .limits(shieldwall::server::Limits::default().max_connections_per_ip(1024))
            .server()
            .expect("a secure configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        tokio::spawn(server.on(listener, None).expect("serve").run());
        // reqwest is built without a crypto provider of its own (plain HTTP here).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Self {
            base,
            client,
            issuer: issuer.to_owned(),
        }
    }

    /// An app verifying against `idp`'s key set (configured with `f`).
    async fn with_jwks(idp: &Idp, f: impl FnOnce(Jwks) -> Jwks) -> Self {
        let jwks = f(fast(Jwks::new(idp.url()).expect("a JWKS URL")));
        Self::start(Jwt::new().jwks(jwks), &idp.base).await
    }

    /// GET /me with this bearer token: status and body.
    async fn call(&self, token: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}/me", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("the app answers");
        let status = res.status().as_u16();
        let www = res
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.text().await.expect("a body");
        if status == 401 {
            let www = www.expect("a 401 carries a challenge");
            assert!(www.contains(r#"error="invalid_token""#), "{www}");
        }
        (status, body)
    }

    async fn accepts(&self, s: &Signer) {
        let (status, body) = self.call(&token(s, &self.issuer)).await;
        assert_eq!(status, 200, "kid {} must be accepted: {body}", s.kid);
        assert_eq!(body, format!("sub-{}", s.kid));
    }

    async fn refuses(&self, s: &Signer) {
        let (status, body) = self.call(&token(s, &self.issuer)).await;
        assert_eq!(status, 401, "kid {} must be refused: {body}", s.kid);
    }
}

// ---- rotation ----------------------------------------------------------------------------

#[tokio::test]
async fn rotation_is_picked_up_without_restart() {
    let k1 = rs256("rsa-2026-11");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j).await;

    // The current kid (the first request may wait for the initial fetch, never longer).
    app.accepts(&k1).await;
    assert_eq!(idp.fetches(), 1, "one fetch at start-up");
    app.accepts(&k1).await;
    assert_eq!(idp.fetches(), 1, "a known kid is served from the cache");

    // The provider publishes a new key (another family, too) and starts signing with it.
    let k2 = es256("ec-2026-12");
    idp.set_keys(vec![k1.jwk.clone(), k2.jwk.clone()]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.accepts(&k2).await;
    assert_eq!(idp.fetches(), 2, "the unknown kid refetched the set once");
    app.accepts(&k1).await;

    // The old key is withdrawn: once the set is refetched, its tokens are refused.
    idp.set_keys(vec![k2.jwk.clone()]);
    let k3 = es256("ec-2027-01");
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.refuses(&k3).await; // unknown everywhere: refetches, still unknown
    assert_eq!(idp.fetches(), 3);
    app.refuses(&k1).await;
    let fetches = idp.fetches();
    app.accepts(&k2).await;
    assert_eq!(idp.fetches(), fetches, "a cached kid never fetches");
}

#[tokio::test]
async fn scheduled_refresh_rotates_keys_in_the_background() {
    let k1 = es256("k1");
    let k2 = es256("k2");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j.refresh_every(Duration::from_millis(300))).await;
    app.accepts(&k1).await;
    assert_eq!(idp.fetches(), 1);

    // Rotate, and let the schedule (no request) fetch the new set.
    idp.set_keys(vec![k2.jwk.clone()]);
    idp.wait_for_fetches_over(1).await;
    // From now on every fetch fails, so what follows is answered from the refreshed cache.
    idp.set_mode(Mode::Error);
    app.accepts(&k2).await;
    app.refuses(&k1).await;
}

#[tokio::test]
async fn a_withdrawn_keys_tokens_are_refused_even_once_cached() {
    let k1 = es256("k1");
    let k2 = es256("k2");
    let idp = Idp::start(vec![k1.jwk.clone(), k2.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j.refresh_every(Duration::from_millis(300))).await;
    // One token string, sent again and again: from the second request on it is answered
    // from the verified-token cache.
    let t1 = token(&k1, &app.issuer);
    for _ in 0..3 {
        assert_eq!(app.call(&t1).await.0, 200);
    }
    idp.set_keys(vec![k2.jwk.clone()]);
    idp.wait_for_fetches_over(idp.fetches()).await;
    assert_eq!(
        app.call(&t1).await.0,
        401,
        "the key is gone, so is its cached token"
    );
    app.accepts(&k2).await;
}

// ---- the provider cannot be hammered -----------------------------------------------------

/// `n` tokens naming random kids. Their signatures are never checked (an unknown kid is
/// refused first), so they are made by swapping the header of one signed token.
fn random_kid_tokens(s: &Signer, issuer: &str, n: usize) -> Vec<String> {
    use base64::Engine as _;
    let signed = token(s, issuer);
    let rest = &signed[signed.find('.').unwrap()..];
    (0..n)
        .map(|_| {
            let header = json!({
                "alg": "ES256", "typ": "at+jwt",
                "kid": format!("random-{:016x}", rand::random::<u64>()),
            });
            let header =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
            format!("{header}{rest}")
        })
        .collect()
}

/// Send all `tokens` at once; every one must be refused.
async fn flood(app: &App, tokens: &[String]) -> Duration {
    let started = Instant::now();
    let statuses = futures::future::join_all(tokens.iter().map(|t| app.call(t))).await;
    assert!(statuses.iter().all(|(s, _)| *s == 401), "{statuses:?}");
    started.elapsed()
}

#[tokio::test]
async fn a_flood_of_unknown_kids_fetches_at_most_once_per_interval() {
    const INTERVAL: Duration = Duration::from_millis(800);
    let k1 = es256("k1");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    let early = random_kid_tokens(&k1, &idp.base, 50);
    let late = random_kid_tokens(&k1, &idp.base, 200);
    let started = Instant::now();
    let app = App::with_jwks(&idp, |j| {
        j.min_refetch_interval(INTERVAL)
            .refresh_every(Duration::from_secs(60))
    })
    .await;
    app.accepts(&k1).await;
    assert_eq!(idp.fetches(), 1);

    // Right after the start-up fetch: unknown kids are throttled and fetch nothing.
    flood(&app, &early).await;
    if started.elapsed() < INTERVAL {
        assert_eq!(idp.fetches(), 1, "no fetch within the interval");
    }
    let before = idp.fetches();

    // Once the interval has passed: 200 concurrent unknown kids share one slow fetch.
    tokio::time::sleep(INTERVAL + Duration::from_millis(50)).await;
    idp.set_delay(Duration::from_millis(100));
    let took = flood(&app, &late).await;
    let fetches = idp.fetches() - before;
    // One fetch, plus one more for each full interval the flood itself lasted.
    let allowed = 1 + (took.as_millis() / INTERVAL.as_millis()) as usize;
    assert!(
        (1..=allowed).contains(&fetches),
        "{fetches} fetches for 200 unknown kids in {took:?}"
    );
    assert!(
        fetches <= 2,
        "{fetches} fetches for 200 unknown kids in {took:?}"
    );
    idp.set_delay(Duration::ZERO);
    app.accepts(&k1).await;
}

// ---- failures keep the last good keys ----------------------------------------------------

/// The set breaks as `mode` says: the last good key keeps working, an unknown kid is
/// refused without waiting much past the fetch timeout, and once the set is repaired new
/// keys work again.
async fn broken_set_keeps_the_last_good_keys(mode: Mode) {
    let good = es256("good");
    let idp = Idp::start(vec![good.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j).await;
    app.accepts(&good).await;

    idp.set_mode(mode);
    let next = es256("next");
    idp.set_keys(vec![good.jwk.clone(), next.jwk.clone()]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let before = idp.fetches();
    let started = Instant::now();
    app.refuses(&next).await;
    let took = started.elapsed();
    assert!(
        idp.fetches() > before,
        "{mode:?}: the unknown kid tried a fetch"
    );
    // The fetch timeout is 300 ms (a hanging provider answers after 30 s): the request
    // is bounded by the timeout, with room for a loaded machine.
    assert!(took < Duration::from_secs(2), "{mode:?}: took {took:?}");
    app.accepts(&good).await;
    app.refuses(&next).await;

    // Repaired: the next fetch (a retry, or the next unknown kid) loads the new key.
    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.accepts(&next).await;
    app.accepts(&good).await;
}

#[tokio::test]
async fn garbage_key_set_keeps_the_last_good_keys() {
    broken_set_keeps_the_last_good_keys(Mode::Garbage).await;
}

#[tokio::test]
async fn http_500_keeps_the_last_good_keys() {
    broken_set_keeps_the_last_good_keys(Mode::Error).await;
}

#[tokio::test]
async fn key_set_over_the_size_cap_keeps_the_last_good_keys() {
    broken_set_keeps_the_last_good_keys(Mode::Oversize).await;
}

#[tokio::test]
async fn hanging_provider_keeps_the_last_good_keys_and_latency_bounded() {
    broken_set_keeps_the_last_good_keys(Mode::Hang).await;
}

#[tokio::test]
async fn key_set_without_usable_keys_keeps_the_last_good_keys() {
    let good = es256("good");
    let idp = Idp::start(vec![good.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j).await;
    app.accepts(&good).await;
    // Only an HMAC key and an encryption key: nothing usable, so nothing changes.
    let other = es256("enc");
    let mut enc = other.jwk.clone();
    enc["use"] = json!("enc");
    idp.set_keys(vec![
        json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}),
        enc,
    ]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.refuses(&other).await;
    assert!(idp.fetches() >= 2);
    app.accepts(&good).await;
}

#[tokio::test]
async fn first_fetch_failing_refuses_every_token_until_a_fetch_succeeds() {
    let k1 = es256("k1");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    idp.set_mode(Mode::Error);
    let app = App::with_jwks(&idp, |j| j).await;
    app.refuses(&k1).await;
    app.refuses(&k1).await;
    idp.set_mode(Mode::Serve);
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.accepts(&k1).await;
}

// ---- what the token says is never trusted ------------------------------------------------

#[tokio::test]
async fn jku_x5u_and_jwk_headers_are_never_fetched_or_used() {
    let legit = es256("legit");
    let idp = Idp::start(vec![legit.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j).await;
    app.accepts(&legit).await;

    // The attacker runs a key set of their own and signs with its key.
    let evil = es256("evil");
    let attacker = Idp::start(vec![evil.jwk.clone()]).await;
    let jwk: Jwk = serde_json::from_value(evil.jwk.clone()).unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let forged = [
        token_with(&evil, &app.issuer, |h| h.jku = Some(attacker.url())),
        token_with(&evil, &app.issuer, |h| h.x5u = Some(attacker.url())),
        token_with(&evil, &app.issuer, |h| h.jwk = Some(jwk.clone())),
        token_with(&evil, &app.issuer, |h| {
            h.jku = Some(attacker.url());
            h.kid = None;
        }),
        // Even a genuine token is refused once it carries a key location.
        token_with(&legit, &app.issuer, |h| h.jku = Some(attacker.url())),
    ];
    for t in &forged {
        let (status, body) = app.call(t).await;
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(
        attacker.state.all_hits.load(Ordering::SeqCst),
        0,
        "the attacker's server was contacted"
    );
    // The forged headers did not make the app refetch its own set either.
    assert_eq!(idp.fetches(), 1);
    app.accepts(&legit).await;
}

#[tokio::test]
async fn an_hmac_key_in_the_set_is_never_used() {
    let legit = rs256("rsa");
    let secret = b"a-shared-secret-published-in-a-jwks-0123456789";
    let mut hmac = signer(
        "hmac",
        Algorithm::HS256,
        EncodingKey::from_secret(secret).unwrap(),
    );
    // `Jwk::from_encoding_key` on an HMAC key publishes it as an `oct` JWK.
    assert_eq!(hmac.jwk["kty"], "oct");
    let idp = Idp::start(vec![legit.jwk.clone(), hmac.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j).await;
    app.accepts(&legit).await;
    app.refuses(&hmac).await;
    // Nor can an RS256 token borrow the oct key's kid.
    hmac.key = EncodingKey::from_rsa_pem(rsa_pem().as_bytes()).unwrap();
    hmac.alg = Algorithm::RS256;
    app.refuses(&hmac).await;
}

#[tokio::test]
async fn algorithms_outside_the_sets_allowlist_are_refused() {
    let rsa = rs256("rsa");
    let ec = es256("ec");
    let idp = Idp::start(vec![rsa.jwk.clone(), ec.jwk.clone()]).await;
    let app = App::with_jwks(&idp, |j| j.algorithms([Algorithm::ES256])).await;
    app.accepts(&ec).await;
    // The RSA JWK names RS256, which the set does not allow: the key is skipped.
    app.refuses(&rsa).await;
}

// ---- discovery, and static keys beside the set -------------------------------------------

#[tokio::test]
async fn discovery_finds_the_key_set() {
    let k1 = es256("k1");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    let jwks = fast(Jwks::discover(&idp.base).expect("an issuer URL"));
    let app = App::start(Jwt::new().jwks(jwks), &idp.base).await;
    app.accepts(&k1).await;
    assert_eq!(idp.state.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(idp.fetches(), 1);

    // Rotation through a discovered set: the remembered jwks_uri is reused.
    let k2 = es256("k2");
    idp.set_keys(vec![k2.jwk.clone()]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    app.accepts(&k2).await;
    assert_eq!(idp.state.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn discovery_naming_another_issuer_is_refused() {
    let k1 = es256("k1");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    *idp.state.issuer.lock().unwrap() = "https://impostor.example".into();
    let jwks = fast(Jwks::discover(&idp.base).expect("an issuer URL"));
    let app = App::start(Jwt::new().jwks(jwks), &idp.base).await;
    app.refuses(&k1).await;
    assert!(idp.state.discovery_hits.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        idp.fetches(),
        0,
        "the key set of a mismatched issuer is not fetched"
    );
}

#[tokio::test]
async fn static_keys_and_a_key_set_combine() {
    let remote = es256("remote");
    let idp = Idp::start(vec![remote.jwk.clone()]).await;
    let local_pem = p256_pem();
    let local = signer(
        "local",
        Algorithm::ES256,
        EncodingKey::from_ec_pem(local_pem.as_bytes()).unwrap(),
    );
    let public_pem = {
        use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
        p256::SecretKey::from_pkcs8_pem(&local_pem)
            .unwrap()
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    };
    let jwt = Jwt::new()
        .key(
            JwtKey::ec_pem(public_pem)
                .kid("local")
                .algorithms([Algorithm::ES256]),
        )
        .jwks(fast(Jwks::new(idp.url()).unwrap()));
    let app = App::start(jwt, &idp.base).await;
    app.accepts(&remote).await;
    app.accepts(&local).await;
    assert_eq!(idp.fetches(), 1, "a static kid never fetches");
}

// ---- readiness -----------------------------------------------------------------------------

#[tokio::test]
async fn readiness_reports_the_key_set() {
    let k1 = es256("k1");
    let idp = Idp::start(vec![k1.jwk.clone()]).await;
    idp.set_mode(Mode::Error);
    let jwks = fast(Jwks::new(idp.url()).expect("a JWKS URL"));
    let router = Shieldwall::new()
        .jwt(Jwt::new().jwks(jwks).issuer(&idp.base).audience(AUDIENCE))
        .routes(routes![me])
        .health(shieldwall::health::Health::new())
        .build()
        .expect("a secure configuration");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(shieldwall::serve(router, listener));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let ready = |c: reqwest::Client| {
        let base = base.clone();
        async move {
            let r = c
                .get(format!("{base}/ready"))
                .send()
                .await
                .expect("answers");
            let status = r.status().as_u16();
            let v: Value = r.json().await.expect("json");
            (
                status,
                v["checks"]["jwks"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        ready(client.clone()).await,
        (503, "down".to_owned()),
        "no key set yet"
    );
    idp.set_mode(Mode::Serve);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if ready(client.clone()).await == (200, "up".to_owned()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! The JWT attack suite, over a real server (`shieldwall::serve` on 127.0.0.1) and a real
//! HTTP client (`reqwest`).
//!
//! Every negative case mints an otherwise valid token, changes exactly one thing, and runs
//! through [`support::App::attack`], which first proves the unchanged token is accepted
//! (the positive control) and then checks the changed one is refused with the exact status,
//! the RFC 6750 challenge, `application/problem+json`, and a body and headers that carry
//! nothing of either token. A case therefore fails if verification is skipped.

mod support {
    //! App builder, token minting and the request/assertion helpers.

    use std::sync::OnceLock;

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE};
    use serde_json::{Value, json};
    use shieldwall::prelude::*;

    pub(crate) const ISSUER: &str = "https://issuer.attack-suite.test";
    pub(crate) const AUDIENCE: &str = "attack-suite-api";
    pub(crate) const SUBJECT: &str = "alice-7f3a9c";
    pub(crate) const TENANT: &str = "tenant-acme-42";
    /// The app's HS256 secret (41 bytes).
    pub(crate) const SECRET: &[u8] = b"attack-suite-hmac-secret-0123456789abcdef";
    /// A secret the app does not know (an attacker's, or a rotated-out one).
    pub(crate) const OTHER_SECRET: &[u8] = b"an-attackers-own-hmac-secret-0123456789ab";

    /// Any authenticated caller: echoes the subject.
    #[secure(get "/me", auth)]
    async fn me(user: Principal) -> Json<Value> {
        Json(json!({ "sub": user.subject() }))
    }

    #[derive(Deserialize)]
    struct TenantClaims {
        tenant: String,
    }

    /// Custom claims through `Claims<T>`: returns the `tenant` claim.
    #[secure(get "/tenant", auth)]
    async fn tenant(Claims(claims): Claims<TenantClaims>) -> String {
        claims.tenant
    }

    // ---- minting -------------------------------------------------------------------------

    pub(crate) fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Claims the default app accepts.
    pub(crate) fn claims() -> Value {
        let now = now();
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": SUBJECT,
            "iat": now,
            "exp": now + 300,
            "roles": ["reader"],
            "scope": "profile:read",
            "tenant": TENANT,
        })
    }

    /// `{"alg": alg, "typ": "JWT"}`.
    pub(crate) fn header(alg: &str) -> Value {
        json!({ "alg": alg, "typ": "JWT" })
    }

    pub(crate) fn hmac(secret: &[u8]) -> EncodingKey {
        EncodingKey::from_secret(secret).expect("an HMAC signing key")
    }

    /// Sign header and claims given as JSON text (so duplicate keys survive) with `alg`.
    pub(crate) fn mint_raw(
        header_json: &str,
        claims_json: &str,
        key: &EncodingKey,
        alg: Algorithm,
    ) -> String {
        let input = format!("{}.{}", b64(header_json), b64(claims_json));
        let signature =
            jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("signing works");
        format!("{input}.{signature}")
    }

    /// Sign header and claims with the algorithm the header names.
    pub(crate) fn mint(header: &Value, claims: &Value, key: &EncodingKey) -> String {
        let alg: Algorithm = serde_json::from_value(header["alg"].clone())
            .expect("the header names a supported alg");
        mint_raw(&header.to_string(), &claims.to_string(), key, alg)
    }

    /// The default app's valid HS256 token.
    pub(crate) fn valid() -> String {
        mint(&header("HS256"), &claims(), &hmac(SECRET))
    }

    /// `claims()` with `f` applied.
    pub(crate) fn claims_with(f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
        let mut c = claims();
        f(c.as_object_mut().expect("claims are an object"));
        c
    }

    /// `header(alg)` with `f` applied.
    pub(crate) fn header_with(
        alg: &str,
        f: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) -> Value {
        let mut h = header(alg);
        f(h.as_object_mut().expect("header is an object"));
        h
    }

    /// The three segments of a compact JWS.
    pub(crate) fn parts(token: &str) -> (&str, &str, &str) {
        let mut it = token.splitn(3, '.');
        let (Some(h), Some(p), Some(s)) = (it.next(), it.next(), it.next()) else {
            panic!("not a three-segment token");
        };
        (h, p, s)
    }

    // ---- keys ----------------------------------------------------------------------------

    /// A PEM private key (PKCS#8) and its PEM public key (SPKI).
    pub(crate) struct KeyPair {
        pub(crate) private_pem: String,
        pub(crate) public_pem: String,
    }

    impl KeyPair {
        pub(crate) fn encoding_rsa(&self) -> EncodingKey {
            EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).expect("RSA signing key")
        }
        pub(crate) fn encoding_ec(&self) -> EncodingKey {
            EncodingKey::from_ec_pem(self.private_pem.as_bytes()).expect("EC signing key")
        }
        pub(crate) fn encoding_ed(&self) -> EncodingKey {
            EncodingKey::from_ed_pem(self.private_pem.as_bytes()).expect("Ed25519 signing key")
        }
    }

    /// One 2048-bit RSA key per test process (generation is the slow part).
    pub(crate) fn rsa_keys() -> &'static KeyPair {
        static KEYS: OnceLock<KeyPair> = OnceLock::new();
        KEYS.get_or_init(|| {
            use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
            let private = rsa::PrivateKey::new(&mut rand::rng(), 2048).expect("RSA keygen");
            KeyPair {
                private_pem: private
                    .to_pkcs8_pem(LineEnding::LF)
                    .expect("PKCS#8 PEM")
                    .to_string(),
                public_pem: private
                    .to_public_key()
                    .to_public_key_pem(LineEnding::LF)
                    .expect("SPKI PEM"),
            }
        })
    }

    pub(crate) fn p256_keys() -> KeyPair {
        use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let secret = loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(k) = p256::SecretKey::from_slice(&bytes) {
                break k;
            }
        };
        KeyPair {
            private_pem: secret
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PKCS#8 PEM")
                .to_string(),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("SPKI PEM"),
        }
    }

    pub(crate) fn p384_keys() -> KeyPair {
        use p384::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let secret = loop {
            let mut bytes = [0u8; 48];
            rand::fill(&mut bytes[..]);
            if let Ok(k) = p384::SecretKey::from_slice(&bytes) {
                break k;
            }
        };
        KeyPair {
            private_pem: secret
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PKCS#8 PEM")
                .to_string(),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("SPKI PEM"),
        }
    }

    pub(crate) fn ed25519_keys() -> KeyPair {
        use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
        use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
        KeyPair {
            private_pem: key
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PKCS#8 PEM")
                .to_string(),
            public_pem: key
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("SPKI PEM"),
        }
    }

    // ---- the app and the client ----------------------------------------------------------

    /// The default configuration: one HS256 secret, issuer and audience required.
    pub(crate) fn default_jwt() -> Jwt {
        Jwt::hs256(SECRET).issuer(ISSUER).audience(AUDIENCE)
    }

    /// `Shieldwall` with the suite's routes (`/me`, `/tenant`) and `jwt`.
    pub(crate) fn build(jwt: Jwt) -> Result<axum::Router, shieldwall::BuildError> {
        Shieldwall::new()
            .jwt(jwt)
            .routes(routes![me, tenant])
            .build()
    }

    /// A running app and a client for it.
    pub(crate) struct App {
        base: String,
        client: reqwest::Client,
    }

    /// One response, read in full.
    #[derive(Debug)]
    pub(crate) struct Reply {
        pub(crate) status: u16,
        pub(crate) headers: HeaderMap,
        pub(crate) body: String,
    }

    /// How a request must be refused.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Expect {
        /// 401, `error="invalid_token"`.
        InvalidToken,
        /// 400, `error="invalid_request"`.
        InvalidRequest,
        /// 401, a plain `Bearer realm="api"` challenge.
        NoCredentials,
    }

    impl App {
        /// Serve the suite's routes with `jwt` on an ephemeral port.
        pub(crate) async fn start(jwt: Jwt) -> Self {
            let router = build(jwt).expect("a secure configuration");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("local addr"));
            tokio::spawn(shieldwall::serve(router, listener));
            // reqwest is built without a crypto provider (tests hand it ring): install ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client");
            Self { base, client }
        }

        /// The app with [`default_jwt`].
        pub(crate) async fn default() -> Self {
            Self::start(default_jwt()).await
        }

        /// GET `path` with these `Authorization` values (none, one, or several headers).
        pub(crate) async fn get(&self, path: &str, authorization: &[&[u8]]) -> Reply {
            let mut req = self.client.get(format!("{}{path}", self.base));
            for value in authorization {
                // `header` appends, so several values become several header lines.
                req = req.header(
                    AUTHORIZATION,
                    HeaderValue::from_bytes(value).expect("header value"),
                );
            }
            let res = req.send().await.expect("the server answers");
            Reply {
                status: res.status().as_u16(),
                headers: res.headers().clone(),
                body: res.text().await.expect("a body"),
            }
        }

        /// GET `/me` with `Authorization: Bearer <token>`.
        pub(crate) async fn send(&self, token: &str) -> Reply {
            self.send_to("/me", token).await
        }

        /// GET `path` with `Authorization: Bearer <token>`.
        pub(crate) async fn send_to(&self, path: &str, token: &str) -> Reply {
            self.get(path, &[format!("Bearer {token}").as_bytes()])
                .await
        }

        /// `token` is accepted on `/me` as [`SUBJECT`].
        pub(crate) async fn accepts(&self, token: &str) {
            let r = self.send(token).await;
            assert_eq!(
                r.status, 200,
                "a valid token must be accepted; body: {}",
                r.body
            );
            let v: Value = serde_json::from_str(&r.body).expect("JSON");
            assert_eq!(v["sub"], SUBJECT);
        }

        /// The positive control (`valid` gets 200), then `forged` is refused as `expect` says.
        pub(crate) async fn attack(&self, valid: &str, forged: &str, expect: Expect) {
            assert_ne!(valid, forged, "the attack must change the token");
            self.accepts(valid).await;
            self.send(forged)
                .await
                .assert_refused(expect, &[valid, forged]);
        }
    }

    impl Reply {
        /// Status, challenge, problem+json body, and no leak of anything in `tokens`.
        pub(crate) fn assert_refused(&self, expect: Expect, tokens: &[&str]) {
            let (status, challenge, kind) = match expect {
                Expect::InvalidToken => (
                    401,
                    r#"Bearer realm="api", error="invalid_token""#,
                    "invalid-token",
                ),
                Expect::InvalidRequest => (
                    400,
                    r#"Bearer realm="api", error="invalid_request""#,
                    "invalid-request",
                ),
                Expect::NoCredentials => (401, r#"Bearer realm="api""#, "unauthenticated"),
            };
            assert_eq!(
                self.status, status,
                "{expect:?}: wrong status; body: {}",
                self.body
            );
            assert_eq!(
                self.headers.get(CONTENT_TYPE).map(HeaderValue::as_bytes),
                Some(&b"application/problem+json"[..]),
                "{expect:?}: not problem+json"
            );
            let www = self
                .headers
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{expect:?}: no WWW-Authenticate"));
            match expect {
                Expect::NoCredentials => assert_eq!(www, challenge),
                _ => assert!(
                    www.starts_with(challenge),
                    "{expect:?}: challenge was {www:?}"
                ),
            }
            let body: Value = serde_json::from_str(&self.body).expect("a JSON problem document");
            assert_eq!(body["status"], status);
            assert_eq!(body["type"], format!("urn:shieldwall:problem:{kind}"));
            for token in tokens {
                for secret in sensitive(token) {
                    assert!(
                        !self.body.contains(&secret),
                        "the body leaks {secret:?}: {}",
                        self.body
                    );
                    for (name, value) in &self.headers {
                        // The app-wide policy headers are fixed text (`default-src 'none'`,
                        // `camera=()`), the same on every response: not request data.
                        if matches!(
                            name.as_str(),
                            "content-security-policy" | "permissions-policy"
                        ) {
                            continue;
                        }
                        assert!(
                            !value
                                .as_bytes()
                                .windows(secret.len())
                                .any(|w| w == secret.as_bytes()),
                            "header {name} leaks {secret:?}"
                        );
                    }
                }
            }
        }
    }

    /// What a response must never repeat: the token, its segments, and every claim or
    /// header value it carries (values shorter than 4 characters are too common to test).
    fn sensitive(token: &str) -> Vec<String> {
        fn leaves(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Number(n) => out.push(n.to_string()),
                Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
                Value::Object(o) => o.values().for_each(|v| leaves(v, out)),
                Value::Bool(_) | Value::Null => {}
            }
        }
        let mut out = vec![token.to_owned()];
        for segment in token.split('.') {
            out.push(segment.to_owned());
            if let Ok(bytes) = URL_SAFE_NO_PAD.decode(segment) {
                match serde_json::from_slice::<Value>(&bytes) {
                    Ok(v) => leaves(&v, &mut out),
                    Err(_) => out.extend(String::from_utf8(bytes).ok()),
                }
            }
        }
        out.retain(|s| s.len() >= 4);
        out
    }
}

use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::Jwk;
use serde_json::{Value, json};
use shieldwall::BuildError;
use shieldwall::auth::jwt::{JwtConfigError, MAX_AUTHORIZATION_LEN};
use shieldwall::prelude::*;
use support::*;

// ---- algorithm attacks -------------------------------------------------------------------

#[tokio::test]
async fn alg_none_in_any_spelling_is_rejected() {
    let app = App::default().await;
    let valid = valid();
    let (_, payload, signature) = parts(&valid);
    for spelling in ["none", "None", "NONE", "nOnE"] {
        let h = b64(header(spelling).to_string());
        for sig in ["", signature] {
            app.attack(
                &valid,
                &format!("{h}.{payload}.{sig}"),
                Expect::InvalidToken,
            )
            .await;
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let keys = rsa_keys();
    let app = App::start(
        Jwt::new()
            .key(JwtKey::rsa_pem(keys.public_pem.as_bytes()).algorithms([Algorithm::RS256]))
            .issuer(ISSUER)
            .audience(AUDIENCE),
    )
    .await;
    let valid = mint(&header("RS256"), &claims(), &keys.encoding_rsa());
    // The classic confusion: the verifier's public key bytes used as an HMAC secret.
    let forged = mint(
        &header("HS256"),
        &claims(),
        &hmac(keys.public_pem.as_bytes()),
    );
    app.attack(&valid, &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn algorithm_outside_the_keys_allowlist_is_rejected() {
    let keys = rsa_keys();
    let app = App::start(
        Jwt::new()
            .key(JwtKey::rsa_pem(keys.public_pem.as_bytes()).algorithms([Algorithm::RS256]))
            .issuer(ISSUER)
            .audience(AUDIENCE),
    )
    .await;
    let valid = mint(&header("RS256"), &claims(), &keys.encoding_rsa());
    // Same key, a correct RS512 signature: refused because RS512 is not allowed.
    let forged = mint(&header("RS512"), &claims(), &keys.encoding_rsa());
    app.attack(&valid, &forged, Expect::InvalidToken).await;
}

// ---- key selection -----------------------------------------------------------------------

const K1_SECRET: &[u8] = b"key-one-hmac-secret-0123456789abcdefghij";
const K2_SECRET: &[u8] = b"key-two-hmac-secret-0123456789abcdefghij";

async fn two_key_app() -> App {
    App::start(
        Jwt::new()
            .key(JwtKey::hmac(K1_SECRET).kid("k1"))
            .key(JwtKey::hmac(K2_SECRET).kid("k2"))
            .issuer(ISSUER)
            .audience(AUDIENCE),
    )
    .await
}

fn with_kid(kid: &str) -> Value {
    header_with("HS256", |h| {
        h.insert("kid".into(), kid.into());
    })
}

#[tokio::test]
async fn unknown_kid_is_rejected() {
    let app = two_key_app().await;
    let valid = mint(&with_kid("k1"), &claims(), &hmac(K1_SECRET));
    let forged = mint(&with_kid("k3-unknown"), &claims(), &hmac(K1_SECRET));
    app.attack(&valid, &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn kid_path_traversal_is_rejected() {
    let app = two_key_app().await;
    let valid = mint(&with_kid("k1"), &claims(), &hmac(K1_SECRET));
    // A verifier that read the key from a file named by `kid` would use empty (/dev/null)
    // or guessable contents as the HMAC secret; sign with exactly those. jsonwebtoken
    // refuses an empty secret, but HMAC zero-pads short keys to the block size, so the
    // one-byte key "\0" yields exactly the MAC of the empty key.
    let empty: &[u8] = b"\0";
    for (kid, secret) in [
        ("../../dev/null", empty),
        ("/dev/null", empty),
        ("/etc/passwd", &b"root:x:0:0:root:/root:/bin/bash\n"[..]),
        (
            "../../../../../../etc/passwd",
            &b"root:x:0:0:root:/root:/bin/bash\n"[..],
        ),
    ] {
        let forged = mint(&with_kid(kid), &claims(), &hmac(secret));
        app.attack(&valid, &forged, Expect::InvalidToken).await;
        // And with the real key: the kid alone must not resolve to anything.
        let forged = mint(&with_kid(kid), &claims(), &hmac(K1_SECRET));
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

#[tokio::test]
async fn token_without_kid_is_rejected_when_several_keys_are_configured() {
    let app = two_key_app().await;
    let valid = mint(&with_kid("k1"), &claims(), &hmac(K1_SECRET));
    let forged = mint(&header("HS256"), &claims(), &hmac(K1_SECRET));
    app.attack(&valid, &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn kid_naming_another_configured_key_is_rejected() {
    let app = two_key_app().await;
    let valid = mint(&with_kid("k1"), &claims(), &hmac(K1_SECRET));
    let forged = mint(&with_kid("k2"), &claims(), &hmac(K1_SECRET));
    app.attack(&valid, &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn keys_carried_by_the_token_are_never_used() {
    // ES256 app; the attacker signs with their own EC key and points at it.
    let legit = p256_keys();
    let attacker = p256_keys();
    let app = App::start(
        Jwt::new()
            .key(JwtKey::ec_pem(legit.public_pem.as_bytes()))
            .issuer(ISSUER)
            .audience(AUDIENCE),
    )
    .await;
    let valid = mint(&header("ES256"), &claims(), &legit.encoding_ec());
    let attacker_jwk =
        Jwk::from_encoding_key(&attacker.encoding_ec(), Algorithm::ES256).expect("a JWK");
    let attacker_jwk = serde_json::to_value(&attacker_jwk).expect("JWK JSON");
    let pointers: [(&str, Value); 4] = [
        (
            "jku",
            json!("https://attacker.example/.well-known/jwks.json"),
        ),
        ("x5u", json!("https://attacker.example/cert.pem")),
        ("jwk", attacker_jwk),
        ("x5c", json!(["MIIBfake-attacker-certificate"])),
    ];
    for (name, value) in pointers {
        let h = header_with("ES256", |h| {
            h.insert(name.into(), value.clone());
        });
        // The real attack: signed by the key the header points at.
        let forged = mint(&h, &claims(), &attacker.encoding_ec());
        app.attack(&valid, &forged, Expect::InvalidToken).await;
        if name != "x5c" {
            // And the policy: a token naming a key location is refused even when the
            // signature is the legitimate key's.
            let forged = mint(&h, &claims(), &legit.encoding_ec());
            app.attack(&valid, &forged, Expect::InvalidToken).await;
        }
    }
}

// ---- time claims -------------------------------------------------------------------------

#[tokio::test]
async fn expired_beyond_leeway_is_rejected() {
    let app = App::default().await;
    let forged = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.insert("exp".into(), (now() - 60).into());
        }),
        &hmac(SECRET),
    );
    app.attack(&valid(), &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn expired_within_leeway_is_accepted() {
    let app = App::default().await;
    let token = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.insert("exp".into(), (now() - 2).into());
        }),
        &hmac(SECRET),
    );
    app.accepts(&token).await;
}

#[tokio::test]
async fn not_yet_valid_is_rejected() {
    let app = App::default().await;
    let forged = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.insert("nbf".into(), (now() + 120).into());
        }),
        &hmac(SECRET),
    );
    app.attack(&valid(), &forged, Expect::InvalidToken).await;
}

/// Attack round 3, F4: a token "issued" in the future would outlive every revocation
/// (a subject revocation ends the tokens issued at or before it, a state's epoch those
/// issued before it began). Beyond the leeway it is refused, as is an `iat` that is not
/// a number.
#[tokio::test]
async fn issued_in_the_future_is_rejected() {
    let app = App::default().await;
    for iat in [json!(now() + 120), json!(now() + 3600), json!("1700000000")] {
        let forged = mint(
            &header("HS256"),
            &claims_with(|c| {
                c.insert("iat".into(), iat.clone());
            }),
            &hmac(SECRET),
        );
        app.attack(&valid(), &forged, Expect::InvalidToken).await;
    }
    // Within the leeway (clock skew between issuer and verifier): accepted.
    let token = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.insert("iat".into(), (now() + 2).into());
        }),
        &hmac(SECRET),
    );
    app.accepts(&token).await;
}

#[tokio::test]
async fn missing_exp_is_rejected() {
    let app = App::default().await;
    let forged = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.remove("exp");
        }),
        &hmac(SECRET),
    );
    app.attack(&valid(), &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn exp_as_a_string_is_rejected() {
    let app = App::default().await;
    let forged = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.insert("exp".into(), "9999999999".into());
        }),
        &hmac(SECRET),
    );
    app.attack(&valid(), &forged, Expect::InvalidToken).await;
}

// ---- issuer and audience -----------------------------------------------------------------

#[tokio::test]
async fn wrong_or_missing_issuer_and_audience_are_rejected() {
    let app = App::default().await;
    let valid = valid();
    let changes: [(&str, Option<Value>); 5] = [
        ("aud", Some("another-api".into())),
        ("aud", Some(json!(["another-api", "yet-another-api"]))),
        ("aud", None),
        ("iss", Some("https://evil-issuer.test".into())),
        ("iss", None),
    ];
    for (claim, value) in changes {
        let c = claims_with(|c| match value {
            Some(v) => {
                c.insert(claim.into(), v);
            }
            None => {
                c.remove(claim);
            }
        });
        let forged = mint(&header("HS256"), &c, &hmac(SECRET));
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

// ---- signatures --------------------------------------------------------------------------

#[tokio::test]
async fn stripped_signature_is_rejected() {
    let app = App::default().await;
    let valid = valid();
    let (h, p, _) = parts(&valid);
    app.attack(&valid, &format!("{h}.{p}."), Expect::InvalidToken)
        .await;
}

#[tokio::test]
async fn altered_signature_is_rejected() {
    let app = App::default().await;
    let valid = valid();
    let (h, p, s) = parts(&valid);
    // Change one character in the middle (the last one may only carry padding bits).
    let mut sig = s.as_bytes().to_vec();
    let mid = sig.len() / 2;
    sig[mid] = if sig[mid] == b'A' { b'B' } else { b'A' };
    let sig = String::from_utf8(sig).expect("ASCII");
    app.attack(&valid, &format!("{h}.{p}.{sig}"), Expect::InvalidToken)
        .await;
}

#[tokio::test]
async fn signature_from_another_secret_is_rejected() {
    let app = App::default().await;
    let forged = mint(&header("HS256"), &claims(), &hmac(OTHER_SECRET));
    app.attack(&valid(), &forged, Expect::InvalidToken).await;
}

// ---- malformed tokens --------------------------------------------------------------------

#[tokio::test]
async fn malformed_tokens_are_rejected() {
    let app = App::default().await;
    let valid = valid();
    let (h, p, s) = parts(&valid);
    let key = hmac(SECRET);
    let header_json = header("HS256").to_string();
    let claims_json = claims().to_string();
    // `~` and `+` are legal token68 characters but not base64url, so these reach the
    // JWT decoder (a non-token68 value is a malformed header: see the Authorization cases).
    let bad_b64 = |seg: &str| format!("{}~{}", &seg[..4], &seg[4..]);
    let signed = |header: &str, payload: &str| {
        let input = format!("{header}.{payload}");
        let sig =
            jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256).expect("sign");
        format!("{input}.{sig}")
    };
    let cases = [
        ("header is not base64url", signed(&bad_b64(h), p)),
        ("payload is not base64url", signed(h, &bad_b64(p))),
        (
            "payload uses the standard alphabet",
            signed(h, &format!("{}+/{}", &p[..8], &p[8..])),
        ),
        (
            "payload is not JSON",
            mint_raw(
                &header_json,
                "sub=admin;exp=9999999999",
                &key,
                Algorithm::HS256,
            ),
        ),
        (
            "payload is a JSON array",
            mint_raw(&header_json, "[\"admin\"]", &key, Algorithm::HS256),
        ),
        (
            "header is not JSON",
            mint_raw("alg=HS256", &claims_json, &key, Algorithm::HS256),
        ),
        (
            "header is a JSON string",
            mint_raw("\"HS256\"", &claims_json, &key, Algorithm::HS256),
        ),
        ("only two segments", format!("{h}.{p}")),
        ("four segments", format!("{h}.{p}.{s}.{s}")),
        ("an empty header segment", format!(".{p}.{s}")),
    ];
    for (what, forged) in cases {
        eprintln!("case: {what}");
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

// ---- size limits -------------------------------------------------------------------------

/// A correctly signed token whose `pad` claim is `n` bytes long.
fn padded(n: usize) -> String {
    mint(
        &header("HS256"),
        &claims_with(|c| {
            c.insert("pad".into(), "x".repeat(n).into());
        }),
        &hmac(SECRET),
    )
}

#[tokio::test]
async fn authorization_header_over_8_kib_is_a_malformed_request() {
    let app = App::default().await;
    let valid = valid();
    // 9 KiB: still far below hyper's own header limit, so the app's 8 KiB check answers.
    let forged = padded(9 * 1024);
    assert!(forged.len() > 9 * 1024);
    app.accepts(&valid).await;
    app.send(&forged)
        .await
        .assert_refused(Expect::InvalidRequest, &[&valid, &forged]);
}

#[tokio::test]
async fn authorization_header_limit_is_exactly_8_kib() {
    let app = App::default().await;
    let header_len = |t: &str| "Bearer ".len() + t.len();
    // The longest padded token that fits, and the shortest that does not.
    let mut n = 0;
    while header_len(&padded(n + 1)) <= MAX_AUTHORIZATION_LEN {
        n += 1;
    }
    let fits = padded(n);
    let over = padded(n + 1);
    assert!(
        header_len(&fits) <= MAX_AUTHORIZATION_LEN && header_len(&over) > MAX_AUTHORIZATION_LEN
    );
    app.accepts(&fits).await;
    app.send(&over)
        .await
        .assert_refused(Expect::InvalidRequest, &[&fits, &over]);
}

#[tokio::test]
async fn a_300_kb_token_is_a_malformed_request() {
    let app = App::default().await;
    let valid = valid();
    let forged = padded(300 * 1024);
    app.accepts(&valid).await;
    // The server caps a request head at 16 KiB (`server::Limits`), so a 300 KB token is
    // refused at the connection with 431 before any of it is parsed; the 8 KiB
    // Authorization limit of the app (400 problem+json) is tested just above.
    let reply = app.send(&forged).await;
    assert_eq!(reply.status, 431, "body: {}", reply.body);
    assert!(!reply.body.contains(&forged[..64]));
    app.accepts(&valid).await;
}

// ---- claim tampering ---------------------------------------------------------------------

#[tokio::test]
async fn duplicate_claim_keys_are_rejected() {
    let app = App::default().await;
    let valid = valid();
    let key = hmac(SECRET);
    let header_json = header("HS256").to_string();
    let (now, iat) = (now(), now());
    let fixed = format!(
        r#""iss":"{ISSUER}","aud":"{AUDIENCE}","iat":{iat},"roles":["reader"],"tenant":"{TENANT}""#
    );
    let payloads = [
        // Last-wins parsers see `admin`, first-wins parsers see `a`.
        format!(r#"{{"sub":"a","sub":"admin","exp":{},{fixed}}}"#, now + 300),
        // An expired `exp` shadowed by a later valid one, and the reverse.
        format!(
            r#"{{"sub":"{SUBJECT}","exp":{},"exp":{},{fixed}}}"#,
            now - 3600,
            now + 300
        ),
        format!(
            r#"{{"sub":"{SUBJECT}","exp":{},"exp":{},{fixed}}}"#,
            now + 300,
            now - 3600
        ),
        // Nested duplicates count too.
        format!(
            r#"{{"sub":"{SUBJECT}","exp":{},"ctx":{{"role":"a","role":"admin"}},{fixed}}}"#,
            now + 300
        ),
    ];
    for payload in payloads {
        let forged = mint_raw(&header_json, &payload, &key, Algorithm::HS256);
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
    // Control for the control: the same hand-built JSON without the duplicate is accepted.
    let clean = format!(r#"{{"sub":"{SUBJECT}","exp":{},{fixed}}}"#, now + 300);
    app.accepts(&mint_raw(&header_json, &clean, &key, Algorithm::HS256))
        .await;
}

#[tokio::test]
async fn duplicate_header_parameters_are_rejected() {
    let app = two_key_app().await;
    let valid = mint(&with_kid("k1"), &claims(), &hmac(K1_SECRET));
    let claims_json = claims().to_string();
    let key = hmac(K1_SECRET);
    for header_json in [
        r#"{"alg":"HS256","typ":"JWT","kid":"k2","kid":"k1"}"#,
        r#"{"alg":"HS256","typ":"JWT","kid":"k1","kid":"k2"}"#,
        r#"{"alg":"none","alg":"HS256","typ":"JWT","kid":"k1"}"#,
        r#"{"alg":"HS256","typ":"rt+jwt","typ":"JWT","kid":"k1"}"#,
    ] {
        let forged = mint_raw(header_json, &claims_json, &key, Algorithm::HS256);
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

#[tokio::test]
async fn unknown_crit_header_is_rejected() {
    let app = App::default().await;
    let h = header_with("HS256", |h| {
        h.insert("crit".into(), json!(["exp-ext"]));
        h.insert("exp-ext".into(), json!(1_999_999_999u64));
    });
    let forged = mint(&h, &claims(), &hmac(SECRET));
    app.attack(&valid(), &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token() {
    let app = App::default().await;
    let valid = valid();
    let rt_header = header_with("HS256", |h| {
        h.insert("typ".into(), "rt+jwt".into());
    });
    let by_typ = mint(&rt_header, &claims(), &hmac(SECRET));
    app.attack(&valid, &by_typ, Expect::InvalidToken).await;
    for (claim, value) in [
        ("token_use", "refresh"),
        ("token_type", "refresh_token"),
        ("typ", "Refresh"),
    ] {
        let forged = mint(
            &header("HS256"),
            &claims_with(|c| {
                c.insert(claim.into(), value.into());
            }),
            &hmac(SECRET),
        );
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

#[tokio::test]
async fn malformed_identity_claims_are_rejected() {
    let app = App::default().await;
    let valid = valid();
    let changes: [(&str, Option<Value>); 6] = [
        ("roles", Some("admin".into())),
        ("roles", Some(json!({ "admin": true }))),
        ("roles", Some(json!(["reader", 7]))),
        ("sub", None),
        ("sub", Some(json!(42))),
        ("sub", Some("".into())),
    ];
    for (claim, value) in changes {
        let c = claims_with(|c| match value {
            Some(v) => {
                c.insert(claim.into(), v);
            }
            None => {
                c.remove(claim);
            }
        });
        let forged = mint(&header("HS256"), &c, &hmac(SECRET));
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

// ---- the Authorization header ------------------------------------------------------------

#[tokio::test]
async fn two_authorization_headers_are_a_malformed_request() {
    let app = App::default().await;
    let valid = valid();
    app.accepts(&valid).await;
    let bearer = format!("Bearer {valid}");
    let r = app
        .get("/me", &[bearer.as_bytes(), bearer.as_bytes()])
        .await;
    r.assert_refused(Expect::InvalidRequest, &[&valid]);
}

#[tokio::test]
async fn basic_credentials_get_a_plain_bearer_challenge() {
    let app = App::default().await;
    app.accepts(&valid()).await;
    let r = app
        .get("/me", &[b"Basic YWxpY2UtN2YzYTljOmh1bnRlcjI="])
        .await;
    r.assert_refused(Expect::NoCredentials, &["YWxpY2UtN2YzYTljOmh1bnRlcjI="]);
    let r = app.get("/me", &[]).await;
    r.assert_refused(Expect::NoCredentials, &[]);
}

#[tokio::test]
async fn empty_bearer_token_is_a_malformed_request() {
    let app = App::default().await;
    app.accepts(&valid()).await;
    for value in [&b"Bearer "[..], b"Bearer", b"Bearer    "] {
        app.get("/me", &[value])
            .await
            .assert_refused(Expect::InvalidRequest, &[]);
    }
}

#[tokio::test]
async fn non_token68_bearer_value_is_a_malformed_request() {
    let app = App::default().await;
    let valid = valid();
    app.accepts(&valid).await;
    let (h, p, s) = parts(&valid);
    for forged in [
        format!("{h}.{p}.{s} extra"),
        format!("{h}!.{p}.{s}"),
        format!("{h}.{p}.\"{s}\""),
    ] {
        let value = format!("Bearer {forged}");
        app.get("/me", &[value.as_bytes()])
            .await
            .assert_refused(Expect::InvalidRequest, &[&valid, &forged]);
    }
}

// ---- configuration -----------------------------------------------------------------------

#[test]
fn short_hmac_secret_is_refused_at_build() {
    let err = build(Jwt::hs256(vec![7u8; 31]).issuer(ISSUER).audience(AUDIENCE)).unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::Jwt(JwtConfigError::HmacSecretTooShort { len: 31, .. })
        ),
        "got {err:?}"
    );
    // And 32 bytes is enough for HS256.
    let _router = build(Jwt::hs256(vec![7u8; 32])).expect("a 32-byte HS256 secret is accepted");
}

#[test]
fn hmac_secret_shorter_than_the_hash_is_refused_at_build() {
    // RFC 7518 §3.2: HS512 needs a 64-byte key, HS384 a 48-byte one.
    for (alg, min) in [(Algorithm::HS384, 48), (Algorithm::HS512, 64)] {
        let err =
            build(Jwt::new().key(JwtKey::hmac(vec![7u8; min - 1]).algorithms([alg]))).unwrap_err();
        assert!(
            matches!(err, BuildError::Jwt(JwtConfigError::HmacSecretTooShort { len, min: m, .. }) if len == min - 1 && m == min),
            "{alg:?}: got {err:?}"
        );
        let _router = build(Jwt::new().key(JwtKey::hmac(vec![7u8; min]).algorithms([alg])))
            .expect("a secret of the hash size is accepted");
    }
}

// ---- every algorithm family works --------------------------------------------------------

/// Serve one key: a token it signs is accepted, the same claims signed by `wrong` are not
/// (so the accept is not vacuous).
async fn family_round_trip(
    key: JwtKey,
    alg: &str,
    sign: &jsonwebtoken::EncodingKey,
    wrong: &jsonwebtoken::EncodingKey,
) {
    let app = App::start(Jwt::new().key(key).issuer(ISSUER).audience(AUDIENCE)).await;
    let valid = mint(&header(alg), &claims(), sign);
    let forged = mint(&header(alg), &claims(), wrong);
    app.attack(&valid, &forged, Expect::InvalidToken).await;
}

#[tokio::test]
async fn hmac_family_round_trips() {
    let secret = [b'k'; 64];
    for (alg, name) in [
        (Algorithm::HS256, "HS256"),
        (Algorithm::HS384, "HS384"),
        (Algorithm::HS512, "HS512"),
    ] {
        family_round_trip(
            JwtKey::hmac(secret).algorithms([alg]),
            name,
            &hmac(&secret),
            &hmac(&[b'j'; 64]),
        )
        .await;
    }
}

#[tokio::test]
async fn rsa_family_round_trips() {
    let keys = rsa_keys();
    for (alg, name) in [(Algorithm::RS256, "RS256"), (Algorithm::PS256, "PS256")] {
        let app = App::start(
            Jwt::new()
                .key(JwtKey::rsa_pem(keys.public_pem.as_bytes()).algorithms([alg]))
                .issuer(ISSUER)
                .audience(AUDIENCE),
        )
        .await;
        let valid = mint(&header(name), &claims(), &keys.encoding_rsa());
        let (h, p, s) = parts(&valid);
        let mut sig = s.as_bytes().to_vec();
        sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
        let forged = format!("{h}.{p}.{}", String::from_utf8(sig).expect("ASCII"));
        app.attack(&valid, &forged, Expect::InvalidToken).await;
    }
}

#[tokio::test]
async fn ec_family_round_trips() {
    let (k256, other256) = (p256_keys(), p256_keys());
    family_round_trip(
        JwtKey::ec_pem(k256.public_pem.as_bytes()),
        "ES256",
        &k256.encoding_ec(),
        &other256.encoding_ec(),
    )
    .await;
    let (k384, other384) = (p384_keys(), p384_keys());
    family_round_trip(
        JwtKey::ec_pem(k384.public_pem.as_bytes()).algorithms([Algorithm::ES384]),
        "ES384",
        &k384.encoding_ec(),
        &other384.encoding_ec(),
    )
    .await;
}

#[tokio::test]
async fn eddsa_round_trips() {
    let (k, other) = (ed25519_keys(), ed25519_keys());
    family_round_trip(
        JwtKey::ed_pem(k.public_pem.as_bytes()),
        "EdDSA",
        &k.encoding_ed(),
        &other.encoding_ed(),
    )
    .await;
}

// ---- custom claims -----------------------------------------------------------------------

#[tokio::test]
async fn custom_claims_reach_the_handler() {
    let app = App::default().await;
    let r = app.send_to("/tenant", &valid()).await;
    assert_eq!(r.status, 200, "body: {}", r.body);
    assert_eq!(r.body, TENANT);
    // A token whose claims do not fit the handler's type is refused, not defaulted.
    let forged = mint(
        &header("HS256"),
        &claims_with(|c| {
            c.remove("tenant");
        }),
        &hmac(SECRET),
    );
    let r = app.send_to("/tenant", &forged).await;
    r.assert_refused(Expect::InvalidToken, &[&forged]);
}

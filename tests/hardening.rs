//! App-wide hardening over real sockets on 127.0.0.1: TLS (rustls client trusting a CA made
//! here with rcgen), plain-HTTP policy, trusted hosts, CORS, CSRF, static files, limits,
//! fallbacks, and the quickstart configured only through `SHIELDWALL_*` variables.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use shieldwall::prelude::*;
use shieldwall::server::Limits;
use shieldwall::tls::HttpPolicy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------- app

#[secure(get "/public", public)]
async fn public_route() -> &'static str {
    "public"
}

#[secure(get "/me", auth)]
async fn me(user: Principal) -> String {
    format!("me:{}", user.subject())
}

#[secure(post "/transfer", public)]
async fn transfer() -> &'static str {
    "moved"
}

#[secure(get "/panic", public)]
async fn panics() -> &'static str {
    panic!("the database password is hunter2")
}

#[secure(get "/slow", public)]
async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

fn builder() -> Shieldwall {
    Shieldwall::new()
        .jwt(jwt())
        .routes(routes![public_route, me, transfer, panics, slow])
}

// ---------------------------------------------------------------- certificates

struct Pki {
    dir: PathBuf,
    ca_der: Vec<u8>,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sw-hardening-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "shieldwall test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Self {
            dir,
            ca_der: cert.der().to_vec(),
            ca: rcgen::Issuer::new(params, key),
        }
    }

    /// Issue a leaf for localhost/127.0.0.1 and write it to `cert.pem`/`key.pem`; returns
    /// the leaf's DER.
    fn issue(&self, cn: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.ca).unwrap();
        // Write the key first and the certificate last, as a deploy tool would.
        std::fs::write(self.key(), key.serialize_pem()).unwrap();
        std::fs::write(self.cert(), cert.pem()).unwrap();
        cert.der().to_vec()
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        cfg
    }

    fn https_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls(self.client_config(rustls::ALL_VERSIONS))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

/// Serve `server` on 127.0.0.1 with an optional plain listener beside it.
async fn start(
    server: shieldwall::server::Server,
    plain: bool,
) -> (SocketAddr, Option<SocketAddr>) {
    let main = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = if plain {
        Some(TcpListener::bind("127.0.0.1:0").await.unwrap())
    } else {
        None
    };
    let bound = server.on(main, http).unwrap();
    let addrs = (bound.local_addr(), bound.http_addr());
    tokio::spawn(bound.run_until(std::future::pending()));
    addrs
}

/// A TLS handshake with a rustls client: (negotiated version, ALPN, server leaf DER).
async fn handshake(
    pki: &Pki,
    addr: SocketAddr,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(rustls::ProtocolVersion, Option<Vec<u8>>, Vec<u8>), std::io::Error> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(pki.client_config(versions)));
    let tcp = TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await?;
    let (_, conn) = tls.get_ref();
    Ok((
        conn.protocol_version().unwrap(),
        conn.alpn_protocol().map(<[u8]>::to_vec),
        conn.peer_certificates().unwrap()[0].to_vec(),
    ))
}

// ---------------------------------------------------------------- TLS

#[tokio::test]
async fn https_http2_hsts_and_versions() {
    let pki = Pki::new("https");
    pki.issue("leaf-1");
    let server = builder()
        .tls(Tls::files(pki.cert(), pki.key()))
        .server()
        .expect("TLS configuration loads");
    let (addr, _) = start(server, false).await;

    // HTTP/2 negotiated by ALPN, HSTS over HTTPS.
    let client = pki.https_client();
    let res = client
        .get(format!("https://localhost:{}/public", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(!res.headers().contains_key("server"));
    assert_eq!(res.text().await.unwrap(), "public");

    // TLS 1.3 by default, TLS 1.2 when that is all the client offers; ALPN h2.
    let (v, alpn, _) = handshake(&pki, addr, rustls::ALL_VERSIONS).await.unwrap();
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_3);
    assert_eq!(alpn.as_deref(), Some(b"h2".as_slice()));
    let (v, _, _) = handshake(&pki, addr, &[&rustls::version::TLS12])
        .await
        .unwrap();
    assert_eq!(v, rustls::ProtocolVersion::TLSv1_2);

    // TLS 1.1 (and 1.0): a ClientHello offering only TLS 1.1 gets a fatal alert
    // (rustls sends handshake_failure, 40; protocol_version, 70, would do too) and never
    // a ServerHello. The same hello as TLS 1.2 does get one, so the probe itself is sound.
    for version in [[3u8, 2u8], [3, 1]] {
        let reply = raw_client_hello(addr, version).await;
        assert!(
            reply.len() == 7 && reply[0] == 0x15 && reply[5] == 2 && matches!(reply[6], 40 | 70),
            "expected only a fatal alert for {version:?}, got {reply:02x?}"
        );
    }
    let reply = raw_client_hello(addr, [3, 3]).await;
    assert!(
        reply.len() > 7 && reply[0] == 0x16 && reply[5] == 2,
        "a TLS 1.2 hello gets a ServerHello: {:02x?}",
        &reply[..reply.len().min(16)]
    );
    // The same with an outside client, when Debian's openssl is installed.
    if let Some(out) = openssl_tls11(addr).await {
        assert!(
            !out.contains("Cipher is ECDHE") && !out.contains("BEGIN CERTIFICATE"),
            "openssl s_client -tls1_1 completed a handshake:\n{out}"
        );
        assert!(
            out.contains("Cipher is (NONE)")
                && (out.contains("alert handshake failure")
                    || out.contains("alert protocol version")),
            "{out}"
        );
    }
}

/// A minimal TLS 1.x ClientHello (legacy_version = `version`, no supported_versions
/// extension) with CBC and GCM suites; returns the first bytes the server answers.
async fn raw_client_hello(addr: SocketAddr, version: [u8; 2]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version); // client_version
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    let suites: [u16; 6] = [0xc013, 0xc014, 0x002f, 0x0035, 0xc02f, 0xc02b];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    // extensions: supported_groups (x25519, secp256r1), ec_point_formats, SNI localhost
    let mut ext = Vec::new();
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    ext.extend_from_slice(&[
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    let host = b"localhost";
    let mut sni = vec![0u8];
    sni.extend_from_slice(&(host.len() as u16).to_be_bytes());
    sni.extend_from_slice(host);
    let mut sni_list = ((sni.len()) as u16).to_be_bytes().to_vec();
    sni_list.extend_from_slice(&sni);
    ext.extend_from_slice(&[0x00, 0x00]);
    ext.extend_from_slice(&(sni_list.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sni_list);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8]; // ClientHello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, version[0], version[1]];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&record).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    out
}

/// `openssl s_client -tls1_1` against the server, if the binary exists. It runs on a
/// blocking thread (the server shares this test's runtime) and is killed after 10 s.
async fn openssl_tls11(addr: SocketAddr) -> Option<String> {
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
            "-servername",
            "localhost",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let out = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        child.wait_with_output()
    })
    .await
    .ok()?
    .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("openssl s_client -tls1_1 said:\n{text}");
    Some(text)
}

#[tokio::test]
async fn certificate_reload_without_restart() {
    let pki = Pki::new("reload");
    let first = pki.issue("leaf-before");
    let server = builder()
        .tls(Tls::files(pki.cert(), pki.key()).reload_every(Duration::from_millis(100)))
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let (_, _, served) = handshake(&pki, addr, rustls::ALL_VERSIONS).await.unwrap();
    assert_eq!(served, first);

    let second = pki.issue("leaf-after");
    assert_ne!(first, second);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, served) = handshake(&pki, addr, rustls::ALL_VERSIONS).await.unwrap();
        if served == second {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And requests keep working on the new certificate.
    let res = pki
        .https_client()
        .get(format!("https://localhost:{}/public", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A broken replacement is refused and the working certificate stays.
    std::fs::write(pki.cert(), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, _, served) = handshake(&pki, addr, rustls::ALL_VERSIONS).await.unwrap();
    assert_eq!(served, second);
}

#[tokio::test]
async fn unusable_certificates_stop_start_up() {
    let pki = Pki::new("bad");
    pki.issue("leaf");
    let other = Pki::new("bad-other");
    other.issue("other");
    let err = builder()
        .tls(Tls::files(pki.cert(), other.key()))
        .server()
        .unwrap_err();
    assert!(matches!(err, shieldwall::BuildError::Tls(_)), "{err}");
    let err = builder()
        .tls(Tls::files(pki.dir.join("missing.pem"), pki.key()))
        .server()
        .unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

#[tokio::test]
async fn plain_listener_rejects_or_redirects() {
    let pki = Pki::new("plain");
    pki.issue("leaf");
    // Default: reject API calls over plain HTTP with 400 problem+json, no HSTS.
    let server = builder()
        .tls(Tls::files(pki.cert(), pki.key()))
        .server()
        .unwrap();
    let (https, http) = start(server, true).await;
    let http = http.unwrap();
    let r = send(client().get(format!("http://{http}/public"))).await;
    r.assert_problem(400, "https-required");
    assert_eq!(
        r.header("strict-transport-security"),
        None,
        "no HSTS over HTTP"
    );

    // Redirect: 308 to the same host and path on the HTTPS port.
    let server = builder()
        .tls(Tls::files(pki.cert(), pki.key()))
        .http_policy(HttpPolicy::Redirect)
        .server()
        .unwrap();
    let (https2, http2) = start(server, true).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = send(no_redirects.get(format!(
        "http://localhost:{}/public?x=1",
        http2.unwrap().port()
    )))
    .await;
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://localhost:{}/public?x=1", https2.port())
    );
    assert_eq!(r.header("strict-transport-security"), None);
    // An untrusted host is refused before any redirect is made (no open redirect).
    let r = send(
        no_redirects
            .get(format!("http://127.0.0.1:{}/public", http2.unwrap().port()))
            .header("host", "evil.example"),
    )
    .await;
    r.assert_problem(400, "unknown-host");
    assert!(r.header("location").is_none());
    let _ = https;
}

#[tokio::test]
async fn hsts_absent_over_plain_http() {
    let base = serve(builder().build().unwrap()).await;
    let r = send(client().get(format!("{base}/public"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security"), None);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(
        r.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
    assert_eq!(
        r.header("cross-origin-resource-policy"),
        Some("same-origin")
    );
    // Document-only policies are in `strict` and `relaxed`, not in the API preset.
    assert_eq!(r.header("permissions-policy"), None);
    assert_eq!(r.header("cross-origin-opener-policy"), None);
    assert!(r.header("x-request-id").is_some());
    assert_eq!(
        r.header("cache-control"),
        None,
        "anonymous: cacheable as the handler says"
    );
}

// ---------------------------------------------------------------- hosts

#[tokio::test]
async fn unknown_hosts_are_refused() {
    // The default allows loopback names only.
    let base = serve(builder().build().unwrap()).await;
    let r = send(
        client()
            .get(format!("{base}/public"))
            .header("host", "evil.example"),
    )
    .await;
    r.assert_problem(400, "unknown-host");
    let r = send(
        client()
            .get(format!("{base}/public"))
            .header("host", "localhost:1234"),
    )
    .await;
    assert_eq!(r.status, 200);

    // An explicit list with a wildcard.
    let base = serve(
        builder()
            .allowed_hosts(AllowedHosts::list(["api.example.com", "*.example.org"]).unwrap())
            .build()
            .unwrap(),
    )
    .await;
    for (host, status) in [
        ("evil.example", 400),
        ("api.example.com", 200),
        ("API.EXAMPLE.COM:443", 200),
        ("eu.cdn.example.org", 200),
        ("example.org", 400),
        ("api.example.com.evil.example", 400),
        ("127.0.0.1", 400),
    ] {
        let r = send(client().get(format!("{base}/public")).header("host", host)).await;
        assert_eq!(r.status, status, "{host}: {}", r.text);
    }
}

// ---------------------------------------------------------------- CORS / CSRF

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let base = serve(
        builder()
            .cors(Cors::origins(["https://app.example"]).credentials(true))
            .build()
            .unwrap(),
    )
    .await;
    let preflight = |origin: &str| {
        client()
            .request(reqwest::Method::OPTIONS, format!("{base}/me"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
    };
    let r = send(preflight("https://app.example")).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let methods = r
        .header("access-control-allow-methods")
        .unwrap()
        .to_string();
    let mut methods: Vec<&str> = methods.split(',').map(str::trim).collect();
    methods.sort_unstable();
    assert_eq!(methods, ["GET", "HEAD", "POST"], "only what the routes use");
    let headers = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(!headers.contains("x-anything"));

    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.evil.example",
        "http://app.example",
    ] {
        let r = send(preflight(origin)).await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
        let r = send(
            client()
                .get(format!("{base}/public"))
                .header("origin", origin),
        )
        .await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{origin}");
    }
    let r = send(
        client()
            .get(format!("{base}/public"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[tokio::test]
async fn insecure_cors_is_refused_at_build() {
    for cors in [
        Cors::any().credentials(true),
        Cors::origins(["*"]).credentials(true),
        Cors::origins(["null"]),
        Cors::origins(["app.example"]),
        Cors::origins(["https://app.example/path"]),
    ] {
        let err = builder().cors(cors).build().unwrap_err();
        assert!(matches!(err, shieldwall::BuildError::Cors(_)), "{err}");
    }
}

#[tokio::test]
async fn csrf_guards_cookie_requests_only() {
    let base = serve(builder().build().unwrap()).await;
    let cross = |req: reqwest::RequestBuilder| {
        req.header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example")
    };
    let r = send(cross(
        client()
            .post(format!("{base}/transfer"))
            .header("cookie", "sid=abc"),
    ))
    .await;
    r.assert_problem(403, "cross-site-request");
    let r = send(cross(
        client()
            .post(format!("{base}/transfer"))
            .bearer_auth("token"),
    ))
    .await;
    assert_eq!(r.status, 200, "bearer requests are not subject to CSRF");
    let r = send(
        client()
            .post(format!("{base}/transfer"))
            .header("cookie", "sid=abc")
            .header("sec-fetch-site", "same-origin"),
    )
    .await;
    assert_eq!(r.status, 200);
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn credentialed_responses_are_not_stored() {
    let base = serve(builder().build().unwrap()).await;
    let r = send(
        client()
            .get(format!("{base}/me"))
            .bearer_auth(token("alice", &[], "")),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let r = send(
        client()
            .get(format!("{base}/public"))
            .header("cookie", "sid=1"),
    )
    .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

// ---------------------------------------------------------------- fallbacks

#[tokio::test]
async fn fallbacks_are_problems() {
    let base = serve(builder().build().unwrap()).await;
    send(client().get(format!("{base}/nope")))
        .await
        .assert_problem(404, "not-found");
    let r = send(client().delete(format!("{base}/public"))).await;
    r.assert_problem(405, "method-not-allowed");
    assert!(r.header("allow").unwrap().contains("GET"));
    let r = send(client().request(reqwest::Method::TRACE, format!("{base}/public"))).await;
    r.assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn panics_answer_500_and_the_server_keeps_serving() {
    let base = serve(builder().build().unwrap()).await;
    let c = client();
    for _ in 0..3 {
        let r = send(c.get(format!("{base}/panic"))).await;
        r.assert_problem(500, "internal");
        assert!(!r.text.contains("hunter2"), "{}", r.text);
        let id = r.header("x-request-id").expect("request id").to_string();
        assert_eq!(r.json()["instance"], format!("urn:uuid:{id}"));
        let ok = send(c.get(format!("{base}/public"))).await;
        assert_eq!(ok.status, 200);
    }
}

// ---------------------------------------------------------------- limits

#[tokio::test]
async fn a_slow_client_is_cut_off() {
    let server = builder()
        .limits(Limits::default().header_read_timeout(Duration::from_secs(2)))
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let request =
        b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nAccept: */*\r\n\r\n";
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t = Instant::now();
    let mut sent = 0;
    let mut cut = false;
    for b in request {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        sent += 1;
        // One header byte per second; check whether the server has hung up meanwhile.
        let mut buf = [0u8; 256];
        match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(n)) => panic!(
                "answered a trickled request: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(_) => {}
        }
    }
    assert!(cut, "the connection was never closed");
    assert!(sent < request.len(), "the whole head got through");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "cut off after {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let server = builder().server().unwrap();
    let (addr, _) = start(server, false).await;
    let big = format!(
        "GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(big.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        out.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

// ---------------------------------------------------------------- slow readers

/// A directory holding one 32 MiB file, `big.bin`.
fn big_file(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sw-big-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.bin"), vec![b'x'; 32 * 1024 * 1024]).unwrap();
    dir
}

/// `GET /health` from an honest client, on a fresh connection: its status, or `None` if
/// no answer came within `within`.
async fn honest_health(addr: SocketAddr, within: Duration) -> Option<u16> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let req = c.get(format!("http://{addr}/health")).send();
    match tokio::time::timeout(within, req).await {
        Ok(Ok(r)) => Some(r.status().as_u16()),
        _ => None,
    }
}

/// Whether the server has closed `s`: reads (and discards, counting) until EOF or an
/// error; `Some(bytes read)` if that came within `within`.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> Option<usize> {
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

/// Finding 3 (issue 11), HTTP/1.1: clients that request a 32 MiB static file and never
/// read hold every connection slot; the write-progress deadline closes them, so an honest
/// client gets `/health` again.
#[tokio::test]
async fn http1_clients_that_never_read_lose_their_slots() {
    let dir = big_file("h1");
    let server = builder()
        .health(shieldwall::health::Health::new())
        .static_files(StaticFiles::new("/static", &dir))
        .limits(
            Limits::default()
                .max_connections(3)
                // Every client here is 127.0.0.1: let one address take the whole pool.
                .max_connections_per_ip(4)
                .write_timeout(Duration::from_secs(1)),
        )
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    assert_eq!(honest_health(addr, Duration::from_secs(5)).await, Some(200));
    let mut hogs = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        hogs.push(s);
    }
    // Every slot is taken by a reader that reads nothing; the deadline is one second.
    let t = Instant::now();
    let got = honest_health(addr, Duration::from_secs(15)).await;
    assert_eq!(
        got,
        Some(200),
        "an honest client was kept out by clients that never read ({:?})",
        t.elapsed()
    );
    // A reader that got its slot late stalls in its turn; then none of them is served on.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for s in &mut hogs {
        // What the kernel buffered still arrives, then the end: never the whole file.
        let got = closed_by_server(s, Duration::from_secs(10)).await;
        assert!(
            got.is_some_and(|n| n < 32 * 1024 * 1024),
            "a client that never read kept its connection ({got:?} bytes read)"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Finding 3 (issue 11), HTTP/2: clients that advertise a zero flow-control window (and
/// answer pings) hold their streams, and so their connections, until the write-progress
/// deadline closes them.
#[tokio::test]
async fn http2_clients_holding_a_zero_window_lose_their_slots() {
    let server = builder()
        .health(shieldwall::health::Health::new())
        .limits(
            Limits::default()
                .max_connections(3)
                // Every client here is 127.0.0.1: let one address take the whole pool.
                .max_connections_per_ip(4)
                .write_timeout(Duration::from_secs(1)),
        )
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let mut hogs = Vec::new();
    for _ in 0..3 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = h2::client::Builder::new()
            .initial_window_size(0)
            .handshake::<_, axum::body::Bytes>(tcp)
            .await
            .unwrap();
        // The connection task answers the server's pings for as long as it runs.
        let driver = tokio::spawn(conn);
        let req = axum::http::Request::get(format!("http://{addr}/health"))
            .body(())
            .unwrap();
        let (res, _) = send.send_request(req, true).unwrap();
        let res = tokio::time::timeout(Duration::from_secs(5), res)
            .await
            .expect("response head")
            .unwrap();
        assert_eq!(res.status(), 200);
        // The body never comes: the window is zero and is never opened.
        hogs.push((send, res, driver));
    }
    let t = Instant::now();
    let got = honest_health(addr, Duration::from_secs(15)).await;
    assert_eq!(
        got,
        Some(200),
        "an honest client was kept out by zero-window HTTP/2 clients ({:?})",
        t.elapsed()
    );
    for (_, _, driver) in hogs {
        tokio::time::timeout(Duration::from_secs(10), driver)
            .await
            .expect("a zero-window client kept its connection")
            .unwrap()
            .ok();
    }
}

/// Finding 3 (issue 11): an HTTP/2 peer that stops answering pings (here: a proxy that
/// black-holes everything the server sends, so no ping is ever acknowledged) is dropped
/// at the keep-alive timeout, although a request of it is still in flight.
#[tokio::test]
async fn an_http2_peer_that_stops_answering_pings_is_dropped() {
    let server = builder()
        .limits(
            Limits::default()
                .h2_keep_alive_interval(Duration::from_millis(300))
                .h2_keep_alive_timeout(Duration::from_millis(300)),
        )
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    // client <-> proxy <-> server; after `cut`, what the server sends is read and dropped.
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let paddr = proxy.local_addr().unwrap();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<Instant>();
    let gate = cut.clone();
    tokio::spawn(async move {
        let (client, _) = proxy.accept().await.unwrap();
        let upstream = TcpStream::connect(addr).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut ur, mut uw) = upstream.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut uw).await;
        });
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match ur.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !gate.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = cw.write_all(&buf[..n]).await;
                    }
                }
            }
        }
        let _ = closed_tx.send(Instant::now());
    });
    let tcp = TcpStream::connect(paddr).await.unwrap();
    let (mut send, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let req = axum::http::Request::get(format!("http://{addr}/slow"))
        .body(())
        .unwrap();
    // The handler takes five seconds; the request stays in flight all along.
    let (_res, _) = send.send_request(req, true).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    cut.store(true, std::sync::atomic::Ordering::SeqCst);
    let t = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(4), closed_rx)
        .await
        .expect("the server kept a peer that answers no ping")
        .unwrap();
    assert!(
        closed.duration_since(t) < Duration::from_secs(3),
        "closed after {:?}",
        closed.duration_since(t)
    );
}

/// Finding 3 (issue 11): a client that reads, but slowly enough to make a download of a
/// known length last for ever, is cut at the response deadline.
#[tokio::test]
async fn a_trickling_reader_is_cut_at_the_response_deadline() {
    let dir = big_file("trickle");
    let server = builder()
        .static_files(StaticFiles::new("/static", &dir))
        .limits(
            Limits::default()
                .write_timeout(Duration::from_secs(5))
                .response_timeout(Duration::from_secs(2)),
        )
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /static/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    // 16 KiB every 100 ms for four seconds: steady progress (the write deadline never
    // fires), but 32 MiB would take over three minutes.
    while t.elapsed() < Duration::from_secs(4) {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("no progress at all"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past the two-second deadline the server has ended the response: what the kernel
    // buffered arrives at full speed, then the end, never the whole file.
    let rest = closed_by_server(&mut s, Duration::from_secs(10)).await;
    let total = rest.map(|n| n + got);
    assert!(
        total.is_some_and(|n| n < 32 * 1024 * 1024),
        "the download outlived the response deadline ({total:?} bytes of 32 MiB)"
    );
    let _ = std::fs::remove_dir_all(dir);
}

// ---------------------------------------------------------------- refusals the server makes

/// A response read off the wire: status, headers (names lower-cased), body.
#[derive(Debug)]
struct Wire {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Wire {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.get(9..12))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Self {
            status,
            headers,
            body: body.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The error contract for a refusal the server makes itself: problem+json with this
    /// status and type, the security headers (HSTS exactly when over TLS), a request id
    /// (a UUID, also the problem's `instance`).
    fn assert_contract(&self, status: u16, slug: &str, tls: bool) {
        let all = format!("{self:#?}");
        assert_eq!(self.status, status, "{all}");
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{all}"
        );
        assert_eq!(
            self.header("x-content-type-options"),
            Some("nosniff"),
            "{all}"
        );
        assert_eq!(self.header("x-frame-options"), Some("DENY"), "{all}");
        assert!(self.header("content-security-policy").is_some(), "{all}");
        assert_eq!(
            self.header("strict-transport-security").is_some(),
            tls,
            "HSTS exactly over TLS: {all}"
        );
        let id = self.header("x-request-id").expect("X-Request-Id");
        assert!(
            id.len() == 36 && id.chars().filter(|c| *c == '-').count() == 4,
            "{all}"
        );
        let v: serde_json::Value = serde_json::from_str(&self.body).expect(&all);
        assert_eq!(v["status"], status, "{all}");
        assert_eq!(v["type"], format!("urn:shieldwall:problem:{slug}"), "{all}");
        assert_eq!(v["instance"], format!("urn:uuid:{id}"), "{all}");
    }
}

/// Write `req` on `s` and read the answer to the end (the server closes), at most 5 s.
async fn exchange<S>(mut s: S, req: &[u8]) -> Wire
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    // The server may answer (and close) before the whole of an oversized request is in.
    let _ = s.write_all(req).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    Wire::parse(&out)
}

fn oversized_head() -> Vec<u8> {
    format!(
        "GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    )
    .into_bytes()
}

fn many_headers() -> Vec<u8> {
    let mut head = String::from("GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..70 {
        head.push_str(&format!("X-H{i}: v\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

const MALFORMED_HEAD: &[u8] = b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n";
const SLOW: &[u8] = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
const PANIC: &[u8] = b"GET /panic HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

/// Finding 17 (issue 11): the refusals the server makes itself — an oversized head
/// (hyper's own bare 431 before), a malformed head (hyper's bare 400), too many header
/// fields, a request timeout (408 without `X-Request-Id` before), a panic — all follow
/// the error contract over plain HTTP.
#[tokio::test]
async fn refusals_made_by_the_server_follow_the_contract() {
    let server = builder()
        .limits(Limits::default().request_timeout(Duration::from_millis(300)))
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let cases: [(&[u8], u16, &str); 5] = [
        (&oversized_head(), 431, "header-fields-too-large"),
        (&many_headers(), 431, "header-fields-too-large"),
        (MALFORMED_HEAD, 400, "bad-request"),
        (SLOW, 408, "request-timeout"),
        (PANIC, 500, "internal"),
    ];
    for (req, status, slug) in cases {
        let s = TcpStream::connect(addr).await.unwrap();
        exchange(s, req).await.assert_contract(status, slug, false);
    }
    // Behind a request already answered on the same connection (pipelined) as well.
    let mut pipelined = b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_vec();
    pipelined.extend_from_slice(MALFORMED_HEAD);
    let s = TcpStream::connect(addr).await.unwrap();
    let w = exchange(s, &pipelined).await;
    assert_eq!(w.status, 200, "{w:?}");
    let second = w
        .body
        .split_once("public")
        .map(|(_, rest)| rest)
        .unwrap_or("");
    Wire::parse(second.as_bytes()).assert_contract(400, "bad-request", false);
    // The server keeps serving.
    let ok = raw_get(addr, "/public").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// Finding 17 (issue 11): the same over TLS, where each must also carry HSTS (a panic's
/// 500 did not before).
#[tokio::test]
async fn refusals_made_by_the_server_carry_hsts_over_tls() {
    let pki = Pki::new("refusals");
    pki.issue("leaf");
    let server = builder()
        .tls(Tls::files(pki.cert(), pki.key()))
        .limits(Limits::default().request_timeout(Duration::from_millis(300)))
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let mut cfg = pki.client_config(rustls::ALL_VERSIONS);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let cases: [(&[u8], u16, &str); 5] = [
        (&oversized_head(), 431, "header-fields-too-large"),
        (&many_headers(), 431, "header-fields-too-large"),
        (MALFORMED_HEAD, 400, "bad-request"),
        (SLOW, 408, "request-timeout"),
        (PANIC, 500, "internal"),
    ];
    for (req, status, slug) in cases {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let req = String::from_utf8_lossy(req).replace("Host: 127.0.0.1", "Host: localhost");
        exchange(tls, req.as_bytes())
            .await
            .assert_contract(status, slug, true);
    }
    // Over HTTP/2 as well (no `Connection` header there).
    for (path, status, slug) in [
        ("/slow", 408, "request-timeout"),
        ("/panic", 500, "internal"),
    ] {
        let r = send(
            pki.https_client()
                .get(format!("https://localhost:{}{path}", addr.port())),
        )
        .await;
        r.assert_problem(status, slug);
        assert!(r.header("strict-transport-security").is_some(), "{path}");
        let id = r.header("x-request-id").expect("X-Request-Id");
        assert_eq!(r.json()["instance"], format!("urn:uuid:{id}"), "{path}");
        assert_eq!(r.header("connection"), None, "{path}");
    }
    let _ = std::fs::remove_dir_all(&pki.dir);
}

// ---------------------------------------------------------------- static files

const SECRET_MARKER: &str = "TOP-SECRET-OUTSIDE-ROOT-7f3a";

fn static_tree(tag: &str) -> (PathBuf, PathBuf) {
    let base = std::env::temp_dir().join(format!("sw-static-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("public");
    std::fs::create_dir_all(root.join("css")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("hello.txt"), "hello").unwrap();
    std::fs::write(root.join("css/app.css"), "body{}").unwrap();
    std::fs::write(root.join("page.html"), "<p>hi</p>").unwrap();
    std::fs::write(root.join(".env"), format!("SECRET={SECRET_MARKER}")).unwrap();
    std::fs::write(root.join(".git/config"), SECRET_MARKER).unwrap();
    std::fs::write(base.join("secret.txt"), SECRET_MARKER).unwrap();
    std::fs::write(base.join("public2.txt"), SECRET_MARKER).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
    }
    (base, root)
}

/// Send a request line verbatim (no client-side normalization) and read everything back.
async fn raw_get(addr: SocketAddr, target: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn static_files_never_leave_the_root() {
    let (base, root) = static_tree("traversal");
    let server = builder()
        .static_files(StaticFiles::new("/static", &root))
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;

    let ok = raw_get(addr, "/static/hello.txt").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(
        ok.to_ascii_lowercase().contains("content-type: text/plain"),
        "{ok}"
    );
    assert!(
        ok.to_ascii_lowercase()
            .contains("x-content-type-options: nosniff"),
        "{ok}"
    );
    assert!(ok.ends_with("hello"));
    let css = raw_get(addr, "/static/css/app.css").await;
    assert!(
        css.starts_with("HTTP/1.1 200")
            && css.to_ascii_lowercase().contains("content-type: text/css"),
        "{css}"
    );

    let corpus = [
        "/static/../secret.txt",
        "/static/..%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/.%2e/secret.txt",
        "/static/%2e./secret.txt",
        "/static/..%5csecret.txt",
        "/static/..%5Csecret.txt",
        "/static/%2e%2e%5csecret.txt",
        "/static/..\\secret.txt",
        "/static/%252e%252e/secret.txt",
        "/static/%252e%252e%252fsecret.txt",
        "/static/..%252fsecret.txt",
        "/static/%c0%ae%c0%ae/secret.txt",
        "/static/%c0%af../secret.txt",
        "/static/..%c0%afsecret.txt",
        "/static/%e0%80%ae%e0%80%ae/secret.txt",
        "/static/css/../../secret.txt",
        "/static/css/..%2f..%2fsecret.txt",
        "/static//etc/passwd",
        // Empty segments are refused even when the rest names a file (finding 17).
        "/static//hello.txt",
        "/static/css//app.css",
        "/static//css/app.css",
        "/static/%2fetc%2fpasswd",
        "/static/..%00/secret.txt",
        "/static/hello.txt%00.png",
        "/static/....//secret.txt",
        "/static/..;/secret.txt",
        "/static/.env",
        "/static/%2eenv",
        "/static/.git/config",
        "/static/%2egit/config",
        "/static/css/../.env",
        "/static/leak.txt",
        "/static/up/secret.txt",
        "/static/up/public/.env",
        "/static/",
        "/static/css/",
        "/static/css",
        "/static/../public2.txt",
        "/static/C:%5cWindows%5cwin.ini",
    ];
    assert!(corpus.len() >= 20);
    for target in corpus {
        let res = raw_get(addr, target).await;
        assert!(!res.contains(SECRET_MARKER), "{target} leaked:\n{res}");
        let status: u16 = res.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(matches!(status, 400 | 404), "{target}: {status}\n{res}");
    }
    let r = send(client().post(format!("http://{addr}/static/hello.txt"))).await;
    r.assert_problem(405, "method-not-allowed");
    let _ = std::fs::remove_dir_all(base);
}

#[tokio::test]
async fn missing_static_root_is_refused_at_build() {
    let err = builder()
        .static_files(StaticFiles::new("/static", "/no/such/dir/sw"))
        .build()
        .unwrap_err();
    assert!(matches!(err, shieldwall::BuildError::Static(_)), "{err}");
}

// ---------------------------------------------------------------- quickstart from_env

fn example_binary(name: &str) -> Option<PathBuf> {
    // target/<profile>/deps/hardening-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let p = profile_dir.join("examples").join(name);
    p.exists().then_some(p)
}

#[tokio::test]
async fn quickstart_serves_https_from_env() {
    let Some(bin) = example_binary("quickstart") else {
        panic!(
            "examples/quickstart is not built: run `cargo test` (it builds examples) or `cargo build --examples`"
        );
    };
    let pki = Pki::new("quickstart");
    pki.issue("quickstart");
    let mut child = std::process::Command::new(bin)
        .env("SHIELDWALL_ADDR", "127.0.0.1:0")
        .env("SHIELDWALL_TLS_CERT", pki.cert())
        .env("SHIELDWALL_TLS_KEY", pki.key())
        .env("SHIELDWALL_ALLOWED_HOSTS", "localhost,api.example.com")
        .env(
            "SHIELDWALL_CORS_ORIGINS",
            "https://app.example,https://admin.example",
        )
        .env(
            "SHIELDWALL_JWT_SECRET",
            "quickstart-test-secret-0123456789abcdef",
        )
        .env("RUST_LOG", "warn")
        .env_remove("SHIELDWALL_REDIS_URL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _kill = KillOnDrop(child);
    // Read the address, then keep draining stdout so the quickstart's prints never fail.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(rest) = line
                .trim()
                .strip_prefix("shieldwall quickstart listening on ")
            {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let url = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
        .await
        .unwrap()
        .expect("quickstart printed its address");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let port = url.rsplit(':').next().unwrap().to_string();
    let c = pki.https_client();
    let res = c
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert!(res.headers().contains_key("strict-transport-security"));

    // SHIELDWALL_ALLOWED_HOSTS: 127.0.0.1 is not listed, so it is refused like evil.example.
    let res = c
        .get(format!("https://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let h1 = reqwest::Client::builder()
        .use_preconfigured_tls(pki.client_config(rustls::ALL_VERSIONS))
        .http1_only()
        .build()
        .unwrap();
    let res = h1
        .get(format!("https://localhost:{port}/health"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // SHIELDWALL_CORS_ORIGINS
    let res = c
        .get(format!("https://localhost:{port}/health"))
        .header("origin", "https://admin.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://admin.example"
    );
    let res = c
        .get(format!("https://localhost:{port}/health"))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let _ = std::fs::remove_dir_all(&pki.dir);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Attack round 3, F1: under pressure, sockets still in their TLS handshake give their
/// slots up after a second, like sockets that never finish a plain head — not at the
/// handshake deadline. Four sockets that never send a byte fill a four-slot pool; the
/// handshake deadline is a minute, so only the pressure rule lets an honest client in.
#[tokio::test]
async fn sockets_stuck_in_the_tls_handshake_give_way_under_pressure() {
    let pki = Pki::new("handshake-pressure");
    pki.issue("localhost");
    let server = builder()
        .health(shieldwall::health::Health::new())
        .tls(Tls::files(pki.cert(), pki.key()))
        .limits(
            Limits::default()
                .max_connections(4)
                // Every client here is 127.0.0.1: let one address take the whole pool.
                .max_connections_per_ip(8)
                .tls_handshake_timeout(Duration::from_secs(60))
                .header_read_timeout(Duration::from_secs(60)),
        )
        .server()
        .unwrap();
    let (addr, _) = start(server, false).await;
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let t = Instant::now();
    let got = tokio::time::timeout(
        Duration::from_secs(10),
        pki.https_client()
            .get(format!("https://localhost:{}/health", addr.port()))
            .send(),
    )
    .await;
    let status = got.ok().and_then(Result::ok).map(|r| r.status().as_u16());
    assert_eq!(
        status,
        Some(200),
        "sockets that never began their TLS handshake kept every slot ({:?})",
        t.elapsed()
    );
    drop(silent);
}

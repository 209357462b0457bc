//! Behind a TLS-terminating reverse proxy: a real nginx on 127.0.0.1, started here with its
//! own configuration in a temporary directory, terminates TLS (a certificate made here with
//! rcgen) and forwards to the app with `X-Forwarded-Proto` or RFC 7239 `Forwarded`.
//!
//! nginx connects to the app from 127.0.0.2 (`proxy_bind`), the one trusted proxy; the
//! test's own direct requests come from 127.0.0.1, an untrusted peer, so the same forwarding
//! headers sent directly show that they are ignored from anyone else.
//!
//! Needs `nginx` (Debian: `apt-get install nginx`). Without it these tests print `SKIPPED`
//! and pass, unless `SHIELDWALL_REQUIRE_NGINX=1` (set by `.ci/run`, which installs nginx),
//! where a missing nginx is a failure.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderName;
use axum::http::header::SET_COOKIE;
use common::*;
use shieldwall::client_ip::{ClientScheme, ForwardedHeader, TrustedProxies};
use shieldwall::prelude::*;
use shieldwall::tls::HttpPolicy;

// ---------------------------------------------------------------- app

#[secure(get "/public", public)]
async fn public_route() -> &'static str {
    "public"
}

#[secure(post "/transfer", public)]
async fn transfer() -> &'static str {
    "moved"
}

/// A session cookie, `Secure` when the client is on HTTPS.
#[secure(get "/session", public)]
async fn session(scheme: ClientScheme) -> [(HeaderName, String); 1] {
    let secure = if scheme.is_https() { "; Secure" } else { "" };
    [(SET_COOKIE, format!("sid=s3ss10n; HttpOnly; Path=/{secure}"))]
}

/// The address nginx connects from (`proxy_bind`): the only trusted proxy.
const PROXY_IP: &str = "127.0.0.2";

fn builder(header: ForwardedHeader) -> Shieldwall {
    Shieldwall::new()
        .trusted_proxies(TrustedProxies::parse([PROXY_IP]).unwrap().header(header))
        .routes(routes![public_route, transfer, session])
}

/// Serve `server` on 127.0.0.1 (its own TLS when configured); returns its address.
async fn start(server: shieldwall::server::Server) -> SocketAddr {
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_on(server, main)
}

fn start_on(server: shieldwall::server::Server, main: tokio::net::TcpListener) -> SocketAddr {
    let bound = server.on(main, None).unwrap();
    let addr = bound.local_addr();
    tokio::spawn(bound.run_until(std::future::pending()));
    addr
}

// ---------------------------------------------------------------- certificates

struct Pki {
    dir: PathBuf,
    ca_der: Vec<u8>,
}

impl Pki {
    /// A CA, and a leaf for localhost/127.0.0.1 in `dir/cert.pem` + `dir/key.pem`.
    fn new(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "shieldwall proxy test CA");
        ca.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        Self {
            dir: dir.to_path_buf(),
            ca_der: ca_cert.der().to_vec(),
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// A client trusting the CA, resolving `localhost` to 127.0.0.1, following no redirects.
    fn client(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .resolve("localhost", "127.0.0.1:0".parse().unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------- nginx

/// Where nginx is, or `None` (the test is skipped unless `SHIELDWALL_REQUIRE_NGINX=1`).
fn nginx_binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join("nginx"));
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("SHIELDWALL_REQUIRE_NGINX").as_deref() == Ok("1") {
            panic!("SHIELDWALL_REQUIRE_NGINX=1 but nginx is not installed");
        }
        eprintln!("SKIPPED: nginx is not installed (apt-get install nginx)");
    }
    found
}

/// How nginx tells the app what the client used.
#[derive(Clone, Copy)]
enum Forwarding {
    /// `X-Forwarded-For: $proxy_add_x_forwarded_for`, `X-Forwarded-Proto: $scheme`.
    XForwarded,
    /// `Forwarded: for=…;proto=$scheme` only.
    Rfc7239,
}

/// A running nginx terminating TLS on `https` and plain HTTP on `http`, both forwarding to
/// the app; killed (with its temporary directory removed) when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
    https: u16,
    http: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Nginx {
    /// Start nginx in front of the app at `app` (`upstream_tls`: the app serves HTTPS
    /// itself and nginx re-encrypts), with the certificate of `pki`.
    fn start(bin: &Path, pki: &Pki, app: SocketAddr, upstream_tls: bool, fwd: Forwarding) -> Self {
        let dir = pki.dir.join("nginx");
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let (https, http) = (free_port(), free_port());
        let scheme = if upstream_tls { "https" } else { "http" };
        let headers = match fwd {
            Forwarding::XForwarded => {
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto $scheme;"
            }
            Forwarding::Rfc7239 => {
                "proxy_set_header Forwarded \"for=$remote_addr;proto=$scheme\";\n\
                 proxy_set_header X-Forwarded-For \"\";\n\
                 proxy_set_header X-Forwarded-Proto \"\";"
            }
        };
        let location = format!(
            "location / {{\n\
                 proxy_pass {scheme}://{app};\n\
                 proxy_bind {PROXY_IP};\n\
                 proxy_set_header Host $http_host;\n\
                 proxy_set_header X-Request-Id $request_id;\n\
                 {headers}\n\
             }}"
        );
        let d = dir.display();
        let conf = format!(
            "master_process off;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
                 access_log off;\n\
                 client_body_temp_path {d}/tmp/body;\n\
                 proxy_temp_path {d}/tmp/proxy;\n\
                 fastcgi_temp_path {d}/tmp/fastcgi;\n\
                 uwsgi_temp_path {d}/tmp/uwsgi;\n\
                 scgi_temp_path {d}/tmp/scgi;\n\
                 server {{\n\
                     listen 127.0.0.1:{https} ssl;\n\
                     ssl_certificate {cert};\n\
                     ssl_certificate_key {key};\n\
                     {location}\n\
                 }}\n\
                 server {{\n\
                     listen 127.0.0.1:{http};\n\
                     {location}\n\
                 }}\n\
             }}\n",
            cert = pki.cert().display(),
            key = pki.key().display(),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut nginx = Self {
            child,
            dir,
            https,
            http,
        };
        nginx.wait_until_listening();
        nginx
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let up = [self.https, self.http]
                .iter()
                .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
            if up {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}): {log}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https)
    }

    fn http(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.http)
    }
}

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sw-proxy-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const HSTS: &str = "max-age=31536000; includeSubDomains";

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn hsts_through_the_proxys_https_and_plain_http_is_refused() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("xfp"));
    let app = start(builder(ForwardedHeader::XForwardedFor).server().unwrap()).await;
    let nginx = Nginx::start(&bin, &pki, app, false, Forwarding::XForwarded);
    let c = pki.client();

    let r = send(c.get(nginx.https("/public"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("strict-transport-security"),
        Some(HSTS),
        "the client is on HTTPS (nginx says so): HSTS"
    );

    // Plain HTTP as the client saw it: the default policy rejects it, without HSTS.
    let r = send(c.get(nginx.http("/public"))).await;
    r.assert_problem(400, "https-required");
    assert_eq!(r.header("strict-transport-security"), None);
    // nginx overwrites a client's own X-Forwarded-Proto: claiming HTTPS through it fails.
    let r = send(
        c.get(nginx.http("/public"))
            .header("x-forwarded-proto", "https"),
    )
    .await;
    r.assert_problem(400, "https-required");
}

#[tokio::test]
async fn rfc7239_forwarded_proto_from_the_proxy() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("fwd"));
    let app = start(builder(ForwardedHeader::Forwarded).server().unwrap()).await;
    let nginx = Nginx::start(&bin, &pki, app, false, Forwarding::Rfc7239);
    let c = pki.client();

    let r = send(c.get(nginx.https("/public"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));
    let r = send(
        c.get(nginx.http("/public"))
            .header("forwarded", "proto=https"),
    )
    .await;
    r.assert_problem(400, "https-required");
    assert_eq!(r.header("strict-transport-security"), None);
}

#[tokio::test]
async fn plain_http_through_the_proxy_is_redirected() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("redirect"));
    let app = start(
        builder(ForwardedHeader::XForwardedFor)
            .http_policy(HttpPolicy::Redirect)
            .server()
            .unwrap(),
    )
    .await;
    let nginx = Nginx::start(&bin, &pki, app, false, Forwarding::XForwarded);
    let c = pki.client();

    let r = send(c.get(nginx.http("/public?x=1"))).await;
    assert_eq!(r.status, 308, "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some("https://localhost/public?x=1"),
        "to the same host and path on the default HTTPS port"
    );
    assert_eq!(r.header("strict-transport-security"), None);
    // A Host the app does not own is refused before any redirect is made (nginx passes
    // the client's Host): no open redirect through the proxy either.
    let r = send(c.get(nginx.http("/public")).header("host", "evil.example")).await;
    r.assert_problem(400, "unknown-host");
    assert!(r.header("location").is_none());
    // Over the proxy's HTTPS the same request is served.
    let r = send(c.get(nginx.https("/public?x=1"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));
}

#[tokio::test]
async fn redirects_go_to_the_public_https_port() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("public-port"));
    // nginx needs the app's address and the app nginx's HTTPS port: bind first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let nginx = Nginx::start(
        &bin,
        &pki,
        listener.local_addr().unwrap(),
        false,
        Forwarding::XForwarded,
    );
    let server = builder(ForwardedHeader::XForwardedFor)
        .http_policy(HttpPolicy::Redirect)
        .public_https_port(nginx.https)
        .server()
        .unwrap();
    start_on(server, listener);
    let c = pki.client();

    let r = send(c.get(nginx.http("/public?x=1"))).await;
    assert_eq!(r.status, 308, "{}", r.text);
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, nginx.https("/public?x=1"));
    // Following it lands on the proxy's HTTPS, served, with HSTS.
    let r = send(c.get(location)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));
}

#[tokio::test]
async fn secure_cookies_follow_the_clients_scheme() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("cookie"));
    let app = start(builder(ForwardedHeader::XForwardedFor).server().unwrap()).await;
    let nginx = Nginx::start(&bin, &pki, app, false, Forwarding::XForwarded);
    let c = pki.client();

    let r = send(c.get(nginx.https("/session"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("set-cookie"),
        Some("sid=s3ss10n; HttpOnly; Path=/; Secure"),
        "over the proxy's HTTPS the cookie is Secure"
    );
    // The same claim sent directly by an untrusted peer over plain HTTP changes nothing.
    let r = send(
        c.get(format!("http://localhost:{}/session", app.port()))
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("set-cookie"),
        Some("sid=s3ss10n; HttpOnly; Path=/")
    );
}

#[tokio::test]
async fn an_app_with_its_own_tls_behind_a_re_encrypting_proxy() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("own-tls"));
    let app = start(
        builder(ForwardedHeader::XForwardedFor)
            .tls(Tls::files(pki.cert(), pki.key()))
            .server()
            .unwrap(),
    )
    .await;
    let nginx = Nginx::start(&bin, &pki, app, true, Forwarding::XForwarded);
    let c = pki.client();

    let r = send(c.get(nginx.https("/public"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));
    // The hop from nginx is TLS, but the client used plain HTTP: the policy applies.
    let r = send(c.get(nginx.http("/public"))).await;
    r.assert_problem(400, "https-required");
    assert_eq!(r.header("strict-transport-security"), None);
}

#[tokio::test]
async fn csrf_compares_the_origin_with_the_clients_scheme() {
    let Some(bin) = nginx_binary() else { return };
    let pki = Pki::new(&tmp("csrf"));
    let app = start(builder(ForwardedHeader::XForwardedFor).server().unwrap()).await;
    let nginx = Nginx::start(&bin, &pki, app, false, Forwarding::XForwarded);
    let c = pki.client();
    // A browser without Sec-Fetch-Site: only `Origin` tells where the form came from.
    let post = |url: String, origin: String| {
        c.post(url)
            .header("cookie", "sid=abc")
            .header("origin", origin)
    };

    let same = format!("https://localhost:{}", nginx.https);
    let r = send(post(nginx.https("/transfer"), same)).await;
    assert_eq!(
        r.status, 200,
        "same origin over the proxy's HTTPS: {}",
        r.text
    );
    // A page served over plain HTTP on the same host (which anyone on the network can
    // write) is another origin: it may not post with the HTTPS session's cookies.
    let downgraded = format!("http://localhost:{}", nginx.https);
    let r = send(post(nginx.https("/transfer"), downgraded)).await;
    r.assert_problem(403, "cross-site-request");
}

#[tokio::test]
async fn forwarded_schemes_from_an_untrusted_peer_are_ignored() {
    // No nginx needed: the test itself is the untrusted peer (127.0.0.1).
    let pki = Pki::new(&tmp("spoof"));
    let app = start(builder(ForwardedHeader::XForwardedFor).server().unwrap()).await;
    let fwd_app = start(builder(ForwardedHeader::Forwarded).server().unwrap()).await;
    let c = pki.client();
    let base = format!("http://localhost:{}", app.port());
    let fwd_base = format!("http://localhost:{}", fwd_app.port());

    for (url, name, value) in [
        (&base, "x-forwarded-proto", "https"),
        (&base, "forwarded", "proto=https"),
        (&fwd_base, "forwarded", "for=198.51.100.1;proto=https"),
        (&fwd_base, "x-forwarded-proto", "https"),
    ] {
        let r = send(c.get(format!("{url}/public")).header(name, value)).await;
        assert_eq!(r.status, 200, "{name}: {value}: {}", r.text);
        assert_eq!(
            r.header("strict-transport-security"),
            None,
            "{name}: {value} from an untrusted peer makes nothing HTTPS"
        );
    }
    // …nor plain: a claimed `http` does not trigger the HTTPS policy.
    for (url, name, value) in [
        (&base, "x-forwarded-proto", "http"),
        (&fwd_base, "forwarded", "proto=http"),
    ] {
        let r = send(c.get(format!("{url}/public")).header(name, value)).await;
        assert_eq!(r.status, 200, "{name}: {value}: {}", r.text);
    }
    // CSRF decides with the connection's own scheme: a claimed HTTPS does not make an
    // https:// origin match this plain-HTTP app.
    let r = send(
        c.post(format!("{base}/transfer"))
            .header("cookie", "sid=abc")
            .header("x-forwarded-proto", "https")
            .header("origin", format!("https://localhost:{}", app.port())),
    )
    .await;
    r.assert_problem(403, "cross-site-request");
    let r = send(
        c.post(format!("{base}/transfer"))
            .header("cookie", "sid=abc")
            .header("origin", base.clone()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Attack round 1, finding 10: a client's own `X-Request-Id` sent through the documented
/// nginx configuration must not become the app's request id (in its response or its
/// log); nginx's own id (`$request_id`) does, so one id follows the request across hops.
#[tokio::test]
async fn a_clients_request_id_does_not_survive_the_documented_proxy() {
    let Some(bin) = nginx_binary() else { return };
    logs();
    let pki = Pki::new(&tmp("request-id"));
    let app = start(builder(ForwardedHeader::XForwardedFor).server().unwrap()).await;
    let nginx = Nginx::start(&bin, &pki, app, false, Forwarding::XForwarded);
    let c = pki.client();

    let chosen = "victims-request-id-0001";
    let r = send(c.get(nginx.https("/public")).header("x-request-id", chosen)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.header("x-request-id").unwrap_or_default().to_string();
    assert_ne!(
        id, chosen,
        "the client chose the app's request id through nginx"
    );
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "the id is nginx's own $request_id: {id:?}"
    );
    // Plain HTTP through the proxy (refused by the HTTPS policy) is no different.
    let r = send(c.get(nginx.http("/public")).header("x-request-id", chosen)).await;
    r.assert_problem(400, "https-required");
    assert_ne!(r.header("x-request-id"), Some(chosen));
    let log = logged();
    assert!(
        !log.contains(chosen),
        "the client's id reached the log:\n{log}"
    );
    assert!(log.contains(&id), "nginx's id is the one logged:\n{log}");
}

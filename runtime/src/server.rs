//! The server: HTTP/1.1 and HTTP/2 over TCP or TLS, with limits that defeat slow and
//! greedy clients, and a graceful shutdown.
//!
//! ```no_run
//! use std::time::Duration;
//! use shieldwall_runtime::app::Shieldwall;
//! use shieldwall_runtime::server::Limits;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Shieldwall::from_env()?      // SHIELDWALL_ADDR, SHIELDWALL_TLS_CERT, …
//!     .limits(Limits::default().request_timeout(Duration::from_secs(10)))
//!     // .routes(routes![...])
//!     .server()?;                            // build() + the listening configuration
//! let bound = server.bind().await?;          // binds now, so the address can be printed
//! println!("listening on {}", bound.url());
//! bound.run().await?;                        // until Ctrl-C or SIGTERM, then drains
//! # Ok(())
//! # }
//! ```
//!
//! # Limits ([`Limits`], per connection unless said otherwise)
//!
//! | limit | default | what it stops |
//! |---|---|---|
//! | `max_connections` (whole server) | 4096 | connection floods: further connections wait in the kernel backlog |
//! | `max_connections_per_ip` (whole server) | 64, or a quarter of `max_connections` if smaller | one address holding every slot: over it a connection is closed at once ([below](#connections-per-client-address)) |
//! | `tls_handshake_timeout` | 10 s | clients that open TCP and never finish the handshake |
//! | `header_read_timeout` | 10 s | slowloris: the whole request head must arrive within it; also closes an HTTP/1.1 keep-alive connection idle that long, and a connection that never sends a byte |
//! | `max_header_bytes` | 16 KiB | oversized heads: request line and fields, checked on every parsed head, pipelined or not (431 problem+json; HTTP/2: also the header list size advertised) |
//! | `max_headers` | 64 | header-count floods (431 problem+json; above 100, hyper's own cap, hyper enforces it) |
//! | `request_timeout` | 30 s | slow bodies and slow handlers: 408 problem+json and the connection closes |
//! | `idle_timeout` | 60 s | idle HTTP/2 connections (HTTP/1.1 uses `header_read_timeout`) |
//! | `h2_max_concurrent_streams` | 100 | HTTP/2 stream floods (rapid reset is bounded by h2's own defaults) |
//! | `write_timeout` | 30 s | slow readers: a response waits for the peer (an HTTP/1.1 socket that takes no bytes, an HTTP/2 flow-control window held at zero) and nothing is accepted for this long: the connection closes |
//! | `response_timeout` | 120 s | a body of known length (`Content-Length`: JSON, static files) still unsent this long after its head: the body is cut (HTTP/1.1: the connection closes; HTTP/2: the stream is reset) |
//! | `h2_keep_alive_interval`, `h2_keep_alive_timeout` | 20 s, 20 s | HTTP/2 peers that are gone: pinged while a stream is open, closed when a ping goes unanswered |
//!
//! **Write progress.** A response counts as in flight until its body is sent, so the idle
//! deadlines never cut a long download; what bounds it instead is the peer. The write
//! deadline fires when, for `write_timeout`, a response waits for the transport (its head
//! or its last chunk handed over, the next not asked for) and no body on the connection
//! was asked for more, or a write waits for the socket and the socket took nothing. A
//! peer that answers pings but never opens its window is caught by it (keep-alive only
//! catches peers that are gone). A slow *producer* (a stream waiting for its next event)
//! is not the peer's fault and never counts. Streaming bodies (no known length: server-sent
//! events, `Body::from_stream`) have no total cap, only the write deadline; the response
//! deadline is checked on the connection's clock (about once a second) as the body is
//! sent. With a small `max_connections`, every slow client costs a slot for up to these
//! deadlines: size the cap for the slowest clients you accept.
//!
//! # Connections per client address
//!
//! One address may hold at most `max_connections_per_ip` connections
//! (`SHIELDWALL_MAX_CONNECTIONS_PER_IP`), so idle sockets from one place cannot take the
//! whole pool. IPv6 peers count by the prefix the rate limiter uses
//! ([`crate::client_ip::rate_ident`], `/64` unless `.ipv6_prefix(..)` says otherwise), so
//! one host cannot spread over its own subnet. A connection over the cap is reset right
//! after `accept`, before any TLS or HTTP: it never holds one of `max_connections`.
//! Refusals are logged (target `shieldwall::server`, warning) at most once every 10 s with
//! their count, never a line per connection. The cost is one map update on accept and one
//! on close; nothing per request.
//!
//! **Trusted proxies are exempt** (they carry many clients): the server takes the list from
//! the builder ([`Shieldwall::server`](crate::app::Shieldwall::server) passes
//! `.trusted_proxies(..)` / `SHIELDWALL_TRUSTED_PROXIES`); a router served with
//! [`Server::plain`] or [`serve`] knows none unless given with [`Server::clients`]. Behind
//! a proxy the app sees the proxy's connections only, so the per-client cap is the
//! proxy's to keep (nginx: `limit_conn`).
//!
//! **Under pressure**, when at most an eighth of `max_connections` is free, a connection
//! with nothing in flight — a kept-alive HTTP/1.1 connection between requests, an idle
//! HTTP/2 connection, a socket that has not sent a whole head or finished its TLS
//! handshake — is closed after one second instead of `header_read_timeout` /
//! `idle_timeout` / `tls_handshake_timeout`, so clients waiting in the backlog get in. An
//! idle HTTP/2 connection is sent a GOAWAY and closed 250 ms later if its peer has not
//! acknowledged it (hyper waits for that acknowledgement). A response being sent is never idle.
//!
//! **What this does not stop.** Many addresses together (a botnet, or many IPv6 prefixes)
//! can still fill `max_connections`; under pressure idle slots turn over within about a
//! second, but connections busy with requests keep theirs. Capacity limits of the app are
//! the same: a login flood from many addresses, each within its rate limit, that asks for
//! more password hashing than the machine has sheds logins with 503
//! `temporarily_unavailable` (see [`crate::auth::passwords`]) while other routes stay fast. Against
//! floods of that size the answer is upstream (a CDN or load balancer with its own limits)
//! and capacity.
//!
//! **The head cap** is checked twice: hyper refuses a head that does not fit its read
//! buffer (sized to the cap), and every head that was parsed is measured — the request
//! line plus each field's name and value with their separators, lengths only — and refused
//! with 431 over the cap. The second check is what holds the limit for pipelined requests:
//! a head sent behind another can arrive whole in a buffer that has already grown, and
//! hyper would parse it. Whitespace around a value, which the parser drops, is not
//! counted; the read buffer bounds it.
//!
//! **Refusals the server makes itself** follow the error contract like the app's: the 408
//! of a request timeout, the 431 of too many header fields, and hyper's own answers to a
//! head it cannot parse (431 for a head over `max_header_bytes`, 400 for a malformed one,
//! 414) — which hyper writes bare, so the connection's writer puts the contract in their
//! place. Each is `application/problem+json` with the security headers (HSTS over TLS),
//! `Cache-Control: no-store`, and a fresh `X-Request-Id` that is also the problem's
//! `instance` and is logged with the refusal (target `shieldwall::access`). The 408's id
//! is not the one the app's stack gave the request: the request it belonged to was
//! abandoned. Over HTTP/2 the header-list limit is advertised in `SETTINGS`; a peer that
//! ignores it gets the protocol's own answer from h2 (a bare 431 `HEADERS` frame and a
//! stream reset), which the frame layer gives no way to replace.
//!
//! Body size caps are per route (`body_limit`, from the core), enforced as the body is
//! read. Each request carries a [`Transport`] extension (plain, plain beside HTTPS, or
//! TLS) and the peer address as `ConnectInfo<SocketAddr>` (for per-IP limits).
//!
//! [`serve`] keeps the simple form — a router and a listener, plain HTTP — with the same
//! limits.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::client_ip::{DEFAULT_IPV6_PREFIX, TrustedProxies, rate_ident};
use crate::error::Problem;
use crate::headers::CompiledHeaders;
use crate::tls::LoadedTls;

/// How a request reached the server (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP, and the server has no HTTPS listener (development).
    Plain,
    /// Plain HTTP on the listener beside HTTPS: redirected or rejected.
    PlainBesideTls {
        /// The HTTPS port to redirect to.
        https_port: u16,
    },
    /// TLS.
    Tls,
}

/// hyper's built-in cap on HTTP/1.1 header fields.
const HYPER_MAX_HEADERS: usize = 100;

/// Default connections per client address (when a quarter of `max_connections` is more).
const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;

/// Under pressure (at most an eighth of `max_connections` free), a connection with nothing
/// in flight for this long is closed.
const PRESSURE_IDLE: Duration = Duration::from_secs(1);
/// Under pressure, how long an idle HTTP/2 peer has to acknowledge the GOAWAY it was sent.
const PRESSURE_GRACE: Duration = Duration::from_millis(250);

/// Refusals over the per-address cap are logged at most this often (with their count).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Connection and request limits. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Limits {
    max_connections: usize,
    /// `None`: the default, 64 or a quarter of `max_connections` if that is smaller.
    max_connections_per_ip: Option<usize>,
    tls_handshake_timeout: Duration,
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_headers: usize,
    request_timeout: Duration,
    idle_timeout: Duration,
    h2_max_concurrent_streams: u32,
    h2_keep_alive_interval: Duration,
    h2_keep_alive_timeout: Duration,
    write_timeout: Duration,
    response_timeout: Duration,
    shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_connections_per_ip: None,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            h2_max_concurrent_streams: 100,
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(20),
            write_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Connections served at once (whole server, each listener).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.clamp(1, u32::MAX as usize >> 4);
        self
    }
    /// Connections one client address may hold at once (default 64, or a quarter of
    /// `max_connections` if that is smaller). IPv6 addresses count by the prefix the rate
    /// limiter uses (`/64` by default); trusted proxies are exempt. A connection over the cap
    /// is closed at once, without taking one of `max_connections`. See the
    /// [module docs](self#connections-per-client-address).
    pub fn max_connections_per_ip(mut self, n: usize) -> Self {
        self.max_connections_per_ip = Some(n.clamp(1, u32::MAX as usize >> 4));
        self
    }
    /// The per-address cap in force: the configured one, or the default.
    fn per_ip_cap(&self) -> usize {
        self.max_connections_per_ip
            .unwrap_or_else(|| (self.max_connections / 4).clamp(1, DEFAULT_MAX_CONNECTIONS_PER_IP))
    }
    /// Time allowed for the TLS handshake.
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Self {
        self.tls_handshake_timeout = d;
        self
    }
    /// Time allowed for a whole request head (and for an idle HTTP/1.1 keep-alive).
    pub fn header_read_timeout(mut self, d: Duration) -> Self {
        self.header_read_timeout = d;
        self
    }
    /// Largest request head in bytes (at least 8 KiB).
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n.max(8192);
        self
    }
    /// Most header fields in one request.
    pub fn max_headers(mut self, n: usize) -> Self {
        self.max_headers = n.max(1);
        self
    }
    /// Time allowed from request head to response head, body reading included.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }
    /// An idle connection is closed after this long.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Concurrent HTTP/2 streams per connection.
    pub fn h2_max_concurrent_streams(mut self, n: u32) -> Self {
        self.h2_max_concurrent_streams = n.max(1);
        self
    }
    /// How long the peer may accept no bytes of a response that is waiting to be sent
    /// before the connection is closed (slow readers; an HTTP/2 window held at zero).
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d.max(Duration::from_millis(100));
        self
    }
    /// Longest time to send a response body whose length is known (non-streaming); a
    /// streaming body (no known length) is bounded by `write_timeout` only.
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = d.max(Duration::from_millis(100));
        self
    }
    /// How often an HTTP/2 connection is pinged.
    pub fn h2_keep_alive_interval(mut self, d: Duration) -> Self {
        self.h2_keep_alive_interval = d.max(Duration::from_millis(100));
        self
    }
    /// How long an HTTP/2 ping may go unanswered before the connection is closed.
    pub fn h2_keep_alive_timeout(mut self, d: Duration) -> Self {
        self.h2_keep_alive_timeout = d.max(Duration::from_millis(100));
        self
    }
    /// How long shutdown waits for in-flight requests.
    pub fn shutdown_grace(mut self, d: Duration) -> Self {
        self.shutdown_grace = d;
        self
    }
}

/// A built app with its listening configuration: [`crate::app::Shieldwall::server`].
#[derive(Debug)]
pub struct Server {
    router: Router,
    /// The app's security headers, for the answers the server makes itself (408, 431, 400).
    headers: Arc<CompiledHeaders>,
    tls: Option<LoadedTls>,
    limits: Limits,
    addr: String,
    http_addr: Option<String>,
    /// Exempt from the per-address connection cap: they carry many clients.
    proxies: TrustedProxies,
    /// IPv6 prefix length counted as one client address.
    ipv6_prefix: u8,
}

impl Server {
    pub(crate) fn new(
        router: Router,
        headers: CompiledHeaders,
        tls: Option<LoadedTls>,
        limits: Limits,
        addr: String,
        http_addr: Option<String>,
    ) -> Self {
        Self {
            router,
            headers: Arc::new(headers),
            tls,
            limits,
            addr,
            http_addr,
            proxies: TrustedProxies::none(),
            ipv6_prefix: DEFAULT_IPV6_PREFIX,
        }
    }

    /// Proxies whose connections are exempt from the per-address cap
    /// ([`Limits::max_connections_per_ip`]), and the IPv6 prefix counted as one address.
    /// [`crate::app::Shieldwall::server`] passes the app's own (`.trusted_proxies(..)`,
    /// `.ipv6_prefix(..)`, `SHIELDWALL_TRUSTED_PROXIES`, `SHIELDWALL_IPV6_PREFIX`); set them
    /// here for a router served with [`Server::plain`].
    pub fn clients(mut self, proxies: TrustedProxies, ipv6_prefix: u8) -> Self {
        self.proxies = proxies;
        self.ipv6_prefix = ipv6_prefix;
        self
    }

    /// Plain HTTP with default limits (what [`serve`] uses). The answers the server makes
    /// itself (408, 431) carry the default (`api`) security headers.
    pub fn plain(router: Router) -> Self {
        Self::new(
            router,
            crate::headers::SecurityHeaders::api().compile(),
            None,
            Limits::default(),
            String::new(),
            None,
        )
    }

    /// The app.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Whether the main listener speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Bind the configured addresses (`SHIELDWALL_ADDR`, default `127.0.0.1:3000`, and the
    /// plain listener `SHIELDWALL_HTTP_ADDR` beside HTTPS, if any).
    pub async fn bind(self) -> io::Result<Bound> {
        let main = TcpListener::bind(&self.addr).await?;
        let http = match &self.http_addr {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        self.on(main, http)
    }

    /// Use already-bound listeners: `main` serves the app (TLS when configured), `http`
    /// is the plain listener beside it.
    pub fn on(self, main: TcpListener, http: Option<TcpListener>) -> io::Result<Bound> {
        let local = main.local_addr()?;
        let http_local = http.as_ref().map(TcpListener::local_addr).transpose()?;
        Ok(Bound {
            server: self,
            main,
            http,
            local,
            http_local,
        })
    }

    /// Bind and serve until Ctrl-C or SIGTERM.
    pub async fn serve(self) -> io::Result<()> {
        self.bind().await?.run().await
    }
}

/// A server with its listeners bound.
#[derive(Debug)]
pub struct Bound {
    server: Server,
    main: TcpListener,
    http: Option<TcpListener>,
    local: SocketAddr,
    http_local: Option<SocketAddr>,
}

impl Bound {
    /// The main listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The plain listener's address, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_local
    }

    /// `https://addr` or `http://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.local)
    }

    /// Serve until Ctrl-C or SIGTERM; in-flight requests are drained.
    pub async fn run(self) -> io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serve until `shutdown` completes; in-flight requests are drained (up to the
    /// shutdown grace).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let limits = self.server.limits.clone();
        let permits = limits.max_connections;
        let peers = Arc::new(PeerSlots::new(
            limits.per_ip_cap(),
            self.server.ipv6_prefix,
            self.server.proxies,
        ));
        let shared = Arc::new(Shared {
            router: self.server.router,
            headers: self.server.headers,
            sem: Arc::new(Semaphore::new(permits)),
            limits,
            peers,
        });
        let (tx, rx) = watch::channel(false);
        let main_kind = match &self.server.tls {
            Some(t) => Kind::Tls {
                acceptor: tokio_rustls::TlsAcceptor::from(t.config.clone()),
                acme: t.acme,
            },
            None => Kind::Plain(Transport::Plain),
        };
        let mut loops = vec![tokio::spawn(accept_loop(
            self.main,
            main_kind,
            shared.clone(),
            rx.clone(),
        ))];
        if let Some(http) = self.http {
            let kind = if self.server.tls.is_some() {
                Kind::Plain(Transport::PlainBesideTls {
                    https_port: self.local.port(),
                })
            } else {
                Kind::Plain(Transport::Plain)
            };
            loops.push(tokio::spawn(accept_loop(http, kind, shared.clone(), rx)));
        }
        shutdown.await;
        let _ = tx.send(true);
        for l in loops {
            let _ = l.await;
        }
        let all = u32::try_from(permits).unwrap_or(u32::MAX);
        let _ =
            tokio::time::timeout(shared.limits.shutdown_grace, shared.sem.acquire_many(all)).await;
        Ok(())
    }
}

/// Serve a router on `listener` over plain HTTP with default [`Limits`], the peer address
/// recorded (for per-IP limits), until Ctrl-C or SIGTERM; in-flight requests are drained.
pub async fn serve(router: Router, listener: TcpListener) -> io::Result<()> {
    Server::plain(router).on(listener, None)?.run().await
}

#[derive(Debug)]
struct Shared {
    router: Router,
    headers: Arc<CompiledHeaders>,
    sem: Arc<Semaphore>,
    limits: Limits,
    peers: Arc<PeerSlots>,
}

impl Shared {
    /// At most an eighth of the connection slots are free.
    fn under_pressure(&self) -> bool {
        self.sem.available_permits().saturating_mul(8) <= self.limits.max_connections
    }
}

/// The connections each client address holds (see [`Limits::max_connections_per_ip`]):
/// one map entry per address with a connection open, updated on accept and on close only.
#[derive(Debug)]
struct PeerSlots {
    cap: usize,
    v6_prefix: u8,
    proxies: TrustedProxies,
    open: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals since the last one logged.
    refused: AtomicU64,
    /// When the last refusal was logged, in milliseconds after `start` (`u64::MAX`: never).
    logged_ms: AtomicU64,
    start: Instant,
}

impl PeerSlots {
    fn new(cap: usize, v6_prefix: u8, proxies: TrustedProxies) -> Self {
        Self {
            cap,
            v6_prefix,
            proxies,
            open: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
            logged_ms: AtomicU64::new(u64::MAX),
            start: Instant::now(),
        }
    }

    /// A slot for a connection from `peer`, or the address it counts as when that address
    /// already holds its share. Trusted proxies are not counted.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<PeerSlot, IpAddr> {
        if !self.proxies.is_empty() && self.proxies.is_trusted(peer) {
            return Ok(PeerSlot(None));
        }
        let key = rate_ident(peer, self.v6_prefix);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.cap {
            return Err(key);
        }
        *n += 1;
        Ok(PeerSlot(Some((self.clone(), key))))
    }

    fn release(&self, key: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }

    /// Count a refusal; log one line (with the count) at most every
    /// [`REFUSAL_LOG_EVERY`], never a line per connection.
    fn refused(&self, key: IpAddr) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        let last = self.logged_ms.load(Ordering::Relaxed);
        let every = u64::try_from(REFUSAL_LOG_EVERY.as_millis()).unwrap_or(u64::MAX);
        if last != u64::MAX && now.saturating_sub(last) < every {
            return;
        }
        if self
            .logged_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            let refused = self.refused.swap(0, Ordering::Relaxed);
            let prefix = match key {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => self.v6_prefix.min(128),
            };
            tracing::warn!(
                target: "shieldwall::server",
                client = %key,
                prefix,
                cap = self.cap,
                refused,
                "connections refused: the client address already holds max_connections_per_ip \
                 (counted since the last such line; logged at most every 10 s)"
            );
        }
    }
}

/// A connection's place in [`PeerSlots`], given back when the connection ends.
struct PeerSlot(Option<(Arc<PeerSlots>, IpAddr)>);

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Some((slots, key)) = &self.0 {
            slots.release(*key);
        }
    }
}

#[derive(Clone)]
enum Kind {
    Plain(Transport),
    Tls {
        acceptor: tokio_rustls::TlsAcceptor,
        acme: bool,
    },
}

async fn accept_loop(
    listener: TcpListener,
    kind: Kind,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let permit = tokio::select! {
            p = shared.sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Per-connection errors (reset before accept) are normal; running out of
                // file descriptors is not: back off instead of spinning.
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                ) {
                    tracing::warn!(target: "shieldwall::server", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let slot = match shared.peers.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(key) => {
                // Over the per-address cap: closed at once (a reset, so no socket lingers
                // here), and the global slot goes back before the next accept.
                let _ = stream.set_zero_linger();
                drop(stream);
                drop(permit);
                shared.peers.refused(key);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let kind = kind.clone();
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection(stream, peer, kind, &shared, stop).await;
            drop(slot);
            drop(permit);
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    kind: Kind,
    shared: &Shared,
    stop: watch::Receiver<bool>,
) {
    match kind {
        Kind::Plain(t) => drive(TokioIo::new(stream), peer, t, shared, stop).await,
        Kind::Tls { acceptor, acme } => {
            let handshake = acceptor.accept(stream);
            let tls = match handshake_deadline(shared, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(target: "shieldwall::server", %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(target: "shieldwall::server", %peer, "TLS handshake timed out");
                    return;
                }
            };
            if acme && tls.get_ref().1.alpn_protocol() == Some(b"acme-tls/1".as_slice()) {
                // A TLS-ALPN-01 validation: the handshake was the whole exchange.
                return;
            }
            drive(TokioIo::new(tls), peer, Transport::Tls, shared, stop).await;
        }
    }
}

/// Run a TLS handshake until it ends, or until its deadline: `tls_handshake_timeout`, or
/// one second once nearly every slot is taken (as for a plain socket that never finishes
/// a head), so sockets that never complete a handshake cannot hold the pool. `Err` on
/// the deadline.
async fn handshake_deadline<F: Future>(shared: &Shared, handshake: F) -> Result<F::Output, ()> {
    let started = Instant::now();
    let limit = shared.limits.tls_handshake_timeout;
    let deadline = async {
        let mut tick =
            tokio::time::interval((PRESSURE_IDLE.min(limit) / 4).max(Duration::from_millis(10)));
        loop {
            tick.tick().await;
            let spent = started.elapsed();
            if spent >= limit || (spent >= PRESSURE_IDLE && shared.under_pressure()) {
                return;
            }
        }
    };
    tokio::select! {
        done = handshake => Ok(done),
        () = deadline => Err(()),
    }
}

async fn drive<I>(
    io: I,
    peer: SocketAddr,
    transport: Transport,
    shared: &Shared,
    mut stop: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let l = &shared.limits;
    let activity = Arc::new(Activity::new(l.response_timeout));
    let refuser = Arc::new(Refuser {
        headers: shared.headers.clone(),
        tls: transport == Transport::Tls,
        peer,
        activity: activity.clone(),
    });
    let svc = ConnService {
        router: shared.router.clone(),
        peer,
        transport,
        timeout: l.request_timeout,
        activity: activity.clone(),
        max_headers: (l.max_headers < HYPER_MAX_HEADERS).then_some(l.max_headers),
        max_head_bytes: l.max_header_bytes,
        refuser: refuser.clone(),
    };
    let io = Watched {
        io,
        activity: activity.clone(),
        refuser,
        replacement: None,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The request head's deadline (slowloris) is kept by this connection's ticker below,
    // not by a timer per request inside hyper.
    let mut h1 = builder.http1();
    h1.header_read_timeout(None)
        .max_buf_size(l.max_header_bytes.max(8192));
    // Up to hyper's own cap the count is checked on the parsed head (one comparison);
    // a larger cap is hyper's to enforce.
    if l.max_headers > HYPER_MAX_HEADERS {
        h1.max_headers(l.max_headers);
    }
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(l.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(l.h2_max_concurrent_streams)
        .keep_alive_interval(Some(l.h2_keep_alive_interval))
        .keep_alive_timeout(l.h2_keep_alive_timeout);
    let conn = builder.serve_connection_with_upgrades(io, svc);
    tokio::pin!(conn);
    let tick = (l
        .header_read_timeout
        .min(l.idle_timeout)
        .min(l.write_timeout)
        / 4)
    .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    let mut closing: Option<Instant> = None;
    let mut stall = Stall::default();
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(target: "shieldwall::server", %peer, error = %e, "connection ended");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now() + l.shutdown_grace);
            }
            // The end of a graceful close's grace, on time rather than at the next tick.
            () = tokio::time::sleep_until(closing.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std)), if closing.is_some() => {
                return;
            }
            _ = ticker.tick() => {
                activity.tick();
                if stall.check(&activity) >= l.write_timeout {
                    // The peer has accepted nothing for the whole write deadline while a
                    // response waits for it: a slow reader, or an HTTP/2 window held at
                    // zero. Closing is the only way to get the slot back.
                    tracing::debug!(target: "shieldwall::server", %peer, "closed a connection whose peer stopped reading");
                    return;
                }
                match closing {
                    Some(deadline) if Instant::now() >= deadline => return,
                    Some(_) => {}
                    None => {
                        // HTTP/1.1: between requests the next head must arrive within the
                        // header timeout (slowloris); HTTP/2 idles up to the idle timeout.
                        // A response counts as in flight until its body is sent, so a
                        // long download is never idle.
                        let h2 = activity.is_h2();
                        let mut limit = if h2 { l.idle_timeout } else { l.header_read_timeout };
                        // Nearly every slot taken: a connection with nothing in flight
                        // gives its slot up after a second (idle keep-alives, sockets that
                        // never sent a head), so waiting clients get in.
                        if shared.under_pressure() {
                            limit = limit.min(PRESSURE_IDLE);
                        }
                        if activity.idle_for() >= limit {
                            if !h2 {
                                // Nothing in flight: at most half a head, which is what
                                // the deadline is for. (hyper would keep a connection that
                                // never completed its first head open until the grace.)
                                return;
                            }
                            // HTTP/2: a GOAWAY, and hyper waits for the PING it sends
                            // with it to be acknowledged; a peer that never answers
                            // keeps the slot until `closing`, so under pressure that is
                            // a round trip's allowance away.
                            conn.as_mut().graceful_shutdown();
                            let grace = if shared.under_pressure() {
                                l.header_read_timeout.min(PRESSURE_GRACE)
                            } else {
                                l.header_read_timeout
                            };
                            closing = Some(Instant::now() + grace);
                        }
                    }
                }
            }
        }
    }
}

/// What one connection is doing, shared by its requests, its response bodies, its I/O and
/// its ticker: requests in flight and the time of the last one (idle timeout), and whether
/// the peer is taking what is sent (write deadline).
#[derive(Debug)]
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `start` when the last request finished; 0: none yet.
    last_ms: AtomicU64,
    /// The connection speaks HTTP/2 (seen on its first request).
    h2: AtomicBool,
    /// Response bodies waiting for the transport to ask for more (their head, or their
    /// last frame, has been handed over; the next poll has not come).
    waiting: AtomicUsize,
    /// Polls of any response body: the transport asked for more.
    body_progress: AtomicU64,
    /// The last write or flush returned `Pending`: the peer's receive window is full.
    io_blocked: AtomicBool,
    /// Writes that the socket accepted.
    io_progress: AtomicU64,
    /// Milliseconds after `start`, as of the last tick (a coarse clock for the response
    /// deadline, so no body poll reads the system clock).
    now_ms: AtomicU64,
    /// The response deadline (bodies of known length), in milliseconds.
    response_ms: u64,
}

impl Activity {
    fn new(response_timeout: Duration) -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            body_progress: AtomicU64::new(0),
            io_blocked: AtomicBool::new(false),
            io_progress: AtomicU64::new(0),
            now_ms: AtomicU64::new(0),
            response_ms: u64::try_from(response_timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    fn idle_for(&self) -> Duration {
        // A response still on its way out (its body, or bytes the socket has not taken
        // yet) is not idleness: the write deadline watches it instead.
        if self.in_flight.load(Ordering::Relaxed) > 0 || self.io_blocked.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }

    /// Advance the coarse clock.
    fn tick(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.now_ms.store(ms, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }
}

/// The ticker's view of write progress: how long the peer has accepted nothing while
/// something waits for it.
#[derive(Debug, Default)]
struct Stall {
    body_progress: u64,
    io_progress: u64,
    since: Option<Instant>,
}

impl Stall {
    /// How long the connection has been stalled (zero if it is not).
    fn check(&mut self, a: &Activity) -> Duration {
        let body = a.body_progress.load(Ordering::Relaxed);
        let io = a.io_progress.load(Ordering::Relaxed);
        // A body waits for the transport and the transport has not come back for it (an
        // HTTP/2 window at zero; HTTP/1.1 behind a full socket), or a write waits for the
        // socket and the socket has taken nothing.
        let starved = a.waiting.load(Ordering::Relaxed) > 0 && body == self.body_progress;
        let blocked = a.io_blocked.load(Ordering::Relaxed) && io == self.io_progress;
        self.body_progress = body;
        self.io_progress = io;
        if starved || blocked {
            self.since.get_or_insert_with(Instant::now).elapsed()
        } else {
            self.since = None;
            Duration::ZERO
        }
    }
}

pin_project_lite::pin_project! {
    /// The connection's I/O, noting whether the peer takes what is written, and putting
    /// the error contract in place of hyper's own bare answer to an unparseable head.
    struct Watched<I> {
        #[pin]
        io: I,
        activity: Arc<Activity>,
        refuser: Arc<Refuser>,
        // The refusal written instead of hyper's, and how much of it is out.
        replacement: Option<(Vec<u8>, usize)>,
    }
}

impl<I: hyper::rt::Write> Watched<I> {
    /// hyper writes its own answer to a head it cannot parse only between requests (none
    /// in flight), as one buffer; anything else is passed through untouched.
    fn replace(
        activity: &Activity,
        refuser: &Refuser,
        replacement: &mut Option<(Vec<u8>, usize)>,
        buf: &[u8],
    ) -> bool {
        if buf.len() > 192
            || !buf.starts_with(b"HTTP/1.1 ")
            || activity.in_flight.load(Ordering::Relaxed) > 0
        {
            return false;
        }
        let Some((status, date)) = hyper_head_refusal(buf) else {
            return false;
        };
        *replacement = Some((refuser.head_refusal(status, date), 0));
        true
    }

    /// Write out the rest of a replacement, if any.
    fn drain(
        mut io: Pin<&mut I>,
        activity: &Activity,
        replacement: &mut Option<(Vec<u8>, usize)>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        while let Some((bytes, sent)) = replacement {
            if *sent >= bytes.len() {
                *replacement = None;
                break;
            }
            let r = io.as_mut().poll_write(cx, &bytes[*sent..]);
            Self::note(
                activity,
                &r,
                matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0),
            );
            match r {
                std::task::Poll::Ready(Ok(0)) => {
                    return std::task::Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                std::task::Poll::Ready(Ok(n)) => *sent += n,
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl<I> Watched<I> {
    fn note<T>(activity: &Activity, r: &std::task::Poll<io::Result<T>>, progressed: bool) {
        match r {
            std::task::Poll::Pending => activity.io_blocked.store(true, Ordering::Relaxed),
            std::task::Poll::Ready(_) => {
                if progressed {
                    activity.io_progress.fetch_add(1, Ordering::Relaxed);
                }
                activity.io_blocked.store(false, Ordering::Relaxed);
            }
        }
    }
}

impl<I: hyper::rt::Read> hyper::rt::Read for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write> hyper::rt::Write for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let mut this = self.project();
        if this.replacement.is_some() {
            std::task::ready!(Self::drain(
                this.io.as_mut(),
                this.activity,
                this.replacement,
                cx
            ))?;
        }
        if Self::replace(this.activity, this.refuser, this.replacement, buf) {
            // Ours goes out in its place; hyper's counts as written.
            let _ = Self::drain(this.io.as_mut(), this.activity, this.replacement, cx)?;
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        let r = this.io.poll_write(cx, buf);
        let n = matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0);
        Self::note(this.activity, &r, n);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        let mut this = self.project();
        if this.replacement.is_some() {
            std::task::ready!(Self::drain(
                this.io.as_mut(),
                this.activity,
                this.replacement,
                cx
            ))?;
        }
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && Self::replace(this.activity, this.refuser, this.replacement, only)
        {
            let _ = Self::drain(this.io.as_mut(), this.activity, this.replacement, cx)?;
            return std::task::Poll::Ready(Ok(only.len()));
        }
        let r = this.io.poll_write_vectored(cx, bufs);
        let n = matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0);
        Self::note(this.activity, &r, n);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let mut this = self.project();
        if this.replacement.is_some() {
            std::task::ready!(Self::drain(
                this.io.as_mut(),
                this.activity,
                this.replacement,
                cx
            ))?;
        }
        let r = this.io.poll_flush(cx);
        Self::note(this.activity, &r, false);
        r
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let mut this = self.project();
        if this.replacement.is_some() {
            std::task::ready!(Self::drain(
                this.io.as_mut(),
                this.activity,
                this.replacement,
                cx
            ))?;
        }
        this.io.poll_shutdown(cx)
    }
}

struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(a.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ms = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(ms.max(1), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    transport: Transport,
    timeout: Duration,
    activity: Arc<Activity>,
    /// Header fields allowed per request, when below hyper's own cap.
    max_headers: Option<usize>,
    /// Largest request head ([`head_len`]).
    max_head_bytes: usize,
    /// The answers made here, outside the app's stack (408, 431).
    refuser: Arc<Refuser>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = ConnFuture;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::start(&self.activity);
        // Checked on every parsed head: hyper's own limit is its read buffer, which a head
        // pipelined behind another can arrive in whole, larger than the cap.
        let refusal = if self
            .max_headers
            .is_some_and(|max| req.headers().len() > max)
        {
            Some(too_many_headers())
        } else if head_len(&req) > self.max_head_bytes {
            Some(head_too_large())
        } else {
            None
        };
        if let Some(problem) = refusal {
            return ConnFuture {
                state: ConnState::Done {
                    res: Some(self.refuser.respond(problem)),
                },
                in_flight: Some(in_flight),
                refuser: None,
            };
        }
        let mut req = req.map(Body::new);
        if req.version() == axum::http::Version::HTTP_2 {
            self.activity.h2.store(true, Ordering::Relaxed);
        }
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut().insert(self.transport);
        ConnFuture {
            state: ConnState::Running {
                inner: tokio::time::timeout(self.timeout, self.router.clone().oneshot(req)),
            },
            in_flight: Some(in_flight),
            refuser: Some(self.refuser.clone()),
        }
    }
}

/// Makes the refusals the server answers itself, outside the app's stack (408, 431, and
/// hyper's own answers to a head it cannot parse), in the error contract: problem+json
/// with a fresh request id (header and `instance`), the security headers (HSTS over TLS),
/// `Connection: close` (HTTP/1.1); each is logged with its id.
#[derive(Debug)]
struct Refuser {
    headers: Arc<CompiledHeaders>,
    tls: bool,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl Refuser {
    fn respond(&self, problem: Problem) -> Response {
        let id = crate::hardening::new_request_id();
        let id_str = id.to_str().unwrap_or("unknown");
        let status = problem.status().as_u16();
        tracing::info!(
            target: "shieldwall::access",
            request_id = id_str,
            peer = %self.peer,
            route = "unmatched",
            status,
            outcome = crate::observe::outcome(status),
            "refused by the server"
        );
        let mut problem = problem
            .with_instance(format!("urn:uuid:{id_str}"))
            .with_header(crate::fallback::X_REQUEST_ID.clone(), id);
        // HTTP/2 has no `Connection` header (hyper would strip it).
        if !self.activity.is_h2() {
            problem = problem.with_header(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let mut res = problem.into_response();
        self.headers.apply(res.headers_mut(), self.tls, true);
        res
    }

    /// The bytes of an HTTP/1.1 refusal that replaces hyper's own (bare, empty) answer to a
    /// head it could not parse: `status` is hyper's, `date` its `Date` value.
    fn head_refusal(&self, status: u16, date: &[u8]) -> Vec<u8> {
        use futures_util::FutureExt;
        use http_body_util::BodyExt;
        let problem = match status {
            431 => head_too_large(),
            414 => Problem::new(StatusCode::URI_TOO_LONG, "uri-too-long", "URI Too Long")
                .with_detail("The request target is too long."),
            _ => Problem::from_status(StatusCode::BAD_REQUEST)
                .with_detail("The request head is malformed."),
        };
        let res = self.respond(problem);
        let (parts, body) = res.into_parts();
        // A problem body is one buffer: ready at once.
        let body = body
            .collect()
            .now_or_never()
            .and_then(Result::ok)
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(1024 + body.len());
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(parts.status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(
            parts
                .status
                .canonical_reason()
                .unwrap_or("Bad Request")
                .as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            if name == header::CONTENT_LENGTH {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\ndate: ");
        out.extend_from_slice(date);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&body);
        out
    }
}

/// Whether `buf` is, whole, hyper's own answer to an unparseable request head — a bare
/// `HTTP/1.1 400`, `414` or `431` with no headers but `connection: close`,
/// `content-length: 0` and `date` — and then its status and `Date` value.
fn hyper_head_refusal(buf: &[u8]) -> Option<(u16, &[u8])> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let status = match rest.get(..4)? {
        b"400 " => 400,
        b"414 " => 414,
        b"431 " => 431,
        _ => return None,
    };
    // Every line ends with CRLF, the head with an empty line.
    let head = rest.strip_suffix(b"\r\n")?;
    let mut lines = head.split(|b| *b == b'\n');
    lines.next()?.strip_suffix(b"\r")?; // the status line
    let mut date = None;
    while let Some(line) = lines.next() {
        if line.is_empty() {
            // After the last CRLF: nothing may follow.
            if lines.next().is_some() {
                return None;
            }
            break;
        }
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|b| *b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        let http_date =
            value.len() == 29 && value.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
        if name.eq_ignore_ascii_case(b"date") && http_date && date.is_none() {
            date = Some(value);
        } else if !(name.eq_ignore_ascii_case(b"connection") && value == b"close"
            || name.eq_ignore_ascii_case(b"content-length") && value == b"0")
        {
            return None;
        }
    }
    Some((status, date?))
}

pin_project_lite::pin_project! {
    /// A request on its way through the app, within the request timeout (not boxed).
    pub(crate) struct ConnFuture {
        #[pin]
        state: ConnState,
        in_flight: Option<InFlight>,
        refuser: Option<Arc<Refuser>>,
    }
}

pin_project_lite::pin_project! {
    #[project = ConnStateProj]
    enum ConnState {
        Running { #[pin] inner: tokio::time::Timeout<tower::util::Oneshot<Router, Request<Body>>> },
        Done { res: Option<Response> },
    }
}

impl Future for ConnFuture {
    type Output = Result<Response<TrackedBody>, Infallible>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let res = match this.state.project() {
            ConnStateProj::Running { inner } => match inner.poll(cx) {
                std::task::Poll::Pending => return std::task::Poll::Pending,
                std::task::Poll::Ready(Ok(Ok(res))) => res,
                std::task::Poll::Ready(Ok(Err(e))) => match e {},
                std::task::Poll::Ready(Err(_elapsed)) => match this.refuser.take() {
                    Some(r) => r.respond(timeout_response()),
                    None => timeout_response().into_response(),
                },
            },
            ConnStateProj::Done { res } => res
                .take()
                .unwrap_or_else(|| too_many_headers().into_response()),
        };
        // The request stays in flight until its response body has been sent.
        let in_flight = this.in_flight.take();
        std::task::Poll::Ready(Ok(TrackedBody::wrap(res, in_flight)))
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted as in flight until it is dropped
    /// (sent, or the connection gone), so the idle deadline never cuts a long download;
    /// that tells the write deadline whether it waits for the peer; and that ends a body of
    /// known length still unsent at the response deadline.
    pub(crate) struct TrackedBody {
        #[pin]
        inner: Body,
        in_flight: Option<InFlight>,
        // Counted in `Activity::waiting`: handed over, not asked for again yet.
        waiting: bool,
        // Coarse-clock milliseconds by which a body of known length must be sent.
        deadline_ms: Option<u64>,
    }

    impl PinnedDrop for TrackedBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.waiting && let Some(f) = this.in_flight.as_ref() {
                f.0.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl TrackedBody {
    /// The response, its body tracked; it waits for the transport from now on.
    fn wrap(res: Response, in_flight: Option<InFlight>) -> Response<TrackedBody> {
        // Non-streaming: its length is known (a `Content-Length`, or an exact size).
        let known = res.headers().contains_key(header::CONTENT_LENGTH)
            || http_body::Body::size_hint(res.body()).exact().is_some();
        let deadline_ms = match &in_flight {
            Some(f) if known => Some(f.0.now_ms().saturating_add(f.0.response_ms)),
            _ => None,
        };
        if let Some(f) = &in_flight {
            f.0.waiting.fetch_add(1, Ordering::Relaxed);
        }
        let waiting = in_flight.is_some();
        res.map(|inner| TrackedBody {
            inner,
            in_flight,
            waiting,
            deadline_ms,
        })
    }
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(activity) = this.in_flight.as_ref().map(|f| &*f.0) else {
            return this.inner.poll_frame(cx);
        };
        activity.body_progress.fetch_add(1, Ordering::Relaxed);
        if this.deadline_ms.is_some_and(|d| activity.now_ms() > d) {
            if *this.waiting {
                *this.waiting = false;
                activity.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            tracing::debug!(target: "shieldwall::server", "response deadline passed; the body is cut");
            return std::task::Poll::Ready(Some(Err(axum::Error::new(ResponseDeadline))));
        }
        let r = this.inner.poll_frame(cx);
        // Data handed over: waiting for the transport again. Pending: waiting for the
        // producer (a slow stream is not the peer's fault). Finished: waiting for nothing.
        let wait = matches!(r, std::task::Poll::Ready(Some(Ok(_))));
        if wait != *this.waiting {
            *this.waiting = wait;
            if wait {
                activity.waiting.fetch_add(1, Ordering::Relaxed);
            } else {
                activity.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The error a body of known length ends with when the response deadline passes.
#[derive(Debug)]
struct ResponseDeadline;

impl std::fmt::Display for ResponseDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the response was not sent within the response deadline")
    }
}

impl std::error::Error for ResponseDeadline {}

fn too_many_headers() -> Problem {
    Problem::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header-fields-too-large",
        "Request Header Fields Too Large",
    )
    .with_detail("The request has too many header fields.")
}

fn head_too_large() -> Problem {
    Problem::new(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header-fields-too-large",
        "Request Header Fields Too Large",
    )
    .with_detail("The request head is too large.")
}

/// The size of a parsed request head as sent over HTTP/1.1: the request line and every
/// field as `name: value` with its line end, and the empty line; lengths only, one pass
/// over the header map. Whitespace around a value, which the parser drops, is not counted
/// (hyper's read buffer bounds it).
fn head_len<B>(req: &Request<B>) -> usize {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(1, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    // `METHOD SP target SP HTTP/1.1 CRLF`, then the fields, then CRLF.
    let line = req.method().as_str().len() + target + 12;
    req.headers().iter().fold(line + 2, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    })
}

fn timeout_response() -> Problem {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        "Request Timeout",
    )
    .with_detail("The request took too long.")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: Limits) -> SocketAddr {
        let router = Router::new()
            .route("/", axum::routing::get(|| async { "hi" }))
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut s = Server::plain(router);
        s.limits = limits;
        let bound = s.on(l, None).unwrap();
        let addr = bound.local_addr();
        tokio::spawn(bound.run_until(std::future::pending()));
        addr
    }

    async fn raw(addr: SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(req).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn only_hypers_own_bare_head_refusals_are_recognised() {
        let date = b"Tue, 01 Dec 2026 00:59:36 GMT".as_slice();
        let own = |status: &str| {
            format!(
                "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 00:59:36 GMT\r\n\r\n"
            )
        };
        assert_eq!(
            hyper_head_refusal(own("431 Request Header Fields Too Large").as_bytes()),
            Some((431, date))
        );
        assert_eq!(
            hyper_head_refusal(own("400 Bad Request").as_bytes()),
            Some((400, date))
        );
        assert_eq!(
            hyper_head_refusal(own("414 URI Too Long").as_bytes()),
            Some((414, date))
        );
        // Anything else — an app's response, a body, another header — is not hyper's.
        for other in [
            own("200 OK"),
            own("404 Not Found"),
            own("400 Bad Request") + "x",
            own("400 Bad Request").replace("content-length: 0", "content-length: 1"),
            own("400 Bad Request").replace("connection: close", "x-request-id: 1"),
            own("400 Bad Request").replace("\r\ndate: Tue, 01 Dec 2026 00:59:36 GMT", ""),
            own("400 Bad Request").replace("HTTP/1.1", "HTTP/1.0"),
            own("400 Bad Request").replace("\r\n\r\n", "\r\n"),
            "HTTP/1.1 400 Bad Request\r\n\r\n{}".to_string(),
        ] {
            assert_eq!(hyper_head_refusal(other.as_bytes()), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn serves_and_caps_headers() {
        let addr = start(Limits::default().max_headers(8)).await;
        let ok = raw(
            addr,
            b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let mut many = String::from("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
        for i in 0..20 {
            many.push_str(&format!("x-h{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let res = raw(addr, many.as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 431"), "{res}");
        let big = format!(
            "GET / HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        let res = raw(addr, big.as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 431"), "{res}");
    }

    /// The statuses of every response in `raw`, in order.
    fn statuses(raw: &str) -> Vec<&str> {
        raw.match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| raw.get(i + 9..i + 12))
            .collect()
    }

    #[tokio::test]
    async fn the_head_cap_holds_for_pipelined_requests() {
        // Found by attack: a head over the cap alone gets 431 (hyper's read buffer is
        // full), but pipelined behind a small request it arrived in a larger buffer and
        // was served. The cap is on the parsed head, whatever the buffering.
        let addr = start(Limits::default()).await;
        let small = "GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        let big = |value: usize| {
            format!(
                "GET / HTTP/1.1\r\nhost: x\r\nx-a: {}\r\nconnection: close\r\n\r\n",
                "a".repeat(value)
            )
        };
        for size in [17_000, 20_000, 30_000] {
            let res = raw(addr, big(size).as_bytes()).await;
            assert_eq!(statuses(&res), ["431"], "alone, {size}: {res}");
            let res = raw(addr, format!("{small}{}", big(size)).as_bytes()).await;
            assert_eq!(statuses(&res), ["200", "431"], "pipelined, {size}: {res}");
            assert!(res.contains("application/problem+json"), "{res}");
            assert!(res.contains("header-fields-too-large"), "{res}");
            assert!(res.contains("x-content-type-options: nosniff"), "{res}");
            // Three deep, and the refused one is the last answer: nothing after it.
            let res = raw(
                addr,
                format!("{small}{small}{}{small}", big(size)).as_bytes(),
            )
            .await;
            assert_eq!(
                statuses(&res),
                ["200", "200", "431"],
                "third, {size}: {res}"
            );
        }
        // Many fields, each small, adding up to more than the cap: refused too.
        let mut fields = String::from("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
        for i in 0..40 {
            fields.push_str(&format!("x-f{i}: {}\r\n", "b".repeat(500)));
        }
        fields.push_str("\r\n");
        let res = raw(addr, format!("{small}{fields}").as_bytes()).await;
        assert_eq!(statuses(&res), ["200", "431"], "{res}");
        // A head just under the cap is served, alone or pipelined.
        let res = raw(addr, format!("{small}{}", big(16_000)).as_bytes()).await;
        assert_eq!(statuses(&res), ["200", "200"], "{res}");
        // Keep-alive, not pipelined: the second head after the first answer.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(small.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        s.write_all(big(20_000).as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        let out = String::from_utf8_lossy(&out);
        assert_eq!(statuses(&out), ["431"], "{out}");
    }

    fn head_with(n: usize) -> String {
        let mut head = String::from("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n");
        for i in 0..n {
            head.push_str(&format!("x-h{i}: v\r\n"));
        }
        head.push_str("\r\n");
        head
    }

    #[tokio::test]
    async fn default_limits_cap_header_count() {
        let addr = start(Limits::default()).await;
        // 62 + host + connection = 64 fields: served; one more is refused.
        let ok = raw(addr, head_with(62).as_bytes()).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let res = raw(addr, head_with(63).as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 431"), "{res}");
        assert!(res.contains("application/problem+json"), "{res}");
        assert!(res.contains("x-content-type-options: nosniff"), "{res}");
        // Beyond hyper's own cap hyper refuses first.
        let res = raw(addr, head_with(120).as_bytes()).await;
        assert!(res.starts_with("HTTP/1.1 431"), "{res}");
        // A larger configured cap is honoured.
        let roomy = start(Limits::default().max_headers(200)).await;
        let ok = raw(roomy, head_with(150).as_bytes()).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }

    #[tokio::test]
    async fn a_long_download_outlives_the_head_deadline() {
        // The body takes four header timeouts to send; the connection must not be
        // mistaken for an idle one while it does.
        let router = Router::new().route(
            "/slow-body",
            axum::routing::get(|| async {
                let chunks = futures_util::stream::unfold(0u8, |i| async move {
                    if i == 12 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Ok::<_, Infallible>(bytes::Bytes::from_static(b"chunk\n")),
                        i + 1,
                    ))
                });
                Body::from_stream(chunks)
            }),
        );
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut server = Server::plain(router);
        // A producer slower than the write and response deadlines is not a slow reader,
        // and a body of unknown length (streaming) has no response deadline.
        server.limits = Limits::default()
            .header_read_timeout(Duration::from_millis(300))
            .write_timeout(Duration::from_millis(300))
            .response_timeout(Duration::from_millis(300));
        let bound = server.on(l, None).unwrap();
        let addr = bound.local_addr();
        tokio::spawn(bound.run_until(std::future::pending()));
        let res = raw(
            addr,
            b"GET /slow-body HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        assert_eq!(res.lines().filter(|l| *l == "chunk").count(), 12, "{res}");
    }

    #[tokio::test]
    async fn a_slow_first_head_is_cut_off_at_the_deadline() {
        let addr = start(Limits::default().header_read_timeout(Duration::from_secs(1))).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        let t = Instant::now();
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed before 5 s")
            .unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
        // The deadline plus one tick of the connection's clock (a quarter of it), not twice.
        assert!(
            t.elapsed() < Duration::from_millis(1800),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn slow_handlers_time_out() {
        let addr = start(Limits::default().request_timeout(Duration::from_millis(200))).await;
        let res = raw(addr, b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert!(res.starts_with("HTTP/1.1 408"), "{res}");
        assert!(res.contains("application/problem+json"), "{res}");
        assert!(res.contains("x-content-type-options: nosniff"), "{res}");
    }

    #[test]
    fn per_address_slots_count_ipv6_by_prefix_and_skip_trusted_proxies() {
        let proxies = TrustedProxies::parse(["2001:db8:ffff::/48", "10.0.0.1"]).unwrap();
        let slots = Arc::new(PeerSlots::new(2, 64, proxies));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Two addresses in one /64 are one client: the third connection is refused.
        let a = slots.admit(ip("2001:db8:1:2::1")).unwrap();
        let b = slots.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            slots.admit(ip("2001:db8:1:2:aaaa::3")).err(),
            Some(ip("2001:db8:1:2::"))
        );
        // Another /64 has its own share; IPv4 (and IPv4-mapped IPv6) per address.
        let _c = slots.admit(ip("2001:db8:1:3::1")).unwrap();
        let _d = slots.admit(ip("192.0.2.1")).unwrap();
        let _e = slots.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(slots.admit(ip("192.0.2.1")).err(), Some(ip("192.0.2.1")));
        // Trusted proxies are not counted at all.
        let proxied: Vec<_> = (0..10)
            .map(|_| slots.admit(ip("2001:db8:ffff:1::1")).unwrap())
            .chain((0..10).map(|_| slots.admit(ip("10.0.0.1")).unwrap()))
            .collect();
        assert_eq!(proxied.len(), 20);
        // A closed connection gives its place back, and an address with none is forgotten.
        drop(a);
        let _a = slots.admit(ip("2001:db8:1:2::7")).unwrap();
        drop(b);
        drop(_a);
        assert!(
            !slots
                .open
                .lock()
                .unwrap()
                .contains_key(&ip("2001:db8:1:2::"))
        );
    }

    #[test]
    fn the_per_address_default_is_64_or_a_quarter_of_the_pool() {
        assert_eq!(Limits::default().per_ip_cap(), 64);
        assert_eq!(Limits::default().max_connections(100).per_ip_cap(), 25);
        assert_eq!(Limits::default().max_connections(2).per_ip_cap(), 1);
        assert_eq!(
            Limits::default()
                .max_connections(100)
                .max_connections_per_ip(500)
                .per_ip_cap(),
            500
        );
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_wait() {
        // Both connections come from 127.0.0.1: a per-address cap of 2 lets the second
        // wait for the global slot instead of being refused.
        let addr = start(
            Limits::default()
                .max_connections(1)
                .max_connections_per_ip(2),
        )
        .await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = first.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // The first connection stays open (keep-alive): the second waits for its slot.
        let mut second = TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
        assert!(waited.is_err(), "served beyond the connection cap");
        drop(first);
        let n = tokio::time::timeout(Duration::from_secs(5), second.read(&mut buf))
            .await
            .expect("served once the first connection closed")
            .unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_slow_second_head_on_a_kept_alive_connection_is_cut_off() {
        let addr = start(Limits::default().header_read_timeout(Duration::from_millis(300))).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        // Half a head, then silence: closed after the header timeout, not the idle one.
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        let t = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed before 5 s")
            .unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn silent_connections_are_closed() {
        let addr = start(Limits::default().header_read_timeout(Duration::from_millis(300))).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let t = Instant::now();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed before 5 s")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
}

//! Connection slots under attack, over real TCP on 127.0.0.1 (attack round 1, finding 3):
//! one client address opening idle sockets must not hold every slot; trusted proxies,
//! which carry many clients, are not capped; and when the pool is nearly full, idle
//! connections give their slots up to waiting clients.
//!
//! Each client binds its own loopback source address (127.0.0.x) before it connects, so
//! the server sees distinct peers.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use shieldwall::client_ip::TrustedProxies;
use shieldwall::prelude::*;
use shieldwall::server::Limits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[secure(get "/health", public)]
async fn health() -> &'static str {
    "ok"
}

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// The address the tests trust as a proxy.
const PROXY: u8 = 4;

/// A server with `max` connection slots (and so the default per-address cap, a quarter of
/// them), trusting 127.0.0.4 as a proxy. The head deadline is long, so an idle socket holds
/// its slot for the whole test unless the server frees it for another reason.
async fn start(max: usize) -> SocketAddr {
    let server = Shieldwall::new()
        .trusted_proxies(TrustedProxies::parse([ip(PROXY).to_string()]).unwrap())
        .limits(
            Limits::default()
                .max_connections(max)
                .header_read_timeout(Duration::from_secs(60)),
        )
        .routes(routes![health])
        .server()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = server.on(listener, None).unwrap();
    let addr = bound.local_addr();
    tokio::spawn(bound.run_until(std::future::pending()));
    addr
}

/// A TCP connection to `addr` from `src`; `None` if the server reset it before `connect`
/// returned (a refusal can be that quick).
async fn open_from(src: IpAddr, addr: SocketAddr) -> Option<TcpStream> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(src, 0)).unwrap();
    match sock.connect(addr).await {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
        Err(e) => panic!("connect from {src}: {e}"),
    }
}

/// `n` idle connections from `src`: they never send a byte.
async fn idle_from(src: IpAddr, addr: SocketAddr, n: usize) -> Vec<Option<TcpStream>> {
    let mut socks = Vec::with_capacity(n);
    for _ in 0..n {
        socks.push(open_from(src, addr).await);
    }
    socks
}

/// Whether the server closed `s` (end of stream or reset) within `wait`.
async fn closed_within(s: &mut Option<TcpStream>, wait: Duration) -> bool {
    let Some(s) = s else { return true };
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!(
            "unexpected bytes on an idle socket: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => false,
    }
}

/// How many of `socks` the server has closed, each given `wait` (run at once).
async fn count_closed(socks: &mut [Option<TcpStream>], wait: Duration) -> usize {
    let checks = socks.iter_mut().map(|s| closed_within(s, wait));
    futures::future::join_all(checks)
        .await
        .into_iter()
        .filter(|c| *c)
        .count()
}

/// An honest client at `src`: `GET /health` on a fresh connection, within `deadline`.
/// Returns the status and how long it took, or `None` if it got no answer in time.
async fn honest_health(
    src: IpAddr,
    addr: SocketAddr,
    deadline: Duration,
) -> Option<(u16, Duration)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .local_address(src)
        .timeout(deadline)
        .build()
        .unwrap();
    let t = Instant::now();
    let res = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .ok()?;
    Some((res.status().as_u16(), t.elapsed()))
}

/// Keep-alive connections from `src`, each asking for `/health` once and staying open;
/// returns how many were answered 200 (the others were closed unanswered), and the
/// connections, still open.
async fn served_from(src: IpAddr, addr: SocketAddr, n: usize) -> (usize, Vec<Option<TcpStream>>) {
    let mut socks = idle_from(src, addr, n).await;
    let mut served = 0;
    for s in socks.iter_mut().flatten() {
        let _ = s
            .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        let mut buf = [0u8; 512];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await
            && buf[..n].starts_with(b"HTTP/1.1 200")
        {
            served += 1;
        }
    }
    (served, socks)
}

#[tokio::test]
async fn one_address_cannot_hold_every_connection_slot() {
    logs();
    // 32 slots; the default per-address cap is a quarter of them.
    let addr = start(32).await;
    let attacker = ip(3);
    // More idle sockets than the whole pool, from one address.
    let mut socks = idle_from(attacker, addr, 40).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // An honest client from another address is served at once, not after the attacker's
    // sockets time out (60 s here).
    let got = honest_health(ip(2), addr, Duration::from_secs(5)).await;
    assert!(
        got.is_some_and(|(status, took)| status == 200 && took < Duration::from_secs(3)),
        "an honest client was kept out by one address's idle sockets: {got:?}"
    );

    // The attacker keeps its share (8) and no more: the rest were closed at once.
    let closed = count_closed(&mut socks, Duration::from_secs(1)).await;
    assert_eq!(
        closed, 32,
        "sockets over the per-address cap must be closed"
    );

    // Refusals are logged, but not one line per connection.
    let lines = logged()
        .lines()
        .filter(|l| l.contains("max_connections_per_ip") && l.contains("client=127.0.0.3"))
        .count();
    assert_eq!(
        lines,
        1,
        "32 refusals in a burst are logged once:\n{}",
        logged()
    );

    // Its slots come back when it closes: the same address may connect again.
    drop(socks);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (served, _again) = served_from(attacker, addr, 8).await;
    assert_eq!(served, 8);
}

#[tokio::test]
async fn a_trusted_proxy_is_not_capped() {
    let addr = start(32).await;
    // A trusted proxy carries many clients: 20 connections open at once, all served.
    let (served, _proxy_conns) = served_from(ip(PROXY), addr, 20).await;
    assert_eq!(served, 20, "a trusted proxy was capped like one client");
    // The same from an untrusted address: its share (8), the rest closed unanswered.
    let (served, _client_conns) = served_from(ip(5), addr, 20).await;
    assert_eq!(served, 8, "an untrusted address was not capped");
}

#[tokio::test]
async fn idle_connections_give_way_when_the_pool_is_nearly_full() {
    // 16 slots, a per-address cap of 4: four addresses, each within its cap, fill the pool
    // (two with sockets that never send a byte, two with kept-alive connections that made
    // one request). With a 60 s head deadline, only the server freeing idle slots under
    // pressure lets an honest client in.
    let addr = start(16).await;
    let _a = idle_from(ip(10), addr, 4).await;
    let _b = idle_from(ip(11), addr, 4).await;
    let (served_c, _c) = served_from(ip(12), addr, 4).await;
    let (served_d, _d) = served_from(ip(13), addr, 4).await;
    assert_eq!(served_c + served_d, 8);
    let got = honest_health(ip(2), addr, Duration::from_secs(8)).await;
    assert!(
        got.is_some_and(|(status, took)| status == 200 && took < Duration::from_secs(5)),
        "idle connections kept every slot from an honest client: {got:?}"
    );
}

/// A plain HTTP/2 connection from `src` that makes one request (`GET /health`), then
/// reads everything the server sends and never writes again: it acknowledges neither the
/// server's SETTINGS nor its PINGs nor a GOAWAY. Returns the reader task, which ends when
/// the server closes the connection.
async fn silent_h2_from(src: IpAddr, addr: SocketAddr) -> tokio::task::JoinHandle<()> {
    let mut s = open_from(src, addr).await.expect("connected");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // SETTINGS, empty.
    out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    // HEADERS on stream 1, END_STREAM | END_HEADERS: :method GET, :scheme http (static
    // table), :path /health and :authority localhost (literal, indexed names).
    let mut block = vec![0x82, 0x86, 0x44, 7];
    block.extend_from_slice(b"/health");
    block.extend_from_slice(&[0x41, 9]);
    block.extend_from_slice(b"localhost");
    let len = block.len();
    out.extend_from_slice(&[0, 0, len as u8, 1, 0x05, 0, 0, 0, 1]);
    out.extend_from_slice(&block);
    s.write_all(&out).await.unwrap();
    // Wait for the answer (a HEADERS frame on stream 1), then keep reading, silently.
    let answered = |seen: &[u8]| {
        let mut at = 0;
        while seen.len() >= at + 9 {
            let f = &seen[at..at + 9];
            let len = usize::from(f[0]) << 16 | usize::from(f[1]) << 8 | usize::from(f[2]);
            let stream = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) & 0x7fff_ffff;
            if f[3] == 1 && stream == 1 {
                return true;
            }
            at += 9 + len;
        }
        false
    };
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(5), async {
        while !answered(&seen) {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => panic!("closed before answering"),
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("an answer to the request");
    tokio::spawn(async move {
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
}

/// Attack round 3, F2: under pressure, an idle HTTP/2 connection gives its slot up within
/// about a second even when its peer never acknowledges the GOAWAY's PING (hyper's
/// graceful shutdown waits for that acknowledgement).
#[tokio::test]
async fn idle_http2_connections_that_never_acknowledge_give_way_under_pressure() {
    let server = Shieldwall::new()
        .limits(
            Limits::default()
                .max_connections(8)
                .max_connections_per_ip(2)
                .header_read_timeout(Duration::from_secs(60))
                .idle_timeout(Duration::from_secs(60))
                .h2_keep_alive_interval(Duration::from_secs(60))
                .h2_keep_alive_timeout(Duration::from_secs(60)),
        )
        .routes(routes![health])
        .server()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bound = server.on(listener, None).unwrap();
    let addr = bound.local_addr();
    tokio::spawn(bound.run_until(std::future::pending()));
    let mut silent = Vec::new();
    for i in 0..8 {
        silent.push(silent_h2_from(ip(20 + i / 2), addr).await);
    }
    let got = honest_health(ip(2), addr, Duration::from_secs(8)).await;
    assert!(
        got.is_some_and(|(status, took)| status == 200 && took < Duration::from_secs(5)),
        "idle HTTP/2 connections that never acknowledge kept every slot: {got:?}"
    );
    // Once enough slots are free the pressure is over, and the rest may stay open.
    let t = Instant::now();
    while !silent.iter().any(|reader| reader.is_finished()) {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no silent HTTP/2 connection was closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_quickstart_caps_connections_per_address_from_its_environment() {
    // SHIELDWALL_MAX_CONNECTIONS_PER_IP, and the trusted proxies the builder read from
    // SHIELDWALL_TRUSTED_PROXIES, reach the server the example runs.
    let qs = start_quickstart(&[
        ("SHIELDWALL_MAX_CONNECTIONS_PER_IP", "4"),
        ("SHIELDWALL_TRUSTED_PROXIES", "127.0.0.8"),
    ]);
    let addr: SocketAddr = qs.base.trim_start_matches("http://").parse().unwrap();
    let mut client = idle_from(ip(7), addr, 10).await;
    assert_eq!(count_closed(&mut client, Duration::from_secs(1)).await, 6);
    let mut proxy = idle_from(ip(8), addr, 10).await;
    assert_eq!(count_closed(&mut proxy, Duration::from_secs(1)).await, 0);
}

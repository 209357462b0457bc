#!/usr/bin/env python3
"""Soak load generator and judge for the quickstart (run by bench/soak.sh).

Drives a running quickstart on 127.0.0.1 with a fixed mix of traffic for DURATION
seconds, samples the server process every INTERVAL seconds, writes the series to
PREFIX.csv, a summary to PREFIX.json and a plot to PREFIX.png, then judges the run and
exits non-zero when a check fails. Python 3 standard library only (asyncio, raw HTTP/1.1
over sockets); matplotlib for the plot, optional.

The mix (rates per second, all on 127.0.0.1, one address):
  keepalive   6 kept-alive connections x 15/s  GET /me with the quickstart's USER/ADMIN
              tokens (token cache hits)                                     -> 200
  fresh       1 kept-alive connection  x 40/s  GET /me, a freshly minted token each time
              (a new subject and jti: signature checked, token cache churns) -> 200
  newconn     2 workers x 10/s: connect, one GET /me, close (half say
              `Connection: close`)                                          -> 200
  invalid     1 kept-alive connection x 20/s: no token, expired, bad signature,
              garbled, alg none, wrong audience, future iat, refresh typ    -> 401
              two Authorization headers, a non-token68 token                -> 400
  validation  1 kept-alive connection x 4/s: POST /users failing validation, by 64
              admin subjects in turn (each under its 5/min)                 -> 422
              (every 8th: unparseable JSON                                  -> 400)
  flood       1 kept-alive connection x 10/s: POST /users by one admin subject, far over
              its 5/min                                                     -> 201 / 429
  slow_head   a new one every 1 s: half a head, then a byte a second: the server cuts
              it at header_read_timeout (10 s)                   -> closed (or 408)
  slow_body   a new one every 2 s: POST /users declaring 64 bytes, sending a byte a
              second: cut at SHIELDWALL_REQUEST_TIMEOUT_SECS                 -> 408
About 185 requests a second; at most ~30 connections are open at once (the per-address
cap is 64), 12-13 of them slow clients.

"Valid" latency (p50/p99 per window) is from the first byte written (for newconn: from
connect) to the last byte of the response read, for the requests that expect 200.
"""

import argparse
import asyncio
import base64
import collections
import csv
import hashlib
import hmac
import json
import math
import os
import random
import signal
import statistics
import sys
import time

ISSUER = "shieldwall-quickstart"
AUDIENCE = "quickstart-api"

HEADER_READ_TIMEOUT = 10.0  # the server's default (runtime/src/server.rs)
SLACK = 3.0  # a cut may come this much after its deadline (the server checks about once a second)

# Thresholds. Justified in the README's Soak section from the measured runs.
WARMUP = 0.20  # first 20 % of the run: RSS rises as pools, caches and the allocator settle
RSS_GROWTH_FRACTION = 0.10  # late vs early median RSS: at most 10 % ...
RSS_GROWTH_FLOOR_MIB = 8.0  # ... or 8 MiB, whichever is larger
RSS_SLOPE_MAX_MIB_PER_HOUR = 16.0  # runs >= 300 s: slope over the second half
REDIS_KEYS_MAX = 80  # about 55 alive at once (see judge); 97 if keys never expired
FD_MARGIN = 4  # max fds in the last quarter <= max in the first quarter after warm-up + 4
FD_DRAIN_MARGIN = 2  # once the load stops and its sockets close: fds <= the idle count + 2
P99_MAX_MS = {"debug": 250.0, "release": 100.0}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(secret, claims, alg="HS256", typ="at+jwt", key=None):
    header = {"alg": alg, "typ": typ}
    signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    if alg == "none":
        return signing.decode() + "."
    sig = hmac.new(key if key is not None else secret, signing, hashlib.sha256).digest()
    return signing.decode() + "." + b64url(sig)


class Minter:
    def __init__(self, secret):
        self.secret = secret
        self.n = 0

    def claims(self, sub, roles, **over):
        now = int(time.time())
        self.n += 1
        c = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": sub,
            "roles": roles,
            "scope": "users:read",
            "iat": now,
            "exp": now + 3600,
            "jti": "soak-%d" % self.n,
        }
        c.update(over)
        return c

    def token(self, sub, roles, **over):
        return jwt(self.secret, self.claims(sub, roles, **over))


# ---------------------------------------------------------------------------------------
# HTTP/1.1 by hand: exact control over what goes on the wire, no dependency.


class Closed(Exception):
    """The server closed the connection before a whole response arrived."""


async def read_response(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise Closed("closed after %d bytes" % len(e.partial)) from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = b""
    try:
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
    except asyncio.IncompleteReadError:
        raise Closed("closed inside a body") from None
    return status, headers, body


def request_bytes(method, path, headers=(), body=None, close=False):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"]
    lines += ["%s: %s" % kv for kv in headers]
    if body is not None:
        lines += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
    if close:
        lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return raw + (body or b"")


class Conn:
    """One kept-alive connection, reopened when the server closes it."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def send(self, raw, timeout=10.0):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(raw)
            status, headers, body = await asyncio.wait_for(read_response(self.reader), timeout)
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ---------------------------------------------------------------------------------------
# Statistics


class Stats:
    def __init__(self):
        self.total = collections.defaultdict(collections.Counter)  # kind -> status -> n
        self.window_status = collections.Counter()
        self.window_lat = []
        self.window_errors = 0
        self.unexpected = collections.Counter()  # "kind status" -> n
        self.errors = collections.Counter()  # "kind error" -> n
        self.slow = collections.defaultdict(list)  # kind -> [(seconds to cut, outcome)]
        self.slow_open = 0
        self.rate_limit_headers_missing = 0

    def record(self, kind, status, expected, latency=None):
        self.total[kind][status] += 1
        self.window_status[status] += 1
        if status not in expected:
            self.unexpected["%s %s" % (kind, status)] += 1
        if latency is not None and status == 200:
            self.window_lat.append(latency)

    def error(self, kind, exc):
        self.errors["%s %s" % (kind, type(exc).__name__)] += 1
        self.total[kind]["error"] += 1
        self.window_errors += 1

    def take_window(self):
        lat, st, err = self.window_lat, self.window_status, self.window_errors
        self.window_lat, self.window_status, self.window_errors = [], collections.Counter(), 0
        return lat, st, err


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))
    return s[k]


# ---------------------------------------------------------------------------------------
# Traffic


class Soak:
    def __init__(self, args):
        self.args = args
        self.host, self.port = args.host, args.port
        self.mint = Minter(args.secret.encode())
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.user_tokens = [args.user_token, args.admin_token]

    async def paced(self, rate, body):
        """Call body() `rate` times a second until stopped; never bursts to catch up."""
        period = 1.0 / rate
        nxt = time.monotonic() + random.random() * period
        while not self.stop.is_set():
            delay = nxt - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self.stop.wait(), delay)
                    return
                except asyncio.TimeoutError:
                    pass
            nxt = max(nxt + period, time.monotonic())
            await body()

    async def one(self, conn, kind, raw, expected, valid=False):
        t0 = time.perf_counter()
        try:
            status, headers, _ = await conn.send(raw)
        except (OSError, Closed, asyncio.TimeoutError, ValueError) as e:
            self.stats.error(kind, e)
            return None
        self.stats.record(kind, status, expected, (time.perf_counter() - t0) if valid else None)
        return status, headers

    async def keepalive(self, i):
        conn = Conn(self.host, self.port)
        token = self.user_tokens[i % 2]
        raw = request_bytes("GET", "/me", [("Authorization", "Bearer " + token)])
        await self.paced(15, lambda: self.one(conn, "keepalive", raw, {200}, valid=True))
        conn.close()

    async def fresh(self):
        conn = Conn(self.host, self.port)
        n = [0]

        async def body():
            n[0] += 1
            tok = self.mint.token("reader-%d" % (n[0] % 100000), ["user"])
            raw = request_bytes("GET", "/me", [("Authorization", "Bearer " + tok)])
            await self.one(conn, "fresh", raw, {200}, valid=True)

        await self.paced(40, body)
        conn.close()

    async def newconn(self, i):
        token = self.user_tokens[i % 2]

        async def body():
            close = random.random() < 0.5
            raw = request_bytes("GET", "/me", [("Authorization", "Bearer " + token)], close=close)
            t0 = time.perf_counter()
            writer = None
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
                writer.write(raw)
                status, _, _ = await asyncio.wait_for(read_response(reader), 10)
            except (OSError, Closed, asyncio.TimeoutError, ValueError) as e:
                self.stats.error("newconn", e)
                return
            finally:
                if writer is not None:
                    writer.close()
            self.stats.record("newconn", status, {200}, time.perf_counter() - t0)

        await self.paced(10, body)

    def invalid_requests(self):
        m, secret = self.mint, self.mint.secret
        now = int(time.time())
        bad = [
            ("no token", []),
            ("expired", [("Authorization", "Bearer " + m.token("bob", ["user"], iat=now - 7200, exp=now - 3600))]),
            (
                "bad signature",
                [("Authorization", "Bearer " + jwt(secret, m.claims("bob", ["user"]), key=b"x" * 48))],
            ),
            ("garbled", [("Authorization", "Bearer " + b64url(os.urandom(60)) + "." + b64url(os.urandom(20)))]),
            ("alg none", [("Authorization", "Bearer " + jwt(secret, m.claims("alice", ["admin"]), alg="none"))]),
            ("wrong audience", [("Authorization", "Bearer " + m.token("bob", ["user"], aud="another-api"))]),
            ("future iat", [("Authorization", "Bearer " + m.token("bob", ["user"], iat=now + 600))]),
            ("refresh typ", [("Authorization", "Bearer " + jwt(secret, m.claims("bob", ["user"]), typ="JWT+refresh"))]),
        ]
        malformed = [
            ("two headers", [("Authorization", "Bearer " + self.user_tokens[0])] * 2),
            ("not token68", [("Authorization", "Bearer a b{c}")]),
        ]
        return bad, malformed

    async def invalid(self):
        conn = Conn(self.host, self.port)
        n = [0]

        async def body():
            n[0] += 1
            if n[0] % 200 == 1:  # re-mint now and then: "expired" and "future" stay so
                self.bad, self.malformed = self.invalid_requests()
            if n[0] % 10 == 0:
                _, headers = self.malformed[(n[0] // 10) % len(self.malformed)]
                await self.one(conn, "malformed", request_bytes("GET", "/me", headers), {400})
            else:
                _, headers = self.bad[n[0] % len(self.bad)]
                await self.one(conn, "invalid", request_bytes("GET", "/me", headers), {401})

        await self.paced(20, body)
        conn.close()

    async def validation(self):
        conn = Conn(self.host, self.port)
        tokens = [self.mint.token("validator-%d" % i, ["admin"]) for i in range(64)]
        bodies = [
            b'{"username":"","email":"nope","age":200}',
            b'{"username":"carol","email":"not-an-email","age":30}',
            b'{"username":"' + b"x" * 80 + b'","email":"c@example.com","age":30}',
            b'{"username":"carol","email":"c@example.com","age":30,"admin":true}',
            b'{"username":"carol","email":"c@example.com"}',
            b'{"username":7,"email":"c@example.com","age":30}',
            b'{"username":"carol","email":"c@example.com","age":-1}',
        ]
        n = [0]

        async def body():
            n[0] += 1
            auth = [("Authorization", "Bearer " + tokens[n[0] % len(tokens)])]
            if n[0] % 8 == 0:
                raw = request_bytes("POST", "/users", auth, b'{"username": "carol", ')
                await self.one(conn, "bad_json", raw, {400})
            else:
                raw = request_bytes("POST", "/users", auth, bodies[n[0] % len(bodies)])
                await self.one(conn, "validation", raw, {422})

        await self.paced(4, body)
        conn.close()

    async def flood(self):
        conn = Conn(self.host, self.port)
        token = self.mint.token("flooder", ["admin"], exp=int(time.time()) + 86400)
        raw = request_bytes(
            "POST",
            "/users",
            [("Authorization", "Bearer " + token)],
            b'{"username":"flood","email":"flood@example.com","age":30}',
        )

        async def body():
            r = await self.one(conn, "flood", raw, {201, 429})
            if r and r[0] == 429 and not ("retry-after" in r[1] and "ratelimit" in r[1]):
                self.stats.rate_limit_headers_missing += 1

        await self.paced(10, body)
        conn.close()

    async def slow_one(self, kind, first, trickle, deadline):
        """Send `first`, then a byte of `trickle` a second, until the server answers or closes."""
        self.stats.slow_open += 1
        t0 = time.monotonic()
        writer = None
        outcome = None
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            writer.write(first)
            resp = asyncio.ensure_future(read_response(reader))
            i = 0
            while not resp.done() and time.monotonic() - t0 < deadline + 2 * SLACK:
                done, _ = await asyncio.wait({resp}, timeout=1.0)
                if done or self.stop.is_set() and time.monotonic() - t0 > deadline + 2 * SLACK:
                    break
                try:
                    writer.write(trickle[i % len(trickle) : i % len(trickle) + 1])
                    await writer.drain()
                except OSError:
                    break
                i += 1
            if not resp.done():
                try:
                    await asyncio.wait_for(resp, 1.0)
                except asyncio.TimeoutError:
                    pass
            if resp.done():
                try:
                    status, _, _ = resp.result()
                    outcome = status
                except (Closed, OSError):
                    outcome = "closed"
            else:
                resp.cancel()
                outcome = "open"
        except OSError as e:
            self.stats.error(kind, e)
            return
        finally:
            self.stats.slow_open -= 1
            if writer is not None:
                writer.close()
        took = time.monotonic() - t0
        self.stats.slow[kind].append((round(took, 2), outcome))
        self.stats.total[kind][outcome] += 1
        if isinstance(outcome, int):
            self.stats.window_status[outcome] += 1

    async def launcher(self, every, make):
        tasks = set()
        await self.paced(1.0 / every, lambda: self._spawn(tasks, make()))
        if tasks:
            await asyncio.wait(tasks)

    async def _spawn(self, tasks, coro):
        t = asyncio.ensure_future(coro)
        tasks.add(t)
        t.add_done_callback(tasks.discard)

    def slow_head(self):
        first = b"GET /me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        return self.slow_one("slow_head", first, self.user_tokens[0].encode(), HEADER_READ_TIMEOUT)

    def slow_body(self):
        self.slow_n = getattr(self, "slow_n", 0) + 1
        if not hasattr(self, "slow_tokens"):
            self.slow_tokens = [self.mint.token("slow-%d" % i, ["admin"], exp=int(time.time()) + 86400) for i in range(32)]
        token = self.slow_tokens[self.slow_n % 32]
        first = (
            "POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: 64\r\n\r\n{" % token
        ).encode()
        return self.slow_one("slow_body", first, b'"username":"slowpoke"', self.args.request_timeout)

    # -----------------------------------------------------------------------------------
    # Sampling

    def proc_sample(self):
        pid = self.args.pid
        rss = threads = None
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024.0
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return rss, fds, threads, cpu

    async def redis_keys(self):
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.args.redis_port), 2)
            w.write(b"*1\r\n$6\r\nDBSIZE\r\n")
            line = await asyncio.wait_for(r.readline(), 2)
            w.close()
            return int(line[1:])
        except (OSError, ValueError, asyncio.TimeoutError):
            return -1

    async def sampler(self, rows, t_start):
        interval = self.args.interval
        _, _, _, cpu_prev = self.proc_sample()
        t_prev = time.monotonic()
        nxt = t_prev + interval
        while not self.stop.is_set():
            try:
                await asyncio.wait_for(self.stop.wait(), max(0.0, nxt - time.monotonic()))
                break
            except asyncio.TimeoutError:
                pass
            nxt += interval
            now = time.monotonic()
            rss, fds, threads, cpu = self.proc_sample()
            lat, st, err = self.stats.take_window()
            lat_ms = [x * 1000 for x in lat]
            n = sum(st.values())
            rows.append(
                {
                    "t_s": round(now - t_start, 2),
                    "rss_mib": round(rss, 2),
                    "fds": fds,
                    "threads": threads,
                    "cpu_pct": round(100 * (cpu - cpu_prev) / (now - t_prev), 1),
                    "valid_n": len(lat_ms),
                    "p50_ms": round(percentile(lat_ms, 0.50), 2),
                    "p99_ms": round(percentile(lat_ms, 0.99), 2),
                    "max_ms": round(max(lat_ms), 2) if lat_ms else float("nan"),
                    "req_per_s": round(n / (now - t_prev), 1),
                    "s200": st[200],
                    "s201": st[201],
                    "s400": st[400],
                    "s401": st[401],
                    "s408": st[408],
                    "s422": st[422],
                    "s429": st[429],
                    "s5xx": sum(v for k, v in st.items() if 500 <= k < 600),
                    "s_other": sum(v for k, v in st.items() if k not in (200, 201, 400, 401, 408, 422, 429) and not 500 <= k < 600),
                    "errors": err,
                    "slow_open": self.stats.slow_open,
                    "redis_keys": await self.redis_keys(),
                }
            )
            cpu_prev, t_prev = cpu, now
            if self.args.verbose:
                r = rows[-1]
                print(
                    "t=%6.1fs rss=%6.1f MiB fds=%3d p50=%6.2f p99=%6.2f ms %5.0f req/s cpu=%5.1f%% errors=%d"
                    % (r["t_s"], r["rss_mib"], r["fds"], r["p50_ms"], r["p99_ms"], r["req_per_s"], r["cpu_pct"], err),
                    flush=True,
                )

    async def health(self):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 5)
            writer.write(request_bytes("GET", "/health", close=True))
            status, _, _ = await asyncio.wait_for(read_response(reader), 5)
            writer.close()
            return status
        except (OSError, Closed, asyncio.TimeoutError, ValueError) as e:
            return "error: %r" % (e,)

    async def run(self):
        args = self.args
        self.bad, self.malformed = self.invalid_requests()
        _, fds_idle, _, _ = self.proc_sample()
        rows = []
        t_start = time.monotonic()
        cpu0 = os.times()
        workers = [self.keepalive(i) for i in range(6)]
        workers += [self.fresh(), self.newconn(0), self.newconn(1), self.invalid(), self.validation(), self.flood()]
        workers += [self.launcher(1.0, self.slow_head), self.launcher(2.0, self.slow_body)]
        tasks = [asyncio.ensure_future(w) for w in workers]
        sampler = asyncio.ensure_future(self.sampler(rows, t_start))
        for t in tasks + [sampler]:
            t.add_done_callback(report_crash)
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
        await asyncio.sleep(args.duration)
        self.stop.set()
        # Workers stop; slow clients still open are let run to their cut (at most the
        # longest deadline plus slack), so every one of them is judged.
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), max(HEADER_READ_TIMEOUT, args.request_timeout) + 4 * SLACK)
        except asyncio.TimeoutError:
            dump_tasks()
            raise SystemExit("soak.py: a worker did not stop (tasks above)") from None
        try:
            await asyncio.wait_for(sampler, 3 * args.interval + 5)
        except asyncio.TimeoutError:
            dump_tasks()
            raise SystemExit("soak.py: the sampler is stuck (tasks above)") from None
        elapsed = time.monotonic() - t_start
        cpu1 = os.times()
        # Every client socket is closed now: the server's descriptors must come back down.
        fds_after = None
        for _ in range(int((HEADER_READ_TIMEOUT + SLACK) * 2)):
            _, fds_after, _, _ = self.proc_sample()
            if fds_after <= fds_idle + FD_DRAIN_MARGIN:
                break
            await asyncio.sleep(0.5)
        health = await self.health()
        alive = os.path.exists("/proc/%d" % args.pid)
        summary = {
            "duration_s": args.duration,
            "elapsed_s": round(elapsed, 1),
            "build": args.build,
            "interval_s": args.interval,
            "request_timeout_s": args.request_timeout,
            "fds_idle": fds_idle,
            "fds_after": fds_after,
            "health_after": health,
            "alive_after": alive,
            "client_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 1),
            "totals": {k: {str(s): n for s, n in sorted(v.items(), key=str)} for k, v in sorted(self.stats.total.items())},
            "unexpected": dict(self.stats.unexpected),
            "errors": dict(self.stats.errors),
            "rate_limit_headers_missing": self.stats.rate_limit_headers_missing,
            "slow": {k: summarize_slow(v) for k, v in self.stats.slow.items()},
        }
        return rows, summary


def report_crash(task):
    """A worker that dies is a bug of this script: say so at once, not at the end."""
    if not task.cancelled() and task.exception() is not None:
        import traceback

        traceback.print_exception(task.exception(), file=sys.stderr)


def dump_tasks():
    """kill -USR1 <pid>: where every task is waiting (a stuck run explains itself)."""
    for t in asyncio.all_tasks():
        t.print_stack(limit=4, file=sys.stderr)
    sys.stderr.flush()


def summarize_slow(items):
    took = [t for t, _ in items]
    return {
        "count": len(items),
        "outcomes": dict(collections.Counter(str(o) for _, o in items)),
        "cut_after_s_min": min(took) if took else None,
        "cut_after_s_max": max(took) if took else None,
    }


# ---------------------------------------------------------------------------------------
# Judging: pure functions of the series and the summary, so a saved run can be judged again
# (`soak.py --judge PREFIX`).


def window(rows, lo, hi):
    t_end = rows[-1]["t_s"]
    return [r for r in rows if lo * t_end <= r["t_s"] <= hi * t_end]


def judge(rows, summary, server_log=None):
    checks = []

    def check(name, ok, detail):
        checks.append((name, bool(ok), detail))

    build = summary["build"]
    check("samples", len(rows) >= 10, "%d samples" % len(rows))
    if len(rows) < 10:
        return checks
    early = window(rows, WARMUP, WARMUP + 0.25)
    late = window(rows, 0.75, 1.0)
    after = window(rows, WARMUP, 1.0)

    rss_early = statistics.median(r["rss_mib"] for r in early)
    rss_late = statistics.median(r["rss_mib"] for r in late)
    bound = max(RSS_GROWTH_FRACTION * rss_early, RSS_GROWTH_FLOOR_MIB)
    check(
        "RSS flat",
        rss_late - rss_early <= bound,
        "median %.1f MiB after warm-up (20-45 %%) -> %.1f MiB in the last quarter: %+.1f MiB (bound %.1f MiB)"
        % (rss_early, rss_late, rss_late - rss_early, bound),
    )
    # A slow steady leak shows as a slope even when it is below that bound: the least-squares
    # slope over the second half of the run. Judged on runs of 300 s or more, whose warm-up
    # also fills the bounded caches (the token cache holds 4096 tokens; the mix mints 40 new
    # ones a second); in a shorter run they are still filling and the slope says so.
    second = window(rows, 0.5, 1.0)
    slope = linear_slope([r["t_s"] for r in second], [r["rss_mib"] for r in second]) * 3600
    if summary["elapsed_s"] >= 300:
        check(
            "RSS trend",
            slope <= RSS_SLOPE_MAX_MIB_PER_HOUR,
            "least-squares slope over the second half %+.1f MiB/hour (bound %.0f MiB/hour)"
            % (slope, RSS_SLOPE_MAX_MIB_PER_HOUR),
        )
    else:
        check("RSS trend", True, "%+.1f MiB/hour over the second half; not judged under 300 s" % slope)

    # The mix spends rate budget under 97 subjects: 64 validators (each one request every
    # 16 s), 32 slow-body admins (one every 64 s) and the flooder. A key lives until its
    # budget is whole again (12 s after one request of 5/min), so about 48 + 6 + 1 = 55 are
    # alive at once; keys that never expired would climb to 97.
    keys = [r["redis_keys"] for r in after]
    check(
        "Redis keys expire",
        min(keys) > 0 and max(keys) <= REDIS_KEYS_MAX,
        "rate-limit keys in Redis %d..%d after warm-up (bound %d; 97 if none expired)" % (min(keys), max(keys), REDIS_KEYS_MAX),
    )

    fd_early = max(r["fds"] for r in early)
    fd_late = max(r["fds"] for r in late)
    check(
        "fds bounded",
        fd_late <= fd_early + FD_MARGIN,
        "max %d after warm-up, max %d in the last quarter (bound %d)" % (fd_early, fd_late, fd_early + FD_MARGIN),
    )
    fa, fi = summary["fds_after"], summary["fds_idle"]
    check(
        "fds drain",
        fa is not None and fa <= fi + FD_DRAIN_MARGIN,
        "%s open once the load's sockets closed, %d before the load (bound %d)" % (fa, fi, fi + FD_DRAIN_MARGIN),
    )

    p99max = P99_MAX_MS[build]
    p99s = [r["p99_ms"] for r in rows if r["valid_n"] > 0]
    worst = max(p99s) if p99s else float("nan")
    over = [r["t_s"] for r in rows if r["valid_n"] > 0 and r["p99_ms"] > p99max]
    check(
        "p99 bounded",
        p99s and not over,
        "worst window p99 %.1f ms, median window p99 %.1f ms (bound %.0f ms, %s build)%s"
        % (worst, statistics.median(p99s), p99max, build, ("; over at t=%s" % over[:10]) if over else ""),
    )
    empty = [r["t_s"] for r in rows if r["valid_n"] == 0]
    check("valid requests every window", not empty, "windows with none: %s" % (empty[:10] or "none"))

    totals = summary["totals"]
    five = {k: v for k, v in totals.items() for s, n in v.items() if s.isdigit() and int(s) >= 500}
    check("no 5xx", not five, "none" if not five else json.dumps(five))
    check(
        "expected statuses",
        not summary["unexpected"],
        "every request got its kind's status" if not summary["unexpected"] else json.dumps(summary["unexpected"]),
    )
    check(
        "no transport errors",
        not summary["errors"],
        "no reset, timeout or early close outside the slow clients" if not summary["errors"] else json.dumps(summary["errors"]),
    )
    seen = collections.Counter()
    for v in totals.values():
        for s, n in v.items():
            seen[s] += n
    want = ["200", "201", "400", "401", "408", "422", "429"]
    check("mix produced", all(seen[s] > 0 for s in want), ", ".join("%s: %d" % (s, seen[s]) for s in want))

    # Rate limit held across the run: the flooding admin gets 5 at once, then one per 12 s.
    flood_201 = totals.get("flood", {}).get("201", 0)
    allowed = 5 + math.ceil(summary["elapsed_s"] / 12.0)
    check(
        "flood limited",
        0 < flood_201 <= allowed and summary["rate_limit_headers_missing"] == 0,
        "%d of %d admitted (5/min allows at most %d), every 429 with Retry-After and RateLimit"
        % (flood_201, sum(totals.get("flood", {}).values()), allowed),
    )

    for kind, deadline in (("slow_head", HEADER_READ_TIMEOUT), ("slow_body", summary["request_timeout_s"])):
        s = summary["slow"].get(kind, {"count": 0, "outcomes": {}, "cut_after_s_max": None, "cut_after_s_min": None})
        ok_outcomes = {"408", "closed"} if kind == "slow_head" else {"408"}
        bad = {o: n for o, n in s["outcomes"].items() if o not in ok_outcomes}
        hi = s["cut_after_s_max"]
        lo = s["cut_after_s_min"]
        check(
            kind + " cut",
            s["count"] > 0 and not bad and hi is not None and deadline - 1 <= lo and hi <= deadline + SLACK,
            "%d clients, outcomes %s, cut after %s..%s s (deadline %.0f s, bound %.0f s)"
            % (s["count"], json.dumps(s["outcomes"]), lo, hi, deadline, deadline + SLACK),
        )

    check(
        "alive at the end",
        summary["alive_after"] and summary["health_after"] == 200,
        "process running, GET /health -> %s" % summary["health_after"],
    )
    if server_log is not None:
        try:
            with open(server_log, errors="replace") as f:
                panics = [line.strip() for line in f if "panicked" in line]
        except OSError:
            panics = ["(log unreadable)"]
        check("no panic", not panics, "none in the server's log" if not panics else panics[0][:200])
    return checks


def linear_slope(xs, ys):
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


# ---------------------------------------------------------------------------------------
# Output


FIELDS = [
    "t_s",
    "rss_mib",
    "fds",
    "threads",
    "cpu_pct",
    "valid_n",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "req_per_s",
    "s200",
    "s201",
    "s400",
    "s401",
    "s408",
    "s422",
    "s429",
    "s5xx",
    "s_other",
    "errors",
    "slow_open",
    "redis_keys",
]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


def read_csv(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.append({k: (float(v) if k in ("t_s", "rss_mib", "cpu_pct", "p50_ms", "p99_ms", "max_ms", "req_per_s") else int(v)) for k, v in r.items()})
    return rows


def plot(path, rows, summary, checks):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (python3 -m pip install matplotlib): no plot"
    t = [r["t_s"] / 60.0 for r in rows]
    t_end = t[-1]
    fig, axes = plt.subplots(4, 1, figsize=(8.5, 9.0), sharex=True, dpi=90)
    verdict = "all checks pass" if all(ok for _, ok, _ in checks) else "FAILED: " + ", ".join(n for n, ok, _ in checks if not ok)
    total = sum(sum(n for s, n in v.items() if s.isdigit()) for v in summary["totals"].values())
    fig.suptitle(
        "shieldwall quickstart + Redis, %d s of mixed traffic (%s build), %d requests\n%s"
        % (summary["duration_s"], summary["build"], total, verdict),
        fontsize=11,
    )

    def shade(ax):
        ax.axvspan(0, WARMUP * t_end, color="0.92", lw=0)
        ax.grid(True, color="0.85", lw=0.6)

    ax = axes[0]
    shade(ax)
    ax.plot(t, [r["rss_mib"] for r in rows], color="tab:blue", lw=1.2)
    ax.set_ylabel("server RSS (MiB)")
    ax.set_ylim(0, max(r["rss_mib"] for r in rows) * 1.3)
    ax.text(
        0.01,
        0.04,
        "warm-up (token cache: +40 tokens/s up to 4096)",
        transform=ax.transAxes,
        ha="left",
        va="bottom",
        fontsize=7,
        color="0.35",
    )

    ax = axes[1]
    shade(ax)
    ax.plot(t, [r["fds"] for r in rows], color="tab:green", lw=1.2, label="server open fds")
    ax.plot(t, [r["slow_open"] for r in rows], color="tab:olive", lw=0.8, ls="--", label="slow clients open")
    ax.set_ylabel("open (count)")
    ax.set_ylim(0, max(r["fds"] for r in rows) * 1.3)
    ax.legend(loc="upper right", fontsize=8, ncol=2)

    ax = axes[2]
    shade(ax)
    ax.plot(t, [r["p99_ms"] for r in rows], color="tab:red", lw=1.2, label="p99")
    ax.plot(t, [r["p50_ms"] for r in rows], color="tab:orange", lw=1.0, label="p50")
    ax.axhline(P99_MAX_MS[summary["build"]], color="tab:red", lw=0.8, ls=":", label="p99 bound")
    ax.set_ylabel("valid requests\nlatency (ms)")
    ax.set_yscale("log")
    ax.legend(loc="upper right", fontsize=8, ncol=3)

    ax = axes[3]
    shade(ax)
    # Responses a second by status, a moving average over 30 s (one 201 every 12 s and a
    # 408 every 2 s would otherwise be a comb).
    span = max(1, int(round(30.0 / summary["interval_s"])))
    series = [
        ("200 valid", "s200", "tab:blue"),
        ("401 bad token", "s401", "tab:red"),
        ("429 rate limited", "s429", "tab:purple"),
        ("422 invalid body", "s422", "tab:brown"),
        ("400 malformed", "s400", "tab:gray"),
        ("408 slow body", "s408", "tab:olive"),
        ("201 created", "s201", "tab:green"),
    ]
    for label, key, color in series:
        per_s = [r[key] / summary["interval_s"] for r in rows]
        avg = [sum(per_s[max(0, i - span + 1) : i + 1]) / len(per_s[max(0, i - span + 1) : i + 1]) for i in range(len(per_s))]
        ax.plot(t, avg, color=color, lw=1.0, label=label)
    ax.set_yscale("log")
    ax.set_ylabel("responses/s\n(30 s average)")
    ax.set_ylim(0.03, 500)
    ax.set_xlabel("time (minutes)")
    ax.legend(loc="upper center", fontsize=7, ncol=4, bbox_to_anchor=(0.5, -0.28))
    ax.set_xlim(0, t_end)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def report(checks):
    width = max(len(n) for n, _, _ in checks)
    for name, ok, detail in checks:
        print("%s  %-*s  %s" % ("PASS" if ok else "FAIL", width, name, detail))
    failed = [n for n, ok, _ in checks if not ok]
    print("soak: %s" % ("PASS" if not failed else "FAIL (%s)" % ", ".join(failed)), flush=True)
    return not failed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--judge", metavar="PREFIX", help="judge a saved run (PREFIX.csv, PREFIX.json) again and redraw its plot")
    p.add_argument("--base", help="http://127.0.0.1:PORT")
    p.add_argument("--pid", type=int)
    p.add_argument("--redis-port", type=int)
    p.add_argument("--duration", type=int)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--build", choices=["debug", "release"], default="debug")
    p.add_argument("--request-timeout", type=float, default=5.0)
    p.add_argument("--out", metavar="PREFIX", help="write PREFIX.csv, PREFIX.json, PREFIX.png")
    p.add_argument("--server-log")
    p.add_argument("--plot", choices=["auto", "require", "skip"], default="auto")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()

    if args.judge:
        rows = read_csv(args.judge + ".csv")
        with open(args.judge + ".json") as f:
            summary = json.load(f)
        checks = judge(rows, summary, args.server_log)
        ok = report(checks)
        if args.server_log is None:  # keep the saved "no panic" verdict
            checks += [(c["check"], c["pass"], c["detail"]) for c in summary.get("checks", []) if c["check"] == "no panic"]
        summary["checks"] = [{"check": n, "pass": ok, "detail": d} for n, ok, d in checks]
        with open(args.judge + ".json", "w") as f:
            json.dump(summary, f, indent=1)
            f.write("\n")
        if args.plot != "skip":
            msg = plot(args.judge + ".png", rows, summary, checks)
            if msg:
                print(msg)
        sys.exit(0 if ok else 1)

    for need in ("base", "pid", "redis_port", "duration", "out"):
        if getattr(args, need) is None:
            p.error("--%s is required" % need.replace("_", "-"))
    if not 10 <= args.duration <= 3600:
        p.error("--duration must be 10..3600 seconds")
    hostport = args.base.split("//", 1)[1].rstrip("/")
    args.host, port = hostport.rsplit(":", 1)
    args.port = int(port)
    if args.host not in ("127.0.0.1", "localhost"):
        p.error("loopback only")
    args.secret = os.environ["SOAK_JWT_SECRET"]
    args.user_token = os.environ["SOAK_USER_TOKEN"]
    args.admin_token = os.environ["SOAK_ADMIN_TOKEN"]

    rows, summary = asyncio.run(Soak(args).run())
    write_csv(args.out + ".csv", rows)
    checks = judge(rows, summary, args.server_log)
    summary["checks"] = [{"check": n, "pass": ok, "detail": d} for n, ok, d in checks]
    with open(args.out + ".json", "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print("totals: %s" % json.dumps(summary["totals"]))
    print("client CPU: %.1f s over %.0f s" % (summary["client_cpu_s"], summary["elapsed_s"]))
    ok = report(checks)
    if args.plot != "skip":
        msg = plot(args.out + ".png", rows, summary, checks)
        if msg:
            print(msg)
            if args.plot == "require":
                sys.exit(1)
        else:
            print("plot: %s.png (%d KiB)" % (args.out, os.path.getsize(args.out + ".png") // 1024))
    print("series: %s.csv, summary: %s.json" % (args.out, args.out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Shared pieces of the abuse and fault scenarios: the target, tokens, raw HTTP/1.1 and
HTTP/2 frames, an honest client in its own process, and the CPU/RSS watch.

Everything talks to 127.0.0.1 only, every socket has a timeout, and every loop is bounded
in time. The runner (run.sh / faults.sh) starts the server and passes it through the
environment:

    ABUSE_URL     http://127.0.0.1:PORT of the quickstart under test
    ABUSE_PID     its process id (CPU and RSS are read from /proc/PID)
    ABUSE_SECRET  its HS256 secret (SHIELDWALL_JWT_SECRET), to mint tokens for many subjects
"""

import base64
import hashlib
import hmac
import json
import math
import multiprocessing as mp
import os
import re
import socket
import struct
import sys
import threading
import time
import uuid

import hpack

HOST_HEADER = b"Host: localhost\r\n"
ISSUER = "shieldwall-quickstart"
AUDIENCE = "quickstart-api"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Attackers connect from these addresses, the honest client from 127.0.0.1, so the
# per-address connection cap (64) works for the honest client as it would in production.
ATTACKERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
HONEST_SRC = "127.0.0.1"


# ---------------------------------------------------------------- target and tokens


class Target:
    def __init__(self, url=None, pid=None, secret=None):
        url = url or os.environ["ABUSE_URL"]
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/?", url)
        if not m:
            raise SystemExit(f"ABUSE_URL must be http://127.0.0.1:PORT, not {url!r}")
        self.url = url.rstrip("/")
        self.port = int(m.group(1))
        self.addr = ("127.0.0.1", self.port)
        self.pid = int(pid or os.environ["ABUSE_PID"])
        self.secret = (secret or os.environ["ABUSE_SECRET"]).encode()

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X")
        except FileNotFoundError:
            return False

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); fields[0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return -1

    def token(self, sub, roles=("admin",), ttl=3600, iss=ISSUER, aud=AUDIENCE):
        return mint(self.secret, sub, roles, ttl, iss, aud)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def mint(secret, sub, roles=("admin",), ttl=3600, iss=ISSUER, aud=AUDIENCE):
    """An HS256 access token as the quickstart mints them (typ at+jwt)."""
    now = int(time.time())
    header = {"typ": "at+jwt", "alg": "HS256"}
    claims = {"iss": iss, "aud": aud, "sub": sub, "roles": list(roles),
              "scope": "users:read", "iat": now, "exp": now + ttl}
    signing = b64url(json.dumps(header, separators=(",", ":")).encode()) + b"." + \
        b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, signing, hashlib.sha256).digest()
    return (signing + b"." + b64url(sig)).decode()


def fresh(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- raw HTTP/1.1


def connect(addr, src=None, timeout=5.0):
    s = socket.create_connection(addr, timeout=timeout,
                                 source_address=(src, 0) if src else None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_close(s, limit_s=3.0, max_bytes=4 << 20):
    """Everything the peer sends until it closes, limit_s passes, or max_bytes arrive.
    Returns (bytes, closed_by_peer)."""
    out = bytearray()
    end = time.monotonic() + limit_s
    while len(out) < max_bytes:
        left = end - time.monotonic()
        if left <= 0:
            return bytes(out), False
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            return bytes(out), False
        except (ConnectionResetError, BrokenPipeError):
            return bytes(out), True
        if not d:
            return bytes(out), True
        out += d
    return bytes(out), False


def exchange(addr, data, src=None, wait=3.0):
    """Send raw bytes, read until the server closes or `wait` passes."""
    s = connect(addr, src, timeout=wait)
    try:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return read_until_close(s, wait)
    finally:
        s.close()


STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})[^\r\n]*\r?\n")


def responses(raw):
    """The HTTP/1.x responses in a byte stream, as (status, head_bytes), following
    Content-Length so a body is never read as a response."""
    out = []
    i = 0
    while True:
        m = STATUS_LINE.match(raw, i)
        if not m:
            break
        end = raw.find(b"\r\n\r\n", i)
        if end < 0:
            out.append((int(m.group(1)), raw[i:]))
            break
        head = raw[i:end + 4]
        out.append((int(m.group(1)), head))
        cl = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
        i = end + 4 + (int(cl.group(1)) if cl else 0)
    return out


def header_of(head, name):
    m = re.search(rb"(?im)^" + re.escape(name.encode()) + rb":\s*([^\r\n]*)", head)
    return m.group(1).decode(errors="replace") if m else None


# ---------------------------------------------------------------- HTTP/2 frames

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
ERR = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
       4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
       8: "CANCEL", 9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid & 0x7FFFFFFF) + payload


def settings(pairs=(), ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0,
                 b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def request_block(path="/health", method="GET", token=None, extra=()):
    h = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost")]
    if token:
        h.append(("authorization", f"Bearer {token}"))
    return hpack.Encoder().encode(h + list(extra))


class FrameReader:
    """Frames from a socket: (type, flags, stream, payload)."""

    def __init__(self, s):
        self.s = s
        self.buf = bytearray()
        self.closed = False

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, OSError):
            self.closed = True
            return False
        if not d:
            self.closed = True
            return False
        self.buf += d
        return True

    def next(self, wait=2.0):
        deadline = time.monotonic() + wait
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    t, fl = self.buf[3], self.buf[4]
                    sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(self.buf[9:9 + n])
                    del self.buf[:9 + n]
                    return t, fl, sid, payload
            if self.closed or not self._fill(deadline):
                return None


def h2_open(addr, src=None, pairs=(), timeout=5.0):
    s = connect(addr, src, timeout)
    s.sendall(PREFACE + settings(pairs))
    return s


def goaway_code(payload):
    return ERR.get(int.from_bytes(payload[4:8], "big"), str(int.from_bytes(payload[4:8], "big")))


# ---------------------------------------------------------------- the honest client


def _honest_loop(addr, token, stop, out, pause):
    req = (b"GET /me HTTP/1.1\r\n" + HOST_HEADER + b"Authorization: Bearer " + token.encode() +
           b"\r\nConnection: close\r\n\r\n")
    samples = []
    t_end = time.monotonic() + 600
    while not stop.is_set() and time.monotonic() < t_end:
        t0 = time.monotonic()
        status = "error"
        try:
            s = connect(addr, HONEST_SRC, timeout=5.0)
            try:
                s.sendall(req)
                raw, _ = read_until_close(s, 5.0)
            finally:
                s.close()
            r = responses(raw)
            status = r[0][0] if r else "no answer"
        except OSError as e:
            status = type(e).__name__
        samples.append((t0, status, time.monotonic() - t0))
        time.sleep(pause)
    out.put(samples)


class Honest:
    """GET /me with a user's token, a new connection each time, from 127.0.0.1, in its own
    process (the attackers' Python threads cannot delay it through the GIL)."""

    def __init__(self, target, pause=0.02):
        self.target = target
        self.token = target.token("honest-bob", roles=("user",))
        self.stop = mp.Event()
        self.out = mp.Queue()
        self.proc = mp.Process(target=_honest_loop,
                               args=(target.addr, self.token, self.stop, self.out, pause),
                               daemon=True)
        self.samples = []

    def start(self):
        self.proc.start()

    def finish(self):
        self.stop.set()
        try:
            self.samples = self.out.get(timeout=10)
        except Exception:
            self.samples = []
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
        return self.samples


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))
    return xs[k]


# ---------------------------------------------------------------- the watch


class Bounds:
    """What a scenario must stay under while it runs."""

    def __init__(self, cpu_s=None, cpu_per_mib=None, rss_mib=64, p99_ms=500, settle_cpu_s=0.5):
        # Slow attacks: total server CPU seconds. Floods, whose cost follows what the
        # attacker sends: server CPU seconds per MiB the attacker wrote (Watch.attack_bytes),
        # which an amplification (much work for few bytes) would blow.
        self.cpu_s = cpu_s
        self.cpu_per_mib = cpu_per_mib
        self.rss_mib = rss_mib
        self.p99_ms = p99_ms
        # At least two honest answers per second of attack: the honest client keeps
        # getting answers, not one lucky one.
        self.min_rate = 2.0
        self.settle_cpu_s = settle_cpu_s


class Report:
    def __init__(self, scenario):
        self.scenario = scenario
        self.failed = []
        self.t0 = time.monotonic()

    def check(self, ok, what, detail=""):
        tag = "PASS" if ok else "FAIL"
        print(f"  [{tag}] {what}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failed.append(what)
        return ok

    def info(self, text):
        print(f"  [info] {text}", flush=True)


class Watch:
    """Around an attack: the honest client, the server's CPU and peak RSS. `end()` checks
    the bounds and that the server is still up and answering."""

    def __init__(self, target, report, bounds):
        self.t = target
        self.r = report
        self.b = bounds
        self.honest = Honest(target)
        self.peak = 0.0
        self.attack_bytes = 0
        self._stop = threading.Event()

    def _sample(self):
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, self.t.rss_mib())
            except OSError:
                return

    def __enter__(self):
        if not self.t.alive():
            raise SystemExit(f"the server (pid {self.t.pid}) is not running")
        self.rss0 = self.t.rss_mib()
        self.peak = self.rss0
        self.cpu0 = self.t.cpu_seconds()
        self.fds0 = self.t.fds()
        self.wall0 = time.monotonic()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()
        self.honest.start()
        time.sleep(0.3)  # the honest client's first answers come before the attack
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.wall0
        alive = self.t.alive()
        cpu = self.t.cpu_seconds() - self.cpu0 if alive else float("nan")
        self.cpu = cpu
        samples = self.honest.finish()
        self._stop.set()
        self.sampler.join(1)
        r, b = self.r, self.b
        r.check(alive, "the server is still running", f"pid {self.t.pid}")
        if not alive:
            return False
        growth = self.peak - self.rss0
        r.check(growth < b.rss_mib, f"RSS growth < {b.rss_mib} MiB",
                f"{self.rss0:.1f} -> peak {self.peak:.1f} MiB (+{growth:.1f})")
        if b.cpu_s is not None:
            r.check(cpu < b.cpu_s, f"server CPU < {b.cpu_s} s during the {self.wall:.1f} s attack",
                    f"{cpu:.2f} s")
        if b.cpu_per_mib is not None:
            mib = self.attack_bytes / (1 << 20)
            per = cpu / mib if mib else float("inf")
            r.check(mib > 0 and per < b.cpu_per_mib,
                    f"server CPU < {b.cpu_per_mib} s per MiB the attacker sent",
                    f"{cpu:.2f} s for {mib:.1f} MiB in {self.wall:.1f} s: {per:.3f} s/MiB")
        ok = [x for x in samples if x[1] == 200]
        bad = [x for x in samples if x[1] != 200]
        lat = [x[2] * 1000 for x in samples]
        p50, p99, mx = percentile(lat, 50), percentile(lat, 99), max(lat, default=float("nan"))
        need = max(3, int(b.min_rate * self.wall))
        r.check(len(samples) >= need and not bad,
                f"honest GET /me: every answer 200, at least {b.min_rate:.0f} a second ({need})",
                f"{len(ok)} of {len(samples)}" + (f"; others {sorted(set(str(x[1]) for x in bad))}" if bad else ""))
        r.check(p99 < b.p99_ms, f"honest p99 < {b.p99_ms} ms",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {mx:.1f} ms over {len(samples)} requests")
        # Nothing keeps burning CPU once the attacker is gone.
        c1 = self.t.cpu_seconds()
        time.sleep(1.0)
        settle = self.t.cpu_seconds() - c1
        r.check(settle < b.settle_cpu_s, f"server CPU < {b.settle_cpu_s} s in the second after the attack",
                f"{settle:.2f} s")
        try:
            raw, _ = exchange(self.t.addr, b"GET /health HTTP/1.1\r\n" + HOST_HEADER +
                              b"Connection: close\r\n\r\n", src=HONEST_SRC, wait=3)
            st = responses(raw)
            st = st[0][0] if st else None
        except OSError as e:
            st = type(e).__name__
        r.check(st == 200, "a new connection gets GET /health 200 afterwards", str(st))
        r.info(f"open fds {self.fds0} -> {self.t.fds()}")
        return False


def run_for(seconds, workers, fn):
    """Run fn(index, deadline) in `workers` threads until the deadline; collect results."""
    deadline = time.monotonic() + seconds
    results = [None] * workers

    def go(i):
        try:
            results[i] = fn(i, deadline)
        except Exception as e:  # an attacker's failure is reported, never fatal
            results[i] = e

    ts = [threading.Thread(target=go, args=(i,), daemon=True) for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(seconds + 30)
    return results


def main(scenarios, argv):
    """`script.py NAME…` runs the named scenarios, `script.py` runs them all."""
    names = argv[1:] or list(scenarios)
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        raise SystemExit(f"unknown scenario {unknown}; known: {', '.join(scenarios)}")
    target = Target()
    failed = []
    for n in names:
        print(f"== {n}: {scenarios[n].__doc__.strip().splitlines()[0]}", flush=True)
        r = Report(n)
        try:
            scenarios[n](target, r)
        except Exception as e:
            r.check(False, "the scenario ran to its end", f"{type(e).__name__}: {e}")
        took = time.monotonic() - r.t0
        print(f"== {n} {'FAILED' if r.failed else 'passed'} in {took:.1f} s", flush=True)
        if r.failed:
            failed.append(n)
    if failed:
        print(f"FAILED: {' '.join(failed)}")
    sys.exit(1 if failed else 0)

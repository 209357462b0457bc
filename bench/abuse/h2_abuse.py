#!/usr/bin/env python3
"""HTTP/2 abuse against a running quickstart (h2c, prior knowledge), with hand-made frames.

    ABUSE_URL=http://127.0.0.1:PORT ABUSE_PID=PID ABUSE_SECRET=… bench/abuse/h2_abuse.py [SCENARIO…]

Each scenario attacks from 127.0.0.2-5 while an honest client on 127.0.0.1 keeps asking
GET /me; lib.Watch checks that the server stays up, its CPU and RSS stay bounded and the
honest client keeps getting 200 within its latency bound. Bounds assume the runner's
settings: SHIELDWALL_REQUEST_TIMEOUT_SECS=5, SHIELDWALL_WRITE_TIMEOUT_SECS=5.
"""

import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (ACK, ATTACKERS, CONTINUATION, DATA, END_HEADERS, END_STREAM, ERR, GOAWAY,  # noqa: E402
                 HEADERS, PING, RST_STREAM, SETTINGS, SETTINGS_INITIAL_WINDOW_SIZE,
                 SETTINGS_MAX_CONCURRENT_STREAMS, Bounds, FrameReader, Watch, frame,
                 goaway_code, h2_open, main, request_block, run_for, settings)

import hpack  # noqa: E402

WRITE_TIMEOUT = float(os.environ.get("ABUSE_WRITE_TIMEOUT_SECS", "5"))
REQUEST_TIMEOUT = float(os.environ.get("ABUSE_REQUEST_TIMEOUT_SECS", "5"))
# Floods: the server's CPU per MiB of attack traffic (debug build; about 0.1-0.25 measured).
CPU_PER_MIB = 0.5


def drain(s):
    """Read whatever is waiting without blocking; (bytes, closed)."""
    out = bytearray()
    while True:
        try:
            d = s.recv(1 << 20, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return bytes(out), False
        except OSError:
            return bytes(out), True
        if not d:
            return bytes(out), True
        out += d


def goaways(buf):
    """GOAWAY error codes in a frame stream (best effort: stops at a partial frame)."""
    codes, i = [], 0
    while i + 9 <= len(buf):
        n = int.from_bytes(buf[i:i + 3], "big")
        if buf[i + 3] == GOAWAY and i + 9 + n <= len(buf):
            codes.append(goaway_code(buf[i + 9:i + 9 + n]))
        i += 9 + n
    return codes


def flood(target, deadline, src, make_batch, per_conn_limit):
    """Open connections one after another until the deadline; on each, send batches from
    make_batch(first_stream_id) until the server closes it. Returns per-connection
    (frames sent, closed by server, GOAWAY codes)."""
    conns = []
    while time.monotonic() < deadline:
        try:
            s = h2_open(target.addr, src, timeout=2)
        except OSError:
            time.sleep(0.05)
            continue
        sid, sent, got, closed = 1, 0, bytearray(), False
        s.setblocking(True)
        while time.monotonic() < deadline and sent < per_conn_limit and not closed:
            batch, n, sid = make_batch(sid)
            s.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                s.sendall(batch)
                sent += n
            except socket.timeout:
                pass
            except OSError:
                closed = True
            d, c = drain(s)
            got += d
            closed = closed or c
        if not closed:
            d, c = drain(s)
            got += d
            closed = c
        s.close()
        conns.append((sent, closed, goaways(bytes(got))))
    return conns


def rapid_reset(t, r):
    """rapid reset (CVE-2023-44487): HEADERS then RST_STREAM(CANCEL), in a loop, 4 connections at a time for 5 s"""
    block = request_block("/me", token=t.token("rapid-reset"))
    cancel = struct.pack(">I", 8)

    pair = len(frame(HEADERS, END_STREAM | END_HEADERS, 1, block) + frame(RST_STREAM, 0, 1, cancel))

    def batch(sid):
        pairs = 50
        b = b"".join(frame(HEADERS, END_STREAM | END_HEADERS, s, block) + frame(RST_STREAM, 0, s, cancel)
                     for s in range(sid, sid + 2 * pairs, 2))
        return b, pairs, sid + 2 * pairs

    with Watch(t, r, Bounds(cpu_per_mib=CPU_PER_MIB)) as w:
        res = run_for(5, 4, lambda i, dl: flood(t, dl, ATTACKERS[i], batch, 1_000_000))
        conns = [c for x in res if isinstance(x, list) for c in x]
        w.attack_bytes = sum(c[0] for c in conns) * pair
    errors = [x for x in res if isinstance(x, Exception)]
    streams = sum(c[0] for c in conns)
    codes = sorted({code for c in conns for code in c[2]})
    ended = [c for c in conns if c[1] or c[2]]
    most = max((c[0] for c in ended), default=0)
    r.info(f"{streams} streams opened and reset on {len(conns)} connections; GOAWAY codes {codes}; "
           f"most streams on a connection the server ended: {most}")
    r.check(len(conns) - len(ended) <= 4, "the server ends the resetting connections (all but the 4 cut by the attack's end)",
            f"{len(ended)} of {len(conns)}")
    r.check(most <= 2000, "no connection got to reset more than 2000 streams", str(most))
    r.check(not errors, "the attackers ran", str(errors[:2]))
    r.check(streams >= 2000, "the attack reached the server (>= 2000 streams)", str(streams))


def continuation_flood(t, r):
    """CONTINUATION flood: HEADERS without END_HEADERS, then endless CONTINUATION frames, 4 connections for 4 s"""
    enc = hpack.Encoder()
    first = request_block("/health")
    junk = b"".join(enc.encode([(f"x-flood-{i}", "a" * 60)]) for i in range(200))[:16000]
    cont = frame(CONTINUATION, 0, 1, junk)
    per_conn = []

    def attack(i, deadline):
        out = []
        while time.monotonic() < deadline:
            try:
                s = h2_open(t.addr, ATTACKERS[i], timeout=2)
                s.sendall(frame(HEADERS, 0, 1, first))
            except OSError:
                time.sleep(0.05)
                continue
            t0, sent, closed = time.monotonic(), 0, False
            while time.monotonic() < deadline and not closed:
                s.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
                try:
                    s.sendall(cont * 16)
                    sent += len(cont) * 16
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                d, c = drain(s)
                closed = closed or c
            s.close()
            out.append((sent, closed, time.monotonic() - t0))
        return out

    with Watch(t, r, Bounds(cpu_per_mib=CPU_PER_MIB)) as w:
        res = run_for(4, 4, attack)
        for x in res:
            if isinstance(x, list):
                per_conn += x
        w.attack_bytes = sum(c[0] for c in per_conn)
    closed = [c for c in per_conn if c[1]]
    biggest = max((c[0] for c in per_conn), default=0)
    slowest = max((c[2] for c in closed), default=0)
    r.info(f"{len(per_conn)} connections, {len(closed)} closed by the server; most CONTINUATION bytes "
           f"accepted on one: {biggest // 1024} KiB; slowest close {slowest:.2f} s")
    lasted = [c for c in per_conn if not c[1] and c[2] >= 1.0]
    r.check(closed and not lasted and slowest < 1.0,
            "the server closes every flooding connection within 1 s (those the attack's end cut shorter aside)",
            f"{len(lasted)} lasted a second unclosed")
    r.check(biggest < 8 << 20, "no connection took 8 MiB of CONTINUATION (socket buffers included)",
            f"{biggest // 1024} KiB")


def settings_flood(t, r):
    """SETTINGS flood: SETTINGS frames as fast as possible, never reading the ACKs, 4 connections for 4 s"""
    one = settings([(SETTINGS_INITIAL_WINDOW_SIZE, 65535), (SETTINGS_MAX_CONCURRENT_STREAMS, 100)])
    return control_flood(t, r, one * 1000, "SETTINGS")


def ping_flood(t, r):
    """PING flood: PING frames as fast as possible, never reading the PONGs, 4 connections for 4 s"""
    one = frame(PING, 0, 0, b"\x00" * 8)
    return control_flood(t, r, one * 1000, "PING")


def control_flood(t, r, batch, what):
    def attack(i, deadline):
        out = []
        while time.monotonic() < deadline:
            try:
                s = h2_open(t.addr, ATTACKERS[i], timeout=2)
            except OSError:
                time.sleep(0.05)
                continue
            sent, closed, stalled = 0, False, 0.0
            while time.monotonic() < deadline and not closed:
                s.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
                t0 = time.monotonic()
                try:
                    s.sendall(batch)
                    sent += len(batch)
                except socket.timeout:
                    stalled += time.monotonic() - t0
                except OSError:
                    closed = True
            s.close()
            out.append((sent, closed, stalled))
        return out

    with Watch(t, r, Bounds(cpu_per_mib=CPU_PER_MIB)) as w:
        res = run_for(4, 4, attack)
        conns = [c for x in res if isinstance(x, list) for c in x]
        w.attack_bytes = sum(c[0] for c in conns)
    frames = sum(c[0] for c in conns) // 17
    biggest = max((c[0] for c in conns), default=0)
    r.info(f"{frames} {what} frames on {len(conns)} connections; most on one connection "
           f"{biggest // 1024} KiB; closed by the server: {sum(1 for c in conns if c[1])}, "
           f"stalled by backpressure: {sum(1 for c in conns if c[2] > 0)}")
    # Unread ACKs/PONGs must push back (the server stops reading) or end the connection:
    # either way one connection cannot make it buffer without bound.
    r.check(biggest < 64 << 20, f"one connection could not push 64 MiB of {what} frames",
            f"{biggest // 1024} KiB")
    r.check(any(c[1] or c[2] > 0 for c in conns),
            "the server pushes back (stops reading) or closes rather than buffer the answers",
            f"{sum(1 for c in conns if c[1] or c[2] > 0)} of {len(conns)} connections")


def stream_limit(t, r):
    """more concurrent streams than advertised: 150 open streams per connection (limit 100), 8 connections"""
    # POST /users with a fresh admin per stream and a body that never comes: every stream
    # stays open in the handler (body extraction) until the request timeout.
    def attack(i, deadline):
        s = h2_open(t.addr, ATTACKERS[i % len(ATTACKERS)], timeout=3)
        fr = FrameReader(s)
        advertised = None
        # The server's SETTINGS first.
        while advertised is None:
            f = fr.next(2)
            if f is None:
                break
            if f[0] == SETTINGS and not f[1] & ACK:
                p = f[3]
                for j in range(0, len(p), 6):
                    k, v = struct.unpack(">HI", p[j:j + 6])
                    if k == SETTINGS_MAX_CONCURRENT_STREAMS:
                        advertised = v
                s.sendall(settings(ack=True))
                if advertised is None:
                    advertised = -1
        frames = b""
        for n in range(150):
            tok = t.token(f"streams-{i}-{n}")
            blk = request_block("/users", "POST", tok, [("content-type", "application/json"),
                                                        ("content-length", "64")])
            frames += frame(HEADERS, END_HEADERS, 1 + 2 * n, blk)
        s.sendall(frames)
        refused, answered, goaway = set(), {}, None
        dec = hpack.Decoder()
        end = min(deadline, time.monotonic() + 2.5)
        while time.monotonic() < end:
            f = fr.next(end - time.monotonic())
            if f is None:
                break
            typ, fl, sid, p = f
            if typ == RST_STREAM:
                refused.add((sid, ERR.get(int.from_bytes(p[:4], "big"))))
            elif typ == HEADERS:
                try:
                    answered[sid] = dict(dec.decode(p)).get(":status")
                except Exception:
                    answered[sid] = "?"
            elif typ == GOAWAY:
                goaway = goaway_code(p)
                break
            elif typ == PING and not fl & ACK:
                s.sendall(frame(PING, ACK, 0, p))
        # Then hold them until the server's request timeout closes them.
        held_until = None
        end = time.monotonic() + REQUEST_TIMEOUT + 4
        while time.monotonic() < end:
            f = fr.next(end - time.monotonic())
            if f is None:
                break
            typ, fl, sid, p = f
            if typ == HEADERS:
                try:
                    answered[sid] = dict(dec.decode(p)).get(":status")
                except Exception:
                    answered[sid] = "?"
            elif typ == PING and not fl & ACK:
                s.sendall(frame(PING, ACK, 0, p))
            if sum(1 for v in answered.values() if v == "408") + len(refused) >= 150:
                held_until = time.monotonic()
                break
        s.close()
        return advertised, refused, answered, goaway, held_until

    t0 = time.monotonic()
    with Watch(t, r, Bounds(cpu_s=3.0)):
        res = run_for(10, 8, attack)
    errors = [x for x in res if isinstance(x, Exception)]
    r.check(not errors, "the attackers ran", str(errors[:2]))
    ok = [x for x in res if isinstance(x, tuple)]
    for advertised, refused, answered, goaway, held in ok[:1]:
        r.info(f"advertised SETTINGS_MAX_CONCURRENT_STREAMS={advertised}; refused "
               f"{len(refused)} ({sorted({c for _, c in refused})}), answered "
               f"{sorted(set(answered.values()))}, GOAWAY {goaway}")
    r.check(all(x[0] == 100 for x in ok), "the server advertises 100 concurrent streams",
            str([x[0] for x in ok]))
    over = [len([sid for sid, _ in x[1] if sid > 199]) + (50 if x[3] else 0) for x in ok]
    r.check(all(n >= 50 for n in over), "every stream over the limit is refused (RST_STREAM or GOAWAY)",
            str(over))
    # The 100 admitted streams wait for their body; the request timeout answers them 408.
    served = [sum(1 for v in x[2].values() if v == "408") for x in ok]
    r.check(all(n == 100 or x[3] for n, x in zip(served, ok)),
            f"the 100 admitted streams get 408 at the request timeout ({REQUEST_TIMEOUT:.0f} s)",
            str(served))
    lasted = [x[4] - t0 for x in ok if x[4]]
    r.info(f"streams ended {max(lasted, default=0):.1f} s after the start")


def zero_window(t, r):
    """zero flow-control window: INITIAL_WINDOW_SIZE 0, 20 streams each, never a WINDOW_UPDATE, 32 connections"""
    def attack(i, deadline):
        s = h2_open(t.addr, ATTACKERS[i % len(ATTACKERS)], pairs=[(SETTINGS_INITIAL_WINDOW_SIZE, 0)],
                    timeout=3)
        fr = FrameReader(s)
        tok = t.token(f"zero-window-{i}", roles=("user",))
        blk = request_block("/me", token=tok)
        s.sendall(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * n, blk)
                                                 for n in range(20)))
        t0 = time.monotonic()
        data_bytes, heads, closed_at, goaway = 0, 0, None, None
        end = t0 + WRITE_TIMEOUT + 5
        while time.monotonic() < end:
            f = fr.next(end - time.monotonic())
            if f is None:
                if fr.closed:
                    closed_at = time.monotonic() - t0
                break
            typ, fl, sid, p = f
            if typ == DATA:
                data_bytes += len(p)
            elif typ == HEADERS:
                heads += 1
            elif typ == GOAWAY:
                goaway = goaway_code(p)
            elif typ == PING and not fl & ACK:
                s.sendall(frame(PING, ACK, 0, p))  # alive, just never opening the window
            elif typ == SETTINGS and not fl & ACK:
                s.sendall(settings(ack=True))
        s.close()
        return data_bytes, heads, closed_at, goaway

    with Watch(t, r, Bounds(cpu_s=3.0)):
        res = run_for(WRITE_TIMEOUT + 5, 32, attack)
    errors = [x for x in res if isinstance(x, Exception)]
    ok = [x for x in res if isinstance(x, tuple)]
    r.check(not errors, "the attackers ran", str(errors[:2]))
    r.info(f"per connection: DATA bytes {sorted({x[0] for x in ok})}, response heads "
           f"{sorted({x[1] for x in ok})}, GOAWAY {sorted({str(x[3]) for x in ok})}")
    closed = [x[2] for x in ok if x[2] is not None]
    r.check(len(closed) == len(ok) == 32,
            f"the server closes every zero-window connection within write_timeout ({WRITE_TIMEOUT:.0f} s) + 5 s",
            f"{len(closed)} of {len(ok)} closed, after {min(closed, default=0):.1f}-{max(closed, default=0):.1f} s")
    r.check(all(x[0] == 0 for x in ok), "no DATA was sent into a zero window",
            str(sorted({x[0] for x in ok})))


def h2load_streams(t, r):
    """many streams at once with h2load: 8 connections x 100 concurrent streams of GET /me for 5 s"""
    h2load = shutil.which("h2load")
    if not h2load:
        r.info("h2load not installed (apt-get install nghttp2-client): skipped")
        return
    tok = t.token("h2load", roles=("user",))
    # Honest load that saturates both cores: total CPU says nothing; CPU per request does
    # (an amplification would blow it). Measured ~0.3 ms per request on the debug build.
    with Watch(t, r, Bounds(p99_ms=1000)) as w:
        p = subprocess.run([h2load, "-D", "5", "-c", "8", "-m", "100", "-t", "1",
                            "-H", f"authorization: Bearer {tok}", f"{t.url}/me"],
                           capture_output=True, text=True, timeout=30)
    out = p.stdout
    reqs = next((line for line in out.splitlines() if line.startswith("requests:")), "?")
    codes = next((line for line in out.splitlines() if line.startswith("status codes:")), "?")
    r.info(f"h2load: {reqs}; {codes}")
    m = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    c = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    r.check(p.returncode == 0 and m and int(m.group(1)) > 1000 and int(m.group(3)) == 0,
            "h2load's requests are served (> 1000, none errored)", reqs)
    r.check(c and int(c.group(4)) == 0, "no 5xx under the load", codes)
    served = int(m.group(1)) if m else 0
    r.check(served > 0 and w.cpu / served < 0.002,
            "server CPU < 2 ms per request served", f"{w.cpu:.2f} s for {served} requests")


SCENARIOS = {
    "rapid_reset": rapid_reset,
    "continuation_flood": continuation_flood,
    "settings_flood": settings_flood,
    "ping_flood": ping_flood,
    "stream_limit": stream_limit,
    "zero_window": zero_window,
    "h2load_streams": h2load_streams,
}

if __name__ == "__main__":
    main(SCENARIOS, sys.argv)

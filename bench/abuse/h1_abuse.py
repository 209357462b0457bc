#!/usr/bin/env python3
"""HTTP/1.1 abuse against a running quickstart, over raw sockets.

    ABUSE_URL=http://127.0.0.1:PORT ABUSE_PID=PID ABUSE_SECRET=… bench/abuse/h1_abuse.py [SCENARIO…]

Attackers connect from 127.0.0.2-5, the honest client (lib.Watch) from 127.0.0.1. Bounds
assume the runner's settings: SHIELDWALL_REQUEST_TIMEOUT_SECS=5 (the head deadline,
header_read_timeout, is the default 10 s).
"""

import json
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import (ATTACKERS, HONEST_SRC, HOST_HEADER, Bounds, Watch, connect, exchange,  # noqa: E402
                 fresh, header_of, main, read_until_close, responses, run_for)

REQUEST_TIMEOUT = float(os.environ.get("ABUSE_REQUEST_TIMEOUT_SECS", "5"))
HEAD_TIMEOUT = 10.0  # Limits::header_read_timeout, not settable from the environment
# Floods: the server's CPU per MiB of attack traffic (debug build; about 0.1-0.25 measured).
CPU_PER_MIB = 0.5


def is_problem(head):
    return (header_of(head, "content-type") or "").startswith("application/problem+json")


def slowloris(t, r):
    """slowloris heads: 200 connections (50 from each of 4 addresses) trickle one header byte a second"""
    n = 200
    socks = []
    for i in range(n):
        s = connect(t.addr, ATTACKERS[i % len(ATTACKERS)], timeout=3)
        s.sendall(b"GET /health HTTP/1.1\r\n" + HOST_HEADER)
        socks.append(s)
    trickle = b"X-Slow: " + b"a" * 64
    closed_at = {}
    answered = {}
    t0 = time.monotonic()
    with Watch(t, r, Bounds(cpu_s=3.0)):
        k = 0
        while len(closed_at) < n and time.monotonic() - t0 < HEAD_TIMEOUT + 4:
            for i, s in enumerate(socks):
                if i in closed_at:
                    continue
                try:
                    s.send(trickle[k % len(trickle):k % len(trickle) + 1])
                except OSError:
                    closed_at[i] = time.monotonic() - t0
            k += 1
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                live = [s for i, s in enumerate(socks) if i not in closed_at]
                if not live:
                    break
                rd, _, _ = select.select(live, [], [], max(0, end - time.monotonic()))
                for s in rd:
                    i = socks.index(s)
                    try:
                        d = s.recv(65536)
                    except OSError:
                        d = b""
                    if d:
                        answered[i] = answered.get(i, b"") + d
                    else:
                        closed_at[i] = time.monotonic() - t0
    for s in socks:
        s.close()
    times = sorted(closed_at.values())
    r.info(f"{len(times)} of {n} cut, {times[0] if times else 0:.1f}-{times[-1] if times else 0:.1f} s "
           f"after their first byte; answered before the cut: {len(answered)}")
    r.check(len(times) == n and times[-1] < HEAD_TIMEOUT + 2.5,
            f"every trickling connection is cut by the head deadline ({HEAD_TIMEOUT:.0f} s) + 2.5 s",
            f"{len(times)} of {n}, last at {times[-1] if times else float('nan'):.1f} s")
    r.check(not any(b"HTTP/1.1 200" in v for v in answered.values()),
            "no trickled request was served")


def slow_body(t, r):
    """slow bodies: 40 authenticated POST /users send one body byte every 0.5 s; 40 unauthenticated ones too"""
    def authed(i, deadline):
        tok = t.token(fresh("slow-body"))
        s = connect(t.addr, ATTACKERS[i % len(ATTACKERS)], timeout=3)
        s.sendall(b"POST /users HTTP/1.1\r\n" + HOST_HEADER + b"Authorization: Bearer " + tok.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        t0 = time.monotonic()
        out, closed = b"", False
        while time.monotonic() - t0 < REQUEST_TIMEOUT + 4 and not closed:
            try:
                s.send(b" ")
            except OSError:
                closed = True
                break
            rd, _, _ = select.select([s], [], [], 0.5)
            if rd:
                try:
                    d = s.recv(65536)
                except OSError:
                    d = b""
                out += d
                closed = not d
        s.close()
        return responses(out), closed, time.monotonic() - t0

    def anonymous(i, deadline):
        s = connect(t.addr, ATTACKERS[i % len(ATTACKERS)], timeout=3)
        t0 = time.monotonic()
        s.sendall(b"POST /users HTTP/1.1\r\n" + HOST_HEADER +
                  b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
        out, _ = read_until_close(s, 3.0, 65536)
        took = time.monotonic() - t0
        s.close()
        return responses(out), took

    res = {}
    with Watch(t, r, Bounds(cpu_s=3.0)):
        th = [threading.Thread(target=lambda: res.__setitem__("authed", run_for(1, 40, authed))),
              threading.Thread(target=lambda: res.__setitem__("anon", run_for(1, 40, anonymous)))]
        for x in th:
            x.start()
        for x in th:
            x.join(REQUEST_TIMEOUT + 30)
    a = [x for x in res.get("authed", []) if isinstance(x, tuple)]
    n = [x for x in res.get("anon", []) if isinstance(x, tuple)]
    got408 = [x for x in a if x[0] and x[0][0][0] == 408 and is_problem(x[0][0][1]) and x[1]]
    took = sorted(x[2] for x in a)
    r.info(f"authenticated: statuses {sorted({str([s for s, _ in x[0]]) for x in a})}, "
           f"ended {took[0] if took else 0:.1f}-{took[-1] if took else 0:.1f} s")
    r.check(len(got408) == 40 and took[-1] < REQUEST_TIMEOUT + 2,
            f"every slow body gets 408 problem+json and a close by the request timeout ({REQUEST_TIMEOUT:.0f} s) + 2 s",
            f"{len(got408)} of {len(a)}")
    fast = [x for x in n if x[0] and x[0][0][0] == 401 and x[1] < 1.0]
    r.check(len(fast) == 40, "an unauthenticated slow body is answered 401 at once, before its body",
            f"{len(fast)} of {len(n)}; statuses {sorted({str([s for s, _ in x[0]]) for x in n})}")


def pipeline_flood(t, r):
    """pipelining floods: 4 connections pipeline GET /me without reading for 4 s; then 1000 pipelined requests read in order"""
    tok = t.token("pipeline", roles=("user",))
    one = b"GET /me HTTP/1.1\r\n" + HOST_HEADER + b"Authorization: Bearer " + tok.encode() + b"\r\n\r\n"
    batch = one * 200

    def attack(i, deadline):
        s = connect(t.addr, ATTACKERS[i % len(ATTACKERS)], timeout=3)
        sent, stalled = 0, 0.0
        while time.monotonic() < deadline:
            s.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            t0 = time.monotonic()
            try:
                s.sendall(batch)
                sent += 200
            except socket.timeout:
                stalled += time.monotonic() - t0
            except OSError:
                break
        s.close()
        return sent, stalled

    with Watch(t, r, Bounds(cpu_per_mib=CPU_PER_MIB)) as w:
        res = run_for(4, 4, attack)
        ok = [x for x in res if isinstance(x, tuple)]
        w.attack_bytes = sum(x[0] for x in ok) * len(one)
    r.info(f"requests written per connection: {sorted(x[0] for x in ok)}")
    r.check(len(ok) == 4 and any(x[1] > 0 for x in ok),
            "the server pushes back on connections that do not read (it stops reading)",
            f"stalled {sum(1 for x in ok if x[1] > 0)} of {len(ok)}")
    # Correctness under pipelining: 1000 requests in one write, 1000 answers in order.
    s = connect(t.addr, ATTACKERS[0], timeout=5)
    s.sendall(one * 999 + one.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    raw, closed = read_until_close(s, 10.0, 64 << 20)
    s.close()
    got = responses(raw)
    r.check(len(got) == 1000 and all(x[0] == 200 for x in got) and closed,
            "1000 pipelined requests get 1000 answers 200, then the requested close",
            f"{len(got)} answers, statuses {sorted({x[0] for x in got})}")


def oversized_headers(t, r):
    """oversized heads: 20 KiB and 1 MiB fields, 65 and 10 000 fields, a 100 KiB URI, from 8 connections at a time for 4 s"""
    cases = {
        "a 20 KiB field": (b"GET /health HTTP/1.1\r\n" + HOST_HEADER + b"X-Big: " + b"a" * 20480 + b"\r\n\r\n", {431}),
        "a 1 MiB field": (b"GET /health HTTP/1.1\r\n" + HOST_HEADER + b"X-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", {431}),
        "65 fields": (b"GET /health HTTP/1.1\r\n" + HOST_HEADER + b"".join(b"X-%d: a\r\n" % i for i in range(64)) + b"\r\n", {431}),
        "10 000 fields": (b"GET /health HTTP/1.1\r\n" + HOST_HEADER + b"a:b\r\n" * 10000 + b"\r\n", {431}),
        "a 100 KiB URI": (b"GET /health?" + b"a" * 102400 + b" HTTP/1.1\r\n" + HOST_HEADER + b"\r\n", {414, 431}),
        "a 20 KiB head pipelined behind a good one": (
            b"GET /health HTTP/1.1\r\n" + HOST_HEADER + b"\r\nGET /health HTTP/1.1\r\n" + HOST_HEADER +
            b"X-Big: " + b"a" * 20480 + b"\r\n\r\n", {200}),
    }
    seen = {k: set() for k in cases}
    wrong = {}
    names = list(cases)

    def attack(i, deadline):
        k = 0
        while time.monotonic() < deadline:
            name = names[(i + k) % len(names)]
            k += 1
            data, want = cases[name]
            sent[i] += len(data)
            try:
                raw, _ = exchange(t.addr, data, ATTACKERS[i % len(ATTACKERS)], wait=3)
            except OSError as e:
                seen[name].add(type(e).__name__)
                continue
            got = responses(raw)
            seen[name].add(str([x[0] for x in got]))
            first = got[0] if got else None
            if name.endswith("good one"):
                good = len(got) == 2 and got[0][0] == 200 and got[1][0] == 431 and is_problem(got[1][1])
            else:
                good = first is not None and first[0] in want and is_problem(first[1]) and len(got) == 1
            if not good:
                wrong[name] = str([x[0] for x in got]) or "no answer"
        return k

    sent = [0] * 8
    with Watch(t, r, Bounds(cpu_per_mib=CPU_PER_MIB)) as w:
        res = run_for(4, 8, attack)
        w.attack_bytes = sum(sent)
    r.info(f"{sum(x for x in res if isinstance(x, int))} oversized heads sent")
    for name in names:
        want = "200 then 431" if name.endswith("good one") else "/".join(map(str, sorted(cases[name][1])))
        r.check(name not in wrong and seen[name], f"{name}: {want} problem+json, every time",
                f"seen {sorted(seen[name])}")


def duplicate_headers(t, r):
    """duplicated headers: Host, Content-Length, Authorization, each ambiguous pair refused with 400"""
    user = t.token("dup-bob", roles=("user",))
    other = t.token("dup-eve", roles=("user",))
    admin = t.token(fresh("dup-admin"))
    body = json.dumps({"username": fresh("dup"), "email": "d@example.com", "age": 1}).encode()

    def post(extra, payload=body):
        return (b"POST /users HTTP/1.1\r\n" + HOST_HEADER + b"Authorization: Bearer " + admin.encode() +
                b"\r\nContent-Type: application/json\r\n" + extra + b"\r\n" + payload)

    def get(extra, host=HOST_HEADER):
        return b"GET /me HTTP/1.1\r\n" + host + extra + b"Connection: close\r\n\r\n"

    auth = lambda tok: b"Authorization: Bearer " + tok.encode() + b"\r\n"  # noqa: E731
    cases = [
        ("two Host headers, different", get(auth(user), HOST_HEADER + b"Host: evil.example\r\n"), {400}),
        ("two Host headers, the same", get(auth(user), HOST_HEADER + HOST_HEADER), {400}),
        ("Host disagreeing with an absolute target",
         b"GET http://evil.example/me HTTP/1.1\r\n" + HOST_HEADER + auth(user) + b"Connection: close\r\n\r\n", {400}),
        ("two Content-Length, different",
         post(b"Content-Length: %d\r\nContent-Length: %d\r\n" % (len(body), len(body) + 5)), {400}),
        ("Content-Length as a list, different", post(b"Content-Length: %d, %d\r\n" % (len(body), len(body) + 5)), {400}),
        ("two Authorization headers, different users", get(auth(user) + auth(other)), {400}),
        ("two Authorization headers, the same token", get(auth(user) + auth(user)), {400}),
        ("two bearer tokens in one Authorization",
         get(b"Authorization: Bearer " + user.encode() + b", Bearer " + other.encode() + b"\r\n"), {400, 401}),
    ]
    with Watch(t, r, Bounds(cpu_s=3.0)):
        results = []
        for name, data, want in cases:
            raw, closed = exchange(t.addr, data, ATTACKERS[0], wait=3)
            results.append((name, want, responses(raw), closed))
    for name, want, got, closed in results:
        first = got[0][0] if got else None
        r.check(first in want and len(got) == 1 and is_problem(got[0][1]),
                f"{name}: {'/'.join(map(str, sorted(want)))} problem+json",
                f"got {[x[0] for x in got]}{', closed' if closed else ''}")


def smuggling(t, r):
    """request smuggling shapes: CL+TE, obfuscated TE, TE in HTTP/1.0, bare LF, invalid chunk sizes, CL+CL"""
    checker = t.token(fresh("smuggle-check"))

    def hidden_request():
        name = fresh("smuggled")
        body = json.dumps({"username": name, "email": "s@example.com", "age": 1}).encode()
        req = (b"POST /users HTTP/1.1\r\n" + HOST_HEADER + b"Authorization: Bearer " +
               t.token(fresh("smuggler")).encode() + b"\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return name, req

    def outer(te_lines, body, version=b"HTTP/1.1", eol=b"\r\n", cl=True, extra=b""):
        lines = [b"POST /users " + version, b"Host: localhost",
                 b"Authorization: Bearer " + t.token(fresh("outer")).encode(),
                 b"Content-Type: application/json"]
        if cl:
            lines.append(b"Content-Length: %d" % len(body))
        lines += te_lines
        return eol.join(lines) + eol + extra + eol + body

    def cl_te(te_lines, **kw):
        # The hidden request is the body to a reader of Content-Length, the next request to
        # a reader of chunked.
        name, hidden = hidden_request()
        return name, outer(te_lines, b"0\r\n\r\n" + hidden, **kw)

    def te_cl(te_lines, **kw):
        # The hidden request is a chunk to a reader of chunked, the next request to a reader
        # of Content-Length (which covers the chunk-size line only).
        name, hidden = hidden_request()
        size = b"%x\r\n" % len(hidden)
        body = size + hidden + b"\r\n0\r\n\r\n"
        data = outer(te_lines, body, **kw)
        return name, data.replace(b"Content-Length: %d" % len(body), b"Content-Length: %d" % len(size))

    def chunked_then(bad_chunks):
        # Chunked only, with a chunk syntax a lenient reader might take as the end.
        name, hidden = hidden_request()
        return name, outer([b"Transfer-Encoding: chunked"], bad_chunks + hidden, cl=False)

    def cl_cl(first_small):
        name, hidden = hidden_request()
        lines = [b"Content-Length: 0", b"Content-Length: %d" % len(hidden)]
        if not first_small:
            lines.reverse()
        return name, outer(lines, hidden, cl=False)

    te_variants = {
        "chunked": [b"Transfer-Encoding: chunked"],
        "xchunked": [b"Transfer-Encoding: xchunked"],
        "chunked, identity": [b"Transfer-Encoding: chunked, identity"],
        "identity, chunked": [b"Transfer-Encoding: identity, chunked"],
        "space before colon": [b"Transfer-Encoding : chunked"],
        "tab before colon": [b"Transfer-Encoding\t: chunked"],
        "tab as whitespace": [b"Transfer-Encoding:\tchunked"],
        "two TE headers": [b"Transfer-Encoding: chunked", b"Transfer-Encoding: x"],
        "obs-fold": [b"X-Pad: a", b" Transfer-Encoding: chunked"],
        "folded value": [b"Transfer-Encoding: x", b" chunked"],
        "quoted": [b"Transfer-Encoding: \"chunked\""],
        "upper case": [b"Transfer-Encoding: CHUNKED"],
        "trailing junk": [b"Transfer-Encoding: chunked;q=1"],
    }
    cases = []
    for name, lines in te_variants.items():
        cases.append((f"CL.TE, {name}", cl_te(lines)))
        cases.append((f"TE.CL, {name}", te_cl(lines)))
    cases += [
        ("CL.TE in HTTP/1.0 with keep-alive", cl_te([b"Transfer-Encoding: chunked", b"Connection: keep-alive"], version=b"HTTP/1.0")),
        ("TE.CL in HTTP/1.0 with keep-alive", te_cl([b"Transfer-Encoding: chunked", b"Connection: keep-alive"], version=b"HTTP/1.0")),
        ("CL.TE with bare LF heads", cl_te([b"Transfer-Encoding: chunked"], eol=b"\n")),
        ("TE.CL with bare LF heads", te_cl([b"Transfer-Encoding: chunked"], eol=b"\n")),
        ("bare LF after the last chunk", chunked_then(b"0\n\n")),
        ("bare LF chunk lines", chunked_then(b"1\nA\n0\n\n")),
        ("chunk size 0x0", chunked_then(b"0x0\r\n\r\n")),
        ("chunk size +0", chunked_then(b"+0\r\n\r\n")),
        ("chunk size -0", chunked_then(b"-0\r\n\r\n")),
        ("chunk size 2^64 (overflow to 0)", chunked_then(b"10000000000000000\r\n\r\n")),
        ("chunk size not hex", chunked_then(b"g\r\n\r\n")),
        ("empty chunk size", chunked_then(b"\r\n\r\n")),
        ("chunk longer than its size", chunked_then(b"1\r\nAB\r\n0\r\n\r\n")),
        ("CL 0 then CL n", cl_cl(True)),
        ("CL n then CL 0", cl_cl(False)),
    ]
    results = {}

    def send(case):
        label, (name, data) = case
        try:
            raw, closed = exchange(t.addr, data, ATTACKERS[hash(label) % len(ATTACKERS)], wait=3)
        except OSError as e:
            raw, closed = b"", type(e).__name__
        results[label] = (name, responses(raw), closed)

    # The trace works: the same hidden request sent on its own creates its user.
    ctl_name, ctl = hidden_request()
    raw, _ = exchange(t.addr, ctl.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1), ATTACKERS[0])
    made = responses(raw)
    seen = lookup(t, checker, ctl_name)
    r.check(made and made[0][0] == 201 and seen == 200,
            "control: the hidden request alone creates its user, visible to GET /users/{id}",
            f"{[x[0] for x in made]}, then {seen}")

    with Watch(t, r, Bounds(cpu_s=3.0)):
        ths = [threading.Thread(target=send, args=(c,), daemon=True) for c in cases]
        for x in ths:
            x.start()
        for x in ths:
            x.join(10)
    for label, _ in cases:
        name, got, closed = results.get(label, (None, [], "not run"))
        trace = lookup(t, checker, name) if name else None
        statuses = [x[0] for x in got]
        hidden_ran = trace != 404 or len(got) > 1 or 201 in statuses[1:]
        refused = (statuses[:1] in ([400], [501]) and closed is True) or (not got and closed is True) or \
            (len(got) == 1 and closed is True)
        r.check(not hidden_ran and refused, f"{label}: the hidden request never runs; 400 or close",
                f"answers {statuses}, {'closed' if closed is True else closed or 'left open'}, "
                f"hidden user lookup {trace}")


def lookup(t, token, name):
    raw, _ = exchange(t.addr, b"GET /users/" + name.encode() + b" HTTP/1.1\r\n" + HOST_HEADER +
                      b"Authorization: Bearer " + token.encode() + b"\r\nConnection: close\r\n\r\n",
                      HONEST_SRC, wait=3)
    got = responses(raw)
    return got[0][0] if got else None


SCENARIOS = {
    "slowloris": slowloris,
    "slow_body": slow_body,
    "pipeline_flood": pipeline_flood,
    "oversized_headers": oversized_headers,
    "duplicate_headers": duplicate_headers,
    "smuggling": smuggling,
}

if __name__ == "__main__":
    main(SCENARIOS, sys.argv)

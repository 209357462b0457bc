#!/usr/bin/env python3
"""Faults under the running examples: Redis slow, killed and restarted; the SQLite store locked.

    bench/abuse/faults.sh [SCENARIO…]     # starts Redis, the quickstart and accounts, then this

Environment (set by faults.sh):
    FAULT_QS_URL, FAULT_QS_PID, FAULT_QS_SECRET     the quickstart, Redis rate store
    FAULT_ACC_URL, FAULT_ACC_PID, FAULT_ACC_SECRET  the accounts example, Redis token state and
                                                    rate store, SQLite users and API keys
    FAULT_ACC_DB, FAULT_ACC_USER, FAULT_ACC_PASSWORD, FAULT_ACC_KEY
    FAULT_REDIS_PORT, FAULT_REDIS_PIDFILE, FAULT_REDIS_LOG

Declared policies (examples/quickstart.rs, examples/accounts.rs, README "When Redis is down"):
  * quickstart POST /users, 5/min per admin: no `login`, so the outage policy is the local
    fallback: the same quota in the instance's memory; never a 5xx.
  * accounts POST /token (login): fails closed, 503 problem+json.
  * accounts bearer routes (GET /me): the revocation state lives in Redis; unreadable, every
    token is refused with 503 problem+json. A volatile Redis that restarts refuses every
    token issued before (the epoch): 401, log in again.
  * accounts GET /reports (API key from SQLite, 100/min per key on Redis): local fallback.
The Redis timeout is the default 200 ms; every answer during a fault must come within
RESPONSE_BOUND (200 ms + 800 ms margin).
"""

import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import Report, fresh, mint, percentile  # noqa: E402

RESPONSE_BOUND = 1.0  # the Redis timeout (200 ms) + 800 ms
RECOVERY_BOUND = 10.0  # Redis back -> exact limits and logins again, without a restart
QUOTA = 5  # quickstart POST /users: 5/min per admin


class App:
    def __init__(self, prefix, iss, aud):
        url = os.environ[f"FAULT_{prefix}_URL"]
        self.host, self.port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
        self.pid = int(os.environ[f"FAULT_{prefix}_PID"])
        self.secret = os.environ[f"FAULT_{prefix}_SECRET"].encode()
        self.iss, self.aud = iss, aud

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    def call(self, method, path, body=None, headers=None, timeout=6.0):
        """(status, content-type, body, seconds); status is an error name on failure."""
        h = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body)
            h["content-type"] = "application/json"
        t0 = time.monotonic()
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, r.getheader("content-type") or "", data, time.monotonic() - t0
        except OSError as e:
            return type(e).__name__, "", b"", time.monotonic() - t0
        finally:
            c.close()


QS = ACC = None


def bearer(tok):
    return {"authorization": f"Bearer {tok}"}


def qs_admin(sub):
    return mint(QS.secret, sub, ("admin",), iss=QS.iss, aud=QS.aud)


def create_users(sub, n):
    """n concurrent POST /users for one admin subject: [(status, seconds)]."""
    tok = qs_admin(sub)
    out = [None] * n

    def go(i):
        s, ct, _, dt = QS.call("POST", "/users", {"username": f"u{i}", "email": f"u{i}@example.com", "age": 1},
                               bearer(tok))
        out[i] = (s, dt, ct)

    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(15)
    return [x or ("not run", 99, "") for x in out]


def login():
    body = urllib.parse.urlencode({"grant_type": "password", "username": os.environ["FAULT_ACC_USER"],
                                   "password": os.environ["FAULT_ACC_PASSWORD"]})
    s, ct, data, dt = ACC.call("POST", "/token", body, {"content-type": "application/x-www-form-urlencoded"})
    tok = json.loads(data).get("access_token") if s == 200 else None
    return s, ct, dt, tok


def reports():
    s, ct, _, dt = ACC.call("GET", "/reports", headers={"x-api-key": os.environ["FAULT_ACC_KEY"]})
    return s, ct, dt


def me(tok):
    s, ct, _, dt = ACC.call("GET", "/me", headers=bearer(tok))
    return s, ct, dt


# ---------------------------------------------------------------- Redis control

REDIS_PORT = int(os.environ.get("FAULT_REDIS_PORT", "0"))
REDIS_PIDFILE = os.environ.get("FAULT_REDIS_PIDFILE", "")


def redis_cli(*args, timeout=10):
    p = subprocess.run(["redis-cli", "-p", str(REDIS_PORT), *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.stdout.strip()


def redis_pid():
    try:
        return int(open(REDIS_PIDFILE).read().strip())
    except (OSError, ValueError):
        return None


def redis_up():
    try:
        return redis_cli("ping", timeout=2) == "PONG"
    except subprocess.TimeoutExpired:
        return False


def redis_kill():
    pid = redis_pid()
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(50):
        if not redis_up():
            return
        time.sleep(0.1)


def redis_start():
    # The same command line faults.sh used; the trap there kills whatever the pidfile names.
    p = subprocess.Popen(["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--enable-debug-command", "local",
                          "--logfile", os.environ.get("FAULT_REDIS_LOG", "/dev/null")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    with open(REDIS_PIDFILE, "w") as f:
        f.write(str(p.pid))
    for _ in range(100):
        if redis_up():
            return
        time.sleep(0.05)
    raise RuntimeError("redis-server did not come back")


def rate_keys(sub):
    return [k for k in redis_cli("--scan", "--pattern", "shieldwall:rl:*").splitlines() if sub in k]


# ---------------------------------------------------------------- checks


def check_quickstart_fallback(r, results, when):
    statuses = [x[0] for x in results]
    slow = max(x[1] for x in results)
    admitted = statuses.count(201)
    r.check(all(s in (201, 429) for s in statuses),
            f"{when}: quickstart POST /users falls back to the local quota (201/429, never 5xx)",
            f"{sorted(statuses, key=str)}")
    r.check(admitted <= QUOTA, f"{when}: at most {QUOTA} of {len(statuses)} admitted for one admin",
            f"{admitted} admitted")
    r.check(slow < RESPONSE_BOUND, f"{when}: every answer within {RESPONSE_BOUND:.1f} s",
            f"slowest {slow * 1000:.0f} ms")


def check_fail_closed(r, what, res, when):
    s, ct, dt = res[0], res[1], res[2]
    r.check(s == 503 and ct.startswith("application/problem+json") and dt < RESPONSE_BOUND,
            f"{when}: accounts {what} fails closed, 503 problem+json within {RESPONSE_BOUND:.1f} s",
            f"{s} {ct} in {dt * 1000:.0f} ms")


def check_recovered(r, started, old_token_policy=None):
    """Redis is back: limits are exact again (a fresh admin gets exactly 5 of 10, kept in
    Redis) and logins work, within RECOVERY_BOUND of `started`, with no restart."""
    deadline = started + RECOVERY_BOUND
    while True:
        s, _, _, tok = login()
        if s == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    r.check(s == 200, "accounts: logins work again, no restart", f"{s} after {time.monotonic() - started:.1f} s")
    if tok:
        r.check(me(tok)[0] == 200, "accounts: the new token is accepted by GET /me")
    sub = fresh("after")
    got = create_users(sub, 10)
    statuses = sorted(x[0] for x in got)
    keys = rate_keys(sub)
    r.check(statuses.count(201) == QUOTA and statuses.count(429) == 10 - QUOTA and keys,
            f"quickstart: a fresh admin gets exactly {QUOTA} of 10, counted in Redis again",
            f"{statuses}, Redis keys {len(keys)}")
    r.check(QS.alive() and ACC.alive(), "both servers are still the same processes")


class Probe:
    """Runs the fault-time probes concurrently while a fault lasts."""

    def __init__(self):
        self.results = {}
        self.threads = []

    def run(self, name, fn):
        def go():
            self.results[name] = fn()
        t = threading.Thread(target=go)
        t.start()
        self.threads.append(t)

    def join(self):
        for t in self.threads:
            t.join(20)
        return self.results


def health_series(app, seconds):
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        s, _, _, dt = app.call("GET", "/health", timeout=6)
        out.append((s, dt))
        time.sleep(0.05)
    return out


def during_outage(r, when, token):
    """The probes that must hold while Redis does not answer."""
    sub = fresh("outage")
    p = Probe()
    p.run("create", lambda: create_users(sub, 10))
    p.run("login", login)
    p.run("me", lambda: me(token))
    p.run("reports", reports)
    p.run("health", lambda: health_series(QS, 1.5))
    res = p.join()
    check_quickstart_fallback(r, res["create"], when)
    check_fail_closed(r, "POST /token (login)", res["login"][:3], when)
    check_fail_closed(r, "GET /me (revocation state unreadable)", res["me"], when)
    s, ct, dt = res["reports"]
    r.check(s == 200 and dt < RESPONSE_BOUND, f"{when}: accounts GET /reports (API key, local rate fallback) 200 "
            f"within {RESPONSE_BOUND:.1f} s", f"{s} in {dt * 1000:.0f} ms")
    h = res["health"]
    r.check(h and all(x[0] == 200 for x in h) and max(x[1] for x in h) < 0.5,
            f"{when}: quickstart GET /health 200 within 500 ms throughout",
            f"{len(h)} answers, slowest {max(x[1] for x in h) * 1000:.0f} ms")
    return sub


def warm():
    """Both apps have talked to Redis (connections made, scripts loaded) before the fault."""
    s, _, _, tok = login()
    assert s == 200, f"accounts login before the fault: {s}"
    assert create_users(fresh("warm"), 1)[0][0] == 201
    return tok


# ---------------------------------------------------------------- scenarios


def redis_debug_sleep(r):
    """Redis slow: DEBUG SLEEP 3 (the server answers nothing for 3 s)"""
    slow_redis(r, ["DEBUG", "SLEEP", "3"], "DEBUG SLEEP 3")


def redis_client_pause(r):
    """Redis slow: CLIENT PAUSE 3000 ALL (every client's commands wait 3 s)"""
    slow_redis(r, ["CLIENT", "PAUSE", "3000", "ALL"], "CLIENT PAUSE 3000")


def slow_redis(r, cmd, label):
    tok = warm()
    t0 = time.monotonic()
    cli = subprocess.Popen(["redis-cli", "-p", str(REDIS_PORT), *cmd], stdout=subprocess.DEVNULL)
    time.sleep(0.2)
    sub = during_outage(r, f"during {label}", tok)
    cli.wait(10)
    # Let the pause run out before counting the recovery.
    time.sleep(max(0, 3.1 - (time.monotonic() - t0)))
    back = time.monotonic()
    again = create_users(sub, 10)
    r.info(f"the outage's admin once Redis answers again: {sorted(x[0] for x in again)} "
           f"(the requests that timed out still ran in Redis when it woke)")
    check_recovered(r, back)
    r.check(me(tok)[0] == 200, "accounts: the token from before the pause is accepted again (nothing was lost)")


def redis_killed(r):
    """Redis killed (SIGKILL) in the middle of a burst of requests"""
    tok = warm()
    sub = fresh("mid-request")
    qs_tok = qs_admin(sub)
    seen, stop = [], threading.Event()

    def traffic():
        i = 0
        while not stop.is_set():
            s, _, _, dt = QS.call("POST", "/users", {"username": f"m{i}", "email": "m@example.com", "age": 1},
                                  bearer(qs_tok))
            seen.append(("create", s, dt))
            s2, _, dt2 = me(tok)
            seen.append(("me", s2, dt2))
            i += 1

    ts = [threading.Thread(target=traffic) for _ in range(3)]
    for t in ts:
        t.start()
    time.sleep(0.4)
    redis_kill()
    time.sleep(1.0)
    stop.set()
    for t in ts:
        t.join(10)
    slow = max(x[2] for x in seen)
    creates = [x[1] for x in seen if x[0] == "create"]
    mes = sorted({x[1] for x in seen if x[0] == "me"}, key=str)
    r.info(f"{len(seen)} requests across the kill; POST /users {sorted(set(creates), key=str)}, "
           f"{creates.count(201)} admitted; GET /me {mes}")
    r.check(slow < RESPONSE_BOUND, f"across the kill: every answer within {RESPONSE_BOUND:.1f} s",
            f"slowest {slow * 1000:.0f} ms")
    r.check(all(s in (201, 429) for s in creates), "across the kill: POST /users never answers 5xx")
    r.check(set(mes) <= {200, 503}, "across the kill: GET /me is 200 (Redis up) or 503 (down), nothing else",
            str(mes))
    # The local store mirrors what Redis admitted, so the fallback continues from that count.
    r.check(creates.count(201) <= QUOTA,
            f"across the kill: one admin got at most {QUOTA} (the local fallback continues Redis's count)",
            f"{creates.count(201)}")
    during_outage(r, "Redis down", tok)


def redis_restarted(r):
    """Redis restarted (empty, volatile) after the kill: exact again, without an app restart"""
    if redis_up():
        redis_kill()  # run on its own: make the outage first
    redis_start()
    check_recovered(r, time.monotonic())


def redis_restarted_logs_out(r):
    """Redis restarted: tokens issued before a volatile Redis restarts are refused (the epoch)"""
    tok = warm()
    r.check(me(tok)[0] == 200, "a token works before the restart")
    redis_kill()
    redis_start()
    time.sleep(1.1)  # the epoch is whole seconds
    s = me(tok)
    r.check(s[0] == 401, "the token from before the restart is refused (401: log in again)", f"{s[0]}")
    s2, _, _, tok2 = login()
    r.check(s2 == 200 and me(tok2)[0] == 200, "a new login works at once")


def hold_lock(db, seconds, locked):
    c = sqlite3.connect(db, timeout=5, isolation_level=None)
    c.execute("BEGIN EXCLUSIVE")
    locked.set()
    time.sleep(seconds)
    c.execute("ROLLBACK")
    c.close()


def locked_for(db, seconds, probes):
    """Hold BEGIN EXCLUSIVE on db for `seconds` while the probes run; their results."""
    locked = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(db, seconds, locked))
    holder.start()
    locked.wait(5)
    p = Probe()
    for name, fn in probes.items():
        p.run(name, fn)
    res = p.join()
    holder.join(10)
    return res


def sqlite_locked(r):
    """SQLite store locked: BEGIN EXCLUSIVE held on the accounts database for 3 s, twice"""
    db = os.environ["FAULT_ACC_DB"]
    s0, _, _, tok = login()
    assert s0 == 200 and reports()[0] == 200
    # 1. The library's API-key store (shieldwall::auth::api_key::SqliteKeyStore): requests
    # with keys wait for the lock on the blocking pool, every other request is served.
    probes = {"health": lambda: health_series(ACC, 3.0)}
    probes.update({f"reports{i}": reports for i in range(6)})
    res = locked_for(db, 3, probes)
    h = res["health"]
    lat = [x[1] * 1000 for x in h]
    r.check(h and all(x[0] == 200 for x in h) and percentile(lat, 99) < 500,
            "while API-key lookups wait for the lock, GET /health stays 200 with p99 < 500 ms",
            f"{len(h)} answers, statuses {sorted({x[0] for x in h}, key=str)}, p50 {percentile(lat, 50):.0f} ms, "
            f"p99 {percentile(lat, 99):.0f} ms, max {max(lat, default=0):.0f} ms")
    rep = [res[f"reports{i}"] for i in range(6)]
    r.check(all(x[0] in (200, 503) and x[2] < 6.0 for x in rep),
            "GET /reports (API key in SQLite): 200 once the lock goes, or 503, within the busy timeout (5 s) + 1 s",
            str([(x[0], round(x[2], 2)) for x in rep]))
    after = reports()
    r.check(after[0] == 200 and after[2] < 0.5, "unlocked: API keys work again at once, no restart",
            f"{after[0]} in {after[2] * 1000:.0f} ms")
    # 2. The example's own queries (users for logins, GET /me) wait on the blocking pool
    # too (examples/accounts.rs `on_db`): users copy examples.
    res = locked_for(db, 2, {"health": lambda: health_series(ACC, 2.0), "login": login,
                             "me1": lambda: me(tok), "me2": lambda: me(tok)})
    lat = [x[1] * 1000 for x in res["health"]]
    r.check(res["health"] and all(x[0] == 200 for x in res["health"]) and percentile(lat, 99) < 500,
            "while the example's own queries wait for the lock, GET /health stays 200 with p99 < 500 ms",
            f"login {res['login'][0]} in {res['login'][2]:.2f} s, GET /me {res['me1'][0]} in "
            f"{res['me1'][2]:.2f} s; GET /health p99 {percentile(lat, 99):.0f} ms, max {max(lat, default=0):.0f} ms")
    r.check(login()[0] == 200 and me(tok)[0] == 200, "unlocked: logins and GET /me work again, no restart")


SCENARIOS = {
    "redis_debug_sleep": redis_debug_sleep,
    "redis_client_pause": redis_client_pause,
    "redis_killed": redis_killed,
    "redis_restarted": redis_restarted,
    "redis_restarted_logs_out": redis_restarted_logs_out,
    "sqlite_locked": sqlite_locked,
}


def main():
    global QS, ACC
    QS = App("QS", "shieldwall-quickstart", "quickstart-api")
    ACC = App("ACC", "shieldwall-accounts", "accounts-api")
    names = sys.argv[1:] or list(SCENARIOS)
    failed = []
    for n in names:
        if n not in SCENARIOS:
            raise SystemExit(f"unknown scenario {n}; known: {', '.join(SCENARIOS)}")
        print(f"== {n}: {SCENARIOS[n].__doc__.strip().splitlines()[0]}", flush=True)
        r = Report(n)
        try:
            if not redis_up() and n != "redis_restarted":
                redis_start()
            SCENARIOS[n](r)
        except Exception as e:
            r.check(False, "the scenario ran to its end", f"{type(e).__name__}: {e}")
        r.check(QS.alive() and ACC.alive(), "the quickstart and accounts processes are still running")
        print(f"== {n} {'FAILED' if r.failed else 'passed'} in {time.monotonic() - r.t0:.1f} s", flush=True)
        if r.failed:
            failed.append(n)
    if failed:
        print(f"FAILED: {' '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

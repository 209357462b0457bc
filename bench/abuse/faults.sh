#!/usr/bin/env bash
# Fault scenarios under the running examples (bench/abuse/faults.py says what each checks).
#
#   bench/abuse/faults.sh [--no-build] [SCENARIO…]
#
# Starts its own redis-server on a free port (DEBUG allowed from loopback), the quickstart
# with Redis as its rate store, and the accounts example with Redis (rate store and token
# state) and a fresh SQLite database holding one user and one API key; runs the scenarios
# under a hard timeout; stops everything on exit, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/abuse
build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
if [ $build = 1 ]; then
  echo "== build (cargo build --workspace --all-features --example quickstart --example accounts)"
  cargo build --workspace --all-features --example quickstart --example accounts
fi
bin=$PWD/target/debug/examples

run_dir=$(mktemp -d /tmp/shieldwall-faults.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}" "$(cat "$run_dir/redis.pid" 2>/dev/null)"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  sleep 0.2
  for p in "${pids[@]}" "$(cat "$run_dir/redis.pid" 2>/dev/null)"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$run_dir"
}
trap cleanup EXIT INT TERM

redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --enable-debug-command local \
  --logfile "$run_dir/redis.log" >/dev/null &
echo $! >"$run_dir/redis.pid"
disown # killed by the trap or a scenario; no job report
for _ in $(seq 50); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis_url="redis://127.0.0.1:$redis_port/"

start() { # start NAME BANNER ENV… -> sets started_url, started_pid
  local name=$1 banner=$2
  shift 2
  env "$@" SHIELDWALL_ADDR=127.0.0.1:0 SHIELDWALL_REDIS_URL="$redis_url" RUST_LOG=warn \
    "$bin/$name" >"$run_dir/$name.out" 2>"$run_dir/$name.err" &
  started_pid=$!
  disown
  pids+=("$started_pid")
  started_url=
  for _ in $(seq 100); do
    started_url=$(sed -n "s/^$banner \(http:[^ ]*\)$/\1/p" "$run_dir/$name.out")
    [ -n "$started_url" ] && return 0
    kill -0 "$started_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:"; cat "$run_dir/$name.err"; exit 1
}

qs_secret=$(head -c 48 /dev/urandom | base64 -w0)
start quickstart "shieldwall quickstart listening on" SHIELDWALL_JWT_SECRET="$qs_secret"
qs_url=$started_url qs_pid=$started_pid

acc_secret=$(head -c 48 /dev/urandom | base64 -w0)
acc_db=$run_dir/accounts.db
acc_password="fault scenario password $RANDOM$RANDOM"
# The accounts CLI reads a .env in development: run it from the run directory.
(cd "$run_dir" && SHIELDWALL_DATABASE_URL="$acc_db" SHIELDWALL_JWT_SECRET="$acc_secret" \
  "$bin/accounts" create-user --username faulty --password "$acc_password" >/dev/null)
acc_key=$(cd "$run_dir" && SHIELDWALL_DATABASE_URL="$acc_db" SHIELDWALL_JWT_SECRET="$acc_secret" \
  "$bin/accounts" create-key --owner billing --scopes reports:read | tail -1)
cd "$run_dir"
start accounts "shieldwall accounts listening on" SHIELDWALL_DATABASE_URL="$acc_db" SHIELDWALL_JWT_SECRET="$acc_secret"
cd - >/dev/null
acc_url=$started_url acc_pid=$started_pid
echo "== Redis 127.0.0.1:$redis_port; quickstart pid $qs_pid $qs_url; accounts pid $acc_pid $acc_url"

export FAULT_QS_URL=$qs_url FAULT_QS_PID=$qs_pid FAULT_QS_SECRET=$qs_secret
export FAULT_ACC_URL=$acc_url FAULT_ACC_PID=$acc_pid FAULT_ACC_SECRET=$acc_secret FAULT_ACC_DB=$acc_db
export FAULT_ACC_USER=faulty FAULT_ACC_PASSWORD=$acc_password FAULT_ACC_KEY=$acc_key
export FAULT_REDIS_PORT=$redis_port FAULT_REDIS_PIDFILE=$run_dir/redis.pid FAULT_REDIS_LOG=$run_dir/redis.log
set +e
timeout -k 5 120 python3 "$here/faults.py" "$@"
rc=$?
set -e
[ $rc -eq 124 ] && echo "== faults: killed at the hard timeout of 120 s"
exit $rc

#!/usr/bin/env bash
# Soak: the quickstart with the Redis rate store under DURATION seconds of mixed traffic
# (valid, invalid, expired and garbled tokens; 422 bodies; one admin far over its 5/min;
# slow heads and bodies the server must cut; new connections beside kept-alive ones), its
# RSS, open file descriptors and latency sampled every 2 s, judged at the end.
#
#   bench/soak.sh DURATION_SECS [--release]
#       bench/soak.sh 600 --release   the documented run (bench/soak/soak-600s-release.*)
#       bench/soak.sh 60              the short run in .ci/run (debug: reuses the test build)
#
# Builds `cargo build --all-features --example quickstart` (debug unless --release), starts
# its own redis-server on a free port and the quickstart on 127.0.0.1 (a free port, a JWT
# secret of its own, SHIELDWALL_REDIS_URL, SHIELDWALL_REQUEST_TIMEOUT_SECS=5), then runs
# bench/soak.py, which writes bench/soak/soak-<N>s-<build>.csv (the series), .json (totals
# and the verdict of each check) and .png (the plot; matplotlib is installed with pip when
# missing, and a run shorter than 600 s goes on without the plot if that fails). Exits
# non-zero when a check fails (thresholds: bench/soak.py, README "Soak"). Everything it
# starts is stopped on exit. Targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: bench/soak.sh DURATION_SECS [--release]   (DURATION 10..3600)" >&2
  exit 2
}
duration=${1:-}
[[ $duration =~ ^[0-9]+$ && $duration -ge 10 && $duration -le 3600 ]] || usage
build=debug
case "${2:-}" in
  "") ;;
  --release) build=release ;;
  *) usage ;;
esac
for tool in cargo python3; do
  command -v "$tool" >/dev/null || {
    echo "soak.sh: $tool not found" >&2
    exit 2
  }
done
if ! command -v redis-server >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
fi

plot=auto
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check matplotlib >/dev/null 2>&1 || true
fi
if [ "$duration" -ge 600 ]; then
  plot=require
fi

t0=$(date +%s)
work=$(mktemp -d)
server_pid=""
redis_pid_file="$work/redis.pid"
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -s "$redis_pid_file" ]; then
    kill "$(cat "$redis_pid_file")" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak: building the quickstart ($build) ..."
flags=(--all-features --example quickstart)
[ "$build" = release ] && flags+=(--release)
if ! cargo build "${flags[@]}" >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "soak.sh: build failed" >&2
  exit 1
fi
bin=${CARGO_TARGET_DIR:-target}/$build/examples/quickstart
t_built=$(date +%s)

# A Redis of our own on a port nothing answers on.
redis_port=$((20000 + RANDOM % 20000))
while redis-cli -p "$redis_port" ping >/dev/null 2>&1; do
  redis_port=$((redis_port + 1))
done
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$redis_pid_file" --logfile "$work/redis.log" >/dev/null
for _ in $(seq 50); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
redis-cli -p "$redis_port" ping | grep -q PONG || {
  echo "soak.sh: redis-server did not start" >&2
  exit 1
}

# The quickstart on a free port (it prints the address it bound and its demo tokens).
secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
SHIELDWALL_ADDR=127.0.0.1:0 SHIELDWALL_JWT_SECRET=$secret \
  SHIELDWALL_REDIS_URL="redis://127.0.0.1:$redis_port/" SHIELDWALL_REQUEST_TIMEOUT_SECS=5 \
  RUST_LOG=${RUST_LOG:-warn} "$bin" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
base=""
for _ in $(seq 100); do
  base=$(sed -n 's/^shieldwall quickstart listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$work/server.out")
  [ -n "$base" ] && grep -q '^USER=' "$work/server.out" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$base" ]; then
  cat "$work/server.out" "$work/server.err" >&2
  echo "soak.sh: the quickstart did not start" >&2
  exit 1
fi
SOAK_USER_TOKEN=$(sed -n 's/^USER=//p' "$work/server.out")
SOAK_ADMIN_TOKEN=$(sed -n 's/^ADMIN=//p' "$work/server.out")
export SOAK_USER_TOKEN SOAK_ADMIN_TOKEN SOAK_JWT_SECRET=$secret

mkdir -p bench/soak
out=bench/soak/soak-${duration}s-$build
echo "soak: $duration s against $base (pid $server_pid, Redis on $redis_port) -> $out.{csv,json,png}"
status=0
# A hard bound whatever happens: the run, the slow clients' cut and the drain take about
# DURATION + 25 s.
timeout --kill-after=10 $((duration + 180)) python3 bench/soak.py --base "$base" --pid "$server_pid" --redis-port "$redis_port" \
  --duration "$duration" --build "$build" --request-timeout 5 --out "$out" \
  --server-log "$work/server.err" --plot "$plot" ${SOAK_VERBOSE:+--verbose} || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server stderr (last 40 lines)" >&2
  tail -n 40 "$work/server.err" >&2
fi
t_end=$(date +%s)
echo "soak: build $((t_built - t0)) s, run $((t_end - t_built)) s, total $((t_end - t0)) s"
exit "$status"

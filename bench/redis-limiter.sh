#!/usr/bin/env bash
# Requests/s through one instance with the Redis limiter on versus off, same run.
#   bench/redis-limiter.sh [rounds] [seconds]
# Needs wrk and redis-server (apt-get install -y wrk redis-server). Targets 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
port_redis=$((20000 + RANDOM % 10000))
port_app=$((30000 + RANDOM % 10000))

cargo build --release --example bench_limiter >/dev/null 2>&1
redis-server --port "$port_redis" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
redis_pid=$!
trap 'kill $redis_pid $app_pid 2>/dev/null || true' EXIT
sleep 0.5
SHIELDWALL_REDIS_URL="redis://127.0.0.1:$port_redis/" SHIELDWALL_ADDR="127.0.0.1:$port_app" \
  taskset -c 0 target/release/examples/bench_limiter >/dev/null &
app_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port_app/open" >/dev/null && break; sleep 0.1; done

run() { taskset -c 1 wrk -t1 -c64 -d"${secs}s" "http://127.0.0.1:$port_app$1" | awk '/Requests\/sec/ {print $2}'; }
off=(); on=()
for r in $(seq "$rounds"); do
  o=$(run /open); l=$(run /limited)
  off+=("$o"); on+=("$l")
  echo "round $r: limiter off $o req/s, limiter on (redis) $l req/s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mo=$(median "${off[@]}"); ml=$(median "${on[@]}")
echo "median: off $mo req/s, on $ml req/s, on/off = $(awk -v a="$ml" -v b="$mo" 'BEGIN {printf "%.2f", a/b}')"

#!/usr/bin/env bash
# Load test: four servers from one release build, measured in one run with the same load
# generator, alternating A, B, S, F in every round so that machine noise hits all alike.
#   A  bare axum 0.8, GET /users answering a small JSON: the ceiling
#   B  POST /users secured by hand: axum + jsonwebtoken (HS256, role checked in an extractor)
#      + validator + tower_governor + tower-http CORS + five security headers
#   S  the same POST /users as one #[secure(post ..., role = "admin", rate = ...)] route
#   F  the same POST /users with no security (axum Json + validator): the floor B and S
#      stand on; B - F and S - F are what their protections cost
# (examples/load_a_bare.rs, load_b_handbuilt.rs, load_s_shieldwall.rs, load_f_floor.rs;
# token: load_token.rs)
#
#   bench/load.sh [rounds] [seconds]      defaults: 3 rounds of 10 s per server
#
# Servers run on core 0 (taskset -c 0), wrk on core 1 (taskset -c 1, one thread, 64
# connections, bench/post_users.lua). Each run reports requests/s, p50 and p99 latency,
# server CPU time per request (utime+stime from /proc/PID/stat over the run, divided by the
# requests), peak RSS (VmHWM) and private memory (RssAnon after the run; RSS also counts the
# binary's code pages); the summary gives medians over rounds and ends with
#   S/A = x.xx  S/B = y.yy
# (medians over rounds of each round's requests/s ratio). Before measuring, every server
# must answer the request with the expected status (A: 200; B, S: 200/201, and 401 without
# a token; F: 201); a non-2xx answer or a socket error during a run fails the script.
# Needs wrk, taskset and curl (apt-get install -y wrk util-linux curl). Targets 127.0.0.1
# only; every server it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
secs=${2:-10}
conns=64
warmup=1
if ! [[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 && $rounds -le 10 ]]; then
  echo "load.sh: rounds must be 1..10 (got '$rounds')" >&2
  exit 2
fi
if ! [[ $secs =~ ^[0-9]+$ && $secs -ge 1 && $secs -le 60 ]]; then
  echo "load.sh: seconds must be 1..60 (got '$secs')" >&2
  exit 2
fi
for tool in wrk taskset curl cargo; do
  command -v "$tool" >/dev/null || {
    echo "load.sh: $tool not found (apt-get install -y wrk util-linux curl)" >&2
    exit 2
  }
done
if [ "$(nproc --all)" -lt 2 ]; then
  echo "load.sh: needs 2 cores (server on core 0, wrk on core 1)" >&2
  exit 2
fi

export SHIELDWALL_JWT_SECRET=${SHIELDWALL_JWT_SECRET:-shieldwall-load-test-secret-0123456789abcdef}
work=$(mktemp -d)
declare -A pid=()
cleanup() {
  for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building the servers (cargo build --release) ..."
if ! cargo build --release --example load_a_bare --example load_b_handbuilt \
  --example load_s_shieldwall --example load_f_floor --example load_token \
  >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "load.sh: build failed" >&2
  exit 1
fi
bin=${CARGO_TARGET_DIR:-target}/release/examples
token=$("$bin/load_token")
body='{"username":"alice","email":"alice@example.com","age":30}'

names=(A B S F)
declare -A exe=([A]=load_a_bare [B]=load_b_handbuilt [S]=load_s_shieldwall [F]=load_f_floor)
declare -A label=([A]="A bare axum" [B]="B by hand" [S]="S shieldwall" [F]="F no security")
declare -A port=()
base=$((20000 + RANDOM % 20000))
i=0
for n in "${names[@]}"; do
  port[$n]=$((base + i))
  i=$((i + 1))
  SHIELDWALL_ADDR="127.0.0.1:${port[$n]}" taskset -c 0 "$bin/${exe[$n]}" >"$work/$n.log" 2>&1 &
  pid[$n]=$!
done

url() { echo "http://127.0.0.1:${port[$1]}/users"; }

# Wait (at most 10 s each) until every server accepts connections.
for n in "${names[@]}"; do
  for _ in $(seq 100); do
    curl -s -o /dev/null --max-time 1 "$(url "$n")" && break
    if ! kill -0 "${pid[$n]}" 2>/dev/null; then
      echo "load.sh: server $n (${exe[$n]}) exited:" >&2
      cat "$work/$n.log" >&2
      exit 1
    fi
    sleep 0.1
  done
done

# One request with curl; prints the status code, keeps the body in $work/body.
ask() { # name, with_token(0|1)
  local n=$1 auth=()
  [ "$2" = 1 ] && auth=(-H "Authorization: Bearer $token")
  if [ "$n" = A ]; then
    curl -s --max-time 5 -o "$work/body" -w '%{http_code}' "$(url A)"
  else
    curl -s --max-time 5 -o "$work/body" -w '%{http_code}' -X POST \
      -H 'Content-Type: application/json' "${auth[@]}" --data "$body" "$(url "$n")"
  fi
}
fail_check() { # name, what, status
  echo "load.sh: server $1 (${exe[$1]}) answered $2 with $3, body:" >&2
  cat "$work/body" >&2
  echo >&2
  exit 1
}
for n in "${names[@]}"; do
  s=$(ask "$n" 1 || true)
  if [ "$n" = A ]; then
    [ "$s" = 200 ] || fail_check A "GET /users" "$s"
  elif [ "$n" = F ]; then
    [ "$s" = 201 ] || fail_check F "POST /users" "$s"
  else
    [[ $s == 200 || $s == 201 ]] || fail_check "$n" "POST /users as admin" "$s"
  fi
  echo "check $n: $([ "$n" = A ] && echo "GET" || echo "POST") /users -> $s $(head -c 200 "$work/body")"
  if [ "$n" = B ] || [ "$n" = S ]; then
    s=$(ask "$n" 0 || true)
    [ "$s" = 401 ] || fail_check "$n" "POST /users without a token" "$s"
    echo "check $n: POST /users without a token -> $s"
  fi
done

clk=$(getconf CLK_TCK)
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

# One wrk run against server $1 for $2 seconds; sets rps p50 p99 cpu (µs/request), rss and
# anon (KiB).
run() {
  local n=$1 d=$2 method=POST req_body=$body tok=$token
  if [ "$n" = A ]; then method=GET; req_body=; tok=; fi
  local t0 t1 out line
  t0=$(cpu_ticks "${pid[$n]}")
  out=$(LOAD_METHOD=$method LOAD_BODY=$req_body LOAD_TOKEN=$tok \
    timeout $((d + 30)) taskset -c 1 wrk -t1 -c"$conns" -d"${d}s" --timeout 5s \
    -s bench/post_users.lua "$(url "$n")") || {
    echo "load.sh: wrk failed against $n:" >&2
    echo "$out" >&2
    exit 1
  }
  t1=$(cpu_ticks "${pid[$n]}")
  line=$(grep '^RESULT ' <<<"$out") || {
    echo "load.sh: no RESULT line from wrk:" >&2
    echo "$out" >&2
    exit 1
  }
  local requests duration_us bad socket
  requests=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
  duration_us=$(sed 's/.*duration_us=\([0-9]*\).*/\1/' <<<"$line")
  p50=$(sed 's/.*p50_us=\([0-9]*\).*/\1/' <<<"$line")
  p99=$(sed 's/.*p99_us=\([0-9]*\).*/\1/' <<<"$line")
  bad=$(sed 's/.*bad_status=\([0-9]*\).*/\1/' <<<"$line")
  socket=$(sed 's/.*socket_errors=\([0-9]*\).*/\1/' <<<"$line")
  if [ "$bad" != 0 ] || [ "$socket" != 0 ] || [ "$requests" = 0 ]; then
    echo "load.sh: server $n: $bad non-2xx responses, $socket socket errors, $requests requests:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps=$(awk -v r="$requests" -v d="$duration_us" 'BEGIN {printf "%.0f", r / (d / 1e6)}')
  cpu=$(awk -v a="$t0" -v b="$t1" -v c="$clk" -v r="$requests" \
    'BEGIN {printf "%.2f", (b - a) / c * 1e6 / r}')
  rss=$(peak_kib "${pid[$n]}")
  anon=$(anon_kib "${pid[$n]}")
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.3f", u / 1000}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo "warm-up: ${warmup} s per server"
for n in "${names[@]}"; do run "$n" "$warmup"; done

echo "measuring: $rounds rounds x ${secs} s per server, wrk -t1 -c$conns, order A B S F"
declare -A RPS=() P50=() P99=() CPU=() RSS=() ANON=()
sa=()
sb=()
for r in $(seq "$rounds"); do
  for n in "${names[@]}"; do
    run "$n" "$secs"
    RPS[$n]+="$rps "
    P50[$n]+="$p50 "
    P99[$n]+="$p99 "
    CPU[$n]+="$cpu "
    RSS[$n]=$rss
    ANON[$n]=$(awk -v a="${ANON[$n]:-0}" -v b="$anon" 'BEGIN {print (b > a ? b : a)}')
    declare "rps_$n=$rps"
    printf 'round %d  %-13s %9s req/s  p50 %7s ms  p99 %7s ms  cpu %7s us/req  peak RSS %6s MiB  anon %5s MiB\n' \
      "$r" "${label[$n]}" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$cpu" "$(mib "$rss")" "$(mib "$anon")"
  done
  sa+=("$(ratio "$rps_S" "$rps_A")")
  sb+=("$(ratio "$rps_S" "$rps_B")")
  echo "round $r  S/A = ${sa[-1]}  S/B = ${sb[-1]}"
done

echo
echo "median over $rounds rounds (${secs} s each):"
printf '%-13s %10s %11s %11s %13s %14s %10s\n' server "req/s" "p50 ms" "p99 ms" "cpu us/req" "peak RSS MiB" "anon MiB"
declare -A mrps=() mcpu=()
for n in "${names[@]}"; do
  # shellcheck disable=SC2086 # word splitting of the per-round lists is intended
  mrps[$n]=$(median ${RPS[$n]})
  # shellcheck disable=SC2086
  mcpu[$n]=$(median ${CPU[$n]})
  # shellcheck disable=SC2086
  printf '%-13s %10s %11s %11s %13s %14s %10s\n' "${label[$n]}" "${mrps[$n]}" \
    "$(ms "$(median ${P50[$n]})")" "$(ms "$(median ${P99[$n]})")" "${mcpu[$n]}" \
    "$(mib "${RSS[$n]}")" "$(mib "${ANON[$n]}")"
done
echo "cpu per request: S/A = $(ratio "${mcpu[S]}" "${mcpu[A]}")  S/B = $(ratio "${mcpu[S]}" "${mcpu[B]}")"
echo "protections over the floor F (cpu per request): B +$(awk -v a="${mcpu[B]}" -v f="${mcpu[F]}" 'BEGIN {printf "%.2f", a - f}') us  S +$(awk -v a="${mcpu[S]}" -v f="${mcpu[F]}" 'BEGIN {printf "%.2f", a - f}') us"
echo "requests/s (median of the per-round ratios):"
echo "S/A = $(median "${sa[@]}")  S/B = $(median "${sb[@]}")"

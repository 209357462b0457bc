#!/usr/bin/env bash
# Abuse scenarios against the running quickstart, then the fault scenarios (faults.sh).
#
#   bench/abuse/run.sh                 # everything (build, HTTP/2, HTTP/1.1, faults)
#   bench/abuse/run.sh h2 h1           # only these groups: h2, h1, faults
#   bench/abuse/run.sh h2:rapid_reset  # one scenario of a group
#
# Builds the examples in the debug profile with the features `cargo test --workspace
# --all-features` uses (so after CI's tests the build is a no-op), starts its own
# redis-server on a free port and the quickstart on 127.0.0.1 with it as the rate store,
# runs each scenario under a hard timeout, stops both on exit, and exits non-zero if any
# scenario failed. Needs python3 with the `h2` package (hpack); h2load (nghttp2-client)
# is used when installed. bench/abuse/README.md says what each scenario checks.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/abuse
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(h2 h1 faults)

want() { # want GROUP -> the scenarios of GROUP asked for ("" = all), or exit 1 if none
  local g=$1 a found=1 list=()
  for a in "${groups[@]}"; do
    if [ "$a" = "$g" ]; then found=0; list=(); break; fi
    if [ "${a%%:*}" = "$g" ]; then found=0; list+=("${a#*:}"); fi
  done
  echo "${list[*]:-}"
  return $found
}

t_start=$(date +%s.%N)
echo "== build (cargo build --workspace --all-features --example quickstart --example accounts)"
cargo build --workspace --all-features --example quickstart --example accounts
bin=target/debug/examples

run_dir=$(mktemp -d /tmp/shieldwall-abuse.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$run_dir"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

failed=()
timings=()
scenario() { # scenario LABEL TIMEOUT_SECS COMMAND… : run one script under a hard timeout
  local label=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s.%N)
  set +e
  timeout -k 5 "$limit" "$@"
  rc=$?
  set -e
  local took
  took=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
  timings+=("$label ${took}s")
  if [ $rc -ne 0 ]; then
    [ $rc -eq 124 ] && echo "== $label: killed at its hard timeout of ${limit}s"
    failed+=("$label")
  fi
}

h2_list=$(want h2) && run_h2=1 || run_h2=0
h1_list=$(want h1) && run_h1=1 || run_h1=0
faults_list=$(want faults) && run_faults=1 || run_faults=0

if [ $run_h2 = 1 ] || [ $run_h1 = 1 ]; then
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --logfile "$run_dir/redis.log" >/dev/null &
  pids+=($!)
  disown
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

  secret=$(head -c 48 /dev/urandom | base64 -w0)
  SHIELDWALL_ADDR=127.0.0.1:0 SHIELDWALL_JWT_SECRET="$secret" \
    SHIELDWALL_REDIS_URL="redis://127.0.0.1:$redis_port/" \
    SHIELDWALL_REQUEST_TIMEOUT_SECS=5 SHIELDWALL_WRITE_TIMEOUT_SECS=5 RUST_LOG=warn \
    "$bin/quickstart" >"$run_dir/quickstart.out" 2>"$run_dir/quickstart.err" &
  qs_pid=$!
  disown
  pids+=($qs_pid)
  url=
  for _ in $(seq 100); do
    url=$(sed -n 's/^shieldwall quickstart listening on \(http:[^ ]*\)$/\1/p' "$run_dir/quickstart.out")
    [ -n "$url" ] && break
    kill -0 $qs_pid 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "the quickstart did not start:"; cat "$run_dir/quickstart.err"; exit 1
  fi
  echo "== quickstart pid $qs_pid on $url, Redis on 127.0.0.1:$redis_port"
  export ABUSE_URL=$url ABUSE_PID=$qs_pid ABUSE_SECRET=$secret
  export ABUSE_REQUEST_TIMEOUT_SECS=5 ABUSE_WRITE_TIMEOUT_SECS=5
  rss0=$(awk '/VmRSS/ {print $2}' /proc/$qs_pid/status)

  # shellcheck disable=SC2086
  [ $run_h2 = 1 ] && scenario "h2" 150 python3 "$here/h2_abuse.py" $h2_list
  # shellcheck disable=SC2086
  [ $run_h1 = 1 ] && scenario "h1" 150 python3 "$here/h1_abuse.py" $h1_list

  if kill -0 $qs_pid 2>/dev/null; then
    rss1=$(awk '/VmRSS/ {print $2}' /proc/$qs_pid/status)
    echo "== quickstart RSS over the whole run: $((rss0 / 1024)) -> $((rss1 / 1024)) MiB"
    if [ $((rss1 - rss0)) -ge $((64 * 1024)) ]; then
      echo "  [FAIL] RSS grew 64 MiB or more over the whole run"; failed+=("rss-total")
    fi
  else
    echo "  [FAIL] the quickstart is gone"; tail -20 "$run_dir/quickstart.err"; failed+=("quickstart-exited")
  fi
fi

if [ $run_faults = 1 ]; then
  # shellcheck disable=SC2086
  scenario "faults" 150 "$here/faults.sh" --no-build $faults_list
fi

echo "== timings: ${timings[*]:-none}; total $(python3 -c "print(f'{$(date +%s.%N) - $t_start:.0f}')") s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== FAILED: ${failed[*]}"
  exit 1
fi
echo "== all abuse and fault scenarios passed"

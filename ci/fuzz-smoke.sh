#!/usr/bin/env bash
# Build every cargo-fuzz target and run each one for a short time on the
# correct engine; fail if any target does not build or finds anything.
#
#   ci/fuzz-smoke.sh [--time SECS] [--sanitizer address|none] [TARGET...]
#
# --time SECS      libFuzzer -max_total_time per target (default 30)
# --sanitizer S    build with cargo-fuzz's defaults and this sanitizer
#                  (address: what cargo fuzz run does by default) instead of
#                  the campaign's build (FUZZ_BUILD_FLAGS in ci/fuzz-limits.sh,
#                  or the environment's FUZZ_BUILD_FLAGS)
# TARGET...        only these targets (default: every target in fuzz/Cargo.toml)
#
# Installs what is missing: the nightly toolchain (rustup) and cargo-fuzz
# (cargo install). Each target runs on its working corpus fuzz/corpus/<t>
# (git-ignored, kept between runs) plus the committed seeds fuzz/seeds/<t>,
# with the dictionary fuzz/dict/<t>.dict. The last lines are a Markdown table
# of executions and libFuzzer's exec/s per target (fuzz/README.md quotes it).
# Set CRASHFUZZ_MUTANT=<seeded bug> to run with a seeded bug switched on (the
# run is then expected to fail).
set -euo pipefail
env_build_flags=${FUZZ_BUILD_FLAGS-}
# shellcheck source=ci/fuzz-limits.sh
. "$(dirname "$0")/fuzz-limits.sh"
[ -n "$env_build_flags" ] && FUZZ_BUILD_FLAGS=$env_build_flags
cd "$(dirname "$0")/../fuzz"

time_secs=30
sanitizer=()
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_secs="$2"; shift 2 ;;
    --time=*) time_secs="${1#--time=}"; shift ;;
    --sanitizer) sanitizer=(--sanitizer "$2"); shift 2 ;;
    --sanitizer=*) sanitizer=(--sanitizer "${1#--sanitizer=}"); shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz-smoke: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
case "$time_secs" in ''|*[!0-9]*) echo "fuzz-smoke: --time needs whole seconds" >&2; exit 2 ;; esac

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "== installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version "${CARGO_FUZZ_VERSION:-0.13.2}"
fi
echo "== $(cargo +nightly --version); $(cargo fuzz --version)"

if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

# The same flags for build and run (cargo fuzz run rebuilds otherwise).
if [ ${#sanitizer[@]} -eq 0 ]; then
  read -r -a build_flags <<<"$FUZZ_BUILD_FLAGS"
  build_name="campaign build ($FUZZ_BUILD_FLAGS)"
else
  build_flags=("${sanitizer[@]}")
  build_name="cargo-fuzz defaults, sanitizer ${sanitizer[1]}"
fi
echo "== building ${targets[*]}: $build_name"
cargo +nightly fuzz build "${build_flags[@]}"

failed=()
rows=()
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for t in "${targets[@]}"; do
  echo "== $t: ${time_secs}s"
  mkdir -p "corpus/$t"
  dict=()
  [ -f "dict/$t.dict" ] && dict=("-dict=dict/$t.dict")
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  status=0
  cargo +nightly fuzz run "${build_flags[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$time_secs" -timeout="$FUZZ_TIMEOUT_SECS" \
    -rss_limit_mb="$FUZZ_RSS_LIMIT_MB" -print_final_stats=1 "${dict[@]}" \
    >"$logs/$t.log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^INFO: Seed|stat::' "$logs/$t.log" || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)
  per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -n 1)
  cov=$({ grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t.log" || true; } | sed -n 's/.*cov: \([0-9]*\).*/\1/p' | tail -n 1)
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    rows+=("| $t | FAILED (exit $status) | | |")
    echo "!! $t failed (exit $status); the end of its log:"
    tail -n 60 "$logs/$t.log"
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logs/$t.log" | tail -n 1)
    if [ -n "$artifact" ]; then
      echo "!! artifact: $artifact"
      echo "!! replay:   cargo run --release --bin crashfuzz -- repro --target $t $artifact"
      echo "!! shrink:   cargo run --release --bin crashfuzz -- minimize --target $t $artifact"
    fi
  else
    rows+=("| $t | ${execs:-?} | ${per_sec:-?} | ${cov:-?} |")
  fi
done

echo
echo "fuzz smoke, ${time_secs}s per target, $build_name:"
echo
echo "| target | executions | exec/s | coverage (edges) |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets ran ${time_secs}s each without a finding"

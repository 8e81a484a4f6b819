#!/usr/bin/env bash
# The nightly crash-consistency campaign: what CI runs every night and what
# anyone can run locally with the same result.
#
#   ci/nightly.sh [--budget SECS] [--jobs N] [--out DIR] [--cache DIR]
#                 [--targets "a b"] [--canary | --mutant BUG] [--known FILE]
#                 [--seed N] [--verify-tests | --no-verify-tests]
#                 [--import DIR] [--no-install] [--no-build]
#
# 1. installs the nightly toolchain and cargo-fuzz if missing;
# 2. builds crashfuzz (stable) and every fuzz target (cargo fuzz build);
# 3. restores each target's corpus from the cache directory (a CI cache);
# 4. fuzzes every target for its share of the budget, libFuzzer fork mode
#    over N jobs, crashes saved and fuzzing continued;
# 5. merges and minimizes each corpus (libFuzzer -merge=1, what cargo fuzz
#    cmin runs) and saves it back to the cache;
# 6. runs the stable explorer and the seeded-bug benchmark;
# 7. triages every crash: crashfuzz repro gives its signature (failure kind +
#    invariant + crash point, hashed; see ci/README.md), artifacts are grouped
#    by it, the smallest of each group is minimized (crashfuzz minimize) into
#    an artifact and a regression test;
# 8. writes the report (crashfuzz report): report.md, report.json, plots/.
#
# --import DIR adds crashes found elsewhere (ClusterFuzzLite, a local
# `cargo fuzz run`) to the triage: DIR/<fuzz target>/<input files>, the
# layout of fuzz/artifacts/.
#
# Budget: 70% fuzzing (split evenly over the targets), 15% explorer, 15% the
# seeded-bug benchmark (which stops each bug at its first detection). Builds
# and triage come on top.
#
# Exit: 0 the campaign passed; 1 a new unique crash (one whose signature is
# not in --known), a seeded bug that escaped, a target that did not run, a
# failpoint never crashed at, or (with --canary) the seeded bug not found;
# 2 the campaign itself could not run (bad usage, build failure).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=ci/lib-nightly.sh
. "$ROOT/ci/lib-nightly.sh"

BUDGET=3600
JOBS=$(nproc 2>/dev/null || echo 2)
# Default inside target/, which git ignores.
OUT=$ROOT/target/nightly-report
CACHE=${CRASHFUZZ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crashfuzz-nightly}
TARGETS_ARG=""
MUTANT=""
KNOWN=$ROOT/ci/known-crashes.txt
SEED=""
VERIFY=auto
IMPORT=""
INSTALL=1
BUILD=1
FUZZ_BUILD_FLAGS=${FUZZ_BUILD_FLAGS:--O --debug-assertions --sanitizer none}

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
  exit "${1:-2}"
}

while [ $# -gt 0 ]; do
  case "$1" in
  --budget) BUDGET=$2; shift 2 ;;
  --jobs) JOBS=$2; shift 2 ;;
  --out) OUT=$2; shift 2 ;;
  --cache) CACHE=$2; shift 2 ;;
  --targets) TARGETS_ARG=$2; shift 2 ;;
  --mutant) MUTANT=$2; shift 2 ;;
  --canary) MUTANT=header-before-data-sync; shift ;;
  --known) KNOWN=$2; shift 2 ;;
  --seed) SEED=$2; shift 2 ;;
  --verify-tests) VERIFY=1; shift ;;
  --no-verify-tests) VERIFY=0; shift ;;
  --import) IMPORT=$2; shift 2 ;;
  --no-install) INSTALL=0; shift ;;
  --no-build) BUILD=0; shift ;;
  -h | --help) usage 0 ;;
  *) warn "unknown argument $1"; usage 2 ;;
  esac
done
case "$BUDGET$JOBS" in *[!0-9]*) die "--budget and --jobs take whole numbers" ;; esac
[ "$JOBS" -ge 1 ] || die "--jobs must be at least 1"
[ "$VERIFY" = auto ] && { [ -n "$MUTANT" ] && VERIFY=1 || VERIFY=0; }

# --mutant is the one switch for a seeded bug.
unset CRASHFUZZ_MUTANT
START=$(now)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
# A campaign directory holds one campaign: start clean.
rm -rf "$OUT/campaign.txt" "$OUT/logs" "$OUT/corpus" "$OUT/artifacts" "$OUT/explore" \
  "$OUT/mutants" "$OUT/triage" "$OUT/work" "$OUT/plots" "$OUT/imported" "$OUT/report.md" \
  "$OUT/report.json"
mkdir -p "$OUT/logs" "$OUT/corpus" "$OUT/artifacts" "$OUT/explore" "$OUT/mutants" \
  "$OUT/triage" "$OUT/work" "$CACHE/corpus"

VERIFY_CLEANUP=()
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { [ ${#VERIFY_CLEANUP[@]} -eq 0 ] || rm -f "${VERIFY_CLEANUP[@]}"; }
trap cleanup EXIT

[ "$INSTALL" = 1 ] && ensure_tools

CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CRASHFUZZ=$CARGO_TARGET/release/crashfuzz
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR/fuzz}}
FUZZ_TARGET_DIR=${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}
HOST=$(rustc -vV | sed -n 's/^host: //p')
FUZZ_BIN=$FUZZ_TARGET_DIR/$HOST/release

if [ "$BUILD" = 1 ]; then
  build_start=$(now)
  build_all || die "build failed"
  build_secs=$(($(now) - build_start))
else
  build_secs=0
fi
[ -x "$CRASHFUZZ" ] || die "no crashfuzz binary at $CRASHFUZZ"

if [ -n "$TARGETS_ARG" ]; then
  read -r -a TARGETS <<<"$TARGETS_ARG"
else
  mapfile -t TARGETS < <(cd "$ROOT/fuzz" && cargo fuzz list)
fi
[ ${#TARGETS[@]} -gt 0 ] || die "no fuzz targets"
for t in "${TARGETS[@]}"; do
  [ -x "$FUZZ_BIN/$t" ] || die "fuzz target $t is not built ($FUZZ_BIN/$t)"
done
if [ -n "$MUTANT" ]; then
  "$CRASHFUZZ" mutants --list | grep -x "$MUTANT" >/dev/null || die "unknown seeded bug $MUTANT"
fi

# Shares of the budget.
FUZZ_SECS=$((BUDGET * 70 / 100 / ${#TARGETS[@]}))
[ "$FUZZ_SECS" -ge 10 ] || FUZZ_SECS=10
EXPLORE_SECS=$((BUDGET * 15 / 100))
[ "$EXPLORE_SECS" -ge 5 ] || EXPLORE_SECS=5
BUGS=$("$CRASHFUZZ" mutants --list | wc -l | tr -d ' ')
MUTANT_SECS=$((BUDGET * 15 / 100 / (BUGS > 0 ? BUGS : 1)))
[ "$MUTANT_SECS" -ge 5 ] || MUTANT_SECS=5
SEED=${SEED:-$(date -u +%Y%m%d)}

meta date "$(date -u +%Y-%m-%d)"
meta started "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
meta host "$(uname -n)"
meta budget_secs "$BUDGET"
meta jobs "$JOBS"
meta mutant "${MUTANT:-none}"
meta targets "${TARGETS[*]}"
meta fuzz_secs_per_target "$FUZZ_SECS"
meta explore_secs "$EXPLORE_SECS"
meta explore_seed "$SEED"
meta mutants_secs_per_bug "$MUTANT_SECS"
meta fuzz_build_flags "$FUZZ_BUILD_FLAGS"
meta build_secs "$build_secs"
meta toolchain "$(cargo +nightly --version 2>/dev/null || echo '?')"

say "corpus: restoring from $CACHE"
"$CRASHFUZZ" corpus --out "$OUT/work/seeds" --count 64 --seed "$SEED" >/dev/null
for t in "${TARGETS[@]}"; do
  mkdir -p "$OUT/corpus/$t"
  if [ -d "$CACHE/corpus/$t" ]; then
    cp -r "$CACHE/corpus/$t/." "$OUT/corpus/$t/"
  fi
  meta "corpus_before.$t" "$(count_files "$OUT/corpus/$t")"
done

for t in "${TARGETS[@]}"; do
  fuzz_target "$t" "$FUZZ_SECS"
  meta "corpus_after_fuzz.$t" "$(count_files "$OUT/corpus/$t")"
  cmin_target "$t"
done

if [ -z "$MUTANT" ]; then
  say "corpus: saving to $CACHE"
  for t in "${TARGETS[@]}"; do
    rm -rf "$CACHE/corpus/$t.new"
    cp -r "$OUT/corpus/$t" "$CACHE/corpus/$t.new"
    rm -rf "$CACHE/corpus/$t"
    mv "$CACHE/corpus/$t.new" "$CACHE/corpus/$t"
  done
else
  say "corpus: canary campaign, the cache is left as it was"
fi

say "stable explorer: ${EXPLORE_SECS}s, seed $SEED"
"$CRASHFUZZ" explore --time "$EXPLORE_SECS" --jobs "$JOBS" --seed "$SEED" --json \
  --coverage "$OUT/explore/coverage.txt" --out "$OUT/explore/artifacts" \
  ${MUTANT:+--mutant "$MUTANT"} >"$OUT/explore/summary.json" 2>"$OUT/explore/explore.log" ||
  warn "explorer exited with $? (a failure is triaged below)"
tail -n 1 "$OUT/explore/explore.log" >&2 || true

say "seeded-bug benchmark: up to ${MUTANT_SECS}s per bug"
"$CRASHFUZZ" mutants --time-per-bug "$MUTANT_SECS" --seeds 1 --jobs "$JOBS" --json \
  --markdown "$OUT/mutants/mutants.md" >"$OUT/mutants/mutants.json" 2>"$OUT/mutants/mutants.log" ||
  warn "seeded-bug benchmark exited with $? (see the mutation table)"

if [ -n "$IMPORT" ]; then
  for t in "${TARGETS[@]}"; do
    if [ -d "$IMPORT/$t" ]; then
      mkdir -p "$OUT/imported/$t"
      find "$IMPORT/$t" -maxdepth 1 -type f -exec cp {} "$OUT/imported/$t/" \;
    fi
  done
  meta imported "$(find "$OUT/imported" -type f 2>/dev/null | wc -l | tr -d ' ')"
fi
triage
[ "$VERIFY" = 1 ] && verify_tests

meta wall_secs "$(($(now) - START))"
say "report"
report_args=("$OUT" --history "$CACHE/signatures.tsv")
# A canary's explorer stops at the bug, so its failpoint coverage is partial.
[ -z "$MUTANT" ] && report_args+=(--strict-failpoints)
[ -f "$KNOWN" ] && report_args+=(--known "$KNOWN")
rc=0
"$CRASHFUZZ" report "${report_args[@]}" || rc=$?
echo "report: $OUT/report.md"
case "$rc" in
0 | 1) exit "$rc" ;;
*) die "crashfuzz report failed ($rc)" ;;
esac

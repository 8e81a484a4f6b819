#!/usr/bin/env bash
# cargo-mutants over the engine's core files with the crash-consistency suite
# as the test (the mutation gate, harness/tests/mutation_gate.rs; settings in
# .cargo/mutants.toml), then the score (`crashfuzz mutation-score`).
#
#   ci/mutants.sh [--shard K/N] [--out DIR] [--history FILE] [-- ARGS...]
#
# --shard K/N   run only shard K of N (round-robin over all mutants; K from 0)
# --out DIR     where mutants.out/ (outcomes.json) and score.json go
#               (default target/mutation)
# --history F   a score history (one line per run, for the report's trend);
#               this run is appended and the file copied to DIR/history.tsv
# ARGS          passed to cargo mutants (e.g. --file engine/src/doc.rs)
#
# Exit: 0 every viable mutant caught, or its survivor is a known blind spot
# (ci/mutants-known-survivors.txt); 1 a surviving mutant not in that list;
# 2 the run could not be made (cargo-mutants missing, the unmutated tree
# fails the gate, bad usage).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
shard="" out="$ROOT/target/mutation" history=""
while [ $# -gt 0 ]; do
  case "$1" in
    --shard) shard="${2:?--shard K/N}"; shift 2 ;;
    --out) out="${2:?--out DIR}"; shift 2 ;;
    --history) history="${2:?--history FILE}"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "mutants: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked --version '^27' \
  || { echo "mutants: installing cargo-mutants failed" >&2; exit 2; }
mkdir -p "$out"
# cargo-mutants builds in a copy of the tree; sharing the target directory
# spares each run a full build of the dependencies.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# cargo-mutants' baseline would test the mutated package (engine), not the
# gate's (harness): run the gate on the unmutated tree here, and let its time
# set the timeout (10x, at least 120 s; a hang is a caught mutant).
# cargo-mutants builds each mutant in a copy of the tree with this same
# target directory, and cargo fingerprints a workspace member by its
# relative paths and mtimes: after a run the engine's artifacts are the last
# mutant's, newer than the tree's files, so cargo would take them as fresh
# and the baseline below would test that mutant. Touch the sources first.
touch engine/src/*.rs
gate=(cargo test -p harness --profile mutants --test mutation_gate --test windows --test contracts --test regressions --test extract_memo)
"${gate[@]}" --no-run || { echo "mutants: building the mutation gate failed" >&2; exit 2; }
t0=$(date +%s)
"${gate[@]}" -- --include-ignored \
  || { echo "mutants: the unmutated engine fails the mutation gate" >&2; exit 2; }
timeout=$(( ($(date +%s) - t0) * 10 )); [ "$timeout" -lt 120 ] && timeout=120
args=(mutants --no-shuffle --output "$out" --jobs 1 --baseline=skip --timeout "$timeout")
[ -n "$shard" ] && args+=(--shard "$shard" --sharding round-robin)
# cargo-mutants: 0 all caught, 2 survivors, 3 timeouts (a hang: caught),
# anything else could not run.
rc=0
cargo "${args[@]}" "$@" || rc=$?
case "$rc" in 0|2|3) ;; *) echo "mutants: cargo mutants exited $rc" >&2; exit 2 ;; esac
cp ci/mutants-known-survivors.txt "$out/known-survivors.txt"
echo "${shard:+shard }${shard:-all}" >"$out/label.txt"
score=(cargo run --quiet --profile mutants --bin crashfuzz -- mutation-score "$out/mutants.out"
       --known ci/mutants-known-survivors.txt --json-out "$out/score.json")
score+=(--label "$(cat "$out/label.txt")")
[ -n "$history" ] && score+=(--history "$history")
rc=0
"${score[@]}" || rc=$?
[ -n "$history" ] && cp "$history" "$out/history.tsv"
exit "$rc"

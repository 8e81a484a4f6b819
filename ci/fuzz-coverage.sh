#!/usr/bin/env bash
# Source coverage of a fuzz target's corpus (cargo fuzz coverage + llvm-cov).
#
#   ci/fuzz-coverage.sh [TARGET]        (default: interleave)
#
# Replays fuzz/corpus/<t> (what earlier `cargo fuzz run`s found) and the
# committed seeds fuzz/seeds/<t> through a coverage-instrumented build, then
# writes, under fuzz/coverage/<t>/:
#   coverage.profdata   the merged profile (cargo fuzz coverage)
#   report.txt          llvm-cov report: per-file regions/functions/lines hit
#   html/index.html     llvm-cov show: every source line with its hit count
# Only this project's sources are reported (registry crates and std are
# filtered out). Installs what is missing: nightly, cargo-fuzz, and the
# nightly llvm-tools component (its llvm-cov must match nightly's LLVM).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
t="${1:-interleave}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version "${CARGO_FUZZ_VERSION:-0.13.2}"
fi
sysroot=$(rustc +nightly --print sysroot)
host=$(rustc +nightly -vV | sed -n 's/^host: //p')
tools="$sysroot/lib/rustlib/$host/bin"
if [ ! -x "$tools/llvm-cov" ]; then
  rustup component add llvm-tools-preview --toolchain nightly
fi

mkdir -p "corpus/$t"
seeds=()
[ -d "seeds/$t" ] && seeds=("seeds/$t")
cargo +nightly fuzz coverage "$t" "corpus/$t" "${seeds[@]}"

bin="target/$host/coverage/$host/release/$t"
profile="coverage/$t/coverage.profdata"
ignore='(/\.cargo/|/rustc/|/rustlib/|fuzz_targets/)'
"$tools/llvm-cov" report "$bin" -instr-profile="$profile" \
  -ignore-filename-regex="$ignore" >"coverage/$t/report.txt"
"$tools/llvm-cov" show "$bin" -instr-profile="$profile" \
  -ignore-filename-regex="$ignore" -format=html -show-line-counts-or-regions \
  -output-dir="coverage/$t/html"
cat "coverage/$t/report.txt"
echo
echo "fuzz-coverage: fuzz/coverage/$t/report.txt and fuzz/coverage/$t/html/index.html"

#!/usr/bin/env bash
# The engine's threads under shuttle's random and PCT schedulers
# (harness/tests/shuttle.rs). Shuttle is switched on by a cfg, not a cargo
# feature, so it gets a target directory of its own (a RUSTFLAGS change would
# otherwise rebuild the main one). Extra arguments go to the test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="${RUSTFLAGS:-} --cfg shuttle" CARGO_TARGET_DIR="${SHUTTLE_TARGET_DIR:-target/shuttle}" \
  cargo test -p harness --test shuttle -- "$@"

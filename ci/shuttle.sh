#!/usr/bin/env bash
# The engine's threads under shuttle's random and PCT schedulers
# (harness/tests/shuttle.rs, fixed seeds of `crashfuzz explore --threads`),
# with 1000 schedules per scenario. Shuttle is switched on at run time
# (engine::sync, the engine's `shuttle` feature), so this shares the main
# build. Extra arguments go to the test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
CRASHFUZZ_SHUTTLE_ITERATIONS="${CRASHFUZZ_SHUTTLE_ITERATIONS:-1000}" \
  cargo test -p harness --test shuttle -- "$@"

#!/usr/bin/env bash
# The nightly crash-consistency campaign: what CI runs every night and what
# anyone can run locally with the same result.
#
#   ci/nightly.sh [--budget SECS] [--jobs N] [--out DIR] [--cache DIR]
#                 [--targets "a b"] [--canary | --mutant BUG] [--known FILE]
#                 [--seed N] [--verify-tests | --no-verify-tests]
#                 [--import DIR] [--no-install] [--no-build]
#
# All of it is `crashfuzz campaign` (crashfuzz/src/campaign.rs; `ci/nightly.sh
# --help` lists the options): this script only builds crashfuzz and runs it.
# Exit: 0 passed; 1 the verdict failed (a new unique crash, an escaped seeded
# bug, a target that did not run, a failpoint never crashed at, a canary not
# found); 2 the campaign could not run (bad usage, build failure).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v cargo >/dev/null || { echo "nightly: cargo is not installed (https://rustup.rs)" >&2; exit 2; }
cargo build --release --bin crashfuzz || { echo "nightly: building crashfuzz failed" >&2; exit 2; }
exec "${CARGO_TARGET_DIR:-$ROOT/target}/release/crashfuzz" campaign --root "$ROOT" "$@"

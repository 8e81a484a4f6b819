# libFuzzer's per-input limits, in one place: sourced by ci/fuzz-smoke.sh and
# .clusterfuzzlite/build.sh, read by `crashfuzz campaign` (its KEY=VALUE
# lines; keep them plain). The runner's own watchdog
# (a budget of disk calls per step, harness/src/watch.rs) turns an engine
# hang into a reported failure in well under a second; these are the outer
# limits for anything it cannot see (a loop without disk calls, a leak).
FUZZ_TIMEOUT_SECS=30
FUZZ_RSS_LIMIT_MB=2048
# The fuzz targets' build (cargo fuzz build flags) for the campaign,
# ci/fuzz-smoke.sh and .clusterfuzzlite/build.sh: release, debug assertions
# on (the engine's and the simulated disk's asserts state invariants), no
# sanitizer (safe Rust; AddressSanitizer costs 5-20x in exec/s), no
# trace-compares instrumentation (1.9x the exec/s; over 5 minutes of
# interleave it reached the same edges, 5194 vs 5181: BENCHMARKS.md). An
# environment variable FUZZ_BUILD_FLAGS overrides it. BENCHMARKS.md has
# the exec/s of each build.
FUZZ_BUILD_FLAGS="-O --debug-assertions --sanitizer none --no-trace-compares"

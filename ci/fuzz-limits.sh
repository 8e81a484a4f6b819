# libFuzzer's per-input limits, in one place: sourced by ci/fuzz-smoke.sh and
# .clusterfuzzlite/build.sh, read by `crashfuzz campaign` (its KEY=VALUE
# lines; keep them plain). The runner's own watchdog
# (a budget of disk calls per step, harness/src/watch.rs) turns an engine
# hang into a reported failure in well under a second; these are the outer
# limits for anything it cannot see (a loop without disk calls, a leak).
FUZZ_TIMEOUT_SECS=30
FUZZ_RSS_LIMIT_MB=2048

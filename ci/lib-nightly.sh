# shellcheck shell=bash disable=SC2153
# Functions of ci/nightly.sh (sourced, not run). They read the globals that
# nightly.sh sets: ROOT, OUT, JOBS, MUTANT, CRASHFUZZ (the binary), FUZZ_BIN
# (the fuzz targets' directory), FUZZ_TARGET_DIR.

# shellcheck source=ci/fuzz-limits.sh
. "$ROOT/ci/fuzz-limits.sh"

say() { printf '== %s\n' "$*" >&2; }
warn() { printf 'nightly: %s\n' "$*" >&2; }
die() {
  printf 'nightly: %s\n' "$*" >&2
  exit 2
}

# key=value into the campaign's campaign.txt (read by `crashfuzz report`).
meta() { printf '%s=%s\n' "$1" "$2" >>"$OUT/campaign.txt"; }

# Seconds since the epoch.
now() { date +%s; }

# Files in a directory (0 if it does not exist).
count_files() {
  if [ -d "$1" ]; then
    find "$1" -maxdepth 1 -type f | wc -l | tr -d ' '
  else
    echo 0
  fi
}

# The nightly toolchain and cargo-fuzz, installed when missing.
ensure_tools() {
  command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
  if ! cargo +nightly --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || die "no nightly toolchain and no rustup to install it"
    say "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --version "${CARGO_FUZZ_VERSION:-0.13.2}"
  fi
}

# The stable crashfuzz binary and every fuzz target.
build_all() {
  say "building crashfuzz (stable, release)"
  (cd "$ROOT" && cargo build --release --bin crashfuzz)
  say "building the fuzz targets (cargo fuzz build $FUZZ_BUILD_FLAGS)"
  # shellcheck disable=SC2086 # the flags are words
  (cd "$ROOT/fuzz" && cargo +nightly fuzz build $FUZZ_BUILD_FLAGS --target-dir "$FUZZ_TARGET_DIR")
}

# Fuzz one target for $2 seconds in fork mode over $JOBS processes. New
# inputs go to the first corpus directory; crashes, timeouts and OOMs are
# saved to artifacts/<target>/ and fuzzing goes on.
fuzz_target() {
  local target=$1 secs=$2 rc
  local corpus="$OUT/corpus/$target" seeds=()
  [ -d "$OUT/work/seeds/$target" ] && seeds+=("$OUT/work/seeds/$target")
  [ -d "$ROOT/fuzz/seeds/$target" ] && seeds+=("$ROOT/fuzz/seeds/$target")
  local dict=()
  [ -f "$ROOT/fuzz/dict/$target.dict" ] && dict=("-dict=$ROOT/fuzz/dict/$target.dict")
  mkdir -p "$corpus" "$OUT/artifacts/$target"
  say "fuzzing $target for ${secs}s (-fork=$JOBS)"
  # The parent stops itself at -max_total_time; `timeout` only guards a hang.
  env ${MUTANT:+CRASHFUZZ_MUTANT=$MUTANT} timeout --kill-after=30 $((secs + 120)) \
    "$FUZZ_BIN/$target" -fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$secs" -timeout="$FUZZ_TIMEOUT_SECS" -rss_limit_mb="$FUZZ_RSS_LIMIT_MB" -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$OUT/artifacts/$target/" \
    "$corpus" "${seeds[@]}" >"$OUT/logs/fuzz-$target.log" 2>&1 || {
    # Fork mode exits with -error_exitcode (77) when it saved crashes.
    rc=$?
    [ "$rc" -eq 77 ] || warn "$target: libFuzzer exited with $rc (see logs/fuzz-$target.log)"
  }
  grep -E '^#[0-9]+: ' "$OUT/logs/fuzz-$target.log" | tail -n 1 >&2 || true
}

# Merge and minimize a target's corpus (what `cargo fuzz cmin` does):
# keep the smallest set of inputs with the same coverage.
cmin_target() {
  local target=$1
  local corpus="$OUT/corpus/$target" merged="$OUT/work/cmin/$target"
  rm -rf "$merged"
  mkdir -p "$merged"
  if env ${MUTANT:+CRASHFUZZ_MUTANT=$MUTANT} "$FUZZ_BIN/$target" -merge=1 -timeout="$FUZZ_TIMEOUT_SECS" \
    -rss_limit_mb="$FUZZ_RSS_LIMIT_MB" "$merged" "$corpus" >"$OUT/logs/cmin-$target.log" 2>&1 &&
    [ "$(count_files "$merged")" -gt 0 ]; then
    rm -rf "$corpus"
    mv "$merged" "$corpus"
  else
    warn "$target: cmin failed, keeping the unminimized corpus (logs/cmin-$target.log)"
  fi
}

# The campaign signature of a `crashfuzz repro` output: the signature
# crashfuzz prints (harness/src/failure.rs: kind, check and the normalised
# crash point, hashed), and the failpoint of the crash before the failure.
# Prints "signature<TAB>failpoint", or nothing if there is no failure.
signature_of() {
  local first sig failpoint
  first=$(grep -m 1 '^FAILURE ' "$1") || return 0
  sig=$(printf '%s\n' "$first" | sed -n 's/.*(signature \([0-9a-f]*\)).*/\1/p')
  failpoint=$(sed -n 's/^crash after failpoint: \([^ ]*\).*/\1/p' "$1" | head -n 1)
  printf '%s\t%s\n' "$sig" "${failpoint:--}"
}

# Reproduce every artifact, group them by campaign signature, then minimize
# the smallest artifact of each group and write its regression test.
triage() {
  local list="$OUT/work/artifacts.tsv"
  : >"$list"
  local target file
  for target in "${TARGETS[@]}"; do
    for file in "$OUT/artifacts/$target"/*; do
      [ -f "$file" ] || continue
      printf '%s\t%s\tfuzz\n' "$target" "$file" >>"$list"
    done
    for file in "$OUT/imported/$target"/*; do
      [ -f "$file" ] || continue
      printf '%s\t%s\timported\n' "$target" "$file" >>"$list"
    done
  done
  for file in "$OUT/explore/artifacts"/crash-*; do
    [ -f "$file" ] || continue
    case "$file" in *.txt) continue ;; esac
    printf 'interleave\t%s\texplorer\n' "$file" >>"$list"
  done
  local total
  total=$(wc -l <"$list" | tr -d ' ')
  say "triage: $total artifact(s)"
  [ "$total" -gt 0 ] || return 0
  mkdir -p "$OUT/work/repro"

  local mutant_args=()
  [ -n "$MUTANT" ] && mutant_args=(--mutant "$MUTANT")
  local source rc sig failpoint dir size n=0 repro kind
  while IFS=$'\t' read -r target file source; do
    n=$((n + 1))
    repro="$OUT/work/repro/$n.txt"
    rc=0
    "$CRASHFUZZ" repro "$file" --target "$target" "${mutant_args[@]}" >"$repro" 2>&1 || rc=$?
    sig="" failpoint="-"
    if [ "$rc" -ge 3 ] && [ "$rc" -le 7 ]; then
      IFS=$'\t' read -r sig failpoint < <(signature_of "$repro") || true
    fi
    if [ -z "$sig" ]; then
      # libFuzzer saw a crash (or timeout, OOM) that crashfuzz does not
      # reproduce: one signature per target and libFuzzer's kind.
      kind=$(basename "$file" | cut -d- -f1)
      sig=$(printf 'unreproduced|%s|%s' "$target" "$kind" | sha256sum | cut -c1-16)
    fi
    # Never an empty field: read would merge it with the next (tab is IFS
    # white space).
    failpoint=${failpoint:--}
    dir="$OUT/triage/$sig"
    mkdir -p "$dir"
    size=$(wc -c <"$file" | tr -d ' ')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$target" "$source" "$rc" "$failpoint" "$file" >>"$dir/artifacts.tsv"
  done <"$list"

  for dir in "$OUT/triage"/*/; do
    triage_one "${dir%/}" "${mutant_args[@]}"
  done
}

# One signature: the smallest artifact stands for all of them.
triage_one() {
  local dir=$1
  shift
  local sig size target source rc failpoint file
  sig=$(basename "$dir")
  IFS=$'\t' read -r size target source rc failpoint file < <(sort -n "$dir/artifacts.tsv" | head -n 1)
  cp "$file" "$dir/artifact"
  "$CRASHFUZZ" repro "$dir/artifact" --target "$target" --quiet "$@" >"$dir/repro.txt" 2>&1 || true
  local found_by failpoints count
  # Found by: the fuzz target, the explorer, or imported for a target.
  found_by=$(awk -F'\t' '{ print ($3 == "fuzz" ? $2 : $3 == "imported" ? "imported:" $2 : $3) }' \
    "$dir/artifacts.tsv" | sort -u | paste -sd, -)
  failpoints=$(cut -f5 "$dir/artifacts.tsv" | sort -u | paste -sd, -)
  count=$(wc -l <"$dir/artifacts.tsv" | tr -d ' ')
  {
    echo "signature=$sig"
    echo "target=$target"
    echo "targets=$found_by"
    echo "failpoints=$failpoints"
    echo "artifacts=$count"
    echo "representative=$(basename "$file") ($size bytes)"
  } >"$dir/meta.txt"
  if ! { [ "$rc" -ge 3 ] && [ "$rc" -le 7 ]; }; then
    say "triage $sig: did not reproduce ($count artifact(s) of $found_by, e.g. $(basename "$file"))"
    echo "kind=unreproduced-$(basename "$file" | cut -d- -f1)" >>"$dir/meta.txt"
    return 0
  fi
  say "triage $sig: $(head -n 1 "$dir/repro.txt" | sed "s/ (signature [0-9a-f]*)//") [$count artifact(s): $found_by; failpoints $failpoints]"
  if [ -n "$MUTANT" ]; then
    # Does it need the seeded bug? If not, it is a real crash.
    local plain=0
    "$CRASHFUZZ" repro "$dir/artifact" --target "$target" --quiet >/dev/null 2>&1 || plain=$?
    if [ "$plain" -ge 3 ] && [ "$plain" -le 7 ]; then
      echo "without_bug=fails" >>"$dir/meta.txt"
      say "triage $sig: fails without the seeded bug too: a real crash"
    else
      echo "without_bug=passes" >>"$dir/meta.txt"
    fi
  fi
  # The test is named as crashfuzz names it (its header says so).
  "$CRASHFUZZ" minimize "$dir/artifact" --target "$target" -o "$dir/minimized" "$@" \
    >"$dir/minimize.txt" 2>&1 || true
  local test
  test=$(sed -n 's/^regression test: //p' "$dir/minimize.txt" | head -n 1)
  if [ -n "$test" ] && [ -f "$test" ]; then
    echo "test=$(basename "$test")" >>"$dir/meta.txt"
  fi
  local input=artifact
  [ -f "$dir/minimized" ] && input=minimized
  echo "replay=cargo run --release --bin crashfuzz -- repro triage/$sig/$input --target $target${MUTANT:+ --mutant $MUTANT}" >>"$dir/meta.txt"
}

# Run each written regression test as an integration test of the harness:
# with the seeded bug on it must fail; on the engine as it is, a canary's
# test must pass and a real bug's test fails until the bug is fixed.
verify_tests() {
  local dir sig test name rc
  for dir in "$OUT/triage"/*/; do
    dir=${dir%/}
    sig=$(basename "$dir")
    test=$(sed -n 's/^test=//p' "$dir/meta.txt")
    { [ -n "$test" ] && [ -f "$dir/$test" ]; } || continue
    test=$dir/$test
    # A name of our own: the test's own may be committed already.
    name="nightly_$sig"
    cp "$test" "$ROOT/harness/tests/$name.rs"
    VERIFY_CLEANUP+=("$ROOT/harness/tests/$name.rs")
    if [ -n "$MUTANT" ]; then
      rc=0
      (cd "$ROOT" && CRASHFUZZ_MUTANT="$MUTANT" cargo test -q -p harness --test "$name") \
        >"$dir/test-with-bug.txt" 2>&1 || rc=$?
      echo "test_with_bug=$([ "$rc" -eq 0 ] && echo passes || echo fails)" >>"$dir/meta.txt"
    fi
    rc=0
    (cd "$ROOT" && env -u CRASHFUZZ_MUTANT cargo test -q -p harness --test "$name") \
      >"$dir/test-current.txt" 2>&1 || rc=$?
    echo "test_current=$([ "$rc" -eq 0 ] && echo passes || echo fails)" >>"$dir/meta.txt"
    rm -f "$ROOT/harness/tests/$name.rs"
    say "regression test $sig: $(grep -h '^test_' "$dir/meta.txt" | paste -sd' ' -)"
  done
}

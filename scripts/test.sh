#!/usr/bin/env bash
# Quick start, step 2: the whole test suite.
#   1. Linux, release build (tests, CLI tests, benchmark smoke runs)
#   2. Linux, ASan + UBSan
#   3. Linux, TSan
#   4. Windows: cross-built with mingw-w64, the same tests under Wine
#   5. libFuzzer: each fuzz target for INTERPROC_FUZZ_SECONDS (default 30) seconds
# Each stage prints ctest's summary; the script fails if any stage fails.
# INTERPROC_STAGES="linux asan windows" selects stages.
set -uo pipefail
cd "$(dirname "$0")/.."
stages="${INTERPROC_STAGES:-linux asan tsan windows fuzz}"
jobs="$(nproc)"
status=0
summary=""

run_stage() {
  local name="$1"; shift
  echo
  echo "================ $name ================"
  local start=$SECONDS
  if "$@"; then
    summary+="$name: PASSED ($((SECONDS - start)) s)"$'\n'
  else
    summary+="$name: FAILED ($((SECONDS - start)) s)"$'\n'
    status=1
  fi
}

linux_preset() {
  local preset="$1"
  cmake --preset "$preset" >/dev/null &&
    cmake --build --preset "$preset" -j "$jobs" &&
    ctest --preset "$preset" -j "$jobs" --timeout 300
}

fuzz_stage() {
  cmake --preset fuzz >/dev/null && cmake --build --preset fuzz -j "$jobs" || return 1
  local corpus
  corpus="$(mktemp -d)"
  local rc=0
  for target in build/fuzz/tests/*_fuzzer; do
    local name seeds
    name="$(basename "$target" _fuzzer)"
    seeds="tests/fuzz/corpus/$name"
    mkdir -p "$corpus/$name"
    echo "fuzzing $name for ${INTERPROC_FUZZ_SECONDS:-30} s"
    if ! "$target" -max_total_time="${INTERPROC_FUZZ_SECONDS:-30}" -max_len=4200 \
        -print_final_stats=1 "$corpus/$name" $( [ -d "$seeds" ] && echo "$seeds" ) \
        >"$corpus/$name.log" 2>&1; then
      tail -n 40 "$corpus/$name.log"
      rc=1
    fi
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units)" "$corpus/$name.log" || true
  done
  rm -rf "$corpus"
  return $rc
}

for stage in $stages; do
  case "$stage" in
    linux) run_stage "Linux (release)" linux_preset release ;;
    asan) run_stage "Linux (ASan+UBSan)" linux_preset asan ;;
    tsan) run_stage "Linux (TSan)" linux_preset tsan ;;
    fuzz) run_stage "libFuzzer" fuzz_stage ;;
    windows) run_stage "Windows (mingw-w64 under Wine)" bash scripts/windows-tests.sh ;;
    *) echo "unknown stage $stage"; status=1 ;;
  esac
done
echo
echo "================ summary ================"
printf '%s' "$summary"
exit $status

#!/usr/bin/env bash
# Quick start, step 2: the whole test suite.
#   1. Linux, release build (tests, CLI tests, benchmark smoke runs)
#   2. Linux, ASan + UBSan
#   3. Windows: cross-built with mingw-w64, the same tests under Wine
# Each stage prints ctest's summary; the script fails if any stage fails.
# INTERPROC_STAGES="linux asan windows" selects stages.
set -uo pipefail
cd "$(dirname "$0")/.."
stages="${INTERPROC_STAGES:-linux asan windows}"
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

for stage in $stages; do
  case "$stage" in
    linux) run_stage "Linux (release)" linux_preset release ;;
    asan) run_stage "Linux (ASan+UBSan)" linux_preset asan ;;
    tsan) run_stage "Linux (TSan)" linux_preset tsan ;;
    windows) run_stage "Windows (mingw-w64 under Wine)" bash scripts/windows-tests.sh ;;
    *) echo "unknown stage $stage"; status=1 ;;
  esac
done
echo
echo "================ summary ================"
printf '%s' "$summary"
exit $status

#!/usr/bin/env bash
# Cross-builds interproc for Windows with mingw-w64 and runs the test suite under
# Wine; exits with ctest's status. Needs g++-mingw-w64-x86-64-posix, wine, wine64.
#   scripts/windows-tests.sh [extra ctest arguments, e.g. -R Mutex]
set -u

cd "$(dirname "$0")/.." || exit 1

export WINEDEBUG=-all
export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-interproc}"
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
WINE64=/usr/lib/wine/wine64
[ -x "$WINE64" ] || WINE64=wine64

# Wine's helper processes outlive the first Wine process and hold its stderr;
# stop them however this script ends.
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT

echo "== windows-cross: configure"
cmake --preset windows-cross || exit 1
echo "== windows-cross: build"
cmake --build --preset windows-cross || exit 1

echo "== windows-cross: boot the Wine prefix $WINEPREFIX"
wineserver -p
"$WINE64" wineboot </dev/null >/dev/null 2>&1

echo "== windows-cross: ctest under Wine"
log=build/windows-cross/ctest-wine.log
ctest --preset windows-cross --output-on-failure "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
echo "== windows-cross summary: $(grep -E 'tests passed, [0-9]+ tests? failed out of' "$log" | tail -n 1)"
# Wine emulates Windows in user space and, on a loaded 2-core machine, now and
# then loses a race that Windows does not (docs/windows.md). A test that failed
# runs once more, alone; the stage passes only if every such test passes then,
# and the tests that needed the second run are listed, never hidden.
if [ "$rc" -ne 0 ] && [ -z "${INTERPROC_WINE_NO_RERUN:-}" ]; then
  failed="$(awk '/The following tests FAILED:/ {f = 1; next}
                 f && /^[[:space:]]*[0-9]+ - / {sub(/^[[:space:]]*[0-9]+ - /, ""); print "   " $0}' "$log")"
  echo "== windows-cross: running the failed tests again, one at a time"
  ctest --preset windows-cross --output-on-failure --rerun-failed -j1 2>&1 | tee "$log.rerun"
  rc=${PIPESTATUS[0]}
  echo "== windows-cross: failed once under Wine, then $([ "$rc" -eq 0 ] && echo passed || echo failed again):"
  printf '%s\n' "$failed"
  echo "== windows-cross rerun summary: $(grep -E 'tests passed, [0-9]+ tests? failed out of' "$log.rerun" | tail -n 1)"
fi
exit "$rc"

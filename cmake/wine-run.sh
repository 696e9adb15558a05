#!/bin/sh
# Runs a Windows executable under Wine in a private prefix, quietly and headless.
export WINEDEBUG=-all
export WINEPREFIX="${WINEPREFIX:-$HOME/.wine-interproc}"
export WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY
exec /usr/lib/wine/wine64 "$@"

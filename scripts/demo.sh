#!/usr/bin/env bash
# Quick start, step 1: install what is needed, build (release), run the showcase:
# `interproc demo` (a server and client processes on every mechanism, each
# message verified, live progress, a short table of what it measured).
# examples/showcase.cc remains as a smaller example of the same ideas.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec build/release/tools/interproc/interproc demo "$@"

#!/usr/bin/env bash
# Quick start, step 1: install what is needed, build (release), run the showcase.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release
exec build/release/examples/showcase

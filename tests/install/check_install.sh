#!/usr/bin/env bash
# Installs the build tree into a temporary prefix, then builds and runs a consumer
# found through find_package(interproc) and one built with pkg-config.
set -euo pipefail
build_dir="$1"
src_dir="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build_dir" --prefix "$tmp/prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; exit 1; }
cmake -S "$src_dir/consumer" -B "$tmp/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" >"$tmp/configure.log" || { cat "$tmp/configure.log"; exit 1; }
cmake --build "$tmp/consumer" >"$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib64:$tmp/prefix/lib/x86_64-linux-gnu" "$tmp/consumer/consumer_shared"
"$tmp/consumer/consumer_static"
pcdir="$(dirname "$(find "$tmp/prefix" -name interproc.pc | head -n 1)")"
flags="$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs --static interproc)"
# shellcheck disable=SC2086
c++ "$src_dir/consumer/consumer.cc" -o "$tmp/consumer_pc" $flags
LD_LIBRARY_PATH="$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir interproc)" "$tmp/consumer_pc"
echo "install: find_package and pkg-config consumers work"

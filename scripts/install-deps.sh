#!/usr/bin/env bash
# Installs everything interproc needs to build, test and benchmark on Debian 12.
# Run as root (or through sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential g++ clang libclang-rt-14-dev cmake ninja-build pkg-config git ca-certificates \
  libgtest-dev libbenchmark-dev libboost-dev libcli11-dev \
  libzmq3-dev libnng-dev libiceoryx-posh-dev libiceoryx-hoofs-dev iceoryx \
  g++-mingw-w64-x86-64-posix wine wine64 \
  procps util-linux socat >/dev/null
echo "install-deps: done"

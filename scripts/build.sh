#!/usr/bin/env bash
# Builds o7 into build/ (or $1) with warnings as errors. Extra arguments go to
# cmake's configure step, e.g. scripts/build.sh build-asan -DO7_SANITIZE=ON
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DO7_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null

#!/usr/bin/env bash
# Every test: installs what the tests need, builds o7 with warnings as
# errors, runs ctest; then builds with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs ctest again. Set O7_SKIP_SANITIZERS=1
# to run the plain build only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
(cd build && ctest --output-on-failure -j2)
if [ "${O7_SKIP_SANITIZERS:-0}" != 1 ]; then
    scripts/build.sh build-asan -DO7_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j2)
fi

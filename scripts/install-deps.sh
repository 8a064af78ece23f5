#!/usr/bin/env bash
# Installs everything o7 needs to build and test on a fresh Debian machine.
# Used by the README and by .ci/run, so both stay in step. Safe to re-run.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    libluajit-5.1-dev lua-cjson-dev libcurl4-openssl-dev libsqlite3-dev
    libssl-dev libmicrohttpd-dev zlib1g-dev libzstd-dev
    python3 jq curl time lua-check zstd
)
# Test-only tools: the independent S3 client and the benchmark timer.
if [ "${O7_TEST_DEPS:-1}" = 1 ]; then
    packages+=(awscli hyperfine)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3 server the storage tests talk to (it verifies SigV4 signatures).
if [ "${O7_TEST_DEPS:-1}" = 1 ] && [ ! -d tests/node_modules/@20minutes/s3rver ]; then
    (cd tests && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
        npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi

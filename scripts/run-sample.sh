#!/usr/bin/env bash
# The main job on a fresh machine: installs what o7 needs, builds it, starts
# the bundled sample store (tests/fakestore) on 127.0.0.1:8788, registers it
# and backs it up into ./var/backups with the default o7.conf, then prints
# the summary. Re-running it makes another backup.
set -euo pipefail
cd "$(dirname "$0")/.."
O7_TEST_DEPS=0 scripts/install-deps.sh
scripts/build.sh build

started=""
if ! curl -s -o /dev/null "http://127.0.0.1:8788/_fake/stats"; then
    python3 tests/fakestore/fakestore.py --port 8788 >var-sample-store.log 2>&1 &
    started=$!
    trap 'kill $started 2>/dev/null || true; rm -f var-sample-store.log' EXIT
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:8788/_fake/stats" && break
        sleep 0.1
    done
fi

# The sample store's token is a published test value, not a secret.
echo "o7-sample-token" | ./build/o7 -c o7.conf store add o7sample
./build/o7 -c o7.conf backup o7sample
./build/o7 -c o7.conf verify "$(./build/o7 -c o7.conf backups o7sample --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][0]["backup_id"])')" | tail -n 1

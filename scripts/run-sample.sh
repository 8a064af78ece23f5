#!/usr/bin/env bash
# The main job on a fresh machine: installs what o7 needs, builds it, starts
# the bundled sample store (tests/fakestore) on 127.0.0.1:8788, registers it
# and backs it up into ./var/backups with the default o7.conf, then prints
# the summary. Re-running it makes another backup.
set -euo pipefail
cd "$(dirname "$0")/.."
O7_TEST_DEPS=0 scripts/install-deps.sh
scripts/build.sh build

# The sample store: reuse one already serving o7sample on 8788, else start it.
log=$(mktemp)
if ! curl -sf -o /dev/null "http://127.0.0.1:8788/_fake/stores/o7sample/counts"; then
    python3 tests/fakestore/fakestore.py --port 8788 >"$log" 2>&1 &
    started=$!
    trap 'kill $started 2>/dev/null || true; rm -f "$log"' EXIT
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:8788/_fake/stores/o7sample/counts" && break
        if ! kill -0 $started 2>/dev/null; then
            echo "the sample store did not start:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
fi

# The sample store's token is a published test value, not a secret.
echo "o7-sample-token" | ./build/o7 -c o7.conf store add o7sample
./build/o7 -c o7.conf backup o7sample
./build/o7 -c o7.conf verify "$(./build/o7 -c o7.conf backups o7sample --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["backups"][0]["backup_id"])')" | tail -n 1

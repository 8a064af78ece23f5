#!/usr/bin/env bash
# s3_put.sh - uploads a 1 GiB file to a local s3rver through o7's storage
# layer (bench/s3_put) and with `aws s3 cp`, alternating, RUNS times each;
# prints the median MB/s and peak RSS of each and their ratios.
#
#   bench/s3_put.sh [BUILD_DIR]     (default: build; needs BUILD_DIR/s3_put)
#   SIZE_MIB=1024 RUNS=5 bench/s3_put.sh build-s3
#
# Everything runs on 127.0.0.1; the temporary folder (file and server data)
# is removed at the end, also on failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build}
driver=$build/s3_put
size_mib=${SIZE_MIB:-1024}
runs=${RUNS:-5}
[ -x "$driver" ] || { echo "s3_put.sh: $driver not built" >&2; exit 2; }
command -v aws >/dev/null || { echo "s3_put.sh: awscli (aws) is missing" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "s3_put.sh: /usr/bin/time is missing (package time)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/o7-s3bench.XXXXXX)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "making a ${size_mib} MiB file of random bytes" >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$tmp/payload"

mkfifo "$tmp/ready"
node --openssl-legacy-provider "$src/tests/s3/s3server.js" --port 0 --dir "$tmp/data" \
    --bucket bench > "$tmp/ready" 2>&1 &
server_pid=$!
port=""
while read -r line; do
    case $line in *"listening on 127.0.0.1:"*) port=${line##*:}; break ;; esac
done < "$tmp/ready"
[ -n "$port" ] || { echo "s3_put.sh: s3rver did not start" >&2; exit 1; }

export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
export AWS_CONFIG_FILE=$tmp/aws-config AWS_SHARED_CREDENTIALS_FILE=$tmp/none
printf '[default]\nregion = us-east-1\nrequest_checksum_calculation = when_required\n%s\n' \
    's3 =
    addressing_style = path' > "$AWS_CONFIG_FILE"
export O7_S3_URL=s3://bench/o7 O7_S3_ENDPOINT=http://127.0.0.1:$port O7_S3_REGION=us-east-1

# One timed run: prints "milliseconds rss_kib".
timed() {
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f %M -o "$tmp/rss" "$@" >/dev/null 2>"$tmp/err" ||
        { cat "$tmp/err" >&2; exit 1; }
    end=$(date +%s%N)
    echo "$(((end - start) / 1000000)) $(tail -1 "$tmp/rss")"
}

: > "$tmp/o7.txt"
: > "$tmp/aws.txt"
for i in $(seq "$runs"); do
    timed "$driver" ${O7_PARALLEL:+--parallel "$O7_PARALLEL"} put bench.bin "$tmp/payload" >> "$tmp/o7.txt"
    timed aws --endpoint-url "$O7_S3_ENDPOINT" s3 cp --only-show-errors "$tmp/payload" \
        s3://bench/aws/bench.bin >> "$tmp/aws.txt"
    echo "run $i: o7 $(tail -1 "$tmp/o7.txt")  aws $(tail -1 "$tmp/aws.txt")  (ms, KiB)" >&2
done

python3 - "$size_mib" "$tmp/o7.txt" "$tmp/aws.txt" <<'PY'
import statistics, sys
mib = float(sys.argv[1])
def load(path):
    rows = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
    mbs = statistics.median(mib * 1.048576 / (ms / 1000) for ms, _ in rows)
    rss = statistics.median(r / 1024 for _, r in rows)
    return mbs, rss, len(rows)
o7, aws = load(sys.argv[2]), load(sys.argv[3])
print("| tool | runs | median MB/s | median peak RSS MiB |")
print("| --- | --- | --- | --- |")
print("| o7 (bench/s3_put) | %d | %.1f | %.1f |" % (o7[2], o7[0], o7[1]))
print("| aws s3 cp | %d | %.1f | %.1f |" % (aws[2], aws[0], aws[1]))
print("| o7 / aws | | %.2f | %.2f |" % (o7[0] / aws[0], o7[1] / aws[1]))
PY

#!/usr/bin/env bash
# backup.sh - measures `o7 backup STORE --types products` against the fake
# store, beside a baseline of the very same pages fetched one after another
# by one curl process and piped to gzip; checks the targets of the product
# issue and prints a table (also written to bench/results/backup-DATE.md).
#
#   bench/backup.sh [BUILD_DIR]        (default: build; needs BUILD_DIR/o7)
#   RUNS=5 PRODUCTS=100000 SMALL=10000 QUOTA_PRODUCTS=2500 MAX_MINUTES=75 bench/backup.sh
#
# Everything listens on and talks to 127.0.0.1 only. The fake store, every
# o7 and curl process and the temporary folder are ended and removed at the
# end, also on failure or Ctrl-C; the whole run stops itself after
# MAX_MINUTES. bench/README.md explains each figure and target.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
o7=$build/o7
max_minutes=${MAX_MINUTES:-75}

[ -x "$o7" ] || { echo "backup.sh: $o7 is not built" >&2; exit 2; }
for tool in curl gzip python3 timeout; do
    command -v "$tool" >/dev/null || { echo "backup.sh: $tool is missing" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "backup.sh: /usr/bin/time is missing (package time)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/o7-backupbench.XXXXXX)
store_pid=""
driver_pid=""
cleanup() {
    trap - EXIT INT TERM
    # The driver ends its own children (o7, curl) when told to stop.
    if [ -n "$driver_pid" ] && kill -0 "$driver_pid" 2>/dev/null; then
        kill -TERM "$driver_pid" 2>/dev/null || true
        wait "$driver_pid" 2>/dev/null || true
    fi
    if [ -n "$store_pid" ] && kill -0 "$store_pid" 2>/dev/null; then
        kill -TERM "$store_pid" 2>/dev/null || true
        wait "$store_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

products=${PRODUCTS:-100000}
small=${SMALL:-10000}
quota_products=${QUOTA_PRODUCTS:-2500}

# One fake store process for every scenario, so o7 and curl meet the same
# server; its stores differ in size only (latency and quota are set per run).
python3 "$src/tests/fakestore/fakestore.py" --host 127.0.0.1 --port 0 \
    --store "big=bench:$products" --store "small=bench:$small" \
    --store "quota=bench:$quota_products" > "$tmp/store.out" 2>"$tmp/store.err" &
store_pid=$!
# Its first line names the port; a file, not a pipe, so later output cannot
# meet a closed reader.
url=""
for _ in $(seq 100); do
    line=$(head -n 1 "$tmp/store.out")
    case $line in *"listening on http://127.0.0.1:"*) url=${line##*listening on }; break ;; esac
    kill -0 "$store_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "backup.sh: the fake store did not start" >&2
    cat "$tmp/store.err" >&2
    exit 1
fi

mkdir -p "$here/results"
out=$here/results/backup-$(date -u +%Y-%m-%dT%H%M).md
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)

# The driver stops by itself at the deadline; timeout is the backstop.
deadline=$(($(date +%s) + max_minutes * 60))
cat > "$tmp/driver.py" <<'PY'
"""Runs the scenarios against the fake store and prints the table."""
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

(o7, store_url, tmp, out_path, commit, deadline, runs, products, small,
 quota_products, store_pid) = sys.argv[1:12]
deadline, runs = float(deadline), int(runs)
products, small, quota_products = int(products), int(small), int(quota_products)
TOKEN = "o7-sample-token"
PAGE = 10          # products per page with every include (plugins/products.lua)
QUOTA, WINDOW_MS = 150, 30000
current = None     # the child being timed, ended on SIGTERM
cpu_used = 0.0     # the fake store's CPU seconds during the last timed run


def on_term(signum, frame):
    raise SystemExit(143)


signal.signal(signal.SIGTERM, on_term)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(store_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip().startswith(("{", "[")) else text


def store_cpu():
    """CPU seconds the fake store has used so far (user + system)."""
    with open("/proc/%s/stat" % store_pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def remaining():
    left = deadline - time.time()
    if left < 5:
        raise SystemExit("backup.sh: out of time (MAX_MINUTES); no table written")
    return left


def timed(argv, shell=False):
    """Runs argv (a shell line when shell) under /usr/bin/time; returns
    (seconds, peak RSS KiB of the timed process, stdout)."""
    global current
    rss = os.path.join(tmp, "rss")
    if os.path.exists(rss):
        os.unlink(rss)
    if shell:
        cmd = ["bash", "-c", "set -o pipefail; " + argv]
    else:
        cmd = ["/usr/bin/time", "-f", "%M", "-o", rss] + argv
    global cpu_used
    cpu0 = store_cpu()
    start = time.monotonic()
    current = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        so, se = current.communicate(timeout=remaining())
    except BaseException:
        os.killpg(current.pid, signal.SIGKILL)
        current.wait()
        raise
    secs = time.monotonic() - start
    cpu_used = store_cpu() - cpu0
    rc, current = current.returncode, None
    if rc != 0:
        raise SystemExit("backup.sh: %s failed (%d): %s" % (argv if shell else argv[0], rc,
                                                           se[-2000:]))
    with open(rss) as f:
        kib = int(f.read().split()[-1])
    return secs, kib, so


def write_conf(name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    conf = os.path.join(d, "o7.conf")
    with open(conf, "w") as f:
        f.write("[bigcommerce]\napi_url = %s\n\n[storage]\nurl = %s\ncodec = gzip\n\n"
                "[catalog]\npath = %s\n\n[crypto]\nkey_file = %s\n\n[plugins]\ndir = %s\n\n"
                "[log]\nlevel = warn\n" % (
                    store_url, os.path.join(d, "backups"), os.path.join(d, "o7.db"),
                    os.path.join(d, "o7.key"), os.environ["O7_PLUGINS"]))
    return conf


def add_store(conf, store):
    p = subprocess.run([o7, "-c", conf, "store", "add", store], input=TOKEN + "\n", text=True,
                       capture_output=True, timeout=60)
    if p.returncode != 0:
        raise SystemExit("backup.sh: o7 store add %s failed: %s" % (store, p.stderr))


def store_stats(store):
    return call("GET", "/_fake/stats")["stores"][store]


def o7_run(conf, store, record=False):
    """One timed backup; returns a dict of its figures (and the URLs the
    store saw when record is set)."""
    call("POST", "/_fake/stats/reset")
    call("POST", "/_fake/stats/record", {"on": bool(record)})
    secs, kib, so = timed([o7, "-c", conf, "backup", store, "--types", "products", "--json"])
    doc = json.loads(so)
    st = store_stats(store)
    call("POST", "/_fake/stats/record", {"on": False})
    t = doc["types"]["products"]
    if doc["status"] != "complete" or t["records"] != expected[store]:
        raise SystemExit("backup.sh: o7 backup of %s: %s, %d records" % (
            store, doc["status"], t["records"]))
    r = {"secs": secs, "rss": kib, "records": t["records"], "bytes": t["bytes"],
         "requests": doc["requests"], "served": st["requests"], "s429": st["served_429"],
         "throttled": doc["throttled"], "retries": doc["retries"], "cpu": cpu_used}
    if record:
        r["urls"] = st["urls"]
    return r


def curl_config(store, urls, path):
    """One curl process for every URL: keep-alive, compressed like o7, and
    the token in the file, not in argv."""
    with open(path, "w") as f:
        f.write('silent\nshow-error\nfail\ncompressed\n')
        f.write('header = "X-Auth-Token: %s"\nheader = "Accept: application/json"\n' % TOKEN)
        for u in urls:
            f.write('url = "%s%s"\n' % (store_url, u))


def curl_run(store, cfg, nurls):
    call("POST", "/_fake/stats/reset")
    rss = os.path.join(tmp, "rss")
    secs, kib, _ = timed("/usr/bin/time -f %%M -o %s curl -K %s | gzip -c > /dev/null"
                         % (rss, cfg), shell=True)
    st = store_stats(store)
    if st["requests"] != nurls or st["served_429"]:
        raise SystemExit("backup.sh: curl sent %d requests of %d (%d 429s)" % (
            st["requests"], nurls, st["served_429"]))
    return {"secs": secs, "rss": kib, "served": st["requests"], "cpu": cpu_used}


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


load_start = loadavg()
expected = {"big": products, "small": small, "quota": quota_products}
conf = write_conf("o7")
for s in expected:
    add_store(conf, s)

results = {}
for latency in (0, 20):
    call("POST", "/_fake/stores/big/faults", {"rules": [], "latency_ms": latency})
    o7_rows, curl_rows = [], []
    cfg = os.path.join(tmp, "curl-%d.cfg" % latency)
    for i in range(runs):
        row = o7_run(conf, "big", record=(i == 0))
        if i == 0:
            urls = row.pop("urls")
            if len(urls) != row["served"]:
                raise SystemExit("backup.sh: recorded %d URLs of %d requests" % (
                    len(urls), row["served"]))
            curl_config("big", urls, cfg)
        o7_rows.append(row)
        crow = curl_run("big", cfg, len(urls))
        curl_rows.append(crow)
        log("%d ms run %d: o7 %.1f s %d KiB %d req (store CPU %.1f s) | curl+gzip %.1f s "
            "%d KiB (store CPU %.1f s)" % (latency, i + 1, row["secs"], row["rss"],
                                           row["requests"], row["cpu"], crow["secs"],
                                           crow["rss"], crow["cpu"]))
    results[latency] = (o7_rows, curl_rows)
call("POST", "/_fake/stores/big/faults", {"rules": [], "latency_ms": 0})

small_rows = []
for i in range(runs):
    small_rows.append(o7_run(conf, "small"))
    log("%d products run %d: o7 %.1f s %d KiB" % (small, i + 1, small_rows[-1]["secs"],
                                                   small_rows[-1]["rss"]))

quota_rows = []
for i in range(runs):
    # A fresh window each run, so every run starts with the whole quota.
    call("POST", "/_fake/stores/quota/quota", {"quota": QUOTA, "window_ms": WINDOW_MS})
    quota_rows.append(o7_run(conf, "quota"))
    log("quota run %d: o7 %.1f s, %d requests, %d 429s served" % (
        i + 1, quota_rows[-1]["secs"], quota_rows[-1]["requests"], quota_rows[-1]["s429"]))
call("POST", "/_fake/stores/quota/quota", {"quota": 0, "window_ms": WINDOW_MS})

# ---- the table -------------------------------------------------------------
lines = []
verdicts = []


def row(what, o7v, base, ratio, target, ok):
    verdicts.append(ok)
    lines.append("| %s | %s | %s | %s | %s | %s |" % (
        what, o7v, base, ratio, target, "PASS" if ok is True else
        ("FAIL" if ok is False else "-")))


lines.append("| figure | o7 | baseline (curl + gzip) | ratio | target | result |")
lines.append("| --- | --- | --- | --- | --- | --- |")
rss_big = {}
for latency in (0, 20):
    o7_rows, curl_rows = results[latency]
    n = o7_rows[0]["records"]
    t_o7, t_curl = med(o7_rows, "secs"), med(curl_rows, "secs")
    mb = med(o7_rows, "bytes") / 1e6
    reqs = med(o7_rows, "requests")
    tag = "%d products, %d ms" % (n, latency)
    speed = t_curl / t_o7
    if latency == 20:
        row(tag + ": records/s", "%.0f" % (n / t_o7), "%.0f" % (n / t_curl),
            "%.2f×" % speed, "≥ 3× baseline", speed >= 3.0)
    else:
        row(tag + ": records/s", "%.0f" % (n / t_o7), "%.0f" % (n / t_curl),
            "%.2f×" % speed, "≥ 1× baseline (not slower)", speed >= 1.0)
    row(tag + ": MB/s (uncompressed)", "%.1f" % (mb / t_o7), "%.1f" % (mb / t_curl),
        "%.2f×" % speed, "-", None)
    row(tag + ": seconds", "%.1f" % t_o7, "%.1f" % t_curl, "%.2f×" % speed, "-", None)
    row(tag + ": requests per record", "%.4f" % (reqs / n), "%.4f" % (reqs / n), "1.00",
        "-", None)
    rss = med(o7_rows, "rss") / 1024.0
    rss_big[latency] = rss
    row(tag + ": peak RSS MiB", "%.1f" % rss, "%.1f (curl)" % (med(curl_rows, "rss") / 1024.0),
        "-", "< 64 MiB", rss < 64.0)
    row(tag + ": fake store CPU s per run", "%.1f" % med(o7_rows, "cpu"),
        "%.1f" % med(curl_rows, "cpu"), "-", "-", None)
    row(tag + ": 429s / retries", "%d / %d" % (max(r["throttled"] for r in o7_rows),
                                                max(r["retries"] for r in o7_rows)),
        "-", "-", "-", None)
rss_small = med(small_rows, "rss") / 1024.0
t_small = med(small_rows, "secs")
growth = rss_big[0] / rss_small
row("%d products, 0 ms: records/s" % small, "%.0f" % (small / t_small), "-", "-", "-", None)
row("peak RSS %d vs %d products, 0 ms" % (products, small),
    "%.1f MiB vs %.1f MiB" % (rss_big[0], rss_small), "-", "%.2f×" % growth, "≤ 1.25×",
    growth <= 1.25)
fewest = math.ceil(quota_products / PAGE)
bound = fewest / QUOTA * WINDOW_MS / 1000.0
t_q = med(quota_rows, "secs")
row("quota %d/%d s, %d products: seconds" % (QUOTA, WINDOW_MS // 1000, quota_products),
    "%.1f (%d requests)" % (t_q, med(quota_rows, "requests")),
    "%.1f (%d requests / %d × %d s)" % (bound, fewest, QUOTA, WINDOW_MS // 1000),
    "%.2f×" % (t_q / bound), "≤ 1.10× bound", t_q <= bound * 1.10)
served = sum(r["s429"] for r in quota_rows)
row("quota: 429s served (all runs)", "%d" % served, "-", "-", "0", served == 0)

fails = sum(1 for v in verdicts if v is False)
head = ["# o7 backup benchmark, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "",
        "o7 %s at commit %s; %d runs per figure, medians; %d CPUs; fake store %s." % (
            o7, commit, runs, os.cpu_count(), "tests/fakestore (Python)"), "",
        "Load average (1, 5, 15 min) at the start: %s; at the end: %s. Other work on the "
        "machine slows the Python store and so both sides." % (load_start, loadavg()), "",
        "Command: `%s`" % os.environ.get("BENCH_CMD", "bench/backup.sh"), ""]
tail = ["", "Per run (seconds / peak RSS KiB / fake store CPU seconds):", ""]
for latency in (0, 20):
    o7_rows, curl_rows = results[latency]
    tail.append("- %d ms: o7 %s; curl+gzip %s" % (
        latency, ", ".join("%.1f/%d/%.1f" % (r["secs"], r["rss"], r["cpu"]) for r in o7_rows),
        ", ".join("%.1f/%d/%.1f" % (r["secs"], r["rss"], r["cpu"]) for r in curl_rows)))
tail.append("- %d products: o7 %s" % (small, ", ".join(
    "%.1f/%d" % (r["secs"], r["rss"]) for r in small_rows)))
tail.append("- quota: o7 %s" % ", ".join(
    "%.1f s/%d req/%d 429" % (r["secs"], r["requests"], r["s429"]) for r in quota_rows))
tail += ["", "%d target(s) failed." % fails if fails else "Every target passed."]
text = "\n".join(head + lines + tail) + "\n"
print(text)
with open(out_path, "w") as f:
    f.write(text)
log("written to %s" % out_path)
sys.exit(1 if fails else 0)
PY

export O7_PLUGINS=$src/plugins
export BENCH_CMD="bench/backup.sh $*"
timeout -k 10 "$((max_minutes * 60 + 30))" python3 "$tmp/driver.py" "$o7" "$url" "$tmp" "$out" \
    "$commit" "$deadline" "${RUNS:-5}" "$products" "$small" "$quota_products" "$store_pid" &
driver_pid=$!
rc=0
wait "$driver_pid" || rc=$?
driver_pid=""
exit "$rc"

#!/usr/bin/env bash
# restore.sh - measures `o7 restore BACKUP --to EMPTY_STORE` of products and
# customers against the fake store: records per second, requests made per
# type beside the fewest requests the API's batch limits allow, 429s under a
# Pro-plan quota, and o7's peak RSS. Prints a table (also written to
# bench/results/restore-DATE.md).
#
#   bench/restore.sh [BUILD_DIR]        (default: build; needs BUILD_DIR/o7)
#   RUNS=3 PRODUCTS=10000 CUSTOMERS=10000 QUOTA_PRODUCTS=1000 QUOTA_CUSTOMERS=1000 \
#       QUOTA=450 MAX_MINUTES=45 WAIT_MINUTES=40 bench/restore.sh build
#
# Everything listens on and talks to 127.0.0.1 only. It waits (up to
# WAIT_MINUTES, polling every minute) while bench/backup.sh runs, so the two
# never share the machine. The fake store, every o7 process and the
# temporary folder are ended and removed at the end, also on failure or
# Ctrl-C; the whole run stops itself after MAX_MINUTES. bench/README.md
# explains each figure and the minimum.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
build=${1:-$src/build}
case $build in /*) ;; *) build=$PWD/$build ;; esac
o7=$build/o7
max_minutes=${MAX_MINUTES:-45}
wait_minutes=${WAIT_MINUTES:-40}

[ -x "$o7" ] || { echo "restore.sh: $o7 is not built" >&2; exit 2; }
for tool in python3 timeout pgrep; do
    command -v "$tool" >/dev/null || { echo "restore.sh: $tool is missing" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "restore.sh: /usr/bin/time is missing (package time)" >&2; exit 2; }

# Another engineer's backup benchmark would skew both: wait for it to end.
waited=0
while pgrep -f bench/backup.sh >/dev/null; do
    if [ "$waited" -ge "$wait_minutes" ]; then
        echo "restore.sh: bench/backup.sh still runs after $wait_minutes minutes; not started" >&2
        exit 1
    fi
    echo "restore.sh: bench/backup.sh is running; waiting (minute $waited of $wait_minutes)" >&2
    sleep 60
    waited=$((waited + 1))
done

tmp=$(mktemp -d /tmp/o7-restorebench.XXXXXX)
store_pid=""
driver_pid=""
cleanup() {
    trap - EXIT INT TERM
    # The driver ends its own child (the o7 being timed) when told to stop.
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

# Other engineers edit the plugins and the fake store while this runs: every run uses the
# copies taken now, so all of them measure the same code.
mkdir -p "$tmp/snap/tests"
cp -r "$src/plugins" "$tmp/snap/plugins"
cp -r "$src/tests/fakestore" "$tmp/snap/tests/fakestore"
rm -rf "$tmp/snap/tests/fakestore/__pycache__"
cp "$o7" "$tmp/snap/o7"
dirty=$(git -C "$src" status --porcelain -- plugins tests/fakestore 2>/dev/null | wc -l)

products=${PRODUCTS:-10000}
customers=${CUSTOMERS:-10000}
quota_products=${QUOTA_PRODUCTS:-1000}
quota_customers=${QUOTA_CUSTOMERS:-1000}

# One fake store process holds both sources and every target, so the image
# URLs of the backups (the source's /_img/ paths) can be fetched by a target.
python3 "$tmp/snap/tests/fakestore/fakestore.py" --host 127.0.0.1 --port 0 \
    --store "big=bench:$products/$customers" \
    --store "qsrc=bench:$quota_products/$quota_customers" \
    > "$tmp/store.out" 2>"$tmp/store.err" &
store_pid=$!
url=""
for _ in $(seq 100); do
    line=$(head -n 1 "$tmp/store.out")
    case $line in *"listening on http://127.0.0.1:"*) url=${line##*listening on }; break ;; esac
    kill -0 "$store_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "restore.sh: the fake store did not start" >&2
    cat "$tmp/store.err" >&2
    exit 1
fi

mkdir -p "$here/results"
out=$here/results/restore-$(date -u +%Y-%m-%dT%H%M).md
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)

deadline=$(($(date +%s) + max_minutes * 60))
cat > "$tmp/driver.py" <<'PY'
"""Backs the sources up, restores them into empty stores, prints the table."""
import gzip
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

(o7, store_url, tmp, out_path, commit, deadline, runs, products, customers, q_products,
 q_customers, quota, store_pid) = sys.argv[1:14]
deadline, runs, quota = float(deadline), int(runs), int(quota)
products, customers = int(products), int(customers)
q_products, q_customers = int(q_products), int(q_customers)
TOKEN = "o7-sample-token"
TYPES = []              # products, customers and what they depend on (from o7 plugins)
KEY_TYPES = ("products", "customers")
WINDOW_MS = 30000
PRODUCT_LOOKUP = 10     # SKUs one lookup settles (bench/README.md: the page cap with options)
CUSTOMER_LOOKUP = 10    # emails per email:in lookup (the issue's formula)
CUSTOMER_BATCH = 10     # customers per POST (the API's limit)
LEAN_LOOKUP = 250       # a lookup page without options/modifiers: the lean floor
current = None


def on_term(signum, frame):
    raise SystemExit(143)


signal.signal(signal.SIGTERM, on_term)


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(store_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip().startswith(("{", "[")) else text


def store_cpu():
    with open("/proc/%s/stat" % store_pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def remaining():
    left = deadline - time.time()
    if left < 5:
        raise SystemExit("restore.sh: out of time (MAX_MINUTES); no table written")
    return left


def timed(argv):
    """Runs argv under /usr/bin/time; returns (seconds, peak RSS KiB, CPU s, store CPU s,
    stdout)."""
    global current
    rss = os.path.join(tmp, "rss")
    if os.path.exists(rss):
        os.unlink(rss)
    cpu0 = store_cpu()
    start = time.monotonic()
    current = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", rss] + argv,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        so, se = current.communicate(timeout=remaining())
    except BaseException:
        os.killpg(current.pid, signal.SIGKILL)
        current.wait()
        raise
    secs = time.monotonic() - start
    rc, current = current.returncode, None
    if rc != 0:
        raise SystemExit("restore.sh: %s %s failed (%d): %s" % (argv[3], argv[4], rc,
                                                               se[-2000:]))
    with open(rss) as f:
        kib, user, system = f.read().split()[-3:]
    return secs, int(kib), float(user) + float(system), store_cpu() - cpu0, so


def write_conf():
    d = os.path.join(tmp, "o7")
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
        raise SystemExit("restore.sh: o7 store add %s failed: %s" % (store, p.stderr))


def backup(conf, store, want):
    secs, kib, cpu, scpu, so = timed([o7, "-c", conf, "backup", store, "--types",
                                      ",".join(TYPES), "--json"])
    doc = json.loads(so)
    got = {t: doc["types"][t]["records"] for t in ("products", "customers")}
    if doc["status"] != "complete" or got != want:
        raise SystemExit("restore.sh: backup of %s: %s %r" % (store, doc["status"], got))
    log("backup of %s: %.1f s, %d requests" % (store, secs, doc["requests"]))
    return doc["backup_id"], {t: v["records"] for t, v in doc["types"].items()}


def backup_records(conf, store, backup_id, type_):
    d = os.path.join(os.path.dirname(conf), "backups", store, backup_id)
    with open(os.path.join(d, "manifest.json")) as f:
        obj = json.load(f)["types"][type_]["object"]
    with gzip.open(os.path.join(d, obj), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---- the minimum -----------------------------------------------------------------------------

def inline_options(p):
    """The options an inline create makes from the variants' {option_display_name, label}:
    display name -> (sort order, [labels in order of first use]), as the API's create does:
    type rectangles, config {}, no value data, no default."""
    made = {}
    for v in p.get("variants") or []:
        for ov in v.get("option_values") or []:
            name = ov["option_display_name"]
            if name not in made:
                made[name] = (len(made), [])
            if ov["label"] not in made[name][1]:
                made[name][1].append(ov["label"])
    return made


def product_extra_calls(p):
    """Calls a product needs beyond its POST: each modifier (POST, values inline), each
    option the inline create got wrong or could not make, each such option value."""
    calls = len(p.get("modifiers") or [])
    made = inline_options(p) if p.get("options") else {}
    for o in p.get("options") or []:
        m = made.get(o["display_name"])
        if m is None:
            calls += 1
            continue
        if o["type"] != "rectangles" or (o.get("config") or {}) != {} or \
                o["sort_order"] != m[0]:
            calls += 1
        for val in o.get("option_values") or []:
            if val["label"] not in m[1]:
                calls += 1
            elif val["sort_order"] != m[1].index(val["label"]) or \
                    val.get("value_data") is not None or val.get("is_default"):
                calls += 1
    return calls


def minimum(conf, store, backup_id, counts):
    """The fewest requests per type (bench/README.md gives the formula)."""
    prods = backup_records(conf, store, backup_id, "products")
    n_p, n_c = len(prods), counts["customers"]
    extra = sum(product_extra_calls(p) for p in prods)
    m = {
        "products": n_p + extra + math.ceil(n_p / PRODUCT_LOOKUP),
        "customers": math.ceil(n_c / CUSTOMER_BATCH) + math.ceil(n_c / CUSTOMER_LOOKUP),
    }
    lean = dict(m)
    lean["products"] = n_p + extra + math.ceil(n_p / LEAN_LOOKUP)
    lean["customers"] = math.ceil(n_c / CUSTOMER_BATCH) + math.ceil(n_c / LEAN_LOOKUP)
    return m, lean, {"extra": extra, "products": n_p, "customers": n_c}


# ---- the runs --------------------------------------------------------------------------------

# The type a request is counted under, by its path (first match).
PATH_TYPES = [("/v3/catalog/products", "products"), ("/v3/customers", "customers"),
              ("/v3/catalog/brands", "brands"), ("/v3/catalog/trees/categories", "categories"),
              ("/v3/catalog/trees", "category_trees"), ("/v3/channels", "channels"),
              ("/v2/customer_groups", "customer_groups"), ("/v2/tax_classes", "tax_classes"),
              ("/v3/tax/classes", "tax_classes")]


def type_of(url):
    """url: /stores/HASH/v3/...?query as the fake store recorded it."""
    path = "/" + url.split("?", 1)[0].split("/", 3)[3]
    for prefix, ty in PATH_TYPES:
        if path.startswith(prefix):
            return ty
    return "other"


def plan_types(conf):
    """products, customers and every type they depend on, as the plugins declare."""
    p = subprocess.run([o7, "-c", conf, "plugins", "--json"], capture_output=True, text=True,
                       timeout=60)
    deps = {x["type"]: x.get("depends") or [] for x in json.loads(p.stdout)["plugins"]}
    want, todo = [], list(KEY_TYPES)
    while todo:
        t = todo.pop()
        if t not in want:
            want.append(t)
            todo += deps.get(t, [])
    return sorted(want)


seq = [0]


def restore(conf, backup_id, want, quota_on=False):
    """One timed restore into a new empty store; returns its figures."""
    seq[0] += 1
    target = "dst%d" % seq[0]
    body = {"hash": target, "preset": "empty"}
    if quota_on:
        body.update({"quota": quota, "window_ms": WINDOW_MS})
    call("POST", "/_fake/stores", body)
    add_store(conf, target)
    call("POST", "/_fake/stats/reset")
    call("POST", "/_fake/stats/record", {"on": True})
    secs, kib, cpu, scpu, so = timed([o7, "-c", conf, "restore", backup_id, "--to", target,
                                      "--types", ",".join(TYPES), "--json"])
    doc = json.loads(so)
    st = call("GET", "/_fake/stats")["stores"][target]
    call("POST", "/_fake/stats/record", {"on": False})
    counts = call("GET", "/_fake/stores/%s/counts" % target)
    call("DELETE", "/_fake/stores/%s" % target)
    t = doc["types"]
    for type_ in ("products", "customers"):
        if t[type_]["created"] != want[type_] or t[type_]["failed"] or \
                counts[type_] != want[type_]:
            raise SystemExit("restore.sh: restore into %s: %s %s %r, store holds %d" % (
                target, doc["status"], type_, t[type_], counts[type_]))
    if doc["status"] != "complete":
        raise SystemExit("restore.sh: restore into %s: %s: %s" % (
            target, doc["status"], doc.get("error")))
    # The safety backup runs to its end before the first write: the first requests the
    # store saw beyond o7's own count are its; the rest are the restore's, counted per type.
    safety = st["requests"] - doc["requests"]
    if safety < 0 or len(st["urls"]) != st["requests"]:
        raise SystemExit("restore.sh: the store saw %d requests (%d recorded), o7 counts %d" % (
            st["requests"], len(st["urls"]), doc["requests"]))
    per = {ty: 0 for ty in TYPES + ["other"]}
    for u in st["urls"][safety:]:
        per[type_of(u)] = per.get(type_of(u), 0) + 1
    return {"safety": safety, "secs": secs, "restore_secs": doc["seconds"], "rss": kib, "cpu": cpu,
            "store_cpu": scpu, "requests": doc["requests"], "served": st["requests"],
            "s429": st["served_429"], "per": per, "by_pattern": st["by_pattern"],
            "records": want["products"] + want["customers"]}


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


load_start = loadavg()
conf = write_conf()
TYPES.extend(plan_types(conf))
log("types: %s" % ",".join(TYPES))
for s in ("big", "qsrc"):
    add_store(conf, s)
big_want = {"products": products, "customers": customers}
q_want = {"products": q_products, "customers": q_customers}
big_id, big_counts = backup(conf, "big", big_want)
q_id, q_counts = backup(conf, "qsrc", q_want)
big_min, big_lean, big_info = minimum(conf, "big", big_id, big_counts)
q_min, q_lean, q_info = minimum(conf, "qsrc", q_id, q_counts)
log("minimum for %d + %d: %r (products beyond their POST: %d)" % (
    products, customers, big_min, big_info["extra"]))

rows = []
for i in range(runs):
    r = restore(conf, big_id, big_want)
    rows.append(r)
    log("run %d: %.1f s (restore %.1f s), %d requests, %d KiB, o7 CPU %.1f s, store CPU "
        "%.1f s, 429s %d" % (i + 1, r["secs"], r["restore_secs"], r["requests"], r["rss"],
                             r["cpu"], r["store_cpu"], r["s429"]))
q = restore(conf, q_id, q_want, quota_on=True)
log("quota run: %.1f s, %d requests (%d served), 429s %d" % (
    q["secs"], q["requests"], q["served"], q["s429"]))

# ---- the table -------------------------------------------------------------------------------
lines, verdicts = [], []


def row(what, o7v, minv, ratio, target, ok):
    verdicts.append(ok)
    lines.append("| %s | %s | %s | %s | %s | %s |" % (
        what, o7v, minv, ratio, target, "PASS" if ok is True else
        ("FAIL" if ok is False else "-")))


mid = sorted(rows, key=lambda r: r["secs"])[len(rows) // 2]
lines.append("| figure | o7 | minimum | ratio | target | result |")
lines.append("| --- | --- | --- | --- | --- | --- |")


def request_rows(tag, r, mins, lean=None):
    """Requests per type against the minimum; products + customers is the target."""
    for ty in KEY_TYPES:
        got = r["per"][ty]
        row(tag + ": requests, " + ty, "%d" % got, "%d" % mins[ty],
            "%.2f×" % (got / mins[ty]), "≤ 1.2× minimum", got <= 1.2 * mins[ty])
    got = sum(r["per"][ty] for ty in KEY_TYPES)
    least = sum(mins[ty] for ty in KEY_TYPES)
    row(tag + ": requests, products + customers", "%d" % got, "%d" % least,
        "%.2f×" % (got / least), "≤ 1.2× minimum", got <= 1.2 * least)
    for ty in KEY_TYPES if lean else ():
        row(tag + ": requests, %s, against the lean floor" % ty, "%d" % r["per"][ty],
            "%d" % lean[ty], "%.2f×" % (r["per"][ty] / lean[ty]), "-", None)
    deps = [ty for ty in sorted(r["per"]) if ty not in KEY_TYPES and r["per"][ty]]
    row(tag + ": requests, the types they depend on", ", ".join(
        "%s %d" % (ty, r["per"][ty]) for ty in deps) or "0", "-", "-", "-", None)
    row(tag + ": requests, all (o7's own count; + safety backup)",
        "%d (+ %d)" % (r["requests"], r["safety"]), "-", "-", "-", None)


tag = "%d products + %d customers" % (products, customers)
n = products + customers
row(tag + ": records/s (wall, whole command)", "%.0f" % (n / med(rows, "secs")), "-", "-",
    "-", None)
row(tag + ": seconds (wall / restore phase)", "%.1f / %.1f" % (med(rows, "secs"),
                                                              med(rows, "restore_secs")),
    "-", "-", "-", None)
request_rows(tag, mid, big_min, big_lean)
row(tag + ": 429s served (all runs)", "%d" % sum(r["s429"] for r in rows), "0", "-", "0",
    sum(r["s429"] for r in rows) == 0)
row(tag + ": peak RSS MiB", "%.1f" % (med(rows, "rss") / 1024.0), "-", "-", "-", None)
row(tag + ": CPU s, o7 / fake store", "%.1f / %.1f" % (med(rows, "cpu"), med(rows, "store_cpu")),
    "-", "-", "-", None)
qtag = "quota %d/%d s, %d + %d" % (quota, WINDOW_MS // 1000, q_products, q_customers)
bound = q["served"] / quota * WINDOW_MS / 1000.0
# The fake store's window is fixed and opens at the first request: a full window's worth may
# go at once, so the earliest end is at the opening of the last window needed.
earliest = (math.ceil(q["served"] / quota) - 1) * WINDOW_MS / 1000.0
row(qtag + ": seconds (wall)", "%.1f" % q["secs"],
    "%.1f = %d requests served / %d × %d s (earliest end %.0f s)" % (
        bound, q["served"], quota, WINDOW_MS // 1000, earliest),
    "%.2f×" % (q["secs"] / bound), "-", None)
request_rows(qtag, q, q_min)
row(qtag + ": 429s served", "%d" % q["s429"], "0", "-", "0", q["s429"] == 0)
row(qtag + ": peak RSS MiB", "%.1f" % (q["rss"] / 1024.0), "-", "-", "-", None)

fails = sum(1 for v in verdicts if v is False)
head = ["# o7 restore benchmark, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "",
        "o7 %s at commit %s%s; %d runs into new empty stores, median (the per-type counts "
        "are the median run's); %d CPUs; fake store tests/fakestore (Python)." % (
            os.environ.get("O7_ORIG", o7), commit,
            " with %s uncommitted file(s) in plugins/ or tests/fakestore/" % os.environ[
                "O7_DIRTY"] if os.environ.get("O7_DIRTY", "0") != "0" else "",
            runs, os.cpu_count()), "",
        "Types restored (products, customers and what they depend on): %s." % ", ".join(TYPES),
        "",
        "Load average (1, 5, 15 min) at the start: %s; at the end: %s." % (
            load_start, loadavg()), "",
        "Command: `%s`" % os.environ.get("BENCH_CMD", "bench/restore.sh"), "",
        "Minimum for %d products (%d calls beyond their POSTs: modifiers and option settings) "
        "and %d customers: %s." % (products, big_info["extra"], customers, ", ".join(
            "%s %d" % (t, big_min[t]) for t in KEY_TYPES)), ""]
tail = ["", "Per run (wall s / restore phase s / requests / peak RSS KiB / o7 CPU s / store "
        "CPU s):", ""]
tail += ["- %.1f / %.1f / %d / %d / %.1f / %.1f" % (
    r["secs"], r["restore_secs"], r["requests"], r["rss"], r["cpu"], r["store_cpu"])
    for r in rows]
tail += ["- quota run: %.1f / %.1f / %d / %d / %.1f / %.1f, %d 429s" % (
    q["secs"], q["restore_secs"], q["requests"], q["rss"], q["cpu"], q["store_cpu"],
    q["s429"])]
tail += ["", "Requests of the median run by path (the fake store's count, the safety "
         "backup's included):", ""]
tail += ["- %d %s" % (v, k) for k, v in sorted(mid["by_pattern"].items(), key=lambda x: -x[1])]
tail += ["", "%d target(s) failed." % fails if fails else "Every target passed."]
text = "\n".join(head + lines + tail) + "\n"
print(text)
with open(out_path, "w") as f:
    f.write(text)
log("written to %s" % out_path)
sys.exit(1 if fails else 0)
PY

export O7_PLUGINS=$tmp/snap/plugins O7_DIRTY=$dirty O7_ORIG=$o7
export BENCH_CMD="RUNS=${RUNS:-3} PRODUCTS=$products CUSTOMERS=$customers \
QUOTA_PRODUCTS=$quota_products QUOTA_CUSTOMERS=$quota_customers QUOTA=${QUOTA:-450} \
MAX_MINUTES=$max_minutes bench/restore.sh $*"
timeout -k 10 "$((max_minutes * 60 + 30))" python3 "$tmp/driver.py" "$tmp/snap/o7" "$url" \
    "$tmp" "$out" "$commit" "$deadline" "${RUNS:-3}" "$products" "$customers" "$quota_products" \
    "$quota_customers" "${QUOTA:-450}" "$store_pid" &
driver_pid=$!
rc=0
wait "$driver_pid" || rc=$?
driver_pid=""
exit "$rc"

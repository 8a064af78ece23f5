"""The backup engine under faults: every case ends either complete and
exact (record by record against the fake store's dump) or clearly failed
(exit 1, status failed, an error sentence, no manifest.json, the catalog
saying failed). Never a wrong "complete".

Each case makes its own small store on the shared fake store, so faults,
stats and quota of one case cannot leak into another."""

import itertools
import json
import os
import signal
import subprocess
import time

from harness import O7, FakeStore, Workspace, compare_type, exact, main, read_object

fake = FakeStore(stores=())
_names = itertools.count(1)


def new_store(preset="bench:40", seed=1):
    """A fresh store on the fake; returns its hash."""
    h = "f%dx%d" % (os.getpid() % 1000, next(_names))
    fake.call("POST", "/_fake/stores", {"hash": h, "preset": preset, "seed": seed})
    return h


def setup(preset="bench:40", **ws_kw):
    h = new_store(preset)
    ws = Workspace(fake.url, **ws_kw)
    ws.add_store(h)
    return h, ws


def stats(h):
    return fake.stats()["stores"][h]


def backup(ws, h, *types, timeout=150):
    args = ["backup", h]
    if types:
        args += ["--types", ",".join(types)]
    start = time.time()
    code, doc, err = ws.json(*args, timeout=timeout)
    return code, doc, err, time.time() - start


def assert_complete(ws, h, code, doc, err, types):
    assert code == 0, (code, doc.get("error"), err[-3000:])
    assert doc["status"] == "complete", doc
    for t in types:
        assert doc["types"][t]["status"] == "complete", (t, doc["types"][t])
        compare_type(fake, h, ws, doc["backup_id"], t)


def catalog_status(ws, h, backup_id):
    code, lst, err = ws.json("backups", h)
    assert code == 0, (lst, err)
    for b in lst["backups"]:
        if b["backup_id"] == backup_id:
            return b["status"]
    return None


def assert_failed(ws, h, code, doc, err, *words):
    """Exit 1, status failed, a sentence holding every word, no manifest,
    and the catalog lists the backup as failed."""
    assert code == 1, (code, doc, err[-2000:])
    assert doc["status"] == "failed", doc
    sentence = doc.get("error", "")
    assert len(sentence) > 20, doc
    for w in words:
        assert w.lower() in sentence.lower(), (w, sentence)
    folder = ws.backup_dir(h, doc["backup_id"])
    assert not os.path.exists(os.path.join(folder, "manifest.json")), folder
    assert catalog_status(ws, h, doc["backup_id"]) == "failed"
    return sentence


def backup_records(ws, h, doc, type_):
    obj = doc["types"][type_]["object"]
    return read_object(os.path.join(ws.backup_dir(h, doc["backup_id"]), obj))


def compare_loose(ws, h, doc, type_, before, key="id"):
    """For a store that changed during the backup: every record that
    existed throughout (in `before` and in the store now) is in the backup
    exactly, once; records that came or went may be in it, but then as
    they were. Returns the backup's ids."""
    after = {json.dumps(exact(l)[key]): exact(l) for l in fake.dump(h, type_)}
    was = {json.dumps(exact(l)[key]): exact(l) for l in before}
    got = {}
    for line in backup_records(ws, h, doc, type_):
        r = exact(line)
        k = json.dumps(r[key])
        assert k not in got, "%s %s is in the backup twice" % (type_, k)
        got[k] = r
    for k in set(after) & set(was):
        assert k in got, "%s %s existed throughout but is missing" % (type_, k)
        assert got[k] == after[k], "%s %s differs" % (type_, k)
    for k in got:
        assert k in after or k in was, "%s %s never existed" % (type_, k)
        assert got[k] in (after.get(k), was.get(k)), "%s %s is neither before nor after" % (
            type_, k)
    return set(got)


# ---- throttling ------------------------------------------------------------------------------

def test_429_storm_with_headers_waits_as_told():
    h, ws = setup()
    # The first products page is refused once with a 1.5 s reset (and
    # X-Retry-After 2): o7 must pause, not hammer.
    fake.faults(h, [{"path": "^/v3/catalog/products$", "count": 1, "status": 429,
                     "reset_ms": 1500},
                    {"path": "^/v3/catalog/products$", "after": 1, "count": 5, "status": 429,
                     "reset_ms": 200}])
    code, doc, err, took = backup(ws, h, "products")
    assert_complete(ws, h, code, doc, err, ["products"])
    assert stats(h)["served_429"] == 6, stats(h)
    assert doc["throttled"] >= 6, doc
    assert took >= 1.5, "o7 did not wait for the reset (%.2f s)" % took


def test_429_without_headers_backs_off():
    h, ws = setup()
    fake.faults(h, [{"path": "^/v3/catalog/brands$", "count": 2, "status": 429,
                     "no_headers": True}])
    code, doc, err, took = backup(ws, h, "brands", "pages")
    assert_complete(ws, h, code, doc, err, ["brands", "pages"])
    assert stats(h)["served_429"] == 2, stats(h)
    # Backoff without headers starts near 1 s and grows.
    assert took >= 2.0, took


# ---- server errors ---------------------------------------------------------------------------

def test_5xx_bursts_on_pages_and_children():
    h, ws = setup()
    rules = []
    for i, status in enumerate((500, 502, 503, 504)):
        rules.append({"path": "^/v3/catalog/products$", "after": i, "count": 1,
                      "status": status})
    rules.append({"path": "^/v2/orders$", "count": 2, "status": 503})
    rules.append({"path": "^/v2/orders/\\d+/coupons$", "count": 3, "status": 502})
    rules.append({"path": "^/v2/orders/\\d+/products$", "after": 2, "count": 2,
                  "status": 500})
    fake.faults(h, rules)
    code, doc, err, _ = backup(ws, h, "products", "orders")
    assert_complete(ws, h, code, doc, err, ["products", "orders"])
    assert stats(h)["fault_5xx"] == 11, stats(h)
    assert doc["retries"] >= 11, doc


def test_endless_5xx_fails_naming_the_type():
    h, ws = setup()
    fake.faults(h, [{"path": "^/v3/content/pages$", "count": -1, "status": 503}])
    code, doc, err, took = backup(ws, h, "pages", "brands")
    s = assert_failed(ws, h, code, doc, err, "pages", "503")
    assert doc["types"]["pages"]["status"] == "failed", doc
    assert took < 60, took


# ---- transport faults ------------------------------------------------------------------------

def test_resets_and_truncated_bodies_are_retried():
    h, ws = setup()
    fake.faults(h, [
        {"path": "^/v3/catalog/products$", "count": 2, "action": "reset"},
        {"path": "^/v3/catalog/products$", "after": 3, "count": 1, "action": "reset",
         "rst": True},
        {"path": "^/v3/customers$", "count": 2, "action": "truncate"},
        {"path": "^/v2/orders/\\d+/shipping_addresses$", "count": 2, "action": "truncate"},
    ])
    code, doc, err, _ = backup(ws, h, "products", "customers", "orders")
    assert_complete(ws, h, code, doc, err, ["products", "customers", "orders"])


# ---- the store changing while it is read ----------------------------------------------------

def test_product_deleted_mid_scan_keyset():
    h, ws = setup()
    before = fake.dump(h, "products")
    ids = [exact(l)["id"][1] for l in before]
    victim = int(ids[len(ids) // 2])
    fake.faults(h, [{"path": "^/v3/catalog/products$", "after": 1, "count": 1,
                     "action": "mutate",
                     "mutation": {"op": "delete", "type": "products", "id": victim}}])
    code, doc, err, _ = backup(ws, h, "products")
    assert code == 0 and doc["status"] == "complete", (doc, err[-2000:])
    got = compare_loose(ws, h, doc, "products", before)
    assert len(got) >= len(before) - 1


def add_pages(h, n):
    """Copies of the store's first page until it holds more than one page
    of 250."""
    first = json.loads(fake.dump(h, "pages")[0])
    for i in range(n):
        rec = dict(first)
        rec.pop("id", None)
        rec["name"] = "Copy %d" % i
        rec["url"] = "/copy-%d/" % i
        fake.call("POST", "/_fake/stores/%s/mutate" % h,
                  {"op": "create", "type": "pages", "record": rec})


def test_page_deleted_mid_scan_page_numbered_rescans():
    h, ws = setup()
    add_pages(h, 280)
    before = fake.dump(h, "pages")
    assert len(before) > 250
    victim = exact(before[10])["id"][1]
    # Deleted as page 2 is asked for: page 2 has shifted by one, so one
    # record that existed throughout would be skipped without a rescan.
    fake.faults(h, [{"path": "^/v3/content/pages$", "after": 1, "count": 1,
                     "action": "mutate",
                     "mutation": {"op": "delete", "type": "pages", "id": int(victim)}}])
    code, doc, err, _ = backup(ws, h, "pages")
    assert_complete(ws, h, code, doc, err, ["pages"])
    assert "reading the type again" in err, err[-2000:]
    assert stats(h)["by_pattern"]["GET /v3/content/pages"] >= 4, stats(h)


def test_page_added_mid_scan_page_numbered():
    h, ws = setup()
    add_pages(h, 280)
    before = fake.dump(h, "pages")
    first = json.loads(before[0])
    rec = dict(first)
    rec.pop("id")
    rec["url"] = "/late/"
    fake.faults(h, [{"path": "^/v3/content/pages$", "after": 1, "count": 1,
                     "action": "mutate",
                     "mutation": {"op": "create", "type": "pages", "record": rec}}])
    code, doc, err, _ = backup(ws, h, "pages")
    assert code == 0 and doc["status"] == "complete", (doc, err[-2000:])
    got = compare_loose(ws, h, doc, "pages", before)
    assert len(got) >= len(before)


def test_product_added_mid_scan_keyset():
    h, ws = setup()
    before = fake.dump(h, "products")
    rec = json.loads(before[0])
    rec.pop("id")
    rec["sku"] = "LATE-1"
    fake.faults(h, [{"path": "^/v3/catalog/products$", "after": 1, "count": 1,
                     "action": "mutate",
                     "mutation": {"op": "create", "type": "products", "record": rec}}])
    code, doc, err, _ = backup(ws, h, "products")
    assert code == 0 and doc["status"] == "complete", (doc, err[-2000:])
    got = compare_loose(ws, h, doc, "products", before)
    assert len(got) >= len(before)


def test_order_deleted_between_list_and_children():
    h, ws = setup()
    orders = [exact(l)["id"][1] for l in fake.dump(h, "orders")]
    victim = int(orders[3])
    fake.faults(h, [{"path": "^/v2/orders/%d/coupons$" % victim, "count": 1,
                     "action": "mutate",
                     "mutation": {"op": "delete", "type": "orders", "id": victim}}])
    code, doc, err, _ = backup(ws, h, "orders")
    assert_complete(ws, h, code, doc, err, ["orders"])
    ids = {exact(l)["id"][1] for l in backup_records(ws, h, doc, "orders")}
    assert str(victim) not in ids, "deleted order %d was stored" % victim
    assert "vanished" in err and "left out" in err, err[-2000:]


# ---- how lists end ---------------------------------------------------------------------------

def test_v2_list_ending_on_204():
    # 250 orders exactly: the first page is full, so o7 asks past it and
    # gets a 204.
    h, ws = setup()
    orders = fake.dump(h, "orders")
    base = json.loads(orders[0])
    for i in range(250 - len(orders)):
        rec = dict(base)
        rec.pop("id")
        fake.call("POST", "/_fake/stores/%s/mutate" % h,
                  {"op": "create", "type": "orders", "record": rec})
    fake.call("POST", "/_fake/stats/record", {"on": True})
    try:
        code, doc, err, _ = backup(ws, h, "orders")
    finally:
        fake.call("POST", "/_fake/stats/record", {"on": False})
    assert_complete(ws, h, code, doc, err, ["orders"])
    assert doc["types"]["orders"]["records"] == 250
    lists = [u for u in stats(h)["urls"] if u.split("?")[0].endswith("/v2/orders")]
    assert len(lists) >= 2, lists


def test_v2_list_ending_on_short_page_and_empty():
    h, ws = setup()
    code, doc, err, _ = backup(ws, h, "orders")
    assert_complete(ws, h, code, doc, err, ["orders"])
    e, ws2 = setup("empty")
    code, doc, err, _ = backup(ws2, e, "orders", "pages", "products")
    assert_complete(ws2, e, code, doc, err, ["orders", "pages", "products"])
    assert doc["records"] == 0


def test_wrong_totals_do_not_stop_a_scan():
    h, ws = setup()
    add_pages(h, 280)
    # Every list page claims far fewer records than there are.
    fake.faults(h, [{"path": "^/v3/(content/pages|catalog/products|catalog/trees/categories)$",
                     "count": -1, "action": "total", "total": 3}])
    code, doc, err, _ = backup(ws, h, "pages", "products", "categories")
    assert_complete(ws, h, code, doc, err, ["pages", "products", "categories"])
    assert doc["types"]["pages"]["records"] > 250


# ---- credentials -----------------------------------------------------------------------------

def test_401_mid_backup_fails_at_once():
    h, ws = setup()
    fake.faults(h, [{"path": "^/v3/catalog/products$", "after": 1, "count": -1,
                     "status": 401}])
    code, doc, err, took = backup(ws, h, "products", "orders")
    assert_failed(ws, h, code, doc, err, "token", "rejected")
    assert took < 20, took


def test_403_names_the_missing_scope():
    h, ws = setup()
    fake.faults(h, [{"path": "^/v2/orders", "count": -1, "status": 403}])
    code, doc, err, _ = backup(ws, h, "orders", "brands")
    assert_failed(ws, h, code, doc, err, "store_v2_orders_read_only", "scope")


# ---- stopped processes -----------------------------------------------------------------------

def start_slow(ws, h, latency_ms=300):
    fake.faults(h, [], latency_ms=latency_ms)
    p = subprocess.Popen([O7, "-c", ws.conf, "backup", h, "--json"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # Wait (bounded) until the backup has begun writing.
    deadline = time.time() + 20
    folder = os.path.join(ws.storage, h)
    while time.time() < deadline:
        if os.path.isdir(folder) and os.listdir(folder):
            break
        time.sleep(0.05)
    time.sleep(0.5)
    assert p.poll() is None, "the slow backup ended early: %s" % (p.communicate(),)
    return p


def only_folder(ws, h):
    ids = os.listdir(os.path.join(ws.storage, h))
    assert len(ids) == 1, ids
    return ids[0]


def test_sigkill_leaves_no_complete_backup():
    h, ws = setup()
    p = start_slow(ws, h)
    killed = only_folder(ws, h)
    p.kill()
    p.communicate(timeout=10)
    assert not os.path.exists(os.path.join(ws.backup_dir(h, killed), "manifest.json"))
    assert catalog_status(ws, h, killed) != "complete"
    fake.faults(h, [], latency_ms=0)
    code, doc, err, _ = backup(ws, h, "brands", "pages")
    assert_complete(ws, h, code, doc, err, ["brands", "pages"])
    assert catalog_status(ws, h, killed) == "failed"
    code, lst, _ = ws.json("backups", h)
    statuses = {b["backup_id"]: b["status"] for b in lst["backups"]}
    assert statuses == {killed: "failed", doc["backup_id"]: "complete"}, statuses


def test_sigterm_fails_cleanly():
    h, ws = setup()
    p = start_slow(ws, h)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    doc = json.loads(out)
    assert_failed(ws, h, p.returncode, doc, err, "interrupted")
    assert_no_partial_objects(ws, h, doc)


def assert_no_partial_objects(ws, h, doc):
    """A type cut short by the stop is not complete, and nothing of it is
    stored under its final name; a type said complete holds all its
    records."""
    folder = ws.backup_dir(h, doc["backup_id"])
    counts = fake.call("GET", "/_fake/stores/%s/counts" % h)
    for t, r in doc["types"].items():
        path = os.path.join(folder, r["object"])
        if r["status"] == "complete":
            assert r["records"] == counts[t], (t, r, counts[t])
            assert os.path.exists(path), path
        else:
            assert not os.path.exists(path), "partial %s stored under its name" % t


def test_sigint_keeps_no_partial_object():
    h, ws = setup()
    p = start_slow(ws, h, latency_ms=100)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    doc = json.loads(out)
    assert_failed(ws, h, p.returncode, doc, err, "interrupted")
    assert any(r["status"] != "complete" for r in doc["types"].values()), doc["types"]
    assert_no_partial_objects(ws, h, doc)


def test_second_backup_of_a_store_is_refused():
    h, ws = setup()
    p = start_slow(ws, h)
    try:
        start = time.time()
        code, doc, err, _ = backup(ws, h, "brands", timeout=30)
        assert time.time() - start < 10
        assert code == 1, (code, doc)
        assert doc["status"] == "failed" and "already running" in doc["error"], doc
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)


# ---- pacing ----------------------------------------------------------------------------------

def test_pacing_stays_inside_a_small_quota():
    h, ws = setup("bench:400")
    fake.call("POST", "/_fake/stores/%s/quota" % h, {"quota": 40, "window_ms": 3000})
    fake.call("POST", "/_fake/stats/reset")
    code, doc, err, took = backup(ws, h, "products", "orders", "brands", "pages")
    assert_complete(ws, h, code, doc, err, ["products", "orders", "brands", "pages"])
    st = stats(h)
    assert st["served_429"] == 0, "o7 caused %d 429s" % st["served_429"]
    n = st["requests"]
    windows = n // 40  # full windows used up before the last one began
    assert n > 80, n
    assert took >= (windows - 1) * 3.0, (n, took)
    assert took <= (windows + 2) * 3.0 + 5, (n, took)


# ---- the --json contract ---------------------------------------------------------------------

def one_object(ws, args, want_code):
    code, out, err = ws.run(*args)
    try:
        doc = json.loads(out)
    except ValueError:
        raise AssertionError("o7 %s: stdout is not one JSON object: %r (stderr %r)"
                             % (" ".join(args), out[:300], err[-500:]))
    assert isinstance(doc, dict), (args, doc)
    assert code == want_code, (args, code, doc, err[-500:])
    if code != 0 and "status" in doc:
        assert doc["status"] == "failed" and doc.get("error"), (args, doc)
    return doc


def test_json_contract():
    h, ws = setup()
    code, doc, err, _ = backup(ws, h, "brands")
    assert code == 0
    bid = doc["backup_id"]
    for args, want in [
        (["backups", h, "--json"], 0),
        (["verify", bid, "--json"], 0),
        (["plugins", "--json"], 0),
        (["store", "list", "--json"], 0),
        (["audit", "--json"], 0),
        (["catalog", "rebuild", "--json"], 0),
        (["gc", "--json"], 0),
        (["url", bid, "brands", "--json"], 0),
        (["backup", "--json"], 2),
        (["backup", h, "--bogus", "--json"], 2),
        (["backups", "--json"], 2),
        (["verify", "nosuchbackup", "--json"], 1),
        (["backup", "nosuchstore", "--json"], 1),
        (["backup", h, "--types", "nosuchtype", "--json"], 2),
        (["url", bid, "--ttl", "999999999", "brands", "--json"], 2),
        (["nosuchcommand", "--json"], 2),
        (["--bogus", "backups", h, "--json"], 2),
        (["delete", bid, "--json"], 0),
    ]:
        one_object(ws, args, want)
    bad = os.path.join(ws.dir, "bad.conf")
    with open(bad, "w") as f:
        f.write("[bigcommerce]\nnot_a_key = 1\n")
    for args in (["backup", h, "--json"], ["backups", h, "--json"], ["plugins", "--json"]):
        code, out, err = ws.run(*args)  # with the good conf first, then the bad one
        p = subprocess.run([O7, "-c", bad] + args, capture_output=True, text=True, timeout=30)
        doc = json.loads(p.stdout)
        assert p.returncode == 2 and doc["status"] == "failed", (args, p.returncode, doc)
        assert "bad.conf:2" in doc["error"], doc
    p = subprocess.run([O7, "-c", os.path.join(ws.dir, "missing.conf"), "backups", h, "--json"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and json.loads(p.stdout)["status"] == "failed", p


if __name__ == "__main__":
    main(globals())

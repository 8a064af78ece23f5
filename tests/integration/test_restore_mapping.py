"""o7 restore maps the ids a store defines for itself (channels, customer groups, tax classes)
by name: into a target whose channels, groups and classes carry the same names under other
ids, customers, products, orders, category trees and pages point at the target's record of
the same name afterwards. A channel the target lacks is never created: the channel is
skipped and every record on it names it in its detail. In the same store ids stay.

The tests share one fake store and one backup, and run in the order listed (later ones
start from what earlier ones leave). Every server this test starts listens on 127.0.0.1."""

import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOKEN, FakeStore, Workspace, main, read_object  # noqa: E402

SRC, DST = "msrc", "mdst"
TYPES = ("channels,customer_groups,tax_classes,brands,category_trees,categories,products,"
         "customers,orders,pages")
OUTLET = 3    # a channel of the source that the target lacks

fake = FakeStore(stores=("%s=sample:1" % SRC,))
fake.call("POST", "/_fake/stores", {"hash": DST, "preset": "empty"})
ws = Workspace(fake.url)
for h in (SRC, DST):
    ws.add_store(h)
S = {}


# ---- helpers -----------------------------------------------------------------------------

def api(store, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request("%s/stores/%s%s" % (fake.url, store, path), data=data,
                                 method=method, headers={"X-Auth-Token": TOKEN,
                                                         "Content-Type": "application/json",
                                                         "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def mutate(store, op, type_, record=None, rid=None):
    body = {"op": op, "type": type_, "record": record or {}}
    if rid is not None:
        body["id"] = rid
    return fake.call("POST", "/_fake/stores/%s/mutate" % store, body)


def dump(store, type_):
    return [json.loads(line) for line in fake.dump(store, type_)]


def records(backup_id, type_):
    root = ws.backup_dir(SRC, backup_id)
    doc = json.load(open(os.path.join(root, "manifest.json")))
    return [json.loads(x) for x in read_object(os.path.join(root,
                                                            doc["types"][type_]["object"]))]


def restore(*args):
    code, doc, err = ws.json("restore", S["backup"], *args)
    assert code == 0, "restore %s: %s %s" % (args, doc.get("error"), err[-2000:])
    return doc


def counts(doc, type_):
    t = doc["types"][type_]
    return {k: t[k] for k in ("created", "updated", "unchanged", "skipped", "failed") if t[k]}


def reasons(doc, type_):
    return {str(r["id"]): r.get("reason", "") for r in doc["records"] if r["type"] == type_}


def name_of(store, type_, rid):
    return next(r["name"] for r in dump(store, type_) if r["id"] == rid)


def channel(cid, name):
    return {"id": cid, "name": name, "type": "storefront", "platform": "bigcommerce",
            "status": "active", "is_listable_from_ui": True, "is_visible": True}


# ---- setup: a source with references to every kind, a target with other ids ----------------

def test_1_source_and_target_with_the_same_names_under_other_ids():
    # source: a third channel the target will lack, products on each tax class, customers on
    # each group and on channels 2 and 3, orders on channels 2 and 3
    mutate(SRC, "create", "channels", channel(OUTLET, "Outlet"))
    for pid, cls in ((1, 1), (2, 2), (3, 3)):
        st, _ = api(SRC, "PUT", "/v3/catalog/products/%d" % pid, {"tax_class_id": cls})
        assert st == 200, st
    for cid, group, chans in ((1, 1, None), (2, 2, None), (3, 3, [1, 2]), (4, 0, [1, OUTLET])):
        mutate(SRC, "update", "customers", {"customer_group_id": group, "channel_ids": chans,
                                            "origin_channel_id": (chans or [1])[-1]}, cid)
    mutate(SRC, "update", "orders", {"channel_id": 2}, 100)
    mutate(SRC, "update", "orders", {"channel_id": OUTLET}, 101)
    code, doc, err = ws.json("backup", SRC, "--types", TYPES)
    assert code == 0 and doc["status"] == "complete", err[-2000:]
    S["backup"] = doc["backup_id"]
    assert len(records(S["backup"], "channels")) == 3
    assert len(records(S["backup"], "customer_groups")) == 3
    assert len(records(S["backup"], "tax_classes")) == 3

    # target: channel 1 "Default" (every store), "Second storefront" as 5; groups and tax
    # classes made in another order, with one of each missing and one foreign
    mutate(DST, "create", "channels", channel(4, "Wholesale site"))
    mutate(DST, "create", "channels", channel(5, "Second storefront"))
    for name in ("Staff", "VIP", "Retail"):
        st, _ = api(DST, "POST", "/v2/customer_groups", {"name": name})
        assert st == 201, st
    st, _ = api(DST, "POST", "/v3/tax/classes",
                [{"name": n} for n in ("Food", "Gift Wrapping", "Non-Taxable Products")])
    assert st == 200, st


# ---- the settings themselves -------------------------------------------------------------

def test_2_channels_are_mapped_by_name_and_never_created():
    doc = restore("--to", DST, "--types", "channels")
    assert counts(doc, "channels") == {"unchanged": 2, "skipped": 1}, doc["types"]
    why = reasons(doc, "channels")
    assert "no channel of that name" in why[str(OUTLET)], why
    assert sorted(c["id"] for c in dump(DST, "channels")) == [1, 4, 5], "a channel was created"


def test_3_groups_and_tax_classes_matched_by_name_missing_ones_created():
    doc = restore("--to", DST, "--types", "customer_groups,tax_classes")
    assert counts(doc, "tax_classes") == {"created": 1, "unchanged": 2}, doc["types"]
    # Retail is equal; VIP differs (its rules); Wholesale is missing
    assert counts(doc, "customer_groups") == {"created": 1, "updated": 1, "unchanged": 1}, \
        doc["types"]
    groups = {g["name"]: g for g in dump(DST, "customer_groups")}
    assert sorted(groups) == ["Retail", "Staff", "VIP", "Wholesale"], sorted(groups)
    assert groups["Wholesale"]["discount_rules"] == [
        {"type": "all", "method": "percent", "amount": "10.0000"}], groups["Wholesale"]
    # The catalog is not in the target yet: VIP's rules on a category and a product cannot be
    # mapped, so they are dropped and named
    assert groups["VIP"]["discount_rules"] == [], groups["VIP"]
    why = reasons(doc, "customer_groups")["3"]
    assert "categories" in why and "products" in why, why
    classes = {c["name"]: c["id"] for c in dump(DST, "tax_classes")}
    assert sorted(classes) == ["Food", "Gift Wrapping", "Non-Taxable Products", "Shipping"]


# ---- what points at them -----------------------------------------------------------------

def test_4_products_point_at_the_target_tax_class_of_the_same_name():
    src = {p["id"]: p for p in records(S["backup"], "products")}
    # product 3 first, so that the target's product ids differ from the source's
    for pids in ("3", "1,2"):
        doc = restore("--to", DST, "--only", "products:" + pids)
        assert doc["types"]["products"]["failed"] == 0, doc["types"]
    live = {p["sku"]: p for p in dump(DST, "products")}
    for pid in (1, 2, 3):
        got = live[src[pid]["sku"]]["tax_class_id"]
        assert name_of(DST, "tax_classes", got) == name_of(SRC, "tax_classes", pid), (pid, got)
    assert live[src[1]["sku"]]["id"] != 1, "product ids should differ between the stores"


def test_5_group_rules_remapped_once_the_catalog_is_there():
    doc = restore("--to", DST, "--types", "category_trees,categories")
    assert doc["types"]["categories"]["failed"] == 0, doc["types"]
    doc = restore("--to", DST, "--types", "customer_groups")
    assert counts(doc, "customer_groups") == {"updated": 1, "unchanged": 2}, doc["types"]
    vip = next(g for g in dump(DST, "customer_groups") if g["name"] == "VIP")
    src_vip = next(g for g in records(S["backup"], "customer_groups") if g["name"] == "VIP")
    prod = next(r for r in vip["discount_rules"] if r["type"] == "product")
    src_prod = next(r for r in src_vip["discount_rules"] if r["type"] == "product")
    sku = lambda store, pid: next(p["sku"] for p in dump(store, "products") if p["id"] == pid)
    assert sku(DST, prod["product_id"]) == sku(SRC, src_prod["product_id"]), prod
    cat = next(r for r in vip["discount_rules"] if r["type"] == "category")
    src_cat = next(r for r in src_vip["discount_rules"] if r["type"] == "category")
    cname = lambda store, cid: next(c["name"] for c in dump(store, "categories")
                                    if c["category_id"] == cid)
    assert cname(DST, cat["category_id"]) == cname(SRC, src_cat["category_id"]), cat
    assert vip["category_access"]["categories"] == [cat["category_id"]], vip


def test_6_customers_point_at_the_target_group_and_channels_of_the_same_name():
    doc = restore("--to", DST, "--only", "customers:1,2,3,4")
    assert counts(doc, "customers") == {"created": 4}, doc["types"]
    src = {c["id"]: c for c in records(S["backup"], "customers")}
    live = {c["email"].lower(): c for c in dump(DST, "customers")}
    for cid in (1, 2, 3):
        got = live[src[cid]["email"].lower()]
        want = name_of(SRC, "customer_groups", src[cid]["customer_group_id"])
        assert name_of(DST, "customer_groups", got["customer_group_id"]) == want, (cid, got)
    third = live[src[3]["email"].lower()]
    assert third["channel_ids"] == [1, 5] and third["origin_channel_id"] == 5, third
    fourth = live[src[4]["email"].lower()]
    assert fourth["channel_ids"] == [1] and fourth["origin_channel_id"] == 1, fourth
    why = reasons(doc, "customers")
    assert "channel %d is not in the target store" % OUTLET in why["4"], why
    assert "channel" not in why.get("3", ""), why


def test_7_orders_point_at_the_target_channel_of_the_same_name():
    doc = restore("--to", DST, "--only", "orders:100,101")
    assert doc["types"]["orders"]["created"] == 2, doc["types"]
    live = {o["external_order_id"]: o for o in dump(DST, "orders")}
    assert live["100"]["channel_id"] == 5, live["100"]["channel_id"]
    assert live["101"]["channel_id"] == 1, live["101"]["channel_id"]
    why = reasons(doc, "orders")
    assert "channel %d is not in the target store" % OUTLET in why["101"], why
    assert sorted(c["id"] for c in dump(DST, "channels")) == [1, 4, 5], "a channel was created"


def test_8_trees_and_pages_land_on_the_target_channel_of_the_same_name():
    doc = restore("--to", DST, "--types", "category_trees,pages")
    assert counts(doc, "category_trees") == {"unchanged": 2}, doc["types"]
    trees = {t["name"]: t for t in dump(DST, "category_trees")}
    assert trees["Second storefront"]["channels"] == [5], trees
    src_pages = records(S["backup"], "pages")
    second = [p for p in src_pages if p["channel_id"] == 2 and p["type"] != "blog"]
    assert second, "the sample should have pages on channel 2"
    live = {(p["name"], p["type"]): p for p in dump(DST, "pages")}
    for p in second:
        assert live[(p["name"], p["type"])]["channel_id"] == 5, p["name"]
    assert doc["types"]["pages"]["failed"] == 0, doc["types"]


def test_9_same_store_keeps_its_ids():
    doc = restore("--only", "customers:3")
    assert counts(doc, "customers") == {"unchanged": 1}, doc["types"]
    assert counts(doc, "channels") in ({}, {"unchanged": 2}), doc["types"]
    live = next(c for c in dump(SRC, "customers") if c["id"] == 3)
    assert live["customer_group_id"] == 3 and live["channel_ids"] == [1, 2], live


def test_99_dry_run_into_another_store_writes_nothing():
    store = "mdry"
    fake.call("POST", "/_fake/stores", {"hash": store, "preset": "empty"})
    ws.add_store(store)
    fake.call("POST", "/_fake/stats/reset")
    doc = restore("--to", store, "--types", "channels,customer_groups,tax_classes",
                  "--dry-run")
    assert counts(doc, "customer_groups") == {"created": 3}, doc["types"]
    assert counts(doc, "tax_classes") == {"created": 3}, doc["types"]
    assert counts(doc, "channels") == {"unchanged": 1, "skipped": 2}, doc["types"]
    assert fake.call("GET", "/_fake/stores/%s/writes" % store)["writes"] == []


if __name__ == "__main__":
    main(globals())

"""Restore of the catalog types (brands, category trees, categories, products) against the
fake store: a round trip into an empty store, damage repair in place, an idempotent re-run,
--only, refusal of a damaged backup, --dry-run, and an image gone from the CDN.

The tests share one fake store and one backup of the sample store, and run in the order
listed at the bottom (later ones start from the state earlier ones leave)."""

import json
import os
import urllib.request

from harness import FakeStore, Runner, TOKEN, Workspace, read_object

TYPES = "brands,category_trees,categories,products"
SRC, DST, ONLY = "o7sample", "t2", "t3"

fake = FakeStore(stores=("%s=sample:1" % SRC,))
for h in (DST, ONLY):
    fake.call("POST", "/_fake/stores", {"hash": h, "preset": "empty"})
ws = Workspace(fake.url)
for h in (SRC, DST, ONLY):
    ws.add_store(h)
S = {}  # what earlier steps leave for later ones


# ---- helpers -----------------------------------------------------------------------------------

def api(store, method, path, body=None):
    """A call to the store's REST API with the sample token."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request("%s/stores/%s%s" % (fake.url, store, path), data=data,
                                 method=method, headers={"X-Auth-Token": TOKEN,
                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
    return json.loads(text) if text.strip() else None


def backup(store, types=TYPES):
    code, doc, err = ws.json("backup", store, "--types", types)
    assert code == 0 and doc["status"] == "complete", err[-2000:]
    return doc["backup_id"]


def records(store, backup_id, type_):
    doc = json.load(open(os.path.join(ws.backup_dir(store, backup_id), "manifest.json")))
    path = os.path.join(ws.backup_dir(store, backup_id), doc["types"][type_]["object"])
    return [json.loads(line) for line in read_object(path)]


def dump(store, type_):
    return [json.loads(line) for line in fake.dump(store, type_)]


def restore(*args):
    """o7 restore --json; returns (exit code, report). The write log starts empty."""
    fake.call("POST", "/_fake/stats/reset")
    code, doc, err = ws.json("restore", *args)
    doc["stderr"] = err
    return code, doc


def writes(store):
    return fake.call("GET", "/_fake/stores/%s/writes" % store)["writes"]


def counts(doc, type_):
    t = doc["types"][type_]
    return {k: t[k] for k in ("created", "updated", "unchanged", "skipped", "failed") if t[k]}


def lines(doc, type_=None):
    return [r for r in doc["records"] if type_ is None or r["type"] == type_]


def category_paths(cats, trees):
    """category id -> 'tree name/parent name/.../name'."""
    by_id = {c["category_id"]: c for c in cats}
    tree_name = {t["id"]: t["name"] for t in trees}

    def path(c):
        parts = [c["name"]]
        while c["parent_id"]:
            c = by_id[c["parent_id"]]
            parts.append(c["name"])
        return tree_name.get(c["tree_id"], "?") + "/" + "/".join(reversed(parts))
    return {cid: path(c) for cid, c in by_id.items()}


def drop(d, *keys):
    return {k: v for k, v in d.items() if k not in keys}


def by(items, key):
    return sorted(items, key=lambda x: json.dumps(x[key]))


def product_view(p, brand_name, cat_path):
    """A product as it must survive a restore: ids and server-set members out, references by
    name, sub-records by their natural keys."""
    out = drop(p, "id", "date_created", "date_modified", "base_variant_id", "view_count",
               "total_sold", "reviews_rating_sum", "reviews_count", "variants", "images",
               "custom_fields", "bulk_pricing_rules", "options", "modifiers", "videos",
               "brand_id", "categories")
    out["brand"] = brand_name.get(p["brand_id"])
    out["categories"] = sorted(cat_path[c] for c in p["categories"])
    out["variants"] = by([dict(drop(v, "id", "product_id", "sku_id"), option_values=sorted(
        (o["option_display_name"], o["label"]) for o in v["option_values"]))
        for v in p["variants"]], "sku")
    out["options"] = by([dict(drop(o, "id", "product_id", "name"), option_values=[
        drop(v, "id") for v in o["option_values"]]) for o in p["options"]], "display_name")
    out["modifiers"] = by([dict(drop(m, "id", "product_id", "name"), option_values=[
        drop(v, "id", "option_id") for v in m["option_values"]]) for m in p["modifiers"]],
        "display_name")
    out["images"] = by([drop(i, "id", "product_id", "image_file", "url_zoom", "url_standard",
                             "url_thumbnail", "url_tiny", "date_modified")
                        for i in p["images"]], "sort_order")
    out["custom_fields"] = by([drop(c, "id") for c in p["custom_fields"]], "name")
    out["bulk_pricing_rules"] = by([drop(b, "id") for b in p["bulk_pricing_rules"]],
                                   "quantity_min")
    out["videos"] = by([drop(v, "id", "product_id", "length") for v in p["videos"]], "video_id")
    return out


def views(store, backup_id):
    """Every catalog record of a backup, keyed by a natural key, ids resolved to names."""
    trees = records(store, backup_id, "category_trees")
    cats = records(store, backup_id, "categories")
    brands = records(store, backup_id, "brands")
    paths = category_paths(cats, trees)
    brand_name = {b["id"]: b["name"] for b in brands}
    return {
        "brands": {b["name"]: dict(drop(b, "id", "image_url"), image=bool(b["image_url"]))
                   for b in brands},
        "category_trees": {t["name"]: drop(t, "id") for t in trees},
        "categories": {paths[c["category_id"]]: drop(c, "category_id", "parent_id", "tree_id",
                                                     "category_uuid") for c in cats},
        "products": {p["sku"]: product_view(p, brand_name, paths)
                     for p in records(store, backup_id, "products")},
    }


def first_difference(a, b, where=""):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s only on one side" % (where, k)
            d = first_difference(a[k], b[k], "%s.%s" % (where, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, "%s[%d]" % (where, i))
            if d:
                return d
        return None
    return None if a == b else "%s: %r != %r" % (where, a, b)


# ---- the tests ---------------------------------------------------------------------------------

def test_backup_of_the_sample():
    S["backup"] = backup(SRC)
    S["snapshot"] = fake.call("POST", "/_fake/stores/%s/snapshot" % SRC)["snapshot"]
    S["counts"] = fake.call("GET", "/_fake/stores/%s/counts" % SRC)


def test_round_trip_into_an_empty_store():
    code, doc = restore(S["backup"], "--to", DST)
    assert code == 0, doc
    assert counts(doc, "brands") == {"created": 25}, doc["types"]
    assert counts(doc, "category_trees") == {"unchanged": 1, "skipped": 1}, doc["types"]
    assert counts(doc, "categories") == {"created": 40, "skipped": 5}, doc["types"]
    assert counts(doc, "products") == {"created": 300}, doc["types"]
    skipped = lines(doc, "category_trees")
    assert len(skipped) == 1 and "channel 2 does not exist" in skipped[0]["reason"], skipped

    stats = fake.stats()["stores"][DST]["by_pattern"]
    product_calls = {k: v for k, v in stats.items() if "/catalog/products" in k}
    per = sum(product_calls.values()) / 300.0
    print("     products: %.2f requests per product (the minimum is 1 POST each): %s"
          % (per, json.dumps(product_calls, sort_keys=True)))
    assert stats["POST /v3/catalog/products"] == 300, product_calls
    assert per < 3, product_calls

    back = views(DST, backup(DST))
    want = views(SRC, S["backup"])
    # What a restore cannot bring: the tree of a channel the target lacks, and its categories.
    del want["category_trees"]["Second storefront"]
    want["categories"] = {k: v for k, v in want["categories"].items()
                          if not k.startswith("Second storefront/")}
    for type_ in ("brands", "category_trees", "categories", "products"):
        assert sorted(back[type_]) == sorted(want[type_]), (type_, set(back[type_]) ^ set(
            want[type_]))
        for key in want[type_]:
            d = first_difference(want[type_][key], back[type_][key])
            assert d is None, "%s %s: %s" % (type_, key, d)
    for p in dump(DST, "products"):
        for img in p["images"]:
            assert "/_img/%s/" % DST in img["url_zoom"], img


def leaf_category_without_products():
    cats = dump(SRC, "categories")
    parents = set(c["parent_id"] for c in cats)
    used = set(c for p in dump(SRC, "products") for c in p["categories"])
    return next(c for c in cats if c["category_id"] not in parents | used)


def test_damage_is_repaired_in_place():
    products = dump(SRC, "products")
    leaf = leaf_category_without_products()
    fake.call("POST", "/_fake/stores/%s/mutate" % SRC,
              {"op": "delete", "type": "categories", "id": leaf["category_id"]})
    priced = [p["id"] for p in products[10:60]]
    for pid in priced:
        api(SRC, "PUT", "/v3/catalog/products/%d" % pid,
            {"price": round(next(p["price"] for p in products if p["id"] == pid) + 1.5, 2)})
    # Two of them lose more: a variant's stock, and a whole variant (created again).
    optioned = [p for p in products[10:60] if len(p["variants"]) >= 2]
    stock, lost = optioned[0], optioned[1]
    v = stock["variants"][0]
    api(SRC, "PUT", "/v3/catalog/products/%d/variants/%d" % (stock["id"], v["id"]),
        {"inventory_level": v["inventory_level"] + 7})
    api(SRC, "DELETE", "/v3/catalog/products/%d/variants/%d" % (lost["id"],
                                                               lost["variants"][-1]["id"]))
    gone = next(p for p in products[60:] if p["modifiers"] and
                any(o["display_name"] == "Color" for o in p["options"]))
    api(SRC, "DELETE", "/v3/catalog/products/%d" % gone["id"])

    code, doc = restore(S["backup"])
    assert code == 0, doc
    assert counts(doc, "categories") == {"created": 1, "unchanged": 44}, doc["types"]
    assert counts(doc, "products") == {"created": 1, "updated": 50, "unchanged": 249}, \
        doc["types"]
    assert counts(doc, "brands") == {"unchanged": 25}, doc["types"]
    assert counts(doc, "category_trees") == {"unchanged": 2}, doc["types"]

    touched = {}
    for w in writes(SRC):
        assert 200 <= w["status"] < 300, w
        for t, ids in w["ids"].items():
            touched.setdefault(t, set()).update(ids)
    new_cat = max(c["category_id"] for c in dump(SRC, "categories"))
    new_pid = max(p["id"] for p in dump(SRC, "products"))
    assert touched == {"categories": {new_cat}, "products": set(priced) | {new_pid}}, touched

    diff = fake.call("GET", "/_fake/stores/%s/diff?snapshot=%s" % (SRC, S["snapshot"]))
    assert diff["categories"]["deleted"] == [leaf["category_id"]], diff["categories"]
    assert diff["categories"]["created"] == [new_cat], diff["categories"]
    assert diff["products"]["deleted"] == [gone["id"]], diff["products"]
    assert diff["products"]["created"] == [new_pid], diff["products"]
    for t in ("categories", "products", "brands", "category_trees"):
        for rid, members in diff[t]["changed"].items():
            # A recreated variant has a new id; its content is compared below.
            allowed = {"date_modified"} | ({"variants"} if rid == str(lost["id"]) else set())
            assert set(members) <= allowed, (t, rid, members)
    assert fake.call("GET", "/_fake/stores/%s/counts" % SRC) == S["counts"]

    now = views(SRC, backup(SRC))
    want = views(SRC, S["backup"])
    for type_ in ("categories", "products"):
        assert sorted(now[type_]) == sorted(want[type_])
        for key in want[type_]:
            d = first_difference(want[type_][key], now[type_][key])
            assert d is None, "%s %s: %s" % (type_, key, d)


def test_rerun_changes_nothing():
    code, doc = restore(S["backup"])
    assert code == 0, doc
    for type_, n in (("brands", 25), ("category_trees", 2), ("categories", 45),
                     ("products", 300)):
        assert counts(doc, type_) == {"unchanged": n}, (type_, doc["types"])
    assert writes(SRC) == [], writes(SRC)
    # Into the other store too (brands are left out: see the report on their image URLs).
    code, doc = restore(S["backup"], "--to", DST, "--types", "category_trees,categories,products")
    assert code == 0, doc
    assert counts(doc, "products") == {"unchanged": 300}, doc["types"]
    assert counts(doc, "categories") == {"unchanged": 40, "skipped": 5}, doc["types"]
    assert writes(DST) == [], writes(DST)


def test_only_restores_exactly_those_records():
    products = dump(SRC, "products")
    a, b = products[100], products[101]
    for p in (a, b):
        api(SRC, "DELETE", "/v3/catalog/products/%d" % p["id"])
    api(SRC, "PUT", "/v3/catalog/products/%d" % products[102]["id"], {"price": 1.25})
    old = {p["id"] for p in dump(SRC, "products")}
    code, doc = restore(S["backup"], "--only", "products:%d,%d" % (a["id"], b["id"]))
    assert code == 0, doc
    assert counts(doc, "products") == {"created": 2}, doc["types"]
    # What they need is still there: looked at, matched, left alone.
    for t in doc["types"]:
        if t != "products":
            assert set(counts(doc, t)) <= {"unchanged"}, (t, doc["types"][t])
    new = {p["id"]: p for p in dump(SRC, "products") if p["id"] not in old}
    assert sorted(p["sku"] for p in new.values()) == sorted([a["sku"], b["sku"]])
    touched = set(i for w in writes(SRC) for i in w["ids"].get("products", []))
    assert touched == set(new), touched
    assert next(p for p in dump(SRC, "products")
                if p["id"] == products[102]["id"])["price"] == 1.25
    api(SRC, "PUT", "/v3/catalog/products/%d" % products[102]["id"],
        {"price": products[102]["price"]})

    # Into a store that lacks the brand and categories: they come along (the product's
    # brand, its categories and their parents, the tree they hang from), and nothing else.
    pick = next(p for p in products[:50] if p["brand_id"] and p["categories"])
    code, doc = restore(S["backup"], "--to", ONLY, "--only", "products:%d" % pick["id"])
    assert code == 0, doc
    assert counts(doc, "products") == {"created": 1}, doc["types"]
    assert counts(doc, "brands") == {"created": 1}, doc["types"]
    src_brands = {b["id"]: b for b in dump(SRC, "brands")}
    src_cats = {c["category_id"]: c for c in dump(SRC, "categories")}
    want_cats = set()
    for c in pick["categories"]:
        while c:
            want_cats.add(c)
            c = src_cats[c]["parent_id"]
    assert counts(doc, "categories") == {"created": len(want_cats)}, doc["types"]
    [made] = dump(ONLY, "products")
    [brand] = dump(ONLY, "brands")
    assert made["sku"] == pick["sku"] and made["brand_id"] == brand["id"]
    assert brand["name"] == src_brands[pick["brand_id"]]["name"]
    cats = {c["category_id"]: c["name"] for c in dump(ONLY, "categories")}
    assert sorted(cats[c] for c in made["categories"]) == \
        sorted(src_cats[c]["name"] for c in pick["categories"])


def test_conflict_on_create_updates_the_holder():
    """A product of the same name but another sku: the create answers 409, the restore finds
    the holder by name and updates it instead of failing or duplicating."""
    p = dump(SRC, "products")[150]
    api(ONLY, "POST", "/v3/catalog/products", {"name": p["name"], "sku": "HELD-BY-ANOTHER",
                                               "type": "physical", "weight": 1, "price": 9})
    code, doc = restore(S["backup"], "--to", ONLY, "--only", "products:%d" % p["id"])
    assert code == 0, doc
    assert counts(doc, "products") == {"updated": 1}, doc["types"]
    held = [x for x in dump(ONLY, "products") if x["name"] == p["name"]]
    assert len(held) == 1 and held[0]["sku"] == p["sku"], held
    assert held[0]["price"] == p["price"], held


def test_damaged_backup_is_refused_before_any_write():
    bid = backup(SRC, "products")
    doc = json.load(open(os.path.join(ws.backup_dir(SRC, bid), "manifest.json")))
    path = os.path.join(ws.backup_dir(SRC, bid), doc["types"]["products"]["object"])
    good = open(path, "rb").read()
    api(SRC, "PUT", "/v3/catalog/products/7", {"price": 2.5})  # something to write back
    try:
        for bad in (good[:len(good) // 2], good[:100] + bytes([good[100] ^ 0x55]) + good[101:]):
            with open(path, "wb") as f:
                f.write(bad)
            fake.call("POST", "/_fake/stats/reset")
            code, out, err = ws.run("restore", bid)
            assert code == 1, (code, out, err)
            assert "refused before writing anything" in err, err
            assert writes(SRC) == [], writes(SRC)
    finally:
        with open(path, "wb") as f:
            f.write(good)
    code, doc = restore(bid)
    assert code == 0 and counts(doc, "products") == {"updated": 1, "unchanged": 299}, doc


def test_dry_run_lists_fields_and_writes_nothing():
    cat = dump(SRC, "categories")[3]
    fake.call("POST", "/_fake/stores/%s/mutate" % SRC, {"op": "update", "type": "categories",
                                                      "id": cat["category_id"],
                                                      "record": {"name": "Renamed"}})
    p = dump(SRC, "products")[20]
    api(SRC, "PUT", "/v3/catalog/products/%d" % p["id"], {"price": 3.75, "is_featured":
                                                          not p["is_featured"]})
    code, doc = restore(S["backup"], "--dry-run")
    assert code == 0 and doc["status"] == "planned", doc
    assert writes(SRC) == [], writes(SRC)
    got = {(r["type"], r["id"]): r for r in lines(doc) if r["outcome"] == "updated"}
    assert got[("categories", str(cat["category_id"]))]["fields"] == "name", got
    assert got[("products", str(p["id"]))]["fields"] == "is_featured,price", got
    assert len(got) == 2, got
    code, doc = restore(S["backup"])
    assert code == 0 and counts(doc, "products") == {"updated": 1, "unchanged": 299}, doc


def test_image_gone_from_the_cdn_is_reported_per_image():
    p = next(x for x in dump(SRC, "products") if len(x["images"]) >= 3)
    lost = p["images"][1]["url_zoom"]
    prefix = "/_img/%s/" % SRC
    fake.call("DELETE", "/_fake/stores/%s/img/%s" % (SRC, lost.split(prefix, 1)[1]))
    api(SRC, "DELETE", "/v3/catalog/products/%d" % p["id"])
    code, doc = restore(S["backup"], "--only", "products:%d" % p["id"])
    assert counts(doc, "products") == {"created": 1}, doc["types"]
    [line] = lines(doc, "products")
    assert lost in line["reason"] and "sort_order 1" in line["reason"], line
    [made] = [x for x in dump(SRC, "products") if x["sku"] == p["sku"]]
    assert sorted(i["sort_order"] for i in made["images"]) == sorted(
        i["sort_order"] for i in p["images"] if i["url_zoom"] != lost)
    assert code == 0, doc


if __name__ == "__main__":
    Runner().run([test_backup_of_the_sample, test_round_trip_into_an_empty_store,
                  test_damage_is_repaired_in_place, test_rerun_changes_nothing,
                  test_only_restores_exactly_those_records,
                  test_conflict_on_create_updates_the_holder,
                  test_damaged_backup_is_refused_before_any_write,
                  test_dry_run_lists_fields_and_writes_nothing,
                  test_image_gone_from_the_cdn_is_reported_per_image])

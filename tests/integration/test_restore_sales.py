"""o7 restore of customers, orders, pages, blog posts, redirects, coupons and themes against
the fake store: a round trip into an empty second store, repair of a damaged store, re-runs
that write nothing, --only, passwords and emails, blog pages, themes and request counts.

Every server this test starts listens on 127.0.0.1 and stops when the test ends."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TOKEN, FakeStore, Workspace, main, read_object  # noqa: E402

SOURCE = "o7sample"
COPY = "copy1"        # empty store: the round trip's target
COUNTS = "copy2"      # empty store: request counts
THEMES = "themes1"    # sample store whose active theme is the custom one
SALES = ["customers", "pages", "blog_posts", "redirects", "coupons", "orders", "brands"]
# the target's own ids (mapped by name): what customers, pages, orders and trees point at
SETTINGS = ["channels", "customer_groups", "tax_classes"]
# restored first when their plugins can, so that references have somewhere to point
CATALOG = ("category_trees", "categories", "products")

fake = FakeStore(stores=("%s=sample:1" % SOURCE,))
for h, preset in ((COPY, "empty"), (COUNTS, "empty"), (THEMES, "sample")):
    fake.call("POST", "/_fake/stores", {"hash": h, "preset": preset})
# The round trip's target has the source's second storefront (o7 never creates channels).
fake.call("POST", "/_fake/stores/%s/mutate" % COPY, {"op": "create", "type": "channels", "record": {
    "id": 2, "name": "Second storefront", "type": "storefront", "platform": "bigcommerce",
    "status": "active", "is_listable_from_ui": True, "is_visible": True}})
ws = Workspace(fake.url)
for h in (SOURCE, COPY, COUNTS, THEMES):
    ws.add_store(h)
state = {}


def api(method, store, path, body=None):
    import urllib.error
    import urllib.request
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


def backup(store, types=None):
    args = ["backup", store] + (["--types", ",".join(types)] if types else [])
    code, doc, err = ws.json(*args)
    assert code == 0 and doc["status"] == "complete", "backup of %s: %s" % (store, err[-1500:])
    return doc["backup_id"]


def records(store, backup_id, type_):
    doc = json.load(open(os.path.join(ws.backup_dir(store, backup_id), "manifest.json")))
    obj = doc["types"][type_]["object"]
    return [json.loads(x) for x in read_object(os.path.join(ws.backup_dir(store, backup_id),
                                                            obj))]


def restore(backup_id, *args):
    code, doc, err = ws.json("restore", backup_id, *args)
    return code, doc, err


def writes(store):
    return fake.call("GET", "/_fake/stores/%s/writes" % store)["writes"]


def can_restore(type_):
    with open(os.path.join(os.environ.get("O7_SOURCE_DIR") or os.path.dirname(os.path.dirname(
            os.path.dirname(os.path.abspath(__file__)))), "plugins", type_ + ".lua")) as f:
        return "restore =" in f.read()


def source_backup():
    if "src" not in state:
        state["src"] = backup(SOURCE)
    return state["src"]


def without(rec, members):
    return {k: v for k, v in rec.items() if k not in members}


def by(recs, key):
    out = {}
    for r in recs:
        k = key(r)
        assert k not in out, "two records share the key %r" % (k,)
        out[k] = r
    return out


def num(v):
    return round(float(v), 4)


# ---- the round trip ------------------------------------------------------------------------

def test_1_round_trip_into_an_empty_store():
    src = source_backup()
    types = list(SETTINGS) + list(SALES) + [t for t in CATALOG if can_restore(t)]
    code, doc, err = restore(src, "--to", COPY, "--types", ",".join(types))
    assert code == 0, "restore failed: %s %s" % (doc.get("error"), err[-2000:])
    state["round"] = doc
    for t in ("customers", "pages", "blog_posts", "coupons", "orders"):
        c = doc["types"][t]
        assert c["failed"] == 0 and c["created"] + c["skipped"] == c["records"], (t, c)
    back = backup(COPY, types)
    state["copy_backup"] = back
    check_customers(src, back)
    check_pages(src, back)
    check_blog_posts(src, back)
    check_coupons(src, back, doc)
    check_redirects(src, back, doc)
    check_orders(src, back)
    if "products" in types:
        check_stock(src, back)


ADDRESS_CORE = ("first_name", "last_name", "company", "phone", "address_type", "address1",
                "address2", "city", "country_code", "state_or_province", "postal_code")


def check_customers(src, back):
    old = by(records(SOURCE, src, "customers"), lambda r: r["email"].lower())
    new = by(records(COPY, back, "customers"), lambda r: r["email"].lower())
    assert set(old) == set(new), "customers differ: %s" % sorted(set(old) ^ set(new))[:5]
    skip = ("id", "date_created", "date_modified", "registration_ip_address", "authentication",
            "addresses", "attributes", "customer_group_id")
    # a group's id is the store's own: the same group is the one of the same name
    old_group = {g["id"]: g["name"] for g in records(SOURCE, src, "customer_groups")}
    new_group = {g["id"]: g["name"] for g in records(COPY, back, "customer_groups")}
    old_group[0] = new_group[0] = None
    for k, o in old.items():
        n = new[k]
        assert without(o, skip) == without(n, skip), "customer %s differs in %s" % (k, [
            m for m in o if m not in skip and o.get(m) != n.get(m)])
        assert old_group[o["customer_group_id"]] == new_group[n["customer_group_id"]], (
            k, o["customer_group_id"], n["customer_group_id"])
        addrs = lambda r: sorted(tuple(a.get(f) for f in ADDRESS_CORE) for a in r["addresses"])
        assert addrs(o) == addrs(n), "customer %s: addresses differ" % k
        attrs = lambda r: sorted((a["attribute_id"], a["attribute_value"])
                                 for a in r["attributes"])
        assert attrs(o) == attrs(n), "customer %s: attributes differ" % k
        assert n["authentication"]["force_password_reset"] is True, k


def page_key(p):
    return (p["channel_id"], p["url"] or "%s:%s" % (p["type"], p["name"]))


def check_pages(src, back):
    old_all = records(SOURCE, src, "pages")
    old = by([p for p in old_all if p["type"] != "blog"], page_key)
    new_all = records(COPY, back, "pages")
    new = by(new_all, page_key)
    assert set(old) == set(new), "pages differ: %s" % sorted(set(old) ^ set(new), key=str)[:5]
    old_id = {p["id"]: p for p in old_all}
    new_id = {p["id"]: p for p in new_all}
    for k, o in old.items():
        n = new[k]
        assert without(o, ("id", "parent_id")) == without(n, ("id", "parent_id")), k
        if o["parent_id"] and old_id[o["parent_id"]]["type"] != "blog":
            assert page_key(old_id[o["parent_id"]]) == page_key(new_id[n["parent_id"]]), \
                "page %s: parent points at another page" % (k,)


def check_blog_posts(src, back):
    old = by(records(SOURCE, src, "blog_posts"), lambda r: r["url"])
    new = by(records(COPY, back, "blog_posts"), lambda r: r["url"])
    assert set(old) == set(new)
    for k in old:
        # summary is server-set: the store derives it from the body
        skip = ("id", "summary")
        assert without(old[k], skip) == without(new[k], skip), "post %s differs in %s" % (
            k, [m for m in old[k] if old[k][m] != new[k].get(m)])


def check_coupons(src, back, report):
    old = by(records(SOURCE, src, "coupons"), lambda r: r["code"])
    new = by(records(COPY, back, "coupons"), lambda r: r["code"])
    assert set(old) == set(new)
    skip = ("id", "num_uses", "date_created", "applies_to")
    notes = {r["id"]: r["reason"] for r in report["records"] if r["type"] == "coupons"}
    names = entity_names(src)
    new_names = entity_names(back, COPY)
    for k, o in old.items():
        n = new[k]
        assert without(o, skip) == without(n, skip), "coupon %s differs" % k
        ent = o["applies_to"]["entity"]
        assert n["applies_to"]["entity"] == ent
        if o["applies_to"]["ids"] == [0]:  # 0: every product or category, in any store
            assert n["applies_to"]["ids"] == [0], k
            continue
        want = sorted(names[ent][i] for i in o["applies_to"]["ids"]
                      if names[ent].get(i) in new_names[ent].values())
        got = sorted(new_names[ent][i] for i in n["applies_to"]["ids"])
        assert want == got, "coupon %s applies to other %s: %s != %s" % (k, ent, got, want)
        if len(got) < len(o["applies_to"]["ids"]):
            assert "references not found" in notes.get(str(o["id"]), ""), \
                "coupon %s: unmapped ids not reported" % k


def entity_names(backup_id, store=SOURCE):
    """Names of products, categories and brands a backup holds, by id."""
    out = {"products": {}, "categories": {}, "brands": {}}
    doc = json.load(open(os.path.join(ws.backup_dir(store, backup_id), "manifest.json")))
    for t in out:
        if t in doc["types"]:
            key = "category_id" if t == "categories" else "id"
            out[t] = {r[key]: r["name"] for r in records(store, backup_id, t)}
    return out


def check_redirects(src, back, report):
    names = entity_names(src)
    copy_names = entity_names(state["copy_backup"], COPY) if store_has(COPY, "brands") else {}
    old_pages = {p["id"]: page_key(p) for p in records(SOURCE, src, "pages")}
    new_pages = {p["id"]: page_key(p) for p in records(COPY, back, "pages")}
    old_posts = {p["id"]: p["url"] for p in records(SOURCE, src, "blog_posts")}
    new_posts = {p["id"]: p["url"] for p in records(COPY, back, "blog_posts")}
    old = by(records(SOURCE, src, "redirects"), lambda r: r["from_path"])
    new = by(records(COPY, back, "redirects"), lambda r: r["from_path"])
    skipped = {r["id"]: r["reason"] for r in report["records"]
               if r["type"] == "redirects" and r["outcome"] == "skipped"}
    for k, o in old.items():
        if str(o["id"]) in skipped:
            assert k not in new and "not in the target store" in skipped[str(o["id"])], k
            continue
        n = new[k]
        t = o["to"]["type"]
        assert n["to"]["type"] == t
        if t == "url":
            assert n["to"]["url"] == o["to"]["url"]
        elif t == "page":
            assert new_pages[n["to"]["entity_id"]] == old_pages[o["to"]["entity_id"]], k
        elif t == "post":
            assert new_posts[n["to"]["entity_id"]] == old_posts[o["to"]["entity_id"]], k
        else:
            kind = {"brand": "brands", "product": "products", "category": "categories"}[t]
            assert copy_names[kind][n["to"]["entity_id"]] == names[kind][o["to"]["entity_id"]]
    assert len(new) == len(old) - len(skipped)


def store_has(store, type_):
    return fake.call("GET", "/_fake/stores/%s/counts" % store)[type_] > 0


def order_line_key(p):
    return (p["name"], p["quantity"], num(p["price_ex_tax"]))


def order_lines(o):
    return sorted((p["name"], p["quantity"], num(p["price_ex_tax"]), num(p["price_inc_tax"]))
                  for p in o["products"])


def check_orders(src, back):
    old = {o["id"]: o for o in records(SOURCE, src, "orders")}
    new = by(records(COPY, back, "orders"), lambda r: int(r["external_order_id"]))
    assert set(old) == set(new), "orders differ"
    old_cust = {c["id"]: c["email"] for c in records(SOURCE, src, "customers")}
    old_products = entity_names(src)["products"]
    new_products = entity_names(back, COPY)["products"]
    linked = 0
    new_cust = {c["id"]: c["email"] for c in records(COPY, back, "customers")}
    for k, o in old.items():
        n = new[k]
        assert n["external_source"] == "M-MIG", k
        for m in ("date_created", "status_id", "billing_address", "staff_notes",
                  "customer_message"):
            assert o[m] == n[m], "order %s: %s differs: %r != %r" % (k, m, o[m], n[m])
        assert order_lines(o) == order_lines(n), "order %s: lines differ" % k
        assert old_cust.get(o["customer_id"]) == new_cust.get(n["customer_id"]), \
            "order %s: customer points elsewhere" % k
        for ol, nl in zip(sorted(o["products"], key=order_line_key),
                          sorted(n["products"], key=order_line_key)):
            if nl["product_id"]:
                assert new_products[nl["product_id"]] == old_products[ol["product_id"]], k
                assert nl["sku"] == ol["sku"], "order %s: another variant" % k
                linked += 1
            else:
                assert old_products.get(ol["product_id"]) not in new_products.values(), \
                    "order %s: a custom line for a product the store has" % k
        ship = lambda r: sorted((s["tracking_number"], sum(i["quantity"] for i in s["items"]))
                                for s in r["shipments"])
        assert ship(o) == ship(n), "order %s: shipments differ" % k
        assert len(n["shipping_addresses"]) == len(o["shipping_addresses"])
    print("     orders: %d lines point at restored products" % linked)


def check_stock(src, back):
    """Orders take stock; the restore puts it back, so the copy holds the backup's levels."""
    def levels(store, b):
        out = {}
        for p in records(store, b, "products"):
            out[p["name"]] = p["inventory_level"]
            for v in p.get("variants") or []:
                out[v["sku"]] = v["inventory_level"]
        return out
    old, new = levels(SOURCE, src), levels(COPY, back)
    wrong = [k for k in old if new.get(k) != old[k]]
    assert not wrong, "stock differs for %d products/variants, e.g. %s: %s != %s" % (
        len(wrong), wrong[0], new.get(wrong[0]), old[wrong[0]])


def test_2_rerun_writes_nothing():
    """The types of this test (brands, categories and products were restored above only so
    that references have somewhere to point)."""
    before = len(writes(COPY))
    mine = [t for t in SALES if t != "brands"]
    code, doc, err = restore(source_backup(), "--to", COPY, "--types", ",".join(mine))
    assert code == 0, err[-2000:]
    for t, c in doc["types"].items():
        assert c["created"] == 0 and c["updated"] == 0 and c["failed"] == 0, (t, c)
        assert c["kept"] == 0, (t, c, [r for r in doc["records"] if r["outcome"] == "kept"][:3])
        assert c["unchanged"] + c["skipped"] == c["records"], (t, c)
    assert len(writes(COPY)) == before, "a re-run wrote: %s" % writes(COPY)[before:][:3]
    print("     re-run: %d requests, all unchanged or skipped" % doc["requests"])


# ---- customers: passwords, emails, requests ---------------------------------------------

def test_3_customers_reset_password_and_no_email():
    doc = state["round"]
    c = doc["types"]["customers"]
    resets = [r for r in doc["records"] if r["type"] == "customers" and
              r["outcome"] == "created" and "must reset password" in r["reason"]]
    assert c["created"] == 400 and len(resets) == c["created"], (c, len(resets))
    emails = fake.call("GET", "/_fake/stores/%s/emails" % COPY)["emails"]
    assert emails == [], "account emails were sent: %s" % emails[:3]


def test_4_customer_requests_about_n_over_10():
    fake.call("POST", "/_fake/stats/reset")
    code, doc, err = restore(source_backup(), "--to", COUNTS, "--types", "customers")
    assert code == 0 and doc["types"]["customers"]["created"] == 400, err[-1500:]
    posts = [w for w in writes(COUNTS) if w["method"] == "POST" and
             w["pattern"] == "/v3/customers"]
    assert len(posts) == 40, "%d customer POSTs for 400 customers" % len(posts)
    stats = fake.stats()["stores"][COUNTS]["by_pattern"]
    gets = stats.get("GET /v3/customers", 0)
    # the lookups (one email:in per batch) plus the safety backup's one page
    assert gets <= 40 + 2, "%d customer GETs" % gets
    assert doc["requests"] <= 80, doc["requests"]
    print("     400 customers: %d POSTs, %d GETs, %d requests in the restore" % (
        len(posts), gets, doc["requests"]))


# ---- pages ------------------------------------------------------------------------------

def test_5_blog_page_skipped_with_reason():
    doc = state["round"]
    blogs = [p for p in records(SOURCE, source_backup(), "pages") if p["type"] == "blog"]
    skipped = {r["id"]: r["reason"] for r in doc["records"]
               if r["type"] == "pages" and r["outcome"] == "skipped"}
    assert blogs and set(skipped) == set(str(p["id"]) for p in blogs), skipped
    assert all("blog" in why and "control panel" in why for why in skipped.values())


# ---- repair in the same store ---------------------------------------------------------------

def test_6_repair_damage_in_the_same_store():
    src = source_backup()
    orders = {o["id"]: o for o in records(SOURCE, src, "orders")}
    gone = next(o for o in orders.values() if o["customer_id"] and o["shipments"] and
                all(p["product_id"] for p in o["products"]))
    changed = next(o for o in orders.values() if o["id"] != gone["id"] and o["status_id"] != 5
                   and o["customer_id"] != gone["customer_id"])
    cust = next(c for c in records(SOURCE, src, "customers")
                if c["id"] != gone["customer_id"] and c["addresses"])
    page = next(p for p in records(SOURCE, src, "pages") if p["type"] == "page")
    other = lambda o: o["customer_id"] == cust["id"]
    snap = fake.call("POST", "/_fake/stores/%s/snapshot" % SOURCE)["snapshot"]
    before = len(writes(SOURCE))
    fake.call("POST", "/_fake/stores/%s/mutate" % SOURCE,
              {"op": "delete", "type": "customers", "id": cust["id"]})
    fake.call("POST", "/_fake/stores/%s/mutate" % SOURCE,
              {"op": "delete", "type": "orders", "id": gone["id"]})
    fake.call("POST", "/_fake/stores/%s/mutate" % SOURCE,
              {"op": "update", "type": "orders", "id": changed["id"], "record": {"status_id": 5}})
    fake.call("POST", "/_fake/stores/%s/mutate" % SOURCE,
              {"op": "update", "type": "pages", "id": page["id"],
               "record": {"name": "Broken", "body": "<p>gone</p>"}})

    code, doc, err = restore(src, "--types", "customers,orders,pages")
    assert code == 0, "%s %s" % (doc.get("error"), err[-2000:])
    t = doc["types"]
    assert t["customers"]["created"] == 1 and t["customers"]["updated"] == 0, t["customers"]
    assert t["pages"]["updated"] == 1 and t["pages"]["created"] == 0, t["pages"]
    assert t["orders"]["created"] == 1, t["orders"]
    kept = {r["id"] for r in doc["records"] if r["type"] == "orders" and r["outcome"] == "kept"}
    # the changed order, and orders of the recreated customer (who has a new id now)
    want_kept = {str(changed["id"])} | {str(o["id"]) for o in orders.values() if other(o)}
    assert kept == want_kept, (sorted(kept), sorted(want_kept))

    diff = fake.call("GET", "/_fake/stores/%s/diff?snapshot=%d" % (SOURCE, snap))
    assert diff["customers"]["deleted"] == [str(cust["id"])] or \
        diff["customers"]["deleted"] == [cust["id"]], diff["customers"]
    assert len(diff["customers"]["created"]) == 1 and not diff["customers"]["changed"]
    assert len(diff["orders"]["created"]) == 1, diff["orders"]
    assert set(diff["orders"]["changed"]) == {str(changed["id"])}, diff["orders"]["changed"]
    assert diff["products"]["changed"] == {}, "stock not put back: %s" % diff["products"]
    assert set(diff["pages"]["changed"]) == set(), diff["pages"]

    new_order = int(diff["orders"]["created"][0])
    st, o = api("GET", SOURCE, "/v2/orders/%d" % new_order)
    assert o["external_order_id"] == str(gone["id"]) and o["external_source"] == "M-MIG", o
    assert o["date_created"] == gone["date_created"] and o["status_id"] == gone["status_id"]
    st, lines = api("GET", SOURCE, "/v2/orders/%d/products" % new_order)
    assert sorted((p["product_id"], p["variant_id"], p["quantity"]) for p in lines) == \
        sorted((p["product_id"], p["variant_id"], p["quantity"]) for p in gone["products"])
    st, live = api("GET", SOURCE, "/v2/orders/%d" % changed["id"])
    assert live["status_id"] == 5, "an existing order was modified"

    # only the damaged records (and the stock of the recreated order's products) were written
    allowed = {"customers": set(diff["customers"]["created"]), "orders": {new_order},
               "pages": {page["id"]}, "products": {p["product_id"] for p in gone["products"]}}
    for w in writes(SOURCE)[before:]:
        for typ, ids in w["ids"].items():
            extra = set(ids) - {int(i) for i in allowed.get(typ, ())}
            assert not extra, "%s %s wrote %s %s" % (w["method"], w["pattern"], typ, extra)
    emails = fake.call("GET", "/_fake/stores/%s/emails" % SOURCE)["emails"]
    assert emails == [], emails
    state["repaired"] = len(writes(SOURCE))

    # run again: nothing is written
    code, doc, err = restore(src, "--types", "customers,orders,pages")
    assert code == 0, err[-1500:]
    for typ, c in doc["types"].items():
        assert c["created"] == 0 and c["updated"] == 0 and c["failed"] == 0, (typ, c)
    assert len(writes(SOURCE)) == state["repaired"], writes(SOURCE)[state["repaired"]:][:3]


def test_7_only_named_customers():
    src = source_backup()
    for cid in (7, 8):
        fake.call("POST", "/_fake/stores/%s/mutate" % SOURCE,
                  {"op": "update", "type": "customers", "id": cid,
                   "record": {"first_name": "Changed"}})
    before = len(writes(SOURCE))
    code, doc, err = restore(src, "--only", "customers:7")
    assert code == 0, err[-1500:]
    c = doc["types"]["customers"]
    assert c["records"] == 1 and c["updated"] == 1, c
    st, got = api("GET", SOURCE, "/v3/customers?id:in=7,8")
    names = {x["id"]: x["first_name"] for x in got["data"]}
    assert names[7] != "Changed" and names[8] == "Changed", names
    ws_ids = [w["ids"] for w in writes(SOURCE)[before:]]
    assert ws_ids == [{"customers": [7]}], ws_ids
    code, doc, err = restore(src, "--only", "customers:8")
    assert code == 0 and doc["types"]["customers"]["updated"] == 1


# ---- themes ---------------------------------------------------------------------------------

def test_8_theme_uploaded_and_activated_only_when_asked():
    themes = fake.dump(THEMES, "themes")
    custom = next(json.loads(t) for t in themes if json.loads(t)["name"] == "o7 Custom")
    st, _ = api("POST", THEMES, "/v3/themes/actions/activate",
                {"variation_id": custom["variations"][0]["uuid"], "which": "original"})
    assert st == 204
    b = backup(THEMES, ["themes"])
    for store, flags, active in (("themes2", [], False), ("themes3", ["--activate"], True)):
        fake.call("POST", "/_fake/stores", {"hash": store, "preset": "empty"})
        ws.add_store(store)
        code, doc, err = restore(b, "--to", store, *flags)
        assert code == 0, err[-1500:]
        assert doc["types"]["themes"]["created"] == 1, doc["types"]
        live = {json.loads(t)["name"]: json.loads(t) for t in fake.dump(store, "themes")}
        assert live["o7 Custom"]["is_active"] is active, (store, live["o7 Custom"])
        code, doc, err = restore(b, "--to", store, *flags)
        assert code == 0 and doc["types"]["themes"]["created"] == 0, doc["types"]
    ups = [w for w in writes("themes3") if w["pattern"] == "/v3/themes"]
    assert len(ups) == 1, ups


# ---- a conflict the lookup could not see ---------------------------------------------------

def test_9_email_taken_between_lookup_and_create_updates_instead():
    """Someone creates a customer with a backed-up email after o7 looked the batch up: the
    batch POST is refused for that item (422 naming INDEX.email); the others are sent again
    and the taken one is looked up by email and updated."""
    store = "race1"
    fake.call("POST", "/_fake/stores", {"hash": store, "preset": "empty"})
    ws.add_store(store)
    third = dict(records(SOURCE, source_backup(), "customers")[2])
    third.pop("id")
    third["first_name"] = "Someone Else"
    fake.faults(store, [{"path": "^/v3/customers$", "method": "POST", "count": 1,
                         "action": "mutate", "mutation": {"op": "create", "type": "customers",
                                                          "record": third}}])
    code, doc, err = restore(source_backup(), "--to", store, "--types", "customers")
    assert code == 0, "%s %s" % (doc.get("error"), err[-1500:])
    c = doc["types"]["customers"]
    assert (c["created"], c["updated"], c["failed"]) == (399, 1, 0), c
    live = [json.loads(x) for x in fake.dump(store, "customers")]
    mine = [x for x in live if x["email"].lower() == third["email"].lower()]
    assert len(live) == 400 and len(mine) == 1, (len(live), len(mine))
    assert mine[0]["first_name"] != "Someone Else", mine[0]["first_name"]


if __name__ == "__main__":
    main(globals())

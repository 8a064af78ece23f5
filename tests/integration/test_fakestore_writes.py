#!/usr/bin/env python3
"""Self-test of the fake store's write endpoints (tests/fakestore, "Writes" in its README):
ids assigned, read-only and required members, uniqueness, batch limits, partial success,
stock, images, snapshots, diffs and the write log, against a server on a free loopback port.

Prints "N passed, N failed" and exits non-zero when a check failed.
"""

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from test_fakestore import FAKESTORE, Client, Failed, check  # noqa: E402

SRC = "/stores/src"
T = "/stores/tgt"


def reset(c):
    for h in ("src", "tgt"):
        c.json("POST", "/_fake/stores/%s/reset" % h)
    c.json("POST", "/_fake/stats/reset")


def product_body(name, sku, **extra):
    body = {"name": name, "type": "physical", "weight": 1.5, "price": 12.5, "sku": sku}
    body.update(extra)
    return body


def img_url(c, path):
    return "http://127.0.0.1:%d/_img/src/%s" % (c.port, path)


def v3_err(body, status):
    return (isinstance(body, dict) and body.get("status") == status and "title" in body and
            "type" in body and isinstance(body.get("errors"), dict))


def v2_err(raw, status):
    body = json.loads(raw)
    return isinstance(body, list) and body[0]["status"] == status and "message" in body[0]


def dump(c, store, rtype):
    st, _, raw = c.request("GET", "/_fake/stores/%s/dump?type=%s" % (store, rtype))
    check(st == 200, "dump %s" % rtype)
    return [json.loads(line) for line in raw.decode().splitlines() if line]


# ---- products ---------------------------------------------------------------------------------

def test_product_create(c):
    body = product_body("Restored Mug", "RM-1", inventory_tracking="variant", variants=[
        {"sku": "RM-1-S", "inventory_level": 4,
         "option_values": [{"option_display_name": "Size", "label": "S"}]},
        {"sku": "RM-1-L", "inventory_level": 6,
         "option_values": [{"option_display_name": "Size", "label": "L"}]}],
        images=[{"image_url": img_url(c, "products/1/1/a.1280.1280.png"),
                 "is_thumbnail": True, "description": "front"}],
        custom_fields=[{"name": "Material", "value": "clay"}],
        bulk_pricing_rules=[{"quantity_min": 5, "quantity_max": 9, "type": "percent",
                             "amount": 5}],
        videos=[{"video_id": "abc123", "type": "youtube", "title": "Demo"}])
    st, _, got = c.json("POST", T + "/v3/catalog/products", body)
    check(st == 200, "create product %d %r" % (st, got))
    p = got["data"]
    check(p["id"] == 1 and p["inventory_level"] == 10 and p["base_variant_id"] is None,
          "id 1, stock summed: %r" % {k: p[k] for k in ("id", "inventory_level")})
    check(len(p["options"]) == 1 and [v["label"] for v in p["options"][0]["option_values"]] ==
          ["S", "L"], "inline option built from the variants")
    check(all(v["option_values"][0]["option_id"] == p["options"][0]["id"]
              for v in p["variants"]), "variants point at the new option")
    img = p["images"][0]
    check("/_img/tgt/products/1/" in img["url_zoom"], "image rehosted on the target")
    st, _, _ = c.request("GET", img["url_zoom"].split(str(c.port), 1)[1])
    check(st == 200, "the new image URL serves")
    check(p["custom_fields"][0]["name"] == "Material" and p["videos"][0]["video_id"] ==
          "abc123" and p["bulk_pricing_rules"][0]["quantity_min"] == 5, "inline subs")
    line = dump(c, "tgt", "products")[0]
    st, _, listed = c.json("GET", T + "/v3/catalog/products?sku=RM-1&include=variants,images,"
                           "custom_fields,bulk_pricing_rules,options,modifiers,videos")
    check(listed["data"] == [line] and line == p, "dump, list and response agree")
    st, _, plain = c.json("GET", T + "/v3/catalog/products")
    check(plain["meta"]["pagination"]["total"] == 1, "listed once")
    st, _, got = c.json("POST", T + "/v3/catalog/products", product_body("Plain", "PL-1"))
    q = got["data"]
    check(q["id"] == 2 and q["base_variant_id"] == q["variants"][0]["id"] and
          q["variants"][0]["option_values"] == [] and q["variants"][0]["sku"] == "PL-1",
          "a product without options gets a base variant")
    for query in ("name=Plain", "sku:in=PL-1,NOPE", "keyword=plai", "id:in=2"):
        st, _, found = c.json("GET", T + "/v3/catalog/products?" + query)
        check([r["id"] for r in found["data"]] == [2], "lookup by %s" % query)


def test_product_rules(c):
    st, _, body = c.json("POST", T + "/v3/catalog/products", {"sku": "X"})
    check(st == 422 and v3_err(body, 422) and
          set(body["errors"]) == {"name", "type", "weight", "price"}, "422 names each required")
    for ro in ("id", "date_created", "date_modified", "calculated_price", "base_variant_id"):
        st, _, body = c.json("POST", T + "/v3/catalog/products",
                             product_body("RO " + ro, "RO-" + ro, **{ro: 1}))
        check(st == 422 and ro in body["errors"], "read-only %s refused: %r" % (ro, body))
    for ro in ("calculated_price", "calculated_weight", "sku_id", "product_id"):
        st, _, body = c.json("POST", T + "/v3/catalog/products", product_body(
            "ROV", "ROV", variants=[{"sku": "ROV-1", ro: 1, "option_values": [
                {"option_display_name": "Size", "label": "S"}]}]))
        check(st == 422 and "variants.0." + ro in body["errors"], "variant %s refused" % ro)
    c.json("POST", T + "/v3/catalog/products", product_body("Unique", "U-1",
                                                            custom_url={"url": "/u/"}))
    for field, body in [("name", product_body("Unique", "U-2")),
                        ("sku", product_body("Unique 2", "U-1")),
                        ("custom_url.url", product_body("Unique 3", "U-3",
                                                        custom_url={"url": "/u/"}))]:
        st, _, err = c.json("POST", T + "/v3/catalog/products", body)
        check(st == 409 and v3_err(err, 409) and field in err["errors"],
              "409 names %s: %r" % (field, err))
    st, _, err = c.json("POST", T + "/v3/catalog/products",
                        product_body("Bad brand", "BB", brand_id=999))
    check(st == 409 and "brand_id" in err["errors"], "unknown brand 409")
    st, _, err = c.json("POST", T + "/v3/catalog/products", product_body(
        "Gone image", "GI", images=[{"image_url": "https://cdn.example.org/a.png"}]))
    check(st == 422 and "could not be fetched" in err["errors"]["image_url"] and
          "cdn.example.org" in err["errors"]["image_url"], "foreign URL not fetched")
    path = "products/1/1/gone.1280.1280.png"
    st, _, _ = c.request("DELETE", "/_fake/stores/src/img/" + path)
    check(st == 204, "image deleted from the fake CDN")
    st, _, _ = c.request("GET", "/_img/src/" + path, token=None)
    check(st == 404, "deleted image is 404")
    st, _, err = c.json("POST", T + "/v3/catalog/products", product_body(
        "Gone image", "GI", images=[{"image_url": img_url(c, path)}]))
    check(st == 422 and "could not be fetched" in err["errors"]["image_url"], "missing image")
    st, _, got = c.json("GET", T + "/v3/catalog/products?name=Gone%20image")
    check(got["data"] == [], "a refused create leaves nothing behind")


def test_product_updates(c):
    st, _, got = c.json("POST", T + "/v3/catalog/products", product_body("Upd", "UP-1"))
    pid = got["data"]["id"]
    st, _, got = c.json("PUT", T + "/v3/catalog/products/%d" % pid,
                        {"price": 20, "inventory_level": 7, "categories": []})
    p = got["data"]
    check(st == 200 and p["price"] == 20 and p["calculated_price"] == 20 and
          p["inventory_level"] == 7, "PUT applied: %r" % st)
    st, _, v = c.json("GET", T + "/v3/catalog/products/%d/variants" % pid)
    check(v["data"][0]["inventory_level"] == 7, "base variant follows product stock")
    st, _, err = c.json("PUT", T + "/v3/catalog/products/%d" % pid, {"date_modified": "x"})
    check(st == 422 and "date_modified" in err["errors"], "PUT read-only refused")
    batch = [{"id": pid, "name": "Upd %d" % i} for i in range(11)]
    st, _, err = c.json("PUT", T + "/v3/catalog/products", batch)
    check(st == 413 and v3_err(err, 413), "batch of 11 gives 413")
    st, _, err = c.json("PUT", T + "/v3/catalog/products", [{"name": "no id"}])
    check(st == 422 and "0.id" in err["errors"], "batch item without id 422")
    st, _, got = c.json("PUT", T + "/v3/catalog/products", [{"id": pid, "is_visible": False}])
    check(st == 200 and got["data"][0]["is_visible"] is False, "batch PUT")
    # sub-resources
    st, _, opt = c.json("POST", T + "/v3/catalog/products/%d/options" % pid, {
        "display_name": "Colour", "type": "swatch",
        "option_values": [{"label": "Red"}, {"label": "Blue"}]})
    check(st == 200 and len(opt["data"]["option_values"]) == 2, "option created")
    oid = opt["data"]["id"]
    red, blue = [v["id"] for v in opt["data"]["option_values"]]
    st, _, val = c.json("POST", T + "/v3/catalog/products/%d/options/%d/values" % (pid, oid),
                        {"label": "Green"})
    check(st == 200 and val["data"]["label"] == "Green", "option value created")
    st, _, err = c.json("POST", T + "/v3/catalog/products/%d/variants" % pid, {"sku": "UP-R"})
    check(st == 422 and "option_values" in err["errors"], "variant needs option_values")
    st, _, var = c.json("POST", T + "/v3/catalog/products/%d/variants" % pid, {
        "sku": "UP-R", "inventory_level": 3, "option_values": [{"option_id": oid, "id": red}]})
    check(st == 200 and var["data"]["option_values"][0]["label"] == "Red", "variant created")
    vid = var["data"]["id"]
    st, _, err = c.json("PUT", T + "/v3/catalog/products/%d/variants/%d" % (pid, vid),
                        {"option_values": [{"option_id": oid, "id": blue}]})
    check(st == 422 and "option_values" in err["errors"], "variant option values are fixed")
    st, _, ok = c.json("PUT", T + "/v3/catalog/products/%d/variants/%d" % (pid, vid),
                       {"inventory_level": 9})
    check(st == 200 and ok["data"]["inventory_level"] == 9, "variant stock set")
    st, _, got = c.json("GET", T + "/v3/catalog/products/%d" % pid)
    check(got["data"]["inventory_level"] == 9 and got["data"]["base_variant_id"] is None,
          "product stock is the variants' sum: %r" % got["data"]["inventory_level"])
    cf = T + "/v3/catalog/products/%d/custom-fields" % pid
    st, _, made = c.json("POST", cf, {"name": "Origin", "value": "Peru"})
    check(st == 200 and made["data"]["id"] > 0, "custom field created")
    st, _, err = c.json("POST", cf, {"name": "Origin", "value": "Peru"})
    check(st == 409 and v3_err(err, 409), "duplicate custom field 409")
    st, _, _ = c.request("DELETE", cf + "/%d" % made["data"]["id"])
    check(st == 204, "custom field deleted")
    st, _, err = c.json("POST", T + "/v3/catalog/products/%d/images" % pid,
                        {"image_url": "http://10.0.0.1/x.png"})
    check(st == 422 and "image_url" in err["errors"], "image fetch failure on sub-resource")
    st, _, mod = c.json("POST", T + "/v3/catalog/products/%d/modifiers" % pid, {
        "display_name": "Gift wrap", "type": "checkbox", "required": False})
    check(st == 200 and mod["data"]["type"] == "checkbox", "modifier created")
    st, _, _ = c.request("DELETE", T + "/v3/catalog/products?id:in=" +
                         ",".join(str(i) for i in range(1, 252)))
    check(st == 413, "delete of 251 ids gives 413")
    st, _, _ = c.request("DELETE", T + "/v3/catalog/products")
    check(st == 422, "filterless delete 422")
    st, _, _ = c.request("DELETE", T + "/v3/catalog/products?id:in=%d" % pid)
    st2, _, _ = c.request("GET", T + "/v3/catalog/products/%d" % pid)
    check(st == 204 and st2 == 404, "product deleted")


def test_brands_and_categories(c):
    st, _, b = c.json("POST", T + "/v3/catalog/brands", {"name": "Alder"})
    check(st == 200 and b["data"]["id"] == 1 and b["data"]["custom_url"]["url"] ==
          "/brands/alder.html", "brand created")
    st, _, err = c.json("POST", T + "/v3/catalog/brands", {"name": "Alder"})
    check(st == 409 and "name" in err["errors"], "duplicate brand 409")
    st, _, err = c.json("POST", T + "/v3/catalog/brands", {"page_title": "x"})
    check(st == 422 and "name" in err["errors"], "brand name required")
    st, _, found = c.json("GET", T + "/v3/catalog/brands?name=Alder")
    check([x["id"] for x in found["data"]] == [1], "brand by name")
    st, _, trees = c.json("PUT", T + "/v3/catalog/trees",
                          [{"name": "Second", "channels": [2]}])
    check(st == 200 and trees["data"][0]["id"] == 2, "tree created: %r" % trees)
    st, _, err = c.json("PUT", T + "/v3/catalog/trees", [{"name": "t%d" % i, "channels": [3]}
                                                         for i in range(51)])
    check(st == 413, "51 trees give 413")
    st, _, err = c.json("PUT", T + "/v3/catalog/trees", [{"id": 2, "channels": [5]}])
    check(st == 422, "channels on tree update 422")
    cats = T + "/v3/catalog/trees/categories"
    st, _, made = c.json("POST", cats, [{"name": "Mugs", "tree_id": 1},
                                        {"name": "Mugs", "tree_id": 2}])
    check(st == 201 and made["meta"] == {"total": 2, "success": 2, "failed": 0},
          "categories created: %r" % made)
    parent = made["data"][0]["category_id"]
    st, _, part = c.json("POST", cats, [{"name": "Big", "parent_id": parent},
                                        {"name": "Mugs", "tree_id": 1}])
    check(st == 207 and part["meta"] == {"total": 2, "success": 1, "failed": 1} and
          part["data"][0]["tree_id"] == 1 and part["errors"][0]["status"] == 409 and
          "1" in part["errors"][0]["errors"], "207 partial success: %r" % part)
    st, _, err = c.json("POST", cats, [{"name": "Mugs", "tree_id": 1}])
    check(st == 409 and v3_err(err, 409), "all duplicates: 409")
    st, _, err = c.json("POST", cats, [{"name": "No tree"}])
    check(st == 422 and v3_err(err, 422), "missing tree: 422")
    child = part["data"][0]["category_id"]
    st, _, upd = c.json("PUT", cats, [{"category_id": child, "name": "Large"}])
    check(st == 200 and upd["data"][0]["name"] == "Large", "category renamed")
    c.json("POST", T + "/v3/catalog/products", product_body("In cat", "IC", categories=[child]))
    st, _, err = c.json("DELETE", cats + "?category_id:in=%d" % parent)
    check(st == 422 and v3_err(err, 422), "category holding products (via child) 422")
    c.request("DELETE", T + "/v3/catalog/products?sku=IC&id:in=" + ",".join(
        str(i) for i in range(1, 50)))
    st, _, raw = c.request("DELETE", cats + "?category_id:in=%d" % parent)
    check(st == 202, "category delete 202")
    st, _, left = c.json("GET", cats + "?category_id:in=%d,%d" % (parent, child))
    check(left["data"] == [], "children deleted with their parent")


# ---- runner -------------------------------------------------------------------------------------

def start_server():
    proc = subprocess.Popen([sys.executable, FAKESTORE, "--port", "0", "--store", "src=sample",
                             "--store", "tgt=empty"], stdout=subprocess.PIPE, stderr=sys.stderr)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on http://127.0.0.1:"):
        proc.kill()
        raise SystemExit("fakestore did not start: %r" % line)
    return proc, int(line.rsplit(":", 1)[1])


TESTS = [("product create", test_product_create),
         ("product rules", test_product_rules),
         ("product updates and sub-resources", test_product_updates),
         ("brands, trees and categories", test_brands_and_categories)]


def main():
    deadline = time.monotonic() + 50
    proc, port = start_server()
    c = Client(port)
    passed = failed = 0
    try:
        for name, fn in TESTS:
            if time.monotonic() > deadline:
                print("FAIL %s: out of time" % name)
                failed += 1
                continue
            reset(c)
            try:
                fn(c)
                print("ok   %s" % name)
                passed += 1
            except Exception as exc:  # a crash in one test must not hide the others
                print("FAIL %s: %s: %s" % (name, type(exc).__name__, exc))
                failed += 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

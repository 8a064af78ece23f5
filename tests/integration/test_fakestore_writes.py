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

from test_fakestore import FAKESTORE, Client, check  # noqa: E402

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


# ---- customers -------------------------------------------------------------------------------

def customer(n, **extra):
    body = {"email": "c%d@example.com" % n, "first_name": "C%d" % n, "last_name": "Test"}
    body.update(extra)
    return body


ADDR = {"first_name": "A", "last_name": "B", "address1": "1 Road", "city": "Leeds",
        "country_code": "GB", "state_or_province": "West Yorkshire", "postal_code": "LS1 4AP"}


def test_customers(c):
    st, _, got = c.json("POST", T + "/v3/customers", [customer(
        1, authentication={"force_password_reset": True, "new_password": "S3cret!pass"},
        addresses=[ADDR, ADDR], store_credit_amounts=[{"amount": 12.5}],
        attributes=[{"attribute_id": 1, "attribute_value": "gold"}],
        trigger_account_created_notification=False), customer(2)])
    check(st == 200 and [x["id"] for x in got["data"]] == [1, 2], "ids assigned: %r" % st)
    one = got["data"][0]
    check(one["authentication"] == {"force_password_reset": True} and
          "S3cret" not in json.dumps(got), "password accepted, never echoed")
    check(one["address_count"] == 1 and one["store_credit_amounts"] == [{"amount": 12.5}] and
          one["attributes"][0]["attribute_value"] == "gold", "inline parts (duplicate dropped)")
    st, _, em = c.json("GET", "/_fake/stores/tgt/emails")
    check(em["emails"] == [], "no account email without the trigger")
    c.json("POST", T + "/v3/customers", [customer(3, trigger_account_created_notification=True)])
    st, _, em = c.json("GET", "/_fake/stores/tgt/emails")
    check([e["customer_id"] for e in em["emails"]] == [3], "the trigger is recorded")
    st, _, err = c.json("POST", T + "/v3/customers", [customer(4), customer(1)])
    check(st == 422 and v3_err(err, 422) and "already in use" in err["errors"]["1.email"],
          "duplicate email 422: %r" % err)
    st, _, err = c.json("POST", T + "/v3/customers", [{"email": "x@example.com"}])
    check(st == 422 and set(err["errors"]) == {"0.first_name", "0.last_name"}, "required")
    st, _, err = c.json("POST", T + "/v3/customers", [customer(n) for n in range(10, 21)])
    check(st == 413 and v3_err(err, 413), "11 customers give 413")
    for ro in ("date_created", "registration_ip_address", "address_count", "id"):
        st, _, err = c.json("POST", T + "/v3/customers", [customer(30, **{ro: 1})])
        check(st == 422 and "0." + ro in err["errors"], "read-only %s on POST" % ro)
    st, _, err = c.json("PUT", T + "/v3/customers", [{"id": 1, "date_modified": "x"}])
    check(st == 422 and "0.date_modified" in err["errors"], "read-only on PUT")
    st, _, got = c.json("PUT", T + "/v3/customers", [{"id": 2, "notes": "restored"}])
    check(st == 200 and got["data"][0]["notes"] == "restored", "PUT by id")
    st, _, got = c.json("POST", T + "/v3/customers/addresses",
                        [dict(ADDR, customer_id=1), dict(ADDR, customer_id=2)])
    check(st == 200 and [a["customer_id"] for a in got["data"]] == [2],
          "duplicate address left out of the answer: %r" % got["data"])
    st, _, got = c.json("PUT", T + "/v3/customers/attribute-values",
                        [{"customer_id": 2, "attribute_id": 2, "value": "42"}])
    check(st == 200 and got["data"][0]["value"] == "42", "attribute value upserted")
    st, _, got = c.json("GET", T + "/v3/customers?id:in=2&include=addresses,attributes")
    cust = got["data"][0]
    check(cust["address_count"] == 1 and cust["attributes"][0]["attribute_value"] == "42",
          "reads show the writes")
    st, _, got = c.json("GET", T + "/v3/customers?email:in=c1@example.com")
    check([x["id"] for x in got["data"]] == [1], "lookup by email")
    st, _, _ = c.request("DELETE", T + "/v3/customers?id:in=3")
    st2, _, got = c.json("GET", T + "/v3/customers?id:in=3")
    check(st == 204 and got["data"] == [], "customer deleted")


# ---- orders and stock ------------------------------------------------------------------------

BILL = {"first_name": "A", "last_name": "B", "street_1": "1 Road", "city": "Austin",
        "state": "Texas", "zip": "78701", "country": "United States", "country_iso2": "US",
        "email": "a@example.com"}


def test_orders(c):
    st, _, made = c.json("POST", T + "/v3/catalog/products", product_body(
        "Stocked", "ST", variants=[{"sku": "ST-S", "inventory_level": 10, "option_values": [
            {"option_display_name": "Size", "label": "S"}]}]))
    prod = made["data"]
    vid = prod["variants"][0]["id"]
    body = {"billing_address": BILL, "external_source": "M-MIG", "external_order_id": "100",
            "date_created": "Tue, 05 Jan 2021 10:00:00 +0000", "status_id": 10,
            "products": [{"product_id": prod["id"], "variant_id": vid, "quantity": 3},
                         {"name": "Gone product", "quantity": 1, "price_inc_tax": 5,
                          "price_ex_tax": 5}]}
    st, _, raw = c.request("POST", T + "/v2/orders", body)
    check(st == 200, "order created: %d %r" % (st, raw[:200]))
    order = json.loads(raw)
    check(order["id"] == 1 and order["status_id"] == 10 and order["date_created"] ==
          body["date_created"] and order["products"]["resource"] == "/orders/1/products",
          "order shape")
    st, _, got = c.json("GET", T + "/v3/catalog/products/%d/variants" % prod["id"])
    check(got["data"][0]["inventory_level"] == 7, "stock taken: %r" %
          got["data"][0]["inventory_level"])
    st, _, found = c.json("GET", T + "/v2/orders?external_order_id=100")
    check([o["id"] for o in found] == [1], "lookup by external_order_id")
    bad = dict(body, id=5)
    st, _, raw = c.request("POST", T + "/v2/orders", bad)
    check(st == 400 and v2_err(raw, 400), "id refused on POST")
    st, _, raw = c.request("POST", T + "/v2/orders", dict(body, billing_address=dict(
        BILL, zip="7")))
    check(st == 400 and v2_err(raw, 400) and b"zip" in raw, "zip needs 2 characters")
    st, _, raw = c.request("POST", T + "/v2/orders", dict(body, consignments=[{}]))
    check(st == 400 and b"consignments" in raw, "products and consignments refused")
    st, _, raw = c.request("POST", T + "/v2/orders", dict(body, date_created="2021-01-05"))
    check(st == 400 and b"RFC-2822" in raw, "date_created must be RFC-2822")
    st, _, lines = c.json("GET", T + "/v2/orders/1/products")
    st, _, addrs = c.json("GET", T + "/v2/orders/1/shipping_addresses")
    ship = {"order_address_id": addrs[0]["id"], "tracking_number": "1Z1",
            "items": [{"order_product_id": lines[0]["id"], "quantity": 3}]}
    st, _, raw = c.request("POST", T + "/v2/orders/1/shipments",
                           dict(ship, order_address_id=999))
    check(st == 422 and v2_err(raw, 422), "shipment with a foreign address 422")
    st, _, raw = c.request("POST", T + "/v2/orders/1/shipments",
                           dict(ship, items=[{"order_product_id": 999, "quantity": 1}]))
    check(st == 422 and v2_err(raw, 422), "shipment with a foreign line 422")
    st, _, got = c.json("POST", T + "/v2/orders/1/shipments", ship)
    check(st == 201 and got["items"][0]["quantity"] == 3, "shipment created")
    st, _, got = c.json("PUT", T + "/v2/orders/1", {"status_id": 2, "staff_notes": "restored"})
    check(st == 200 and got["status"] == "Shipped", "order PUT")
    st, _, raw = c.request("PUT", T + "/v2/orders/1", {"date_created": BILL["zip"]})
    check(st == 400, "date_created only on POST")
    st, _, _ = c.request("DELETE", T + "/v2/orders/1")
    st2, _, got = c.json("GET", T + "/v2/orders/1")
    check(st == 204 and got["is_deleted"] is True, "DELETE archives")
    line = dump(c, "tgt", "orders")[0]
    check(line["shipments"][0]["tracking_number"] == "1Z1" and len(line["products"]) == 2,
          "dump has the full order")
    st, _, got = c.json("PUT", T + "/v3/inventory/adjustments/absolute", {"items": [
        {"location_id": 1, "variant_id": vid, "quantity": 25}]})
    st2, _, p = c.json("GET", T + "/v3/catalog/products/%d" % prod["id"])
    check(st == 200 and p["data"]["inventory_level"] == 25, "absolute adjustment")
    st, _, err = c.json("PUT", T + "/v3/inventory/adjustments/absolute", {"items": [
        {"location_id": 9, "variant_id": vid, "quantity": 1}]})
    check(st == 422 and v3_err(err, 422), "unknown location 422")


# ---- content, marketing, themes --------------------------------------------------------------

def test_pages_blog_redirects_coupons(c):
    pages = T + "/v3/content/pages"
    st, _, got = c.json("POST", pages, {"name": "About", "type": "page", "body": "<p>x</p>"})
    check(st == 201 and got["data"]["id"] == 1 and got["data"]["url"] == "/about/", "page")
    st, _, err = c.json("POST", pages, {"name": "News", "type": "blog"})
    check(st == 422 and v3_err(err, 422) and "blog pages cannot be created" in err["title"],
          "blog page refused: %r" % err)
    st, _, got = c.json("POST", pages, [{"name": "Help", "type": "raw", "body": "b"},
                                        {"name": "Dup", "type": "page", "url": "/about/"}])
    check(st == 207 and got["meta"]["failed"] == 1 and "url" in got["errors"][0]["title"],
          "(channel, url) unique, 207: %r" % got)
    st, _, got = c.json("PUT", pages + "/1", {"name": "About us"})
    check(st == 200 and got["data"]["name"] == "About us", "page PUT")
    st, _, got = c.json("GET", pages + "?include=body&id:in=1")
    check(got["data"][0]["body"] == "<p>x</p>", "body kept")
    posts = T + "/v2/blog/posts"
    st, _, raw = c.request("POST", posts, {"title": "Hello"})
    check(st == 400 and v2_err(raw, 400) and b"body" in raw, "blog body required")
    st, _, raw = c.request("POST", posts, {"title": "Hello", "body": "<p>x</p>",
                                           "published_date": "2021-01-05T10:00:00+00:00"})
    check(st == 400 and b"RFC-2822" in raw, "ISO published_date refused")
    st, _, got = c.json("POST", posts, {"title": "Hello", "body": "<p>x</p>",
                                        "published_date": "Tue, 05 Jan 2021 10:00:00 +0000"})
    check(st == 201 and got["published_date"]["date"] == "2021-01-05 10:00:00.000000" and
          got["url"] == "/blog/hello/", "blog post created: %r" % got)
    st, _, raw = c.request("POST", posts, {"title": "Other", "body": "b", "url": "/blog/hello/"})
    check(st == 409 and v2_err(raw, 409), "blog url 409")
    st, _, got = c.json("PUT", T + "/v3/storefront/redirects", [
        {"from_path": "/old-about", "site_id": 1000, "to": {"type": "page", "entity_id": 1}},
        {"from_path": "/x", "site_id": 1000, "to": {"type": "url", "url": "https://e.org/"}}])
    check(st == 201 and [r["id"] for r in got["data"]] == [1, 2] and
          got["data"][0]["to_url"].endswith("/about/"), "redirects created: %r" % got)
    st, _, got = c.json("PUT", T + "/v3/storefront/redirects", [
        {"from_path": "/old-about", "site_id": 1000, "to": {"type": "url", "url": "/n"}}])
    check(st == 201 and got["data"][0]["id"] == 1, "upsert by (site_id, from_path)")
    coupon = {"name": "Ten", "code": "TEN", "type": "percentage_discount", "amount": 10,
              "applies_to": {"entity": "categories", "ids": [0]}}
    st, _, got = c.json("POST", T + "/v2/coupons", coupon)
    check(st == 201 and got["amount"] == "10.0000" and got["id"] == 1, "coupon created")
    st, _, raw = c.request("POST", T + "/v2/coupons", dict(coupon, name="Again"))
    check(st == 409 and v2_err(raw, 409), "coupon code 409")
    st, _, raw = c.request("POST", T + "/v2/coupons", {"code": "X"})
    check(st == 400 and v2_err(raw, 400), "coupon required fields")


def multipart(blob):
    boundary = uuid.uuid4().hex
    body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.zip\"\r\n"
             "Content-Type: application/zip\r\n\r\n" % boundary).encode() + blob +
            ("\r\n--%s--\r\n" % boundary).encode())
    return body, {"Content-Type": "multipart/form-data; boundary=" + boundary}


def theme_zip(name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", json.dumps({"name": name, "variations": [
            {"name": "Light", "id": "light", "meta": {"desc": "Light"}}]}))
    return buf.getvalue()


def upload(c, blob):
    body, heads = multipart(blob)
    heads["X-Auth-Token"] = "o7-sample-token"
    c.conn = c.conn or __import__("http.client").client.HTTPConnection("127.0.0.1", c.port)
    c.conn.request("POST", T + "/v3/themes", body=body, headers=heads)
    resp = c.conn.getresponse()
    return resp.status, json.loads(resp.read() or b"null")


def test_themes(c):
    st, got = upload(c, theme_zip("Restored"))
    check(st == 201 and "job_id" in got, "upload accepted: %d %r" % (st, got))
    job = got["job_id"]
    st, busy = upload(c, theme_zip("Second"))
    check(st == 409 and "in progress" in busy["title"], "one upload at a time")
    for _ in range(3):
        st, _, polled = c.json("GET", T + "/v3/themes/jobs/" + job)
    check(polled["data"]["status"] == "COMPLETED", "job completes")
    tid = polled["data"]["result"]["theme_id"]
    st, _, theme = c.json("GET", T + "/v3/themes/" + tid)
    check(theme["data"]["name"] == "Restored", "uploaded theme listed")
    var = theme["data"]["variations"][0]["uuid"]
    st, _, _ = c.request("POST", T + "/v3/themes/actions/activate",
                         {"variation_id": var, "which": "original"})
    st2, _, themes = c.json("GET", T + "/v3/themes")
    active = [t["uuid"] for t in themes["data"] if t["is_active"]]
    check(st == 204 and active == [tid], "activated: %r" % active)
    c.json("POST", "/_fake/config", {"theme_max_bytes": 100})
    try:
        st, err = upload(c, theme_zip("Big") + b"x" * 200)
    finally:
        c.json("POST", "/_fake/config", {"theme_max_bytes": 50 * 1024 * 1024})
    check(st == 413, "bundle over the limit gives 413")
    for i in range(19):
        c.json("POST", "/_fake/stores/tgt/mutate", {"op": "create", "type": "themes", "record": {
            "uuid": str(uuid.uuid4()), "name": "T%d" % i, "is_active": False,
            "is_private": True, "updated_at": "", "variations": []}})
    st, err = upload(c, theme_zip("One too many"))
    check(st == 409 and err["title"] == "You have reached your upload limit", "20 themes max")


# ---- snapshot, diff, write log, quota and faults ---------------------------------------------

def test_snapshot_diff_and_writes(c):
    st, _, snap = c.json("POST", "/_fake/stores/src/snapshot")
    check(st == 200 and isinstance(snap["snapshot"], int), "snapshot")
    c.json("PUT", SRC + "/v3/catalog/products/7", {"price": 1.25})
    c.json("POST", SRC + "/v3/catalog/brands", {"name": "Brand new"})
    c.request("DELETE", SRC + "/v3/customers?id:in=5")
    c.json("POST", SRC + "/v3/catalog/products/9/custom-fields", {"name": "n", "value": "v"})
    c.json("POST", SRC + "/v3/catalog/brands", {"name": "Alder"})  # a refused write
    st, _, diff = c.json("GET", "/_fake/stores/src/diff?snapshot=%d" % snap["snapshot"])
    check(st == 200 and diff["products"]["changed"] == {
        "7": ["calculated_price", "date_modified", "price"],
        "9": ["custom_fields"]}, "changed members: %r" % diff["products"])
    check(diff["brands"]["created"] == [26] and diff["customers"]["deleted"] == [5] and
          diff["orders"] == {"created": [], "deleted": [], "changed": {}}, "created/deleted")
    st, _, log = c.json("GET", "/_fake/stores/src/writes")
    got = [(w["method"], w["pattern"], w["status"], w["ids"]) for w in log["writes"]]
    check(got == [("PUT", "/v3/catalog/products/{id}", 200, {"products": [7]}),
                  ("POST", "/v3/catalog/brands", 200, {"brands": [26]}),
                  ("DELETE", "/v3/customers", 204, {"customers": [5]}),
                  ("POST", "/v3/catalog/products/{id}/custom-fields", 200,
                   {"products": [9]}),
                  ("POST", "/v3/catalog/brands", 409, {})], "write log %r" % got)
    c.json("POST", "/_fake/stats/reset")
    st, _, log = c.json("GET", "/_fake/stores/src/writes")
    check(log["writes"] == [], "stats reset clears the write log")
    st, _, diff = c.json("GET", "/_fake/stores/src/diff?snapshot=99")
    check(st == 404, "unknown snapshot 404")


def test_quota_faults_scopes(c):
    c.json("POST", "/_fake/stores/tgt/quota", {"quota": 2, "window_ms": 60000})
    try:
        codes = [c.json("POST", T + "/v3/catalog/brands", {"name": "Q%d" % i})[0]
                 for i in range(3)]
    finally:
        c.json("POST", "/_fake/stores/tgt/quota", {"quota": 0, "window_ms": 30000})
    check(codes == [200, 200, 429], "writes count against the quota: %r" % codes)
    c.json("POST", "/_fake/stores/tgt/faults", {"rules": [
        {"path": "^/v3/catalog/brands$", "method": "POST", "count": 1, "status": 500}]})
    st, _, _ = c.json("POST", T + "/v3/catalog/brands", {"name": "Faulted"})
    st2, _, _ = c.json("POST", T + "/v3/catalog/brands", {"name": "Faulted"})
    check(st == 500 and st2 == 200, "fault rules apply to writes: %d %d" % (st, st2))
    c.json("POST", "/_fake/stores/tgt/tokens", {"token": "ro", "scopes": [
        "store_v2_products_read_only", "store_themes_read_only"]})
    st, _, _ = c.json("POST", T + "/v3/catalog/brands", {"name": "RO"}, token="ro")
    check(st == 403, "read-only scope cannot write")
    st, _, _ = c.json("POST", T + "/v3/themes/actions/activate", {"variation_id": "x"},
                      token="ro")
    check(st == 403, "theme writes need store_themes_manage")


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
         ("brands, trees and categories", test_brands_and_categories),
         ("customers", test_customers),
         ("orders, shipments and stock", test_orders),
         ("pages, blog, redirects, coupons", test_pages_blog_redirects_coupons),
         ("themes upload and activate", test_themes),
         ("snapshot, diff and write log", test_snapshot_diff_and_writes),
         ("quota, faults and scopes", test_quota_faults_scopes)]


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

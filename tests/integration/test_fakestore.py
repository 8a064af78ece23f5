#!/usr/bin/env python3
"""Self-test of the fake BigCommerce store (tests/fakestore): paging, 204s, cursors, rate
limits, faults, dumps, themes and the bench preset, against a server on a free loopback port.

Prints "N passed, N failed" and exits non-zero when a check failed.
"""

import gzip
import http.client
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("O7_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
FAKESTORE = os.path.join(SOURCE, "tests", "fakestore", "fakestore.py")
TOKEN = "o7-sample-token"
RATE_HEADERS = ["x-rate-limit-time-window-ms", "x-rate-limit-time-reset-ms",
                "x-rate-limit-requests-quota", "x-rate-limit-requests-left"]


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


class Client:
    """One keep-alive connection; reconnects after the server closed it."""

    def __init__(self, port, timeout=15):
        self.port = port
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None, token=TOKEN):
        heads = dict(headers or {})
        if token:
            heads["X-Auth-Token"] = token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            heads["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=data, headers=heads)
            resp = self.conn.getresponse()
            raw = resp.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw

    def json(self, method, path, body=None, **kw):
        status, heads, raw = self.request(method, path, body, **kw)
        return status, heads, (json.loads(raw) if raw else None)


S = "/stores/o7sample"


def walk_v3(c, path, limit=250):
    items, page = [], 1
    while True:
        sep = "&" if "?" in path else "?"
        st, _, body = c.json("GET", "%s%spage=%d&limit=%d" % (path, sep, page, limit))
        check(st == 200, "%s page %d status %d" % (path, page, st))
        items += body["data"]
        pag = body["meta"]["pagination"]
        if "next" not in pag["links"]:
            check(pag["current_page"] >= pag["total_pages"], "next missing before last page")
            return items, pag
        page += 1
        check(page < 1000, "%s: paging does not end" % path)


def walk_v2(c, path, limit=250):
    items, page = [], 1
    while True:
        sep = "&" if "?" in path else "?"
        st, _, raw = c.request("GET", "%s%spage=%d&limit=%d" % (path, sep, page, limit))
        if st == 204:
            check(raw == b"", "204 with a body")
            return items
        check(st == 200, "%s status %d" % (path, st))
        got = json.loads(raw)
        check(got != [], "%s: an empty page must be a 204, not 200 []" % path)
        items += got
        page += 1
        check(page < 1000, "%s: paging does not end" % path)


# ---- tests --------------------------------------------------------------------------------

def test_auth_and_errors(c):
    st, h, body = c.json("GET", S + "/v3/catalog/products", token=None)
    check(st == 401 and body["status"] == 401 and "title" in body and "type" in body and
          body["errors"] == {}, "401 v3 shape: %r" % body)
    st, _, _ = c.json("GET", S + "/v3/catalog/products", token="wrong")
    check(st == 401, "unknown token gives 401")
    st, _, body = c.json("GET", S + "/v3/catalog/products", token="orders-only")
    check(st == 403 and "scope" in body["title"], "403 names a missing scope: %r" % body)
    st, _, _ = c.request("GET", S + "/v2/orders/count", token="orders-only")
    check(st == 200, "read-only orders scope reads orders")
    st, h, body = c.json("GET", "/stores/nosuchstore/v3/catalog/products")
    check(st == 404 and body["status"] == 404, "unknown store 404")
    check(all(k in h for k in RATE_HEADERS), "unknown store still has rate headers")
    st, _, body = c.json("GET", S + "/v3/catalog/products?limit=251")
    check(st == 413 and body["status"] == 413 and "title" in body, "limit 251 gives 413")
    st, _, raw = c.request("GET", S + "/v2/orders?limit=251")
    check(st == 413 and json.loads(raw)[0]["status"] == 413, "v2 limit 251 gives 413 array")
    st, _, body = c.json("GET", S + "/v3/catalog/products/999999")
    check(st == 404 and body["status"] == 404, "missing product 404")
    st, _, body = c.json("DELETE", S + "/v3/catalog/brands")
    check(st == 405, "unsupported method 405, got %d" % st)


def test_rate_headers_everywhere(c):
    for path in ["/v3/catalog/products?limit=1", "/v2/orders?page=99", "/v2/time",
                 "/v3/nothing-here"]:
        st, h, _ = c.request("GET", S + path)
        check(all(k in h for k in RATE_HEADERS), "rate headers on %s (%d)" % (path, st))
    st, h, _ = c.request("GET", S + "/v2/time", token=None)
    check(st == 401 and all(k in h for k in RATE_HEADERS), "rate headers on 401")


def test_products_paging(c):
    st, _, counts = c.json("GET", "/_fake/stores/o7sample/counts")
    items, pag = walk_v3(c, S + "/v3/catalog/products")
    ids = [p["id"] for p in items]
    check(len(ids) == counts["products"] == pag["total"], "walk %d vs %d" % (len(ids),
                                                                           counts["products"]))
    check(ids == sorted(set(ids)), "product ids ascending and unique")
    check(250 <= len(ids) <= 400, "about 300 sample products")
    check(pag["links"]["current"].startswith("?page=%d&limit=250" % pag["current_page"]),
          "relative link text")
    check("variants" not in items[0], "no include members without include")
    st, _, body = c.json("GET", S + "/v3/catalog/products?limit=50&include=options,variants")
    p = body["meta"]["pagination"]
    check(p["per_page"] == 10 and len(body["data"]) == 10 and
          p["total_pages"] == math.ceil(p["total"] / 10.0), "options include caps at 10")
    check("options" in body["data"][0] and "images" not in body["data"][0], "include subset")
    st, _, body = c.json("GET", S + "/v3/catalog/products?id:greater=290&limit=250")
    check([x["id"] for x in body["data"]] == [i for i in ids if i > 290], "id:greater")
    st, _, body = c.json("GET", S + "/v3/catalog/products?id:in=3,5,999999")
    check([x["id"] for x in body["data"]] == [3, 5], "id:in")
    st, _, body = c.json("GET", S + "/v3/catalog/products?id:min=10&id:max=12&id:less=12")
    check([x["id"] for x in body["data"]] == [10, 11], "id:min/max/less")
    st, _, body = c.json("GET", S + "/v3/catalog/products?sort=id&direction=desc&limit=3")
    check([x["id"] for x in body["data"]] == sorted(ids)[-3:][::-1], "sort desc")
    st, _, body = c.json("GET", S + "/v3/catalog/products?sku=SKU-00007")
    check([x["id"] for x in body["data"]] == [7], "sku filter")
    st, _, body = c.json("GET", S + "/v3/catalog/products?made_up_filter=1&limit=1")
    check(body["meta"]["pagination"]["total"] == len(ids), "unknown filter ignored")
    st, _, one = c.json("GET", S + "/v3/catalog/products/7?include=variants,primary_image")
    check(st == 200 and one["meta"] == {} and one["data"]["id"] == 7, "single product")
    check(one["data"]["primary_image"]["is_thumbnail"], "primary_image")
    st, _, sub = c.json("GET", S + "/v3/catalog/products/7/variants")
    check(sub["data"] == one["data"]["variants"], "variants sub-resource matches include")
    for name in ["images", "custom-fields", "bulk-pricing-rules", "options", "modifiers",
                 "videos"]:
        st, _, sub = c.json("GET", S + "/v3/catalog/products/7/" + name)
        check(st == 200 and "pagination" in sub["meta"], "sub-resource %s" % name)


def test_orders(c):
    orders = walk_v2(c, S + "/v2/orders")
    st, _, count = c.json("GET", S + "/v2/orders/count")
    check(len(orders) == count["count"] == 500, "500 orders, got %d" % len(orders))
    check([o["id"] for o in orders] == sorted(o["id"] for o in orders), "order ids ascending")
    o = orders[0]
    check(o["products"]["resource"] == "/orders/%d/products" % o["id"] and
          o["products"]["url"].endswith("/v2/orders/%d/products" % o["id"]), "link object")
    check(isinstance(o["subtotal_ex_tax"], str) and "." in o["subtotal_ex_tax"], "money str")
    check(o["date_created"].endswith("+0000"), "RFC-2822 date")
    st, _, raw = c.request("GET", S + "/v2/orders?page=3&limit=250")
    check(st == 204 and raw == b"", "past the last page gives 204")
    st, _, body = c.json("GET", S + "/v2/orders?sort=id:desc&limit=1")
    check(body[0]["id"] == orders[-1]["id"], "sort=id:desc")
    st, _, body = c.json("GET", S + "/v2/orders?min_id=110&max_id=112")
    check([x["id"] for x in body] == [110, 111, 112], "min_id/max_id")
    unshipped = [x for x in orders if x["items_shipped"] == 0]
    shipped = [x for x in orders if x["items_shipped"] > 0]
    check(unshipped and len(shipped) > len(unshipped), "most orders shipped")
    st, _, raw = c.request("GET", S + "/v2/orders/%d/shipments" % unshipped[0]["id"])
    check(st == 204 and raw == b"", "no shipments gives 204")
    no_coupon = [x for x in orders if x["coupon_discount"] == "0.0000"][0]
    st, _, _ = c.request("GET", S + "/v2/orders/%d/coupons" % no_coupon["id"])
    check(st == 204, "no coupons gives 204")
    for order in shipped[:5]:
        oid = order["id"]
        st, _, lines = c.json("GET", S + "/v2/orders/%d/products" % oid)
        st, _, addrs = c.json("GET", S + "/v2/orders/%d/shipping_addresses" % oid)
        st, _, ships = c.json("GET", S + "/v2/orders/%d/shipments" % oid)
        check(len(addrs) == order["shipping_address_count"], "shipping_address_count")
        check(sum(li["quantity"] for li in lines) == order["items_total"], "items_total")
        for s in ships:
            check(s["order_address_id"] in [a["id"] for a in addrs], "shipment address")
            for it in s["items"]:
                check(it["order_product_id"] in [li["id"] for li in lines], "shipment item")
        li = lines[0]
        st, _, prod = c.json("GET", S + "/v3/catalog/products/%d?include=variants" %
                             li["product_id"])
        check(st == 200 and li["variant_id"] in [v["id"] for v in prod["data"]["variants"]],
              "order product references an existing variant")
    st, _, one = c.json("GET", S + "/v2/orders/%d" % orders[3]["id"])
    check(one == orders[3], "single order equals list item")


def test_customers_cursor(c):
    seen, after, pages = [], None, 0
    while True:
        q = "?limit=120&include=storecredit" + ("&after=" + after if after else "")
        st, _, body = c.json("GET", S + "/v3/customers" + q)
        check(st == 200 and "cursor_pagination" in body["meta"] and
              "pagination" in body["meta"], "both paginations on cursor requests")
        seen += [x["id"] for x in body["data"]]
        cp = body["meta"]["cursor_pagination"]
        pages += 1
        check(pages < 10, "cursor walk ends")
        if "next" not in cp["links"]:
            break
        after = cp["end_cursor"]
    check(len(seen) == 400 and seen == sorted(set(seen)), "cursor walk saw %d" % len(seen))
    st, _, body = c.json("GET", S + "/v3/customers?limit=120&after=" + cp["end_cursor"])
    cp2 = body["meta"]["cursor_pagination"]
    check(body["data"] == [] and cp2["end_cursor"] == "" and cp2["start_cursor"] == "",
          "empty end after the last cursor")
    st, _, body = c.json("GET", S + "/v3/customers?limit=5&include=storecredit,attributes")
    first = body["data"][0]
    check("store_credit_amounts" in first and "amount" in first["store_credit_amounts"][0] and
          "attributes" in first and "addresses" not in first, "customer includes")
    cur = body["meta"]["cursor_pagination"]["end_cursor"]
    st, _, nxt = c.json("GET", S + "/v3/customers?limit=5&after=" + cur)
    back = nxt["meta"]["cursor_pagination"]["start_cursor"]
    st, _, prev = c.json("GET", S + "/v3/customers?limit=5&before=" + back)
    check([x["id"] for x in prev["data"]] == [x["id"] for x in body["data"]], "before cursor")
    st, _, body = c.json("GET", S + "/v3/customers?page=2&limit=5")
    check("cursor_pagination" not in body["meta"] and body["data"][0]["id"] == 6, "page=2")
    st, _, body = c.json("GET", S + "/v3/customers?id:in=4,9")
    check([x["id"] for x in body["data"]] == [4, 9], "customers id:in")
    st, _, _ = c.request("GET", S + "/v3/customers?after=%%%%bad")
    check(st == 400, "bad cursor gives 400")


def test_other_endpoints(c):
    brands, _ = walk_v3(c, S + "/v3/catalog/brands")
    check(len(brands) == 25, "25 brands")
    st, _, trees = c.json("GET", S + "/v3/catalog/trees")
    check(len(trees["data"]) == 2 and trees["data"][0]["channels"] == [1], "2 trees")
    cats, pag = walk_v3(c, S + "/v3/catalog/trees/categories")
    check(35 <= len(cats) <= 50 and {x["tree_id"] for x in cats} == {1, 2}, "categories")
    check(set(cats[0]) >= {"category_id", "parent_id", "tree_id", "url", "views"}, "cat fields")
    st, _, body = c.json("GET", S + "/v3/catalog/trees/categories?tree_id:in=2")
    check(body["meta"]["pagination"]["total"] == 5, "tree_id:in filter")
    st, _, nested = c.json("GET", S + "/v3/catalog/trees/1/categories")

    def depth(nodes):
        return max([1 + depth(n["children"]) for n in nodes] or [0])
    check(st == 200 and depth(nested["data"]) == 3, "nested tree depth 3")
    st, _, pages = c.json("GET", S + "/v3/content/pages?limit=250")
    check(len(pages["data"]) == 30 and "body" not in pages["data"][0], "pages without body")
    check({p["type"] for p in pages["data"]} == {"page", "raw", "contact_form", "link", "blog"},
          "every page type")
    st, _, pages = c.json("GET", S + "/v3/content/pages?limit=250&include=body")
    check("body" in pages["data"][0], "include=body")
    posts = walk_v2(c, S + "/v2/blog/posts", limit=15)
    st, _, n = c.json("GET", S + "/v2/blog/posts/count")
    check(len(posts) == n["count"] == 40, "blog posts")
    check(set(posts[0]["published_date"]) == {"date", "timezone_type", "timezone"}, "pubdate")
    st, _, red = c.json("GET", S + "/v3/storefront/redirects?limit=250&include=to_url")
    check(len(red["data"]) == 60 and "to_url" in red["data"][0], "redirects")
    st, _, red = c.json("GET", S + "/v3/storefront/redirects?limit=1")
    check("to_url" not in red["data"][0], "to_url only with include")
    coupons = walk_v2(c, S + "/v2/coupons", limit=7)
    st, _, n = c.json("GET", S + "/v2/coupons/count")
    check(len(coupons) == n["count"] == 20, "coupons")
    st, _, info = c.json("GET", S + "/v2/store")
    check(info["id"] == "o7sample" and "plan_name" in info, "store info")
    st, _, t = c.json("GET", S + "/v2/time")
    check(abs(t["time"] - time.time()) < 5, "time")


def test_gzip(c):
    path = S + "/v3/catalog/products?limit=20"
    st, h, plain = c.request("GET", path)
    st, h2, packed = c.request("GET", path, headers={"Accept-Encoding": "gzip"})
    check(h2.get("content-encoding") == "gzip" and gzip.decompress(packed) == plain, "gzip")


def list_member_bytes(c, path):
    """The raw bytes of the single record in a v3 list body."""
    st, _, raw = c.request("GET", path)
    check(st == 200 and raw.startswith(b'{"data":['), "list body")
    return raw[len(b'{"data":['):raw.rindex(b'],"meta":')]


def dump_lines(c, store, rtype):
    st, h, raw = c.request("GET", "/_fake/stores/%s/dump?type=%s" % (store, rtype))
    check(st == 200, "dump %s status %d" % (rtype, st))
    return raw.split(b"\n")[:-1]


def test_dump_and_traps(c):
    st, _, counts = c.json("GET", "/_fake/stores/o7sample/counts")
    lines = {}
    for rtype in counts:
        lines[rtype] = dump_lines(c, "o7sample", rtype)
        check(len(lines[rtype]) == counts[rtype], "dump %s lines %d vs %d" % (
            rtype, len(lines[rtype]), counts[rtype]))
        for line in lines[rtype]:
            json.loads(line)
    inc = "variants,images,custom_fields,bulk_pricing_rules,options,modifiers,videos"
    by_id = {json.loads(x)["id"]: x for x in lines["products"]}
    for pid in (3, 5, 42):
        got = list_member_bytes(c, S + "/v3/catalog/products?id:in=%d&include=%s" % (pid, inc))
        check(got == by_id[pid], "dump bytes equal list bytes for product %d" % pid)
    trap = by_id[3]
    for token in [b'"price":19.989999999999998', b'"view_count":9007199254740993',
                  b'"\\/cafe-creme-deluxe\\/"', b'\\u0001', b'"line\\u2028sep"',
                  "\U0001F370".encode(), "\u2028".encode(), b'"related_products":[]',
                  b'"config":{}']:
        check(token in trap, "trap token %r in product 3" % token)
    trap2 = by_id[5]
    for token in [b'"width":1.0e2', b'"fixed_cost_shipping_price":-0.0', b'"depth":2.50',
                  b'"reviews_rating_sum":18446744073709551615']:
        check(token in trap2, "trap token %r in product 5" % token)
    cust = {json.loads(x)["id"]: x for x in lines["customers"]}
    got = list_member_bytes(c, S + "/v3/customers?id:in=3&include=addresses,storecredit,"
                            "attributes,formfields")
    check(got == cust[3], "customer dump bytes equal list bytes")
    order = json.loads(lines["orders"][0])
    check(isinstance(order["products"], list) and isinstance(order["shipments"], list) and
          isinstance(order["coupons"], list), "order dump embeds sub-resources")
    page = json.loads(lines["pages"][0])
    red = json.loads(lines["redirects"][0])
    check("body" in page and "to_url" in red, "pages/redirects dump shapes")


def test_rate_limit(c):
    st, _, _ = c.json("POST", "/_fake/stores", {"hash": "rl", "preset": "empty", "seed": 1,
                                                "quota": 3, "window_ms": 1500})
    check(st == 201, "create store rl: %d" % st)
    lefts = []
    for _ in range(3):
        st, h, _ = c.request("GET", "/stores/rl/v2/time")
        check(st == 200, "within quota")
        lefts.append(int(h["x-rate-limit-requests-left"]))
    check(lefts == [2, 1, 0], "requests-left counts down: %r" % lefts)
    st, h, body = c.json("GET", "/stores/rl/v2/time")
    reset = int(h["x-rate-limit-time-reset-ms"])
    check(st == 429 and h["x-rate-limit-requests-left"] == "0" and
          int(h["x-retry-after"]) == math.ceil(reset / 1000.0), "429 with retry-after")
    check(body["status"] == 429, "429 v3 body")
    time.sleep(reset / 1000.0 + 0.05)
    st, h, _ = c.request("GET", "/stores/rl/v2/time")
    check(st == 200 and h["x-rate-limit-requests-left"] == "2", "window refilled")
    st, _, _ = c.json("POST", "/_fake/stores/rl/quota", {"quota": 150, "window_ms": 30000})
    st, h, _ = c.request("GET", "/stores/rl/v2/time")
    check(h["x-rate-limit-requests-quota"] == "150" and
          h["x-rate-limit-time-window-ms"] == "30000", "quota changed at run time")
    st, _, stats = c.json("GET", "/_fake/stats")
    check(stats["stores"]["rl"]["served_429"] == 1, "stats count 429s")
    st, _, _ = c.request("DELETE", "/_fake/stores/rl")
    check(st == 204, "delete store")


def faults(c, rules, **extra):
    body = {"rules": rules}
    body.update(extra)
    st, _, _ = c.json("POST", "/_fake/stores/o7sample/faults", body)
    check(st == 200, "set faults")


def test_faults(c):
    path = S + "/v3/catalog/brands"
    faults(c, [{"path": "^/v3/catalog/brands$", "after": 1, "count": 2, "status": 503}])
    got = [c.request("GET", path)[0] for _ in range(4)]
    check(got == [200, 503, 503, 200], "after/count: %r" % got)
    st, _, stats = c.json("GET", "/_fake/stats")
    check(stats["stores"]["o7sample"]["fault_5xx"] >= 2, "fault 5xx counted")
    faults(c, [{"path": "^/v3/catalog/brands$", "action": "reset"}])
    try:
        c.request("GET", path)
        check(False, "reset fault should drop the connection")
    except (http.client.HTTPException, ConnectionError, OSError):
        pass
    check(c.request("GET", path)[0] == 200, "served again after reset")
    faults(c, [{"path": "^/v3/catalog/brands$", "action": "truncate"}])
    try:
        c.request("GET", path)
        check(False, "truncate fault should give a short body")
    except http.client.IncompleteRead:
        pass
    faults(c, [{"path": "^/v3/catalog/brands$", "action": "delay", "delay_ms": 300}])
    t0 = time.monotonic()
    st = c.request("GET", path)[0]
    check(st == 200 and time.monotonic() - t0 >= 0.3, "delay fault")
    faults(c, [{"path": "brands", "status": 429, "reset_ms": 2500},
               {"path": "brands", "status": 429, "no_headers": True, "after": 1}])
    st, h, _ = c.request("GET", path)
    check(st == 429 and h.get("x-retry-after") == "3" and
          h.get("x-rate-limit-requests-left") == "0" and
          h.get("x-rate-limit-time-reset-ms") == "2500", "429 fault with headers")
    st, h, _ = c.request("GET", path)
    check(st == 429 and "x-retry-after" not in h and "x-rate-limit-requests-left" not in h,
          "429 fault without headers")
    faults(c, [{"path": "brands", "method": "POST", "status": 500}])
    check(c.request("GET", path)[0] == 200, "method must match")
    faults(c, [{"path": "^/v3/catalog/brands$", "action": "mutate",
                "mutation": {"op": "delete", "type": "brands", "id": 1}}])
    st, _, body = c.json("GET", path + "?limit=250")
    check(1 not in [b["id"] for b in body["data"]], "mutate before serving")
    faults(c, [{"path": "^/v3/catalog/brands$", "status": 502, "count": -1,
                "body": "<html>bad gateway</html>", "headers": {"X-Test": "yes"}}])
    for _ in range(3):
        st, h, raw = c.request("GET", path)
        check(st == 502 and raw == b"<html>bad gateway</html>" and h.get("x-test") == "yes",
              "forever rule with raw body")
    st, _, _ = c.request("DELETE", "/_fake/stores/o7sample/faults")
    faults(c, [], latency_ms=150)
    t0 = time.monotonic()
    c.request("GET", path)
    check(time.monotonic() - t0 >= 0.15, "store latency")
    st, _, counts = c.json("POST", "/_fake/stores/o7sample/reset")
    st, _, body = c.json("GET", path + "?limit=250")
    check(len(body["data"]) == 25 and counts["brands"] == 25, "reset restores records")
    t0 = time.monotonic()
    c.request("GET", path)
    check(time.monotonic() - t0 < 0.15, "reset clears latency")


def test_tree_concurrency(c, port):
    faults(c, [{"path": "^/v3/catalog/trees/1/categories$", "action": "delay",
                "delay_ms": 600}])
    results = []

    def one():
        results.append(Client(port).request("GET", S + "/v3/catalog/trees/1/categories")[0])
    first = threading.Thread(target=one)
    first.start()
    time.sleep(0.2)
    one()
    first.join()
    check(sorted(results) == [200, 429], "one concurrent nested-tree request: %r" % results)
    c.request("DELETE", "/_fake/stores/o7sample/faults")
    check(c.request("GET", S + "/v3/catalog/trees/1/categories")[0] == 200, "gate released")


def test_themes(c):
    st, _, themes = c.json("GET", S + "/v3/themes")
    check(len(themes["data"]) == 2 and [t["is_active"] for t in themes["data"]].count(True) == 1,
          "2 themes, one active")
    uuid = themes["data"][0]["uuid"]
    blobs = []
    for ttl_check in (False, True):
        if ttl_check:
            c.json("POST", "/_fake/config", {"signed_url_ttl_ms": 300})
        st, _, job = c.json("POST", S + "/v3/themes/%s/actions/download" % uuid,
                            {"which": "last_activated"})
        check(st == 200 and "job_id" in job, "download job")
        statuses = []
        for _ in range(3):
            st, _, polled = c.json("GET", S + "/v3/themes/jobs/" + job["job_id"])
            statuses.append(polled["data"]["status"])
        check(statuses == ["QUEUED", "WORKING", "COMPLETED"], "job states %r" % statuses)
        url = polled["data"]["result"]["download_url"]
        check(url.startswith("http://127.0.0.1:") and "/_signed/" in url, "signed url")
        path = url.split(str(c.port), 1)[1]
        st, h, blob = c.request("GET", path, token=None)
        check(st == 200 and h["content-type"] == "application/zip", "download without token")
        names = zipfile.ZipFile(io.BytesIO(blob)).namelist()
        check("config.json" in names and any(n.startswith("templates/") for n in names),
              "theme zip content")
        blobs.append(blob)
        if ttl_check:
            time.sleep(0.4)
            check(c.request("GET", path, token=None)[0] == 403, "expired link gives 403")
    check(blobs[0] == blobs[1], "theme zip is deterministic")
    c.json("POST", "/_fake/config", {"signed_url_ttl_ms": 60000})


def test_bench(c):
    t0 = time.monotonic()
    st, _, made = c.json("POST", "/_fake/stores", {"hash": "bench", "preset": "bench:100000",
                                                   "seed": 7})
    check(st == 201 and made["counts"]["products"] == 100000, "bench store")
    print("  bench:100000 store created in %.2f s" % (time.monotonic() - t0))
    inc = "variants,images,custom_fields,bulk_pricing_rules,options,modifiers,videos"
    path = "/stores/bench/v3/catalog/products?limit=10&page=5000&include=" + inc
    c.request("GET", path)
    best = 1e9
    for _ in range(5):
        t0 = time.monotonic()
        st, _, raw = c.request("GET", path)
        best = min(best, time.monotonic() - t0)
    body = json.loads(raw)
    check(st == 200 and len(body["data"]) == 10 and body["data"][0]["id"] == 49991,
          "bench page")
    v = body["data"][0]["variants"]
    check(2 <= len(v) <= 4 and len(body["data"][0]["images"]) == 2 and
          len(body["data"][0]["options"]) == 1, "bench product shape")
    print("  bench page of 10 with every include: %.1f ms round trip" % (best * 1000))
    check(best < 0.1, "bench page renders fast (%.1f ms)" % (best * 1000))
    st, _, again = c.json("GET", "/stores/bench/v3/catalog/products/49991?include=variants")
    check(again["data"]["variants"] == v, "bench product is stable")
    st, _, last = c.json("GET", "/stores/bench/v3/catalog/products?id:greater=99995")
    check([x["id"] for x in last["data"]] == list(range(99996, 100001)), "bench keyset")
    c.json("POST", "/_fake/stores/bench/mutate", {"op": "update", "type": "products",
                                                  "id": 7, "record": {"name": "Renamed"}})
    c.json("POST", "/_fake/stores/bench/mutate", {"op": "delete", "type": "products", "id": 8})
    st, _, body = c.json("GET", "/stores/bench/v3/catalog/products?id:in=7,8,9")
    check([(x["id"], x["name"]) for x in body["data"]][:1] == [(7, "Renamed")] and
          [x["id"] for x in body["data"]] == [7, 9], "bench overlay")
    st, _, body = c.json("GET", "/stores/bench/v3/catalog/products?sku=BP-0012345")
    check([x["id"] for x in body["data"]] == [12345], "bench sku filter")
    st, _, _ = c.request("GET", "/stores/bench/v2/orders")
    check(st == 200, "bench orders")
    c.request("DELETE", "/_fake/stores/bench")


def test_bench_customers(c):
    """bench:N/C: C customers derived on demand, found by email without the rest, writable."""
    st, _, made = c.json("POST", "/_fake/stores", {"hash": "benchc", "preset": "bench:20/30000"})
    check(st == 201 and made["counts"]["customers"] == 30000 and
          made["counts"]["products"] == 20, "bench:20/30000 store %r" % made.get("counts"))
    b = "/stores/benchc/v3/customers"
    st, _, page = c.json("GET", b + "?limit=250&include=addresses,attributes")
    ids = [x["id"] for x in page["data"]]
    check(ids == list(range(1, 251)) and page["meta"]["pagination"]["total"] == 30000,
          "bench customers page %r" % ids[:3])
    st, _, one = c.json("GET", b + "?email:in=BENCH.customer.0029999@example.com&include=addresses")
    check([x["id"] for x in one["data"]] == [29999], "bench customer by email")
    st, _, again = c.json("GET", b + "?id:in=29999&include=addresses")
    check(again["data"] == one["data"], "bench customer is stable")
    st, _, _ = c.json("POST", b, [{"email": "bench.customer.0000007@example.com",
                                   "first_name": "A", "last_name": "B"}])
    check(st == 422, "a bench customer's email is taken (%d)" % st)
    st, _, new = c.json("POST", b, [{"email": "fresh@example.com", "first_name": "A",
                                     "last_name": "B"}])
    check(st == 200 and new["data"][0]["id"] == 30001, "create after the bench customers")
    c.request("DELETE", "/_fake/stores/benchc")


def test_mutate_and_stats(c):
    st, _, made = c.json("POST", "/_fake/stores/o7sample/mutate", {
        "op": "create", "type": "customers",
        "record": {"email": "new@example.com", "first_name": "N", "last_name": "W"}})
    check(st == 200 and made["id"] == 401, "create gives the next id: %r" % made)
    c.json("POST", "/_fake/stores/o7sample/mutate", {"op": "update", "type": "customers",
                                                     "id": 401, "record": {"notes": "x"}})
    st, _, body = c.json("GET", S + "/v3/customers?id:in=401")
    check(body["data"][0]["notes"] == "x" and body["data"][0]["email"] == "new@example.com",
          "update merges")
    st, _, err = c.json("POST", "/_fake/stores/o7sample/mutate",
                        {"op": "delete", "type": "customers", "id": 999})
    check(st == 404, "delete of a missing record")
    c.json("POST", "/_fake/stores/o7sample/reset")
    c.json("POST", "/_fake/stats/reset")
    c.json("POST", "/_fake/stats/record", {"on": True})
    c.request("GET", S + "/v3/catalog/products/12/images?limit=5")
    c.request("GET", S + "/v2/orders/101/products")
    c.json("POST", "/_fake/stats/record", {"on": False})
    st, _, stats = c.json("GET", "/_fake/stats")
    mine = stats["stores"]["o7sample"]
    check(mine["requests"] == 2 and mine["urls"] == [
        S + "/v3/catalog/products/12/images?limit=5", S + "/v2/orders/101/products"],
        "recorded urls %r" % mine["urls"])
    check(mine["by_pattern"].get("GET /v3/catalog/products/{id}/images") == 1 and
          mine["by_pattern"].get("GET /v2/orders/{id}/products") == 1, "patterns")
    check(mine["max_concurrent"] >= 1, "max concurrency tracked")


def test_throughput(port):
    counts = [0, 0]
    stop = time.monotonic() + 2.0

    def worker(n):
        c = Client(port)
        while time.monotonic() < stop:
            st, _, raw = c.request("GET", S + "/v3/customers?page=%d&limit=250" % (
                1 + counts[n] % 2))
            if st != 200:
                return
            counts[n] += 1
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rate = sum(counts) / (time.monotonic() - t0)
    print("  throughput: %.0f pages/s (2 keep-alive clients, 250 customers per page)" % rate)
    check(rate >= 40, "throughput %.0f pages/s" % rate)


def test_refuses_non_loopback():
    proc = subprocess.run([sys.executable, FAKESTORE, "--port", "0", "--host", "0.0.0.0"],
                          capture_output=True, timeout=20)
    check(proc.returncode == 2 and b"loopback" in proc.stderr, "non-loopback bind refused")


def start_server():
    proc = subprocess.Popen([sys.executable, FAKESTORE, "--port", "0",
                             "--token", "o7sample=orders-only:store_v2_orders_read_only"],
                            stdout=subprocess.PIPE, stderr=sys.stderr)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on http://127.0.0.1:"):
        proc.kill()
        raise SystemExit("fakestore did not start: %r" % line)
    return proc, int(line.rsplit(":", 1)[1])


def main():
    deadline = time.monotonic() + 55
    proc, port = start_server()
    c = Client(port)
    tests = [("auth and errors", lambda: test_auth_and_errors(c)),
             ("rate headers everywhere", lambda: test_rate_headers_everywhere(c)),
             ("products paging", lambda: test_products_paging(c)),
             ("orders", lambda: test_orders(c)),
             ("customers cursor", lambda: test_customers_cursor(c)),
             ("other endpoints", lambda: test_other_endpoints(c)),
             ("gzip", lambda: test_gzip(c)),
             ("dump and traps", lambda: test_dump_and_traps(c)),
             ("rate limit", lambda: test_rate_limit(c)),
             ("faults", lambda: test_faults(c)),
             ("tree concurrency", lambda: test_tree_concurrency(c, port)),
             ("themes", lambda: test_themes(c)),
             ("bench preset", lambda: test_bench(c)),
             ("bench preset with customers", lambda: test_bench_customers(c)),
             ("mutate and stats", lambda: test_mutate_and_stats(c)),
             ("throughput", lambda: test_throughput(port)),
             ("refuses non-loopback", test_refuses_non_loopback)]
    passed = failed = 0
    try:
        for name, fn in tests:
            if time.monotonic() > deadline:
                print("FAIL %s: out of time" % name)
                failed += 1
                continue
            try:
                fn()
                print("ok   %s" % name)
                passed += 1
            except Exception as exc:  # a crash in one test must not hide the others
                print("FAIL %s: %s: %s" % (name, type(exc).__name__, exc))
                failed += 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
    if code == 0:
        print("ok   clean shutdown on SIGTERM")
        passed += 1
    else:
        print("FAIL clean shutdown on SIGTERM: exit %r" % code)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

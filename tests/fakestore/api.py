"""The BigCommerce REST endpoints of the fake store: routing, paging, filters and rendering.

Paths here are relative to /stores/{hash}. Every handler gets (store, req, match) and returns a
Resp; an ApiError carries an error Resp out of helpers.
"""

import base64
import binascii
import bisect
import json
import math
import re
import secrets
import time
from urllib.parse import urlencode

from jsonraw import dumpb

V3_ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
PRODUCT_INCLUDES = {"variants": "variants", "images": "images", "custom_fields": "custom_fields",
                    "bulk_pricing_rules": "bulk_pricing_rules", "options": "options",
                    "modifiers": "modifiers", "videos": "videos"}
PRODUCT_SUBS = {"variants": "variants", "images": "images", "custom-fields": "custom_fields",
                "bulk-pricing-rules": "bulk_pricing_rules", "options": "options",
                "modifiers": "modifiers", "videos": "videos"}
CUSTOMER_INCLUDES = {"addresses": "addresses", "storecredit": "store_credit_amounts",
                     "attributes": "attributes", "formfields": "form_fields"}
ORDER_LINKS = ("products", "shipping_addresses", "coupons")
ORDER_SUBS = ("products", "shipping_addresses", "coupons", "shipments")
THEME_WHICH = ("original", "last_activated", "last_created")


class Resp:
    """One HTTP answer. body is bytes; chunks (an iterator of bytes) streams instead."""

    def __init__(self, status, body=b"", ctype="application/json", headers=None, chunks=None):
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = list(headers or [])
        self.chunks = chunks


class ApiError(Exception):
    def __init__(self, resp):
        Exception.__init__(self, resp.status)
        self.resp = resp


class Req:
    def __init__(self, method, path, query, pairs, body, headers):
        self.method = method
        self.path = path
        self.query = query
        self.pairs = pairs
        self.body = body
        self.headers = headers


def json_resp(status, value, headers=None):
    return Resp(status, dumpb(value), headers=headers)


def v3_error(status, title, errors=None):
    return json_resp(status, {"status": status, "title": title, "type": V3_ERROR_TYPE,
                              "errors": errors if errors is not None else {}})


def v2_error(status, message):
    return json_resp(status, [{"status": status, "message": message}])


def error_for(path, status, message):
    """An error in the body shape of the path's API version."""
    if path.startswith("/v2/"):
        return v2_error(status, message)
    return v3_error(status, message)


# ---- parameters -----------------------------------------------------------------------------

def _int(req, name, value, v2):
    try:
        n = int(value)
    except ValueError:
        msg = "The filter or parameter '%s' must be an integer" % name
        raise ApiError(v2_error(400, msg) if v2 else v3_error(400, msg))
    return n


def page_limit(req, maximum=250, default=50, v2=False):
    page = _int(req, "page", req.query.get("page", "1"), v2)
    limit = _int(req, "limit", req.query.get("limit", str(default)), v2)
    if page < 1 or limit < 1:
        msg = "page and limit must be positive integers"
        raise ApiError(v2_error(400, msg) if v2 else v3_error(400, msg))
    if limit > maximum:
        if v2:
            raise ApiError(v2_error(413, "The limit may not be greater than %d." % maximum))
        raise ApiError(v3_error(413, "The limit may not be greater than %d." % maximum,
                                {"limit": "maximum is %d" % maximum}))
    return page, limit


def int_list(req, name, v2=False):
    raw = req.query.get(name)
    if raw is None:
        return None
    return [_int(req, name, p, v2) for p in raw.split(",") if p != ""]


def includes(req):
    return set(p for p in req.query.get("include", "").split(",") if p)


def id_filters(req, ids, prefix="id", v2=False):
    """Apply id, id:in, id:min, id:max, id:greater, id:less to an ascending id sequence."""
    q = req.query
    lo, hi = 0, len(ids)
    bounds = [(prefix + ":min", "min"), (prefix + ":greater", "gt"),
              (prefix + ":max", "max"), (prefix + ":less", "lt")]
    if v2:
        bounds = [("min_id", "min"), ("max_id", "max")]
    for name, kind in bounds:
        if name not in q:
            continue
        n = _int(req, name, q[name], v2)
        if kind == "min":
            lo = max(lo, bisect.bisect_left(ids, n))
        elif kind == "gt":
            lo = max(lo, bisect.bisect_right(ids, n))
        elif kind == "max":
            hi = min(hi, bisect.bisect_right(ids, n))
        else:
            hi = min(hi, bisect.bisect_left(ids, n))
    chosen = ids[lo:hi] if (lo, hi) != (0, len(ids)) else ids
    wanted = None
    if not v2 and prefix in q:
        wanted = [_int(req, prefix, q[prefix], False)]
    if (prefix + ":in") in q:
        got = int_list(req, prefix + ":in", v2)
        wanted = got if wanted is None else [w for w in wanted if w in got]
    if wanted is not None:
        keep = []
        for w in sorted(set(wanted)):
            i = bisect.bisect_left(chosen, w)
            if i < len(chosen) and chosen[i] == w:
                keep.append(w)
        chosen = keep
    return chosen


def field_filter(table, ids, name, value):
    get = getattr(table, "field", None)
    if get is not None:
        return [i for i in ids if get(i, name) == value]
    rows = table.rows
    return [i for i in ids if rows[i].get(name) == value]


def in_filter(table, ids, member, values):
    s = set(values)
    return [i for i in ids if table.get(i).get(member) in s]


def direction(req, ids):
    if req.query.get("direction", "asc").lower() == "desc":
        return list(reversed(ids))
    return ids


# ---- v3 envelopes ---------------------------------------------------------------------------

def _links_query(req, page, per):
    extra = [(k, v) for k, v in req.pairs if k not in ("page", "limit")]
    base = "?page=%d&limit=%d" % (page, per)
    return base + ("&" + urlencode(extra) if extra else "")


def pagination(req, total, page, per):
    total = getattr(req, "fake_total", total)  # the "total" fault: a store that lies
    pages = int(math.ceil(total / float(per))) if total else 0
    links = {}
    if page > 1:
        links["previous"] = _links_query(req, page - 1, per)
    links["current"] = _links_query(req, page, per)
    if page < pages:
        links["next"] = _links_query(req, page + 1, per)
    return {"total": total, "count": 0, "per_page": per, "current_page": page,
            "total_pages": pages, "links": links}


def v3_list(req, ids, fetch, render, maximum=250, cap=None):
    """A v3 offset page over ids: fetch(id) gives the record, render(rec) its list shape."""
    page, limit = page_limit(req, maximum)
    per = min(limit, cap) if cap else limit
    chosen = ids[(page - 1) * per:page * per]
    # a record deleted by a concurrent mutation since ids were taken is skipped
    items = [render(r) for r in map(fetch, chosen) if r is not None]
    meta = pagination(req, len(ids), page, per)
    meta["count"] = len(items)
    return json_resp(200, {"data": items, "meta": {"pagination": meta}})


def v3_one(rec, render, what):
    if rec is None:
        raise ApiError(v3_error(404, "The requested %s was not found." % what))
    return json_resp(200, {"data": render(rec), "meta": {}})


def v2_list(req, items):
    page, limit = page_limit(req, v2=True)
    chosen = items[(page - 1) * limit:page * limit]
    if not chosen:
        return Resp(204)
    return json_resp(200, chosen)


def strip(rec, drop):
    return {k: v for k, v in rec.items() if k not in drop}


# ---- catalog --------------------------------------------------------------------------------

def render_product(rec, inc):
    drop = [m for k, m in PRODUCT_INCLUDES.items() if k not in inc]
    out = strip(rec, drop) if drop else dict(rec)
    if "primary_image" in inc:
        thumbs = [i for i in rec.get("images", []) if i.get("is_thumbnail")]
        if thumbs:
            out["primary_image"] = thumbs[0]
    return out


def get_products(store, req, m):
    table = store.table("products")
    with store.lock:
        ids = id_filters(req, table.ids())
        for name in ("sku", "name"):
            if name in req.query:
                ids = field_filter(table, ids, name, req.query[name])
        ids = product_text_filters(table, req, ids)
        if req.query.get("sort", "id") == "id":
            ids = direction(req, ids)
    inc = includes(req)
    cap = 10 if ("options" in inc or "modifiers" in inc) else None
    return v3_list(req, ids, table.get, lambda r: render_product(r, inc), cap=cap)


def product_text_filters(table, req, ids):
    """sku:in, name:like and keyword (a substring of name or sku), for restore lookups."""
    q = req.query
    if "sku:in" in q:
        skus = set(q["sku:in"].split(","))
        ids = [i for i in ids if _text(table, i, "sku") in skus]
    if "name:like" in q:
        part = q["name:like"].lower()
        ids = [i for i in ids if part in _text(table, i, "name").lower()]
    if "keyword" in q:
        part = q["keyword"].lower()
        ids = [i for i in ids if part in _text(table, i, "name").lower() or
               part in _text(table, i, "sku").lower()]
    return ids


def _text(table, rid, name):
    get = getattr(table, "field", None)
    value = get(rid, name) if get is not None else table.get(rid).get(name)
    return getattr(value, "value", value) or ""


def get_product(store, req, m):
    inc = includes(req)
    rec = store.table("products").get(int(m.group(1)))
    return v3_one(rec, lambda r: render_product(r, inc), "product")


def get_product_sub(store, req, m):
    rec = store.table("products").get(int(m.group(1)))
    if rec is None:
        raise ApiError(v3_error(404, "The requested product was not found."))
    items = rec.get(PRODUCT_SUBS[m.group(2)]) or []
    return v3_list(req, list(range(len(items))), items.__getitem__, lambda r: r)


def simple_v3(rtype, filters=("name",), sort=True):
    def handler(store, req, m):
        table = store.table(rtype)
        with store.lock:
            ids = id_filters(req, table.ids())
            for name in filters:
                if name in req.query:
                    ids = field_filter(table, ids, name, req.query[name])
            if sort:
                ids = direction(req, ids)
        return v3_list(req, ids, table.get, lambda r: r)
    return handler


def get_trees(store, req, m):
    table = store.table("category_trees")
    with store.lock:
        ids = id_filters(req, table.ids())
        chans = int_list(req, "channel_id:in")
        if chans is not None:
            ids = [i for i in ids if set(table.get(i)["channels"]) & set(chans)]
    return v3_list(req, ids, table.get, lambda r: r)


def get_tree_categories_flat(store, req, m):
    table = store.table("categories")
    with store.lock:
        ids = id_filters(req, table.ids(), prefix="category_id")
        for member in ("tree_id", "parent_id"):
            vals = int_list(req, member + ":in")
            if vals is not None:
                ids = in_filter(table, ids, member, vals)
        if "name" in req.query:
            ids = field_filter(table, ids, "name", req.query["name"])
    return v3_list(req, ids, table.get, lambda r: r)


def _nest(cats, parent, depth, path):
    out = []
    for c in cats:
        if c["parent_id"] != parent:
            continue
        node_path = path + [c["category_id"]]
        out.append({"id": c["category_id"], "parent_id": parent, "depth": depth,
                    "path": path, "name": c["name"], "is_visible": c["is_visible"],
                    "url": c["url"]["path"],
                    "children": _nest(cats, c["category_id"], depth + 1, node_path)})
    return out


def get_tree_nested(store, req, m):
    tree_id = int(m.group(1))
    with store.lock:
        if store.table("category_trees").get(tree_id) is None:
            raise ApiError(v3_error(404, "Category tree not found."))
        table = store.table("categories")
        cats = [table.get(i) for i in table.ids() if table.get(i)["tree_id"] == tree_id]
    return json_resp(200, {"data": _nest(cats, 0, 1, []), "meta": {}})


# ---- customers ------------------------------------------------------------------------------

def encode_cursor(cid):
    return base64.urlsafe_b64encode(("c:%d" % cid).encode()).decode().rstrip("=")


def decode_cursor(text):
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        if not raw.startswith("c:"):
            raise ValueError(text)
        return int(raw[2:])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(v3_error(400, "The cursor is not valid.", {"cursor": text}))


def render_customer(rec, inc):
    drop = [m for k, m in CUSTOMER_INCLUDES.items() if k not in inc]
    return strip(rec, drop) if drop else dict(rec)


def _cursor_meta(req, items, per, has_prev, has_next):
    first = encode_cursor(items[0]["id"]) if items else ""
    last = encode_cursor(items[-1]["id"]) if items else ""
    extra = [(k, v) for k, v in req.pairs if k not in ("page", "limit", "after", "before")]
    extra = "&" + urlencode(extra) if extra else ""
    links = {}
    if has_prev and items:
        links["previous"] = "?before=%s&limit=%d%s" % (first, per, extra)
    current = "?limit=%d%s" % (per, extra)
    if "after" in req.query:
        current = "?after=%s&limit=%d%s" % (req.query["after"], per, extra)
    elif "before" in req.query:
        current = "?before=%s&limit=%d%s" % (req.query["before"], per, extra)
    links["current"] = current
    if has_next and items:
        links["next"] = "?after=%s&limit=%d%s" % (last, per, extra)
    return {"count": len(items), "per_page": per, "start_cursor": first, "end_cursor": last,
            "links": links}


def get_customers(store, req, m):
    table = store.table("customers")
    inc = includes(req)
    with store.lock:
        ids = id_filters(req, table.ids())
        if "email:in" in req.query:
            emails = set(e.lower() for e in req.query["email:in"].split(","))
            ids = [i for i in ids if table.field(i, "email").lower() in emails]
    if "after" in req.query and "before" in req.query:
        raise ApiError(v3_error(400, "Only one of after and before may be given."))
    page, per = page_limit(req)
    if "after" in req.query:
        start = bisect.bisect_right(ids, decode_cursor(req.query["after"]))
        chosen = ids[start:start + per]
    elif "before" in req.query:
        end = bisect.bisect_left(ids, decode_cursor(req.query["before"]))
        start = max(0, end - per)
        chosen = ids[start:end]
    else:
        start = (page - 1) * per
        chosen = ids[start:start + per]
    items = [render_customer(table.get(i), inc) for i in chosen]
    meta = pagination(req, len(ids), start // per + 1, per)
    meta["count"] = len(items)
    out = {"pagination": meta}
    cursor_req = "after" in req.query or "before" in req.query
    if cursor_req or page == 1:
        out["cursor_pagination"] = _cursor_meta(req, items, per, start > 0,
                                                start + len(chosen) < len(ids))
    return json_resp(200, {"data": items, "meta": out})


# ---- orders ---------------------------------------------------------------------------------

def render_order(store, rec):
    out = {}
    for k, v in rec.items():
        if k in ORDER_LINKS:
            res = "/orders/%d/%s" % (rec["id"], k)
            out[k] = {"url": "%s/v2%s" % (store.ctx.api, res), "resource": res}
        elif k != "shipments":
            out[k] = v
    return out


def _orders_filtered(store, req):
    table = store.table("orders")
    with store.lock:
        ids = id_filters(req, table.ids(), v2=True)
        for member in ("customer_id", "status_id"):
            if member in req.query:
                want = _int(req, member, req.query[member], True)
                ids = [i for i in ids if table.get(i)[member] == want]
        if "external_order_id" in req.query:
            want = req.query["external_order_id"]
            ids = [i for i in ids if str(table.get(i).get("external_order_id")) == want]
    sort = req.query.get("sort", "id:asc")
    if sort == "id:desc":
        ids = list(reversed(ids))
    return table, ids


def get_orders(store, req, m):
    table, ids = _orders_filtered(store, req)
    page, limit = page_limit(req, v2=True)
    chosen = ids[(page - 1) * limit:page * limit]
    if not chosen:
        return Resp(204)
    return json_resp(200, [render_order(store, r) for r in map(table.get, chosen)
                           if r is not None])


def get_orders_count(store, req, m):
    _table, ids = _orders_filtered(store, req)
    return json_resp(200, {"count": len(ids)})


def get_order(store, req, m):
    rec = store.table("orders").get(int(m.group(1)))
    if rec is None:
        raise ApiError(v2_error(404, "The requested resource was not found."))
    return json_resp(200, render_order(store, rec))


def get_order_sub(store, req, m):
    rec = store.table("orders").get(int(m.group(1)))
    if rec is None:
        raise ApiError(v2_error(404, "The requested resource was not found."))
    return v2_list(req, rec.get(m.group(2)) or [])


# ---- content, marketing, store ---------------------------------------------------------------

def get_pages(store, req, m):
    table = store.table("pages")
    with_body = "body" in includes(req)
    with store.lock:
        ids = id_filters(req, table.ids())
        if "channel_id" in req.query:
            want = _int(req, "channel_id", req.query["channel_id"], False)
            ids = [i for i in ids if table.get(i)["channel_id"] == want]
        if "name" in req.query:
            ids = field_filter(table, ids, "name", req.query["name"])
    render = (lambda r: r) if with_body else (lambda r: strip(r, ("body",)))
    return v3_list(req, ids, table.get, render)


def get_redirects(store, req, m):
    table = store.table("redirects")
    with_url = "to_url" in includes(req)
    with store.lock:
        ids = id_filters(req, table.ids())
        if "site_id" in req.query:
            want = _int(req, "site_id", req.query["site_id"], False)
            ids = [i for i in ids if table.get(i)["site_id"] == want]
    render = (lambda r: r) if with_url else (lambda r: strip(r, ("to_url",)))
    return v3_list(req, ids, table.get, render)


def v2_table(rtype, filters=()):
    def filtered(store, req):
        table = store.table(rtype)
        with store.lock:
            ids = id_filters(req, table.ids(), v2=True)
            for name in filters:
                if name in req.query:
                    ids = field_filter(table, ids, name, req.query[name])
        return table, ids

    def listing(store, req, m):
        table, ids = filtered(store, req)
        page, limit = page_limit(req, v2=True)
        chosen = ids[(page - 1) * limit:page * limit]
        if not chosen:
            return Resp(204)
        return json_resp(200, [r for r in map(table.get, chosen) if r is not None])

    def count(store, req, m):
        return json_resp(200, {"count": len(filtered(store, req)[1])})

    def one(store, req, m):
        rec = store.table(rtype).get(int(m.group(1)))
        if rec is None:
            raise ApiError(v2_error(404, "The requested resource was not found."))
        return json_resp(200, rec)
    return listing, count, one


def get_store_info(store, req, m):
    return json_resp(200, store.info)


def get_time(store, req, m):
    return json_resp(200, {"time": int(time.time())})


# ---- themes ---------------------------------------------------------------------------------

def get_themes(store, req, m):
    table = store.table("themes")
    with store.lock:
        items = [table.get(i) for i in table.ids()]
    return json_resp(200, {"data": items, "meta": {}})


def get_theme(store, req, m):
    return v3_one(store.table("themes").get(m.group(1)), lambda r: r, "theme")


def post_theme_download(store, req, m):
    uuid = m.group(1)
    if store.table("themes").get(uuid) is None:
        raise ApiError(v3_error(404, "Theme not found."))
    which = "last_activated"
    try:
        body = json.loads(req.body.decode("utf-8") or "{}")
        if isinstance(body, dict) and body.get("which") in THEME_WHICH:
            which = body["which"]
    except ValueError:
        raise ApiError(v3_error(400, "The request body is not valid JSON."))
    job_id = secrets.token_hex(16)
    with store.lock:
        store.jobs[job_id] = {"theme": uuid, "which": which, "polls": 0, "done_at": None,
                              "url": None}
    return json_resp(200, {"job_id": job_id})


def get_theme_job(store, req, m):
    with store.lock:
        job = store.jobs.get(m.group(1))
        if job is None:
            raise ApiError(v3_error(404, "Job not found."))
        job["polls"] += 1
        status = ["QUEUED", "WORKING"][job["polls"] - 1] if job["polls"] <= 2 else "COMPLETED"
        if "finish" in job:
            return upload_job(m.group(1), job, status)
        if status == "COMPLETED" and job["url"] is None:
            job["done_at"] = time.monotonic()
            job["url"] = store.app.sign_theme(store, job["theme"], job["which"],
                                              job["done_at"])
    pct = {"QUEUED": 0, "WORKING": 50, "COMPLETED": 100}[status]
    result = {"download_url": job["url"]} if status == "COMPLETED" else {}
    return json_resp(200, {"data": {"id": m.group(1), "status": status,
                                    "percent_complete": pct, "errors": [], "warnings": [],
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "result": result}, "meta": {}})


def upload_job(job_id, job, status):
    """A theme upload job (write_content.py): finish() runs once, on completion, and gives
    (result, errors); errors make the job FAILED."""
    result, errors = {}, []
    if status == "COMPLETED":
        if "outcome" not in job:
            job["outcome"] = job["finish"]()
        result, errors = job["outcome"]
        if errors:
            status, result = "FAILED", {}
    pct = {"QUEUED": 0, "WORKING": 50}.get(status, 100)
    return json_resp(200, {"data": {"id": job_id, "status": status, "percent_complete": pct,
                                    "errors": errors, "warnings": [],
                                    "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "result": result}, "meta": {}})


# ---- routing --------------------------------------------------------------------------------

BLOG_LIST, BLOG_COUNT, BLOG_ONE = v2_table("blog_posts", ("url",))
COUPON_LIST, COUPON_COUNT, COUPON_ONE = v2_table("coupons", ("code", "name"))
NUM = r"(\d+)"
UUID = r"([0-9a-fA-F-]{8,64})"

# (method, path regex, handler, scope area or None, concurrency cap or None)
ROUTES = [
    ("GET", r"/v3/catalog/products", get_products, "products", None),
    ("GET", r"/v3/catalog/products/%s" % NUM, get_product, "products", None),
    ("GET", r"/v3/catalog/products/%s/(%s)" % (NUM, "|".join(PRODUCT_SUBS)), get_product_sub,
     "products", None),
    ("GET", r"/v3/catalog/brands", simple_v3("brands"), "products", None),
    ("GET", r"/v3/catalog/trees", get_trees, "products", None),
    ("GET", r"/v3/catalog/trees/categories", get_tree_categories_flat, "products", None),
    ("GET", r"/v3/catalog/trees/%s/categories" % NUM, get_tree_nested, "products",
     ("tree_categories", 1)),
    ("GET", r"/v3/customers", get_customers, "customers", None),
    ("GET", r"/v2/orders", get_orders, "orders", None),
    ("GET", r"/v2/orders/count", get_orders_count, "orders", None),
    ("GET", r"/v2/orders/%s" % NUM, get_order, "orders", None),
    ("GET", r"/v2/orders/%s/(%s)" % (NUM, "|".join(ORDER_SUBS)), get_order_sub, "orders", None),
    ("GET", r"/v3/content/pages", get_pages, "content", None),
    ("GET", r"/v2/blog/posts", BLOG_LIST, "content", None),
    ("GET", r"/v2/blog/posts/count", BLOG_COUNT, "content", None),
    ("GET", r"/v2/blog/posts/%s" % NUM, BLOG_ONE, "content", None),
    ("GET", r"/v3/storefront/redirects", get_redirects, "content", None),
    ("GET", r"/v2/coupons", COUPON_LIST, "marketing", None),
    ("GET", r"/v2/coupons/count", COUPON_COUNT, "marketing", None),
    ("GET", r"/v2/coupons/%s" % NUM, COUPON_ONE, "marketing", None),
    ("GET", r"/v3/themes", get_themes, "themes", None),
    ("GET", r"/v3/themes/jobs/%s" % UUID, get_theme_job, "themes", None),
    ("GET", r"/v3/themes/%s" % UUID, get_theme, "themes", None),
    ("POST", r"/v3/themes/%s/actions/download" % UUID, post_theme_download, "themes", None),
    ("GET", r"/v2/store", get_store_info, "information", None),
    ("GET", r"/v2/time", get_time, None, None),
]
COMPILED = [(meth, re.compile("^" + pat + "/?$"), h, area, cap)
            for meth, pat, h, area, cap in ROUTES]


def register(routes):
    """Add endpoints (same tuples as ROUTES), e.g. the write endpoints of write_*.py."""
    ROUTES.extend(routes)
    COMPILED.extend((meth, re.compile("^" + pat + "/?$"), h, area, cap)
                    for meth, pat, h, area, cap in routes)


def route(method, path):
    """(handler, match, area, cap) for a path, or an error Resp (404 / 405)."""
    allowed = False
    for meth, rx, handler, area, cap in COMPILED:
        m = rx.match(path)
        if m is None:
            continue
        if meth == method:
            return handler, m, area, cap
        allowed = True
    if allowed:
        return error_for(path, 405, "The method %s is not allowed on this path." % method)
    return error_for(path, 404, "The requested resource was not found.")


def scope_ok(scopes, area, method):
    """Whether a token's scopes cover an area: read-only scopes are enough for reads."""
    if area is None:
        return True
    if area == "themes":
        return bool(scopes & {"store_themes_read_only", "store_themes_manage"})
    if area == "store_themes_manage":
        return area in scopes
    if area.startswith("store_"):
        # a scope named in full: writes need it, reads also take its _read_only twin
        return area in scopes or (method == "GET" and area + "_read_only" in scopes)
    modify = "store_v2_%s" % area
    if method == "GET":
        return bool(scopes & {modify, modify + "_read_only"})
    return modify in scopes


_PATTERN_IDS = re.compile(r"/(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F-]{27,}|[0-9a-f]{32})(?=/|$)")


def pattern_of(path):
    """The path with ids replaced by {id}, for per-endpoint stats."""
    return _PATTERN_IDS.sub("/{id}", path)

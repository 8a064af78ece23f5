"""Content, marketing and theme write endpoints of the fake store: pages, blog posts,
redirects, coupons, theme upload and activation, as a restore sends them.

Rules follow the reference's sections 4.5, 4.6, 4.9 and 7; README.md ("Writes") lists them
with the choices made where the reference is silent.
"""

import email.parser
import email.policy
import io
import json
import secrets
import uuid
import zipfile

from api import Resp, id_filters, json_resp
from data import slug
from writes import (ItemError, batch_response, body_of, clone, fail, iso_now, parse_rfc2822,
                    rfc_now, touched, v2_fail, want_object)

PAGE_TYPES = ("page", "raw", "contact_form", "link", "blog")
PAGE_DEFAULTS = [("id", None), ("channel_id", 1), ("name", ""), ("is_visible", True),
                 ("parent_id", 0), ("sort_order", 0), ("type", "page"),
                 ("is_homepage", False), ("is_customers_only", False),
                 ("search_keywords", ""), ("meta_title", ""), ("meta_keywords", ""),
                 ("meta_description", ""), ("url", "")]
PAGE_EXTRA = {"link": ("link",), "contact_form": ("email", "contact_fields"),
              "raw": ("content_type",)}
REDIRECT_TYPES = {"product": "products", "brand": "brands", "category": "categories",
                  "page": "pages", "post": "blog_posts"}
COUPON_TYPES = ("per_item_discount", "percentage_discount", "per_total_discount",
                "shipping_discount", "free_shipping", "promotion")
THEME_LIMIT = 20


# ---- pages (v3) ------------------------------------------------------------------------------

def page_from(store, body, old, pid):
    """A page record from a create or update body; ItemError when it must fail."""
    if old is None:
        if body.get("type") == "blog":
            raise ItemError(422, "blog pages cannot be created through the API; create them "
                            "in the control panel")
        if not body.get("name") or body.get("type") not in PAGE_TYPES:
            raise ItemError(422, "name and a valid type are required")
        if "id" in body:
            raise ItemError(422, "id is read-only")
    elif "channel_id" in body and body["channel_id"] != old["channel_id"]:
        raise ItemError(422, "channel_id cannot be changed after the page is created")
    page = clone(old) if old else {k: clone(d) for k, d in PAGE_DEFAULTS}
    for k, _ in PAGE_DEFAULTS:
        if k in body and k != "id":
            page[k] = clone(body[k])
    for k in PAGE_EXTRA.get(page["type"], ()):
        page[k] = clone(body.get(k, page.get(k, "")))
    page["id"] = pid
    if "body" in body or "body" not in page:
        page["body"] = body.get("body", "")
    if page["type"] != "link" and not page["url"]:
        page["url"] = "/%s/" % slug(page["name"])
    if page["type"] == "link":
        page["url"] = ""
    table = store.table("pages")
    if page["url"]:
        for rid in table.ids():
            other = table.get(rid)
            if rid != pid and other["channel_id"] == page["channel_id"] and \
                    other["url"] == page["url"]:
                raise ItemError(422, "url '%s' is already used by page %d in channel %d"
                                % (page["url"], rid, page["channel_id"]))
    return page


def page_batch(store, req, items, updating):
    data, errors = [], []
    with store.lock:
        table = store.table("pages")
        for i, body in enumerate(items):
            try:
                old = None
                if updating:
                    old = table.get(body.get("id"))
                    if old is None:
                        raise ItemError(404, "page %r does not exist" % body.get("id"))
                page = page_from(store, body, old, old["id"] if old else table.next_id())
            except ItemError as exc:
                errors.append((i, exc.status, exc.message))
                continue
            table.put(page)
            touched(req, "pages", page["id"])
            data.append(page)
    return data, errors


def post_pages(store, req, m):
    raw = body_of(req)
    single = isinstance(raw, dict)
    items = [raw] if single else raw
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
        fail(400, "The request body must be a page or an array of pages.")
    data, errors = page_batch(store, req, items, False)
    if single and errors:
        fail(errors[0][1], errors[0][2], {"0": errors[0][2]})
    if single:
        return json_resp(201, {"data": data[0], "meta": {}})
    return batch_response(data, errors, len(items), 201)


def put_pages(store, req, m):
    raw = body_of(req)
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        fail(400, "The request body must be an array of pages.")
    data, errors = page_batch(store, req, raw, True)
    return batch_response(data, errors, len(raw), 200)


def put_page(store, req, m):
    body = want_object(body_of(req))
    body = dict(body, id=int(m.group(1)))
    data, errors = page_batch(store, req, [body], True)
    if errors:
        fail(errors[0][1], errors[0][2], {"0": errors[0][2]})
    return json_resp(200, {"data": data[0], "meta": {}})


def delete_pages(store, req, m):
    if "id:in" not in req.query:
        fail(422, "An id:in filter is required to delete pages.", {"id:in": "required"})
    with store.lock:
        table = store.table("pages")
        for pid in list(id_filters(req, table.ids())):
            table.delete(pid)
            touched(req, "pages", pid)
    return Resp(204)


def delete_page(store, req, m):
    pid = int(m.group(1))
    with store.lock:
        if not store.table("pages").delete(pid):
            fail(404, "The requested page was not found.")
    touched(req, "pages", pid)
    return Resp(204)


# ---- blog posts (v2) -----------------------------------------------------------------------

def post_from(store, body, old, bid):
    if "id" in body and (old is None or body["id"] != bid):
        v2_fail(400, "The field 'id' cannot be written to.")
    if old is None:
        for f in ("title", "body"):
            if not body.get(f):
                v2_fail(400, "The required field '%s' was not supplied." % f)
    post = clone(old) if old else {"id": bid, "title": "", "url": "", "preview_url": "",
                                   "body": "", "tags": [], "summary": "",
                                   "is_published": False, "published_date": None,
                                   "published_date_iso8601": "", "meta_description": "",
                                   "meta_keywords": "", "author": "", "thumbnail_path": ""}
    for k in ("title", "url", "body", "tags", "is_published", "meta_description",
              "meta_keywords", "author", "thumbnail_path"):
        if k in body:
            post[k] = clone(body[k])
    if "published_date" in body or old is None:
        set_published(post, body.get("published_date"))
    if not post["url"]:
        post["url"] = "/blog/%s/" % slug(post["title"])
    post["preview_url"] = post["url"]
    post["summary"] = summary_of(post["body"])
    table = store.table("blog_posts")
    for rid in table.ids():
        if rid != bid and table.get(rid)["url"] == post["url"]:
            v2_fail(409, "The url '%s' is already used by blog post %d." % (post["url"], rid))
    return post


def set_published(post, text):
    """published_date is sent as RFC-2822 text and read back as {date, timezone_type,
    timezone} plus published_date_iso8601; anything else is refused."""
    if text is None:
        text = rfc_now()
    dt = parse_rfc2822(text)
    if dt is None:
        v2_fail(400, "The field 'published_date' must be an RFC-2822 date string.")
    off = dt.utcoffset().total_seconds() // 60
    tz = "%s%02d:%02d" % ("-" if off < 0 else "+", abs(off) // 60, abs(off) % 60)
    post["published_date"] = {"date": dt.strftime("%Y-%m-%d %H:%M:%S.000000"),
                              "timezone_type": 1, "timezone": tz}
    post["published_date_iso8601"] = dt.strftime("%Y-%m-%dT%H:%M:%S") + tz


def summary_of(html):
    text, depth = [], 0
    for ch in html:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(0, depth - 1)
        elif not depth:
            text.append(ch)
    return "".join(text)[:100]


def post_blog(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    with store.lock:
        table = store.table("blog_posts")
        post = post_from(store, body, None, table.next_id())
        table.put(post)
    touched(req, "blog_posts", post["id"])
    return json_resp(201, post)


def put_blog(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    bid = int(m.group(1))
    with store.lock:
        table = store.table("blog_posts")
        old = table.get(bid)
        if old is None:
            v2_fail(404, "The requested resource was not found.")
        post = post_from(store, body, old, bid)
        table.put(post)
    touched(req, "blog_posts", bid)
    return json_resp(200, post)


def v2_delete(rtype):
    def handler(store, req, m):
        rid = int(m.group(1))
        with store.lock:
            if not store.table(rtype).delete(rid):
                v2_fail(404, "The requested resource was not found.")
        touched(req, rtype, rid)
        return Resp(204)
    return handler


# ---- redirects (v3) ------------------------------------------------------------------------

def redirect_target(store, to):
    """(to, to_url) for a redirect target; ItemError when it names nothing."""
    if not isinstance(to, dict) or to.get("type") not in list(REDIRECT_TYPES) + ["url"]:
        raise ItemError(422, "to.type must be product, brand, category, page, post or url")
    if to["type"] == "url":
        if not to.get("url"):
            raise ItemError(422, "to.url is required for a url redirect")
        return {"type": "url", "url": to["url"]}, to["url"]
    target = store.table(REDIRECT_TYPES[to["type"]]).get(to.get("entity_id"))
    if target is None:
        raise ItemError(422, "%s %r does not exist" % (to["type"], to.get("entity_id")))
    path = target.get("custom_url") or target.get("url") or "/"
    if isinstance(path, dict):
        path = path.get("url", path.get("path", "/"))
    path = getattr(path, "value", path)
    return {"type": to["type"], "entity_id": to["entity_id"]}, store.ctx.domain + (path or "/")


def put_redirects(store, req, m):
    items = body_of(req)
    if not isinstance(items, list) or not items or not all(isinstance(x, dict) for x in items):
        fail(400, "The request body must be an array of redirects.")
    data, errors = [], []
    with store.lock:
        table = store.table("redirects")
        by_key = {(table.get(i)["site_id"], table.get(i)["from_path"]): i for i in table.ids()}
        for i, body in enumerate(items):
            try:
                if not body.get("from_path") or body.get("site_id") is None:
                    raise ItemError(422, "from_path and site_id are required")
                if body["site_id"] != store.info["default_site_id"]:
                    raise ItemError(422, "site %r does not exist" % body["site_id"])
                to, to_url = redirect_target(store, body.get("to"))
            except ItemError as exc:
                errors.append((i, exc.status, exc.message))
                continue
            key = (body["site_id"], body["from_path"])
            rid = by_key.get(key) or table.next_id()
            rec = {"id": rid, "site_id": key[0], "from_path": key[1], "to": to,
                   "to_url": to_url}
            table.put(rec)
            by_key[key] = rid
            touched(req, "redirects", rid)
            data.append(rec)
    return batch_response(data, errors, len(items), 201)


def delete_redirects(store, req, m):
    if "id:in" not in req.query and "site_id" not in req.query:
        fail(422, "An id:in or site_id filter is required to delete redirects.")
    with store.lock:
        table = store.table("redirects")
        ids = id_filters(req, table.ids())
        if "site_id" in req.query:
            ids = [i for i in ids if str(table.get(i)["site_id"]) == req.query["site_id"]]
        for rid in list(ids):
            table.delete(rid)
            touched(req, "redirects", rid)
    return Resp(204)


# ---- coupons (v2) ----------------------------------------------------------------------------

def coupon_from(store, body, old, cid):
    if "id" in body and (old is None or body["id"] != cid):
        v2_fail(400, "The field 'id' cannot be written to.")
    for ro in ("num_uses", "date_created"):
        if ro in body:
            v2_fail(400, "The field '%s' cannot be written to." % ro)
    if old is None:
        for f in ("name", "code", "type", "amount", "applies_to"):
            if body.get(f) in (None, ""):
                v2_fail(400, "The required field '%s' was not supplied." % f)
    coupon = clone(old) if old else {
        "id": cid, "name": "", "type": "", "amount": "0.0000", "min_purchase": "0.0000",
        "expires": "", "enabled": True, "code": "", "applies_to": {}, "num_uses": 0,
        "max_uses": 0, "max_uses_per_customer": 0, "restricted_to": {},
        "shipping_methods": None, "date_created": rfc_now()}
    for k in ("name", "type", "amount", "min_purchase", "expires", "enabled", "code",
              "applies_to", "max_uses", "max_uses_per_customer", "restricted_to",
              "shipping_methods"):
        if k in body:
            coupon[k] = clone(body[k])
    for k in ("amount", "min_purchase"):
        coupon[k] = "%.4f" % float(coupon[k])
    if coupon["type"] not in COUPON_TYPES:
        v2_fail(400, "The field 'type' is invalid.")
    table = store.table("coupons")
    for rid in table.ids():
        if rid != cid and table.get(rid)["code"] == coupon["code"]:
            v2_fail(409, "The coupon code '%s' is already used by coupon %d."
                    % (coupon["code"], rid))
    return coupon


def post_coupon(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    with store.lock:
        table = store.table("coupons")
        coupon = coupon_from(store, body, None, table.next_id())
        table.put(coupon)
    touched(req, "coupons", coupon["id"])
    return json_resp(201, coupon)


def put_coupon(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    cid = int(m.group(1))
    with store.lock:
        table = store.table("coupons")
        old = table.get(cid)
        if old is None:
            v2_fail(404, "The requested resource was not found.")
        coupon = coupon_from(store, body, old, cid)
        table.put(coupon)
    touched(req, "coupons", cid)
    return json_resp(200, coupon)


# ---- themes ----------------------------------------------------------------------------------

def multipart_file(req):
    """The bytes of the multipart/form-data field `file`, or None."""
    ctype = req.headers.get("Content-Type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        return None
    head = ("Content-Type: %s\r\n\r\n" % ctype).encode("latin-1")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + req.body)
    for part in msg.iter_parts():
        if part.get_param("name", header="content-disposition") == "file":
            return part.get_payload(decode=True)
    return None


def theme_from_zip(blob):
    """The theme record an uploaded bundle becomes (name and variations from config.json)."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            config = json.loads(zf.read("config.json").decode("utf-8"))
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError):
        return None
    variations = config.get("variations") or [{"name": "Default"}]
    return {"uuid": str(uuid.uuid4()), "name": str(config.get("name") or "Uploaded theme"),
            "is_active": False, "is_private": True, "updated_at": iso_now(),
            "variations": [{"uuid": str(uuid.uuid4()), "name": v.get("name", "Default"),
                            "external_id": v.get("id", ""),
                            "description": (v.get("meta") or {}).get("desc", "")}
                           for v in variations]}


def post_theme(store, req, m):
    blob = multipart_file(req)
    if blob is None:
        fail(400, "Send the theme as the multipart/form-data field 'file'.")
    if len(blob) > store.app.theme_max_bytes:
        fail(413, "The theme bundle is larger than the 50 MB limit.")
    with store.lock:
        table = store.table("themes")
        custom = sum(1 for i in table.ids() if table.get(i)["is_private"])
        if custom >= THEME_LIMIT:
            fail(409, "You have reached your upload limit")
        if any(j.get("kind") == "upload" and j["polls"] < 3 for j in store.jobs.values()):
            fail(409, "A theme upload is already in progress")
        job_id = secrets.token_hex(16)
        store.jobs[job_id] = {"kind": "upload", "polls": 0, "done_at": None, "url": None,
                              "finish": lambda: finish_upload(store, req, blob)}
    return json_resp(201, {"job_id": job_id})


def finish_upload(store, req, blob):
    """Called (under store.lock) when the upload job completes: the theme appears."""
    theme = theme_from_zip(blob)
    if theme is None:
        return None, [{"error": "invalid_bundle", "message": "config.json is missing or bad"}]
    store.table("themes").put(theme)
    store.uploads[theme["uuid"]] = blob
    touched(req, "themes", theme["uuid"])
    return {"theme_id": theme["uuid"]}, []


def post_theme_activate(store, req, m):
    body = want_object(body_of(req))
    vid = body.get("variation_id")
    if body.get("which", "last_activated") not in ("original", "last_activated",
                                                   "last_created"):
        fail(422, "which must be original, last_activated or last_created.")
    with store.lock:
        table = store.table("themes")
        owner = next((table.get(i) for i in table.ids()
                      if any(v["uuid"] == vid for v in table.get(i)["variations"])), None)
        if owner is None:
            fail(404, "The theme variation was not found.", {"variation_id": str(vid)})
        for i in list(table.ids()):
            theme = table.get(i)
            if theme["is_active"] != (theme is owner):
                theme = dict(theme, is_active=theme is owner)
                table.put(theme)
                touched(req, "themes", i)
    return Resp(204)


NUM = r"(\d+)"
ROUTES = [
    ("POST", r"/v3/content/pages", post_pages, "content", None),
    ("PUT", r"/v3/content/pages", put_pages, "content", None),
    ("DELETE", r"/v3/content/pages", delete_pages, "content", None),
    ("PUT", r"/v3/content/pages/" + NUM, put_page, "content", None),
    ("DELETE", r"/v3/content/pages/" + NUM, delete_page, "content", None),
    ("POST", r"/v2/blog/posts", post_blog, "content", None),
    ("PUT", r"/v2/blog/posts/" + NUM, put_blog, "content", None),
    ("DELETE", r"/v2/blog/posts/" + NUM, v2_delete("blog_posts"), "content", None),
    ("PUT", r"/v3/storefront/redirects", put_redirects, "content", None),
    ("DELETE", r"/v3/storefront/redirects", delete_redirects, "content", None),
    ("POST", r"/v2/coupons", post_coupon, "marketing", None),
    ("PUT", r"/v2/coupons/" + NUM, put_coupon, "marketing", None),
    ("DELETE", r"/v2/coupons/" + NUM, v2_delete("coupons"), "marketing", None),
    ("POST", r"/v3/themes", post_theme, "store_themes_manage", None),
    ("POST", r"/v3/themes/actions/activate", post_theme_activate, "store_themes_manage", None),
]

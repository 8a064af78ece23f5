"""Catalog write endpoints of the fake store: products and their sub-resources, brands,
category trees and tree categories, as a restore sends them.

Rules (read-only members, required members, uniqueness, batch limits) follow the reference's
sections 4.1, 4.2 and 7; README.md ("Writes") lists them with the choices made where the
reference is silent.
"""

from api import Resp, id_filters, json_resp, render_product
from data import slug
from store import LazyProducts
from writes import (ItemError, alloc, batch_response, body_of, check_read_only, check_required,
                    clone, fail, fetch_image, iso_now, missing, own_image_stem, scan, touched,
                    want_array, want_object)

PRODUCT_RO = ("date_created", "date_modified", "calculated_price", "base_variant_id")
VARIANT_RO = ("calculated_price", "calculated_weight", "sku_id", "product_id")
PRODUCT_REQUIRED = ("name", "type", "weight", "price")
PRODUCT_TYPES = ("physical", "digital")
SUB_MEMBERS = ("variants", "images", "custom_fields", "bulk_pricing_rules", "options",
               "modifiers", "videos")
BATCH_PUT_MAX = 10
DELETE_MAX = 250

# Every member of a product in dump shape, in the API's order, with a new product's value.
PRODUCT_DEFAULTS = [
    ("id", None), ("name", ""), ("type", "physical"), ("sku", ""), ("description", ""),
    ("weight", 0), ("width", 0), ("depth", 0), ("height", 0), ("price", 0), ("cost_price", 0),
    ("retail_price", 0), ("sale_price", 0), ("map_price", 0), ("tax_class_id", 0),
    ("product_tax_code", ""), ("calculated_price", 0), ("categories", []), ("brand_id", 0),
    ("option_set_id", None), ("option_set_display", "right"), ("inventory_level", 0),
    ("inventory_warning_level", 0), ("inventory_tracking", "none"), ("reviews_rating_sum", 0),
    ("reviews_count", 0), ("total_sold", 0), ("fixed_cost_shipping_price", 0),
    ("is_free_shipping", False), ("is_visible", True), ("is_featured", False),
    ("related_products", []), ("warranty", ""), ("bin_picking_number", ""),
    ("layout_file", ""), ("upc", ""), ("mpn", ""), ("gtin", ""), ("date_last_imported", None),
    ("search_keywords", ""), ("availability", "available"), ("availability_description", ""),
    ("gift_wrapping_options_type", "any"), ("gift_wrapping_options_list", []),
    ("sort_order", 0), ("condition", "New"), ("is_condition_shown", False),
    ("order_quantity_minimum", 0), ("order_quantity_maximum", 0), ("page_title", ""),
    ("meta_keywords", []), ("meta_description", ""), ("date_created", None),
    ("date_modified", None), ("view_count", 0), ("preorder_release_date", None),
    ("preorder_message", ""), ("is_preorder_only", False), ("is_price_hidden", False),
    ("price_hidden_label", ""), ("custom_url", None), ("base_variant_id", None),
    ("open_graph_type", "product"), ("open_graph_title", ""), ("open_graph_description", ""),
    ("open_graph_use_meta_description", True), ("open_graph_use_product_name", True),
    ("open_graph_use_image", True)] + [(m, []) for m in SUB_MEMBERS]
PRODUCT_MEMBERS = set(k for k, _ in PRODUCT_DEFAULTS)

VARIANT_DEFAULTS = [
    ("id", None), ("product_id", None), ("sku", ""), ("sku_id", None), ("price", None),
    ("calculated_price", None), ("sale_price", None), ("retail_price", None),
    ("map_price", None), ("weight", None), ("calculated_weight", None), ("width", None),
    ("height", None), ("depth", None), ("is_free_shipping", False),
    ("fixed_cost_shipping_price", None), ("purchasing_disabled", False),
    ("purchasing_disabled_message", ""), ("image_url", ""), ("cost_price", None),
    ("upc", ""), ("mpn", ""), ("gtin", ""), ("inventory_level", 0),
    ("inventory_warning_level", 0), ("bin_picking_number", ""), ("option_values", [])]


@scan("variant", "products")
def _variant_ids(r):
    return [v["id"] for v in r.get("variants", [])]


@scan("option", "products")
def _option_ids(r):
    return [o["id"] for o in r.get("options", [])]


@scan("option_value", "products")
def _option_value_ids(r):
    return [v["id"] for o in r.get("options", []) for v in o["option_values"]]


@scan("modifier", "products")
def _modifier_ids(r):
    return [o["id"] for o in r.get("modifiers", [])]


@scan("modifier_value", "products")
def _modifier_value_ids(r):
    return [v["id"] for o in r.get("modifiers", []) for v in o["option_values"]]


def _sub_scan(kind, member):
    scan(kind, "products")(lambda r: [x["id"] for x in r.get(member, [])])


for _kind, _member in (("image", "images"), ("custom_field", "custom_fields"),
                       ("bulk_rule", "bulk_pricing_rules"), ("video", "videos")):
    _sub_scan(_kind, _member)


def plain_text(value):
    """The text a parser reads from a member that may hold a Raw token."""
    return getattr(value, "value", value)


def product_key(table, rid, member):
    """name, sku or custom_url.url of a product, cheaply for unchanged bench products."""
    if isinstance(table, LazyProducts):
        if member == "custom_url":
            rec = table.overlay.get(rid)
            if rec is None:
                return "/%s/" % slug(table.field(rid, "name"))
            return plain_text((rec.get("custom_url") or {}).get("url"))
        return table.field(rid, member)
    rec = table.get(rid)
    if member == "custom_url":
        return plain_text((rec.get("custom_url") or {}).get("url"))
    return plain_text(rec.get(member))


def check_unique(store, rec, own_id=None):
    """409 when name, sku or custom_url.url is taken by another product."""
    table = store.table("products")
    wanted = {"name": rec.get("name"), "sku": rec.get("sku"),
              "custom_url": plain_text((rec.get("custom_url") or {}).get("url"))}
    wanted = {k: plain_text(v) for k, v in wanted.items() if v not in (None, "")}
    for rid in table.ids():
        if rid == own_id:
            continue
        for member, value in wanted.items():
            if product_key(table, rid, member) == value:
                label = "custom_url.url" if member == "custom_url" else member
                fail(409, "The product %s is a duplicate." % label,
                     {label: "%s '%s' is already used by product %d" % (label, value, rid)})
    check_variant_skus(store, [v["sku"] for v in rec.get("variants", [])
                               if v.get("sku") and v["sku"] != rec.get("sku")], own_id,
                       whole_product=True)


def check_variant_skus(store, skus, own_id=None, own_variant=None, whole_product=False):
    """409 when a variant SKU is taken by another variant (of another product when
    whole_product: its own variants are the ones being checked). Bench stores check changed
    products only."""
    if not skus:
        return
    seen = set()
    for s in skus:
        if s in seen:
            fail(409, "The variant sku is a duplicate.", {"sku": "sku '%s' is repeated" % s})
        seen.add(s)
    table = store.table("products")
    rows = table.overlay if isinstance(table, LazyProducts) else table.rows
    for rid, rec in rows.items():
        if whole_product and rid == own_id:
            continue
        for v in rec.get("variants", []):
            if v["id"] == own_variant:
                continue
            if v["sku"] in seen or (rid != own_id and plain_text(rec.get("sku")) in seen):
                fail(409, "The variant sku is a duplicate.",
                     {"sku": "sku '%s' is already used by product %d" % (v["sku"], rid)})


def check_references(store, rec):
    """409 for categories or a brand that do not exist, as the API answers."""
    cats = store.table("categories")
    bad = [c for c in rec.get("categories") or [] if cats.get(c) is None]
    if bad:
        fail(409, "The product references categories that do not exist.",
             {"categories": "categories %s do not exist" % bad})
    brand = rec.get("brand_id") or 0
    if brand and store.table("brands").get(brand) is None:
        fail(409, "The product references a brand that does not exist.",
             {"brand_id": "brand %r does not exist" % brand})


def calculated(rec):
    sale = plain_text(rec.get("sale_price")) or 0
    return sale if sale else rec.get("price")


# ---- sub-record builders -------------------------------------------------------------------

def new_variant(store, prod, body, options, idx):
    check_read_only(body, VARIANT_RO + ("id",), "variants.%d." % idx if idx is not None else "")
    var = {k: clone(body.get(k, d)) for k, d in VARIANT_DEFAULTS}
    var["id"] = alloc(store, "variant")
    var["product_id"] = prod["id"]
    var["option_values"] = resolve_option_values(store, prod, options, body.get(
        "option_values") or [], idx)
    var["sku_id"] = var["id"] if var["option_values"] else None
    var["calculated_price"] = var["price"] if var["price"] is not None else prod.get("price")
    var["calculated_weight"] = var["weight"] if var["weight"] is not None else prod.get(
        "weight")
    if var["price"] is None:
        var["price"] = prod.get("price")
    if var["weight"] is None:
        var["weight"] = prod.get("weight")
    return var


def resolve_option_values(store, prod, options, given, idx, create=True):
    """option_values of a variant as stored: by option_id+id, or by option_display_name+label
    (inline product create), creating the option and value when create is true."""
    out = []
    where = "variants.%d.option_values" % idx if idx is not None else "option_values"
    for ov in given:
        opt = val = None
        if not isinstance(ov, dict):
            fail(422, "An option value must be an object.", {where: "not an object"})
        if "option_display_name" in ov and "label" in ov:
            opt = next((o for o in options if o["display_name"] == ov["option_display_name"]),
                       None)
            if opt is None and create:
                opt = {"id": alloc(store, "option"), "product_id": prod["id"],
                       "name": "%s-%d" % (ov["option_display_name"], prod["id"]),
                       "display_name": ov["option_display_name"], "type": "rectangles",
                       "sort_order": len(options), "config": {}, "option_values": []}
                options.append(opt)
            if opt is not None:
                val = next((v for v in opt["option_values"] if v["label"] == ov["label"]), None)
                if val is None and create:
                    val = {"id": alloc(store, "option_value"), "label": ov["label"],
                           "sort_order": len(opt["option_values"]), "value_data": None,
                           "is_default": False}
                    opt["option_values"].append(val)
        else:
            opt = next((o for o in options if o["id"] == ov.get("option_id")), None)
            if opt is not None:
                val = next((v for v in opt["option_values"] if v["id"] == ov.get("id")), None)
        if opt is None or val is None:
            fail(422, "The variant names an option value the product does not have.",
                 {where: "no such option value: %r" % ov})
        out.append({"id": val["id"], "label": val["label"], "option_id": opt["id"],
                    "option_display_name": opt["display_name"]})
    return out


def new_image(store, prod, body, idx=None):
    for ro in ("id", "url_zoom", "url_standard", "url_thumbnail", "url_tiny", "date_modified"):
        if ro in body:
            check_read_only(body, [ro], "images.%d." % idx if idx is not None else "")
    if not body.get("image_url"):
        fail(422, "The image needs an image_url.", {"image_url": "image_url is required"})
    fetch_image(store, body["image_url"])
    iid = alloc(store, "image")
    name = slug(plain_text(prod.get("name")) or "image") or "image"
    stem = own_image_stem(store, "products", prod["id"], iid, name)
    images = prod.get("images", [])
    thumb = bool(body.get("is_thumbnail")) or not images
    return {"id": iid, "product_id": prod["id"], "is_thumbnail": thumb,
            "sort_order": body.get("sort_order", len(images)),
            "description": body.get("description", ""),
            "image_file": "%s/%d/%s__%d.png" % (name[:1], prod["id"], name, iid),
            "url_zoom": stem + ".1280.1280.png", "url_standard": stem + ".386.513.png",
            "url_thumbnail": stem + ".220.290.png", "url_tiny": stem + ".44.58.png",
            "date_modified": iso_now()}


def new_custom_field(store, prod, body, own=None):
    check_required(body, ("name", "value"))
    for cf in prod.get("custom_fields", []):
        if cf["id"] != own and cf["name"] == body["name"] and cf["value"] == body["value"]:
            fail(409, "The custom field is a duplicate.",
                 {"name": "custom field '%s' = '%s' already exists on this product"
                  % (body["name"], body["value"])})
    return {"id": own or alloc(store, "custom_field"), "name": body["name"],
            "value": body["value"]}


def new_bulk_rule(store, body, own=None):
    check_required(body, ("quantity_min", "quantity_max", "type", "amount"))
    if body["type"] not in ("price", "percent", "fixed"):
        fail(422, "The bulk pricing rule type is not valid.",
             {"type": "type must be price, percent or fixed"})
    return {"id": own or alloc(store, "bulk_rule"), "quantity_min": body["quantity_min"],
            "quantity_max": body["quantity_max"], "type": body["type"],
            "amount": body["amount"]}


def new_video(store, prod, body, own=None):
    check_required(body, ("video_id",))
    if body.get("type", "youtube") != "youtube":
        fail(422, "Only YouTube videos can be added.", {"type": "type must be youtube"})
    return {"id": own or alloc(store, "video"), "title": body.get("title", ""),
            "description": body.get("description", ""),
            "sort_order": body.get("sort_order", len(prod.get("videos", []))),
            "type": "youtube", "video_id": body["video_id"], "product_id": prod["id"],
            "length": body.get("length", "0:00")}


def new_option(store, prod, body, own=None):
    check_required(body, ("display_name", "type", "option_values") if own is None else ())
    opt = {"id": own or alloc(store, "option"), "product_id": prod["id"],
           "name": body.get("name") or "%s-%d" % (body.get("display_name"), prod["id"]),
           "display_name": body.get("display_name"), "type": body.get("type"),
           "sort_order": body.get("sort_order", len(prod.get("options", []))),
           "config": clone(body.get("config") or {}), "option_values": []}
    for i, v in enumerate(body.get("option_values") or []):
        opt["option_values"].append(new_option_value(store, opt, v, i))
    return opt


def new_option_value(store, opt, body, idx=None, own=None):
    check_required(body, ("label",), "option_values.%d." % idx if idx is not None else "")
    for v in opt["option_values"]:
        if v["id"] != own and v["label"] == body["label"]:
            fail(409, "The option value label is a duplicate.",
                 {"label": "label '%s' already exists on this option" % body["label"]})
    return {"id": own or alloc(store, "option_value"), "label": body["label"],
            "sort_order": body.get("sort_order", len(opt["option_values"])),
            "value_data": clone(body.get("value_data")), "is_default":
            bool(body.get("is_default", False))}


def new_modifier(store, prod, body, own=None):
    if own is None:
        check_required(body, ("required", "display_name", "type"))
    mod = {"id": own or alloc(store, "modifier"), "product_id": prod["id"],
           "name": body.get("name") or "%s-%d" % (body.get("display_name"), prod["id"]),
           "display_name": body.get("display_name"), "type": body.get("type"),
           "required": bool(body.get("required")),
           "sort_order": body.get("sort_order", len(prod.get("modifiers", []))),
           "config": clone(body.get("config") or {}), "option_values": []}
    for i, v in enumerate(body.get("option_values") or []):
        mod["option_values"].append(new_modifier_value(store, mod, v, i))
    return mod


def new_modifier_value(store, mod, body, idx=None, own=None):
    check_required(body, ("label",), "option_values.%d." % idx if idx is not None else "")
    return {"id": own or alloc(store, "modifier_value"), "option_id": mod["id"],
            "label": body["label"], "sort_order": body.get("sort_order",
                                                            len(mod["option_values"])),
            "value_data": clone(body.get("value_data")),
            "is_default": bool(body.get("is_default", False)),
            "adjusters": clone(body.get("adjusters") or {
                "price": None, "weight": None, "image_url": "",
                "purchasing_disabled": {"status": False, "message": ""}})}


# ---- products --------------------------------------------------------------------------------

def build_product(store, body, pid):
    """A new product in dump shape from a create body (validated already)."""
    prod = {k: clone(body[k]) if k in body and k not in SUB_MEMBERS else clone(d)
            for k, d in PRODUCT_DEFAULTS}
    prod["id"] = pid
    stamp = iso_now()
    prod["date_created"] = prod["date_modified"] = stamp
    prod["calculated_price"] = calculated(prod)
    if not prod["custom_url"]:
        prod["custom_url"] = {"url": "/%s/" % slug(body["name"]), "is_customized": False}
    options = []
    for i, v in enumerate(body.get("variants") or []):
        prod["variants"].append(new_variant(store, prod, v, options, i))
    prod["options"] = options
    if not prod["variants"] or not options:
        base = new_variant(store, prod, {"sku": prod["sku"],
                                         "inventory_level": prod["inventory_level"]}, [], None)
        prod["variants"] = [base]
        prod["base_variant_id"] = base["id"]
    else:
        prod["base_variant_id"] = None
        if "inventory_tracking" not in body:
            prod["inventory_tracking"] = "variant"
    sync_inventory(prod)
    add_inline_subs(store, prod, body)
    return prod


def add_inline_subs(store, prod, body):
    for i, img in enumerate(body.get("images") or []):
        prod["images"].append(new_image(store, prod, img, i))
    for cf in body.get("custom_fields") or []:
        prod["custom_fields"].append(new_custom_field(store, prod, cf))
    for rule in body.get("bulk_pricing_rules") or []:
        prod["bulk_pricing_rules"].append(new_bulk_rule(store, rule))
    for video in body.get("videos") or []:
        prod["videos"].append(new_video(store, prod, video))


def sync_inventory(prod):
    """Variant tracking: the product's level is the sum of its variants'. Otherwise the base
    variant mirrors the product's level."""
    if prod.get("inventory_tracking") == "variant" and prod["options"]:
        prod["inventory_level"] = sum(v.get("inventory_level") or 0 for v in prod["variants"])
    elif prod.get("base_variant_id"):
        for v in prod["variants"]:
            if v["id"] == prod["base_variant_id"]:
                v["inventory_level"] = prod["inventory_level"]


def validate_product_body(body, creating, prefix=""):
    check_read_only(body, (("id",) if creating else ()) + PRODUCT_RO, prefix)
    for i, v in enumerate(body.get("variants") or []):
        if isinstance(v, dict):
            check_read_only(v, VARIANT_RO + (("id",) if creating else ()),
                            "%svariants.%d." % (prefix, i))
    if creating:
        check_required(body, PRODUCT_REQUIRED, prefix)
    if "type" in body and body["type"] not in PRODUCT_TYPES:
        fail(422, "The product type is not valid.", {prefix + "type":
                                                     "type must be physical or digital"})
    if "name" in body and (not isinstance(body["name"], str) or not 1 <= len(body["name"])
                           <= 250):
        fail(422, "The product name is not valid.", {prefix + "name": "1 to 250 characters"})


def post_product(store, req, m):
    body = want_object(body_of(req))
    validate_product_body(body, True)
    with store.lock:
        table = store.table("products")
        prod = build_product(store, body, table.next_id())
        check_unique(store, prod)
        check_references(store, prod)
        table.put(prod)
    touched(req, "products", prod["id"])
    return json_resp(200, {"data": render_product(prod, set(PRODUCT_INCLUDE_ALL)),
                           "meta": {}})


PRODUCT_INCLUDE_ALL = ("variants", "images", "custom_fields", "bulk_pricing_rules", "options",
                       "modifiers", "videos")


def updated_product(store, old, body):
    """A copy of old with a PUT body's members applied (sub-resources are left alone)."""
    prod = clone(old)
    for k, v in body.items():
        if k in PRODUCT_MEMBERS and k not in SUB_MEMBERS and k != "id":
            prod[k] = clone(v)
    if body.get("custom_url") is not None:
        prod["custom_url"] = {"url": body["custom_url"].get("url"),
                              "is_customized": body["custom_url"].get("is_customized", True)}
    prod["calculated_price"] = calculated(prod)
    prod["date_modified"] = iso_now()
    for v in prod["variants"]:
        if v["id"] == prod.get("base_variant_id"):
            if "sku" in body:
                v["sku"] = prod["sku"]
            if "price" in body:
                v["price"] = v["calculated_price"] = prod["price"]
    sync_inventory(prod)
    return prod


def put_product(store, req, m):
    pid = int(m.group(1))
    body = want_object(body_of(req))
    validate_product_body(body, False)
    with store.lock:
        table = store.table("products")
        old = table.get(pid)
        if old is None:
            fail(404, "The requested product was not found.")
        prod = updated_product(store, old, body)
        check_unique(store, prod, pid)
        check_references(store, prod)
        table.put(prod)
    touched(req, "products", pid)
    return json_resp(200, {"data": render_product(prod, set()), "meta": {}})


def put_products_batch(store, req, m):
    items = want_array(body_of(req), BATCH_PUT_MAX, "product")
    errs = {}
    for i, body in enumerate(items):
        if "id" not in body:
            errs["%d.id" % i] = "id is required"
    if errs:
        fail(422, "Every product in a batch update needs an id.", errs)
    with store.lock:
        table = store.table("products")
        news = []
        for i, body in enumerate(items):
            validate_product_body(body, False, "%d." % i)
            old = table.get(body["id"])
            if old is None:
                fail(422, "The product does not exist.", {"%d.id" % i: "no product %r"
                                                          % body["id"]})
            prod = updated_product(store, old, body)
            check_unique(store, prod, prod["id"])
            check_references(store, prod)
            news.append(prod)
        for prod in news:
            table.put(prod)
            touched(req, "products", prod["id"])
    return json_resp(200, {"data": [render_product(p, set()) for p in news], "meta": {}})


def delete_products(store, req, m):
    if not any(k.startswith("id") for k in req.query):
        fail(422, "A filter is required to delete products.", {"id:in": "give id:in"})
    if len((req.query.get("id:in") or "").split(",")) > DELETE_MAX:
        fail(413, "At most %d products can be deleted per request." % DELETE_MAX)
    with store.lock:
        table = store.table("products")
        for rid in list(id_filters(req, table.ids())):
            table.delete(rid)
            touched(req, "products", rid)
    return Resp(204)


def delete_product(store, req, m):
    pid = int(m.group(1))
    with store.lock:
        if not store.table("products").delete(pid):
            fail(404, "The requested product was not found.")
    touched(req, "products", pid)
    return Resp(204)


# ---- product sub-resources -----------------------------------------------------------------

def change_product(store, req, pid, change):
    """Clone product pid, let change(prod) edit the clone and return the answer, then store it.

    The product's date_modified is left alone: the reference cannot confirm that sub-resource
    writes move it.
    """
    with store.lock:
        table = store.table("products")
        old = table.get(pid)
        if old is None:
            fail(404, "The requested product was not found.")
        prod = clone(old)
        out = change(prod)
        table.put(prod)
    touched(req, "products", pid)
    return out


def find(items, rid, what):
    for i, item in enumerate(items):
        if item["id"] == rid:
            return i, item
    fail(404, "The requested %s was not found." % what)


def one(item, status=200):
    return json_resp(status, {"data": item, "meta": {}})


def sub_post(member, build):
    def handler(store, req, m):
        body = want_object(body_of(req))
        check_read_only(body, ("id",))

        def change(prod):
            item = build(store, prod, body)
            prod[member].append(item)
            if member == "variants":  # the product's stock is the sum of its variants'
                sync_inventory(prod)
            return one(item)
        return change_product(store, req, int(m.group(1)), change)
    return handler


def sub_put(member, build, what):
    def handler(store, req, m):
        body = want_object(body_of(req))
        rid = int(m.group(2))

        def change(prod):
            i, old = find(prod[member], rid, what)
            merged = dict(old)
            merged.update({k: v for k, v in body.items() if k != "id"})
            prod[member][i] = build(store, prod, merged, rid)
            return one(prod[member][i])
        return change_product(store, req, int(m.group(1)), change)
    return handler


def sub_delete(member, what):
    def handler(store, req, m):
        rid = int(m.group(2))

        def change(prod):
            i, _ = find(prod[member], rid, what)
            del prod[member][i]
            if member == "variants":
                sync_inventory(prod)
            return Resp(204)
        return change_product(store, req, int(m.group(1)), change)
    return handler


def build_image(store, prod, body, own=None):
    if own is None:
        return new_image(store, prod, body)
    img = {k: body[k] for k in ("id", "product_id", "is_thumbnail", "sort_order", "description",
                                "image_file", "url_zoom", "url_standard", "url_thumbnail",
                                "url_tiny", "date_modified")}
    if body.get("image_url"):
        fresh = new_image(store, prod, body)
        for k in ("image_file", "url_zoom", "url_standard", "url_thumbnail", "url_tiny"):
            img[k] = fresh[k]
    img["date_modified"] = iso_now()
    return img


def build_variant(store, prod, body, own=None):
    if own is None:
        check_required(body, ("sku", "option_values"))
        check_variant_skus(store, [body["sku"]], prod["id"])
        var = new_variant(store, prod, body, prod["options"], None)
        combo = sorted(ov["id"] for ov in var["option_values"])
        for v in prod["variants"]:
            if sorted(ov["id"] for ov in v["option_values"]) == combo:
                fail(409, "A variant with these option values already exists.",
                     {"option_values": "variant %d has the same option values" % v["id"]})
        if prod.get("base_variant_id") and var["option_values"]:
            # the first real variant replaces the option-less base variant
            prod["variants"] = [v for v in prod["variants"] if v["id"] != prod[
                "base_variant_id"]]
            prod["base_variant_id"] = None
            prod["inventory_tracking"] = "variant"
        return var
    return body


def put_variant(store, req, m):
    body = want_object(body_of(req))
    check_read_only(body, VARIANT_RO)
    vid = int(m.group(2))

    def change(prod):
        i, old = find(prod["variants"], vid, "variant")
        if "option_values" in body:
            given = resolve_option_values(store, prod, prod["options"], body["option_values"],
                                          None, create=False)
            if [g["id"] for g in given] != [o["id"] for o in old["option_values"]]:
                fail(422, "A variant's option values cannot be changed.",
                     {"option_values": "delete the variant and create a new one instead"})
        if body.get("sku") and body["sku"] != old["sku"]:
            check_variant_skus(store, [body["sku"]], prod["id"], vid)
        var = dict(old)
        var.update({k: clone(v) for k, v in body.items() if k not in ("id", "option_values")})
        var["calculated_price"] = var["price"]
        var["calculated_weight"] = var["weight"]
        prod["variants"][i] = var
        if var["id"] == prod.get("base_variant_id"):
            for k in ("sku", "inventory_level"):
                if k in body:
                    prod[k] = var[k]
        sync_inventory(prod)
        return one(var)
    return change_product(store, req, int(m.group(1)), change)


def post_option_value(store, req, m):
    body = want_object(body_of(req))
    check_read_only(body, ("id",))
    oid = int(m.group(2))

    def change(prod):
        _, opt = find(prod["options"], oid, "option")
        val = new_option_value(store, opt, body)
        opt["option_values"].append(val)
        return one(val)
    return change_product(store, req, int(m.group(1)), change)


def put_option_value(store, req, m):
    body = want_object(body_of(req))
    oid, vid = int(m.group(2)), int(m.group(3))

    def change(prod):
        _, opt = find(prod["options"], oid, "option")
        i, old = find(opt["option_values"], vid, "option value")
        merged = dict(old)
        merged.update({k: v for k, v in body.items() if k != "id"})
        opt["option_values"][i] = new_option_value(store, opt, merged, own=vid)
        relabel_variants(prod, opt, opt["option_values"][i])
        return one(opt["option_values"][i])
    return change_product(store, req, int(m.group(1)), change)


def relabel_variants(prod, opt, val):
    for var in prod["variants"]:
        for ov in var["option_values"]:
            if ov["id"] == val["id"]:
                ov["label"] = val["label"]


def delete_option_value(store, req, m):
    oid, vid = int(m.group(2)), int(m.group(3))

    def change(prod):
        _, opt = find(prod["options"], oid, "option")
        i, _ = find(opt["option_values"], vid, "option value")
        del opt["option_values"][i]
        # variants built on a deleted value go with it, as in the control panel
        prod["variants"] = [v for v in prod["variants"]
                            if all(ov["id"] != vid for ov in v["option_values"])]
        sync_inventory(prod)
        return Resp(204)
    return change_product(store, req, int(m.group(1)), change)


def put_option(store, req, m):
    body = want_object(body_of(req))
    oid = int(m.group(2))

    def change(prod):
        i, old = find(prod["options"], oid, "option")
        opt = dict(old)
        opt.update({k: clone(v) for k, v in body.items()
                    if k in ("display_name", "type", "sort_order", "config", "name")})
        prod["options"][i] = opt
        for var in prod["variants"]:
            for ov in var["option_values"]:
                if ov["option_id"] == oid:
                    ov["option_display_name"] = opt["display_name"]
        return one(opt)
    return change_product(store, req, int(m.group(1)), change)


def delete_option(store, req, m):
    oid = int(m.group(2))

    def change(prod):
        i, _ = find(prod["options"], oid, "option")
        del prod["options"][i]
        prod["variants"] = [v for v in prod["variants"]
                            if all(ov["option_id"] != oid for ov in v["option_values"])]
        sync_inventory(prod)
        return Resp(204)
    return change_product(store, req, int(m.group(1)), change)


def post_modifier_value(store, req, m):
    body = want_object(body_of(req))
    check_read_only(body, ("id",))
    mid = int(m.group(2))

    def change(prod):
        _, mod = find(prod["modifiers"], mid, "modifier")
        val = new_modifier_value(store, mod, body)
        mod["option_values"].append(val)
        return one(val)
    return change_product(store, req, int(m.group(1)), change)


def put_modifier_value(store, req, m):
    body = want_object(body_of(req))
    mid, vid = int(m.group(2)), int(m.group(3))

    def change(prod):
        _, mod = find(prod["modifiers"], mid, "modifier")
        i, old = find(mod["option_values"], vid, "modifier value")
        merged = dict(old)
        merged.update({k: v for k, v in body.items() if k != "id"})
        mod["option_values"][i] = new_modifier_value(store, mod, merged, own=vid)
        return one(mod["option_values"][i])
    return change_product(store, req, int(m.group(1)), change)


def delete_modifier_value(store, req, m):
    mid, vid = int(m.group(2)), int(m.group(3))

    def change(prod):
        _, mod = find(prod["modifiers"], mid, "modifier")
        i, _ = find(mod["option_values"], vid, "modifier value")
        del mod["option_values"][i]
        return Resp(204)
    return change_product(store, req, int(m.group(1)), change)


def build_modifier(store, prod, body, own=None):
    if own is None:
        return new_modifier(store, prod, body)
    mod = dict(body)
    mod["id"] = own
    return mod


def build_option(store, prod, body, own=None):
    return new_option(store, prod, body)


# ---- brands ----------------------------------------------------------------------------------

BRAND_DEFAULTS = [("id", None), ("name", ""), ("page_title", ""), ("meta_keywords", []),
                  ("meta_description", ""), ("image_url", ""), ("search_keywords", ""),
                  ("custom_url", None)]


def brand_from(store, body, old, bid):
    brand = clone(old) if old else {k: clone(d) for k, d in BRAND_DEFAULTS}
    for k, _ in BRAND_DEFAULTS:
        if k in body and k not in ("id", "image_url"):
            brand[k] = clone(body[k])
    brand["id"] = bid
    if not brand["custom_url"]:
        brand["custom_url"] = {"url": "/brands/%s.html" % slug(brand["name"]),
                               "is_customized": False}
    if body.get("image_url"):
        fetch_image(store, body["image_url"])
        brand["image_url"] = own_image_stem(store, "brands", "%d.png" % bid)
    elif "image_url" in body:
        brand["image_url"] = ""
    table = store.table("brands")
    for rid in table.ids():
        if rid != bid and table.get(rid)["name"] == brand["name"]:
            fail(409, "The brand name is a duplicate.",
                 {"name": "brand name '%s' is already used by brand %d" % (brand["name"], rid)})
    return brand


def post_brand(store, req, m):
    body = want_object(body_of(req))
    check_read_only(body, ("id",))
    check_required(body, ("name",))
    with store.lock:
        table = store.table("brands")
        brand = brand_from(store, body, None, table.next_id())
        table.put(brand)
    touched(req, "brands", brand["id"])
    return one(brand)


def put_brand(store, req, m):
    body = want_object(body_of(req))
    bid = int(m.group(1))
    with store.lock:
        table = store.table("brands")
        old = table.get(bid)
        if old is None:
            fail(404, "The requested brand was not found.")
        if "name" in body and not body["name"]:
            fail(422, "The brand name is required.", {"name": "name is required"})
        brand = brand_from(store, body, old, bid)
        table.put(brand)
    touched(req, "brands", bid)
    return one(brand)


def delete_brand(store, req, m):
    bid = int(m.group(1))
    with store.lock:
        if not store.table("brands").delete(bid):
            fail(404, "The requested brand was not found.")
    touched(req, "brands", bid)
    return Resp(204)


# ---- category trees and categories ---------------------------------------------------------

TREES_MAX = 50
CATEGORY_DEFAULTS = [("category_id", None), ("parent_id", 0), ("tree_id", None), ("name", ""),
                     ("description", ""), ("views", 0), ("sort_order", 0), ("page_title", ""),
                     ("meta_keywords", []), ("meta_description", ""), ("layout_file", ""),
                     ("image_url", ""), ("is_visible", True), ("search_keywords", ""),
                     ("default_product_sort", "use_store_settings"), ("url", None)]


def put_trees(store, req, m):
    items = want_array(body_of(req), TREES_MAX, "tree")
    with store.lock:
        table = store.table("category_trees")
        out = []
        for i, body in enumerate(items):
            if "id" in body:
                old = table.get(body["id"])
                if old is None:
                    fail(422, "The category tree does not exist.", {"%d.id" % i: "no tree"})
                if "channels" in body:
                    fail(422, "channels cannot be changed on an existing tree.",
                         {"%d.channels" % i: "must be absent on update"})
                tree = dict(old)
                tree.update({k: body[k] for k in ("name",) if k in body})
            else:
                errs = missing(body, ("name", "channels"), "%d." % i)
                if errs:
                    fail(422, "The category tree is missing required fields.", errs)
                tree = {"id": table.next_id() + len([t for t in out if t.get("new")]),
                        "name": body["name"], "channels": list(body["channels"]), "new": True}
            out.append(tree)
        for tree in out:
            tree.pop("new", None)
            table.put(tree)
            touched(req, "category_trees", tree["id"])
    return json_resp(200, {"data": out, "meta": {}})


def sibling_names(table, tree_id, parent_id, own=None):
    return set(c["name"] for c in (table.get(i) for i in table.ids())
               if c["tree_id"] == tree_id and c["parent_id"] == parent_id and
               c["category_id"] != own)


def category_from(store, body, old, cid):
    """A category record from an item body; ItemError when the item must fail."""
    table = store.table("categories")
    cat = clone(old) if old else {k: clone(d) for k, d in CATEGORY_DEFAULTS}
    for k, _ in CATEGORY_DEFAULTS:
        if k in body and k != "category_id":
            cat[k] = clone(body[k])
    cat["category_id"] = cid
    parent = cat.get("parent_id") or 0
    if parent:
        prec = table.get(parent)
        if prec is None:
            raise ItemError(422, "parent category %r does not exist" % parent)
        if cat.get("tree_id") not in (None, prec["tree_id"]) and "tree_id" in body:
            raise ItemError(422, "parent %d is in another tree" % parent)
        cat["tree_id"] = prec["tree_id"]
    if store.table("category_trees").get(cat.get("tree_id")) is None:
        raise ItemError(422, "category tree %r does not exist" % cat.get("tree_id"))
    if not isinstance(cat["name"], str) or not 1 <= len(cat["name"]) <= 50:
        raise ItemError(422, "name must be 1 to 50 characters")
    if cat["name"] in sibling_names(table, cat["tree_id"], parent, cid):
        raise ItemError(409, "category name '%s' already exists under parent %d in tree %d"
                        % (cat["name"], parent, cat["tree_id"]))
    if not cat.get("url"):
        cat["url"] = {"path": "/%s/" % slug(cat["name"]), "is_customized": False}
    return cat


def post_tree_categories(store, req, m):
    items = want_array(body_of(req), 0, "category")
    data, errors = [], []
    with store.lock:
        table = store.table("categories")
        for i, body in enumerate(items):
            try:
                if "category_id" in body:
                    raise ItemError(422, "category_id is read-only on create")
                if not body.get("name") or not (body.get("tree_id") or body.get("parent_id")):
                    raise ItemError(422, "name and tree_id or parent_id are required")
                cat = category_from(store, body, None, table.next_id())
            except ItemError as exc:
                errors.append((i, exc.status, exc.message))
                continue
            table.put(cat)
            touched(req, "categories", cat["category_id"])
            data.append(cat)
    return batch_response(data, errors, len(items), 201)


def put_tree_categories(store, req, m):
    items = want_array(body_of(req), 0, "category")
    data, errors = [], []
    with store.lock:
        table = store.table("categories")
        for i, body in enumerate(items):
            try:
                old = table.get(body.get("category_id"))
                if old is None:
                    raise ItemError(422, "category %r does not exist" % body.get("category_id"))
                cat = category_from(store, body, old, old["category_id"])
            except ItemError as exc:
                errors.append((i, exc.status, exc.message))
                continue
            table.put(cat)
            touched(req, "categories", cat["category_id"])
            data.append(cat)
    return batch_response(data, errors, len(items), 200)


def delete_tree_categories(store, req, m):
    if "category_id:in" not in req.query:
        fail(422, "A category_id:in filter is required to delete categories.",
             {"category_id:in": "required"})
    with store.lock:
        table = store.table("categories")
        doomed = set(id_filters(req, table.ids(), prefix="category_id"))
        grow = True
        while grow:  # children go with their parent
            kids = set(i for i in table.ids() if table.get(i)["parent_id"] in doomed)
            grow = not kids <= doomed
            doomed |= kids
        holder = first_product_in(store, doomed)
        if holder is not None:
            fail(422, "A category that still holds products cannot be deleted.",
                 {"category_id": "product %d is in category %d" % holder})
        for cid in sorted(doomed):
            table.delete(cid)
            touched(req, "categories", cid)
    return Resp(202)


def first_product_in(store, cats):
    table = store.table("products")
    rows = table.overlay if isinstance(table, LazyProducts) else table.rows
    for pid, rec in rows.items():
        for c in rec.get("categories") or []:
            if c in cats:
                return pid, c
    if isinstance(table, LazyProducts):
        # a bench product sits in its generated category unless it was changed
        for c in cats:
            if c in table.cats:
                for pid in table.ids():
                    if pid not in table.overlay and table.cats[pid % len(table.cats)] == c:
                        return pid, c
    return None


# ---- reads a restore needs -------------------------------------------------------------------

def get_brand(store, req, m):
    """One brand by id; 404 when missing."""
    with store.lock:
        brand = store.table("brands").get(int(m.group(1)))
    if brand is None:
        fail(404, "The requested brand was not found.")
    return one(brand)


# ---- routing ---------------------------------------------------------------------------------

NUM = r"(\d+)"
P = r"/v3/catalog/products/%s" % NUM


def _sub_routes(path, member, build, what):
    return [("POST", P + "/" + path, sub_post(member, build), "products", None),
            ("PUT", P + "/%s/%s" % (path, NUM), sub_put(member, build, what), "products", None),
            ("DELETE", P + "/%s/%s" % (path, NUM), sub_delete(member, what), "products", None)]


def _build_cf(store, prod, body, own=None):
    return new_custom_field(store, prod, body, own)


def _build_bulk(store, prod, body, own=None):
    return new_bulk_rule(store, body, own)


def _build_video(store, prod, body, own=None):
    return new_video(store, prod, body, own)


ROUTES = [
    ("POST", r"/v3/catalog/products", post_product, "products", None),
    ("PUT", r"/v3/catalog/products", put_products_batch, "products", None),
    ("DELETE", r"/v3/catalog/products", delete_products, "products", None),
    ("PUT", P, put_product, "products", None),
    ("DELETE", P, delete_product, "products", None),
    ("POST", P + "/variants", sub_post("variants", build_variant), "products", None),
    ("PUT", P + "/variants/" + NUM, put_variant, "products", None),
    ("DELETE", P + "/variants/" + NUM, sub_delete("variants", "variant"), "products", None),
    ("POST", P + "/options", sub_post("options", build_option), "products", None),
    ("PUT", P + "/options/" + NUM, put_option, "products", None),
    ("DELETE", P + "/options/" + NUM, delete_option, "products", None),
    ("POST", P + "/options/%s/values" % NUM, post_option_value, "products", None),
    ("PUT", P + "/options/%s/values/%s" % (NUM, NUM), put_option_value, "products", None),
    ("DELETE", P + "/options/%s/values/%s" % (NUM, NUM), delete_option_value, "products", None),
    ("POST", P + "/modifiers/%s/values" % NUM, post_modifier_value, "products", None),
    ("PUT", P + "/modifiers/%s/values/%s" % (NUM, NUM), put_modifier_value, "products", None),
    ("DELETE", P + "/modifiers/%s/values/%s" % (NUM, NUM), delete_modifier_value, "products",
     None),
    ("POST", r"/v3/catalog/brands", post_brand, "products", None),
    ("PUT", r"/v3/catalog/brands/" + NUM, put_brand, "products", None),
    ("DELETE", r"/v3/catalog/brands/" + NUM, delete_brand, "products", None),
    ("GET", r"/v3/catalog/brands/" + NUM, get_brand, "products", None),
    ("PUT", r"/v3/catalog/trees", put_trees, "products", None),
    ("POST", r"/v3/catalog/trees/categories", post_tree_categories, "products", None),
    ("PUT", r"/v3/catalog/trees/categories", put_tree_categories, "products", None),
    ("DELETE", r"/v3/catalog/trees/categories", delete_tree_categories, "products", None),
]
ROUTES += _sub_routes("images", "images", build_image, "image")
ROUTES += _sub_routes("custom-fields", "custom_fields", _build_cf, "custom field")
ROUTES += _sub_routes("bulk-pricing-rules", "bulk_pricing_rules", _build_bulk,
                      "bulk pricing rule")
ROUTES += _sub_routes("videos", "videos", _build_video, "video")
ROUTES += _sub_routes("modifiers", "modifiers", build_modifier, "modifier")

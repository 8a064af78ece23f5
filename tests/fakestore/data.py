"""Record generation for the fake store's presets.

Everything is drawn from random.Random with fixed seeds, so a preset and seed always give the
same records. Records are kept in the shape o7 stores in a backup (the "dump shape"); the API
layer derives list/detail renderings from it by dropping or replacing members.
"""

import datetime
import email.utils
import random
import uuid

from jsonraw import Raw

EPOCH = datetime.datetime(2021, 1, 4, 9, 0, 0, tzinfo=datetime.timezone.utc)

FIRST = ["Ada", "Bram", "Chloé", "Dmitri", "Elif", "Femi", "Greta", "Hiro", "Inès", "Jonas",
         "Kaia", "Luca", "Maya", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tara"]
LAST = ["Andersen", "Baker", "Costa", "Dubois", "Evans", "Fischer", "García", "Hughes",
        "Ito", "Jensen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Peters"]
ADJ = ["Classic", "Organic", "Rustic", "Modern", "Vintage", "Compact", "Deluxe", "Everyday",
       "Handmade", "Lightweight", "Premium", "Travel", "Urban", "Woven", "Nordic", "Coastal"]
NOUN = ["Mug", "Backpack", "Lamp", "Scarf", "Notebook", "Teapot", "Blanket", "Candle",
        "Bottle", "Apron", "Planter", "Wallet", "Sneaker", "Jacket", "Board", "Basket"]
WORDS = ["soft", "durable", "bright", "quiet", "warm", "crisp", "fresh", "simple", "bold",
         "smooth", "sturdy", "gentle", "clean", "light", "deep", "clear"]
CITIES = [("Austin", "Texas", "US", "United States", "78701"),
          ("Leeds", "West Yorkshire", "GB", "United Kingdom", "LS1 4AP"),
          ("Lyon", "Rhône", "FR", "France", "69002"),
          ("Toronto", "Ontario", "CA", "Canada", "M5V 2T6"),
          ("Sydney", "New South Wales", "AU", "Australia", "2000")]
STATUSES = {0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped", 4: "Refunded",
            5: "Cancelled", 6: "Declined", 7: "Awaiting Payment", 8: "Awaiting Pickup",
            9: "Awaiting Shipment", 10: "Completed", 11: "Awaiting Fulfillment",
            12: "Manual Verification Required", 13: "Disputed", 14: "Partially Refunded"}
OPTION_VALUES = {"Size": ["S", "M", "L", "XL", "XXL", "3XL"],
                 "Color": ["Red", "Blue", "Green", "Black"]}
COLOR_HEX = {"Red": "#C0392B", "Blue": "#2E86C1", "Green": "#28B463", "Black": "#1C2833"}

SAMPLE_COUNTS = {"products": 300, "brands": 25, "categories": 40, "categories2": 5,
                 "customers": 400, "orders": 500, "pages": 30, "blog_posts": 40,
                 "redirects": 60, "coupons": 20, "themes": 2}
BENCH_COUNTS = {"brands": 5, "categories": 6, "categories2": 2, "customers": 10,
                "orders": 10, "pages": 5, "blog_posts": 3, "redirects": 3, "coupons": 2,
                "themes": 2}
EMPTY_COUNTS = {k: 0 for k in SAMPLE_COUNTS}
EMPTY_COUNTS["themes"] = 1


class Ctx:
    """What generation needs to know about the store: its hash, seed and public base URL."""

    def __init__(self, store_hash, seed, base_url):
        self.hash = store_hash
        self.seed = seed
        self.base = base_url
        self.api = "%s/stores/%s" % (base_url, store_hash)
        self.domain = "https://%s.example" % store_hash


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def iso_z(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822(dt):
    return email.utils.format_datetime(dt)


def when(rng, days=900):
    return EPOCH + datetime.timedelta(seconds=rng.randrange(days * 86400))


def money(x):
    return "%.4f" % x


def slug(text):
    out = "".join(c.lower() if c.isalnum() else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


class SeqAlloc:
    """Ids for sub-records of the sample store: one ascending counter per kind."""

    def __init__(self):
        self.next_ids = {}

    def __call__(self, kind):
        n = self.next_ids.get(kind, 0) + 1
        self.next_ids[kind] = n
        return n


class BenchAlloc:
    """Ids derived from the product id alone, so a bench product needs no shared state."""

    def __init__(self, pid):
        self.base = pid * 16
        self.used = {}

    def __call__(self, kind):
        k = self.used.get(kind, 0)
        self.used[kind] = k + 1
        return self.base + k


# ---- products -----------------------------------------------------------------------------

def sample_shape(rng):
    r = rng.random()
    if r < 0.35:
        opts = []
    elif r < 0.75:
        opts = [("Size", rng.randint(2, 6))]
    else:
        opts = [("Size", rng.randint(2, 3)), ("Color", rng.randint(2, 4))]
    return {"options": opts, "images": rng.randint(1, 4), "custom_fields": rng.randint(0, 3),
            "bulk": 0 if rng.random() < 0.8 else rng.randint(1, 3),
            "modifier": rng.random() < 0.15,
            "videos": 0 if rng.random() < 0.9 else rng.randint(1, 2)}


def bench_shape(rng, pid):
    return {"options": [("Size", rng.randint(2, 4))], "images": 2, "custom_fields": 2,
            "bulk": 0, "modifier": pid % 25 == 0, "videos": 0}


def _options(rng, pid, alloc, layout):
    options = []
    for sort, (name, n) in enumerate(layout):
        values = []
        for i, label in enumerate(OPTION_VALUES[name][:n]):
            data = {"colors": [COLOR_HEX[label]]} if name == "Color" else None
            values.append({"id": alloc("option_value"), "label": label, "sort_order": i,
                           "value_data": data, "is_default": False})
        options.append({"id": alloc("option"), "product_id": pid, "name": "%s-%d" % (name, pid),
                        "display_name": name,
                        "type": "swatch" if name == "Color" else "rectangles",
                        "sort_order": sort, "config": {}, "option_values": values})
    return options


def _combos(options):
    combos = [[]]
    for opt in options:
        combos = [c + [(opt, v)] for c in combos for v in opt["option_values"]]
    return combos


def _variant(rng, pid, vid, sku, price, weight, combo):
    return {"id": vid, "product_id": pid, "sku": sku, "sku_id": vid if combo else None,
            "price": price, "calculated_price": price, "sale_price": None,
            "retail_price": None, "map_price": None, "weight": weight,
            "calculated_weight": weight, "width": None, "height": None, "depth": None,
            "is_free_shipping": False, "fixed_cost_shipping_price": None,
            "purchasing_disabled": False, "purchasing_disabled_message": "", "image_url": "",
            "cost_price": None, "upc": "", "mpn": "", "gtin": "",
            "inventory_level": rng.randint(0, 80), "inventory_warning_level": 0,
            "bin_picking_number": "",
            "option_values": [{"id": v["id"], "label": v["label"], "option_id": o["id"],
                               "option_display_name": o["display_name"]} for o, v in combo]}


def _images(rng, ctx, pid, alloc, n, name, modified):
    images = []
    for i in range(n):
        iid = alloc("image")
        stem = "%s/_img/%s/products/%d/%d/%s" % (ctx.base, ctx.hash, pid, iid, slug(name))
        images.append({"id": iid, "product_id": pid, "is_thumbnail": i == 0, "sort_order": i,
                       "description": "" if i else name,
                       "image_file": "%s/%d/%s__%d.png" % (slug(name)[:1] or "x", pid,
                                                            slug(name), iid),
                       "url_zoom": stem + ".1280.1280.png",
                       "url_standard": stem + ".386.513.png",
                       "url_thumbnail": stem + ".220.290.png",
                       "url_tiny": stem + ".44.58.png",
                       "date_modified": iso(modified)})
    return images


def _modifier(rng, pid, alloc):
    mid = alloc("modifier")
    values = []
    for i, label in enumerate(["Yes", "No"]):
        values.append({"id": alloc("modifier_value"), "option_id": mid, "label": label,
                       "sort_order": i, "value_data": {"checked_value": i == 0},
                       "is_default": i == 1,
                       "adjusters": {"price": {"adjuster": "relative",
                                               "adjuster_value": 4.5} if i == 0 else None,
                                     "weight": None, "image_url": "",
                                     "purchasing_disabled": {"status": False, "message": ""}}})
    return {"id": mid, "product_id": pid, "name": "Gift wrap-%d" % pid,
            "display_name": "Gift wrap", "type": "checkbox", "required": False,
            "sort_order": 0, "config": {"checkbox_label": "Wrap it", "checked_by_default": False},
            "option_values": values}


def build_product(rng, ctx, pid, alloc, shape, name, sku, cats, brand_id):
    """One product in dump shape: the list item plus every include member."""
    created = when(rng)
    modified = created + datetime.timedelta(seconds=rng.randrange(90 * 86400))
    price = round(rng.uniform(4, 480), 2)
    weight = round(rng.uniform(0.1, 12), 2)
    options = _options(rng, pid, alloc, shape["options"])
    variants = []
    for n, combo in enumerate(_combos(options)):
        vsku = sku if not combo else "%s-%s" % (sku, "-".join(v["label"] for _, v in combo))
        variants.append(_variant(rng, pid, alloc("variant"), vsku, price, weight, combo))
    product = {
        "id": pid, "name": name, "type": "physical", "sku": sku,
        "description": "<p>%s %s</p>" % (name, sentence(rng, 12)),
        "weight": weight, "width": 0, "depth": 0, "height": 0, "price": price,
        "cost_price": round(price * 0.4, 2), "retail_price": 0, "sale_price": 0,
        "map_price": 0, "tax_class_id": 0, "product_tax_code": "", "calculated_price": price,
        "categories": cats, "brand_id": brand_id, "option_set_id": None,
        "option_set_display": "right", "inventory_level": sum(
            v["inventory_level"] for v in variants),
        "inventory_warning_level": 0, "inventory_tracking": "variant" if options else "none",
        "reviews_rating_sum": rng.randint(0, 40), "reviews_count": rng.randint(0, 9),
        "total_sold": rng.randint(0, 500), "fixed_cost_shipping_price": 0,
        "is_free_shipping": rng.random() < 0.1, "is_visible": rng.random() < 0.92,
        "is_featured": rng.random() < 0.1, "related_products": [-1], "warranty": "",
        "bin_picking_number": "", "layout_file": "product.html", "upc": "", "mpn": "",
        "gtin": "", "date_last_imported": None, "search_keywords": "",
        "availability": "available", "availability_description": "",
        "gift_wrapping_options_type": "any", "gift_wrapping_options_list": [],
        "sort_order": 0, "condition": "New", "is_condition_shown": False,
        "order_quantity_minimum": 0, "order_quantity_maximum": 0, "page_title": "",
        "meta_keywords": [], "meta_description": "", "date_created": iso(created),
        "date_modified": iso(modified), "view_count": rng.randint(0, 5000),
        "preorder_release_date": None, "preorder_message": "", "is_preorder_only": False,
        "is_price_hidden": False, "price_hidden_label": "",
        "custom_url": {"url": "/%s/" % slug(name), "is_customized": False},
        "base_variant_id": variants[0]["id"] if not options else None,
        "open_graph_type": "product", "open_graph_title": "", "open_graph_description": "",
        "open_graph_use_meta_description": True, "open_graph_use_product_name": True,
        "open_graph_use_image": True,
        "variants": variants,
        "images": _images(rng, ctx, pid, alloc, shape["images"], name, modified),
        "custom_fields": [{"id": alloc("custom_field"), "name": n, "value": v} for n, v in
                          [("Material", rng.choice(["cotton", "oak", "steel", "wool"])),
                           ("Origin", rng.choice(["Portugal", "Japan", "Kenya", "Peru"])),
                           ("Care", "Hand wash")][:shape["custom_fields"]]],
        "bulk_pricing_rules": [{"id": alloc("bulk_rule"), "quantity_min": 5 * (i + 1),
                                "quantity_max": 5 * (i + 2) - 1 if i + 1 < shape["bulk"] else 0,
                                "type": "percent", "amount": 5 * (i + 1)}
                               for i in range(shape["bulk"])],
        "options": options,
        "modifiers": [_modifier(rng, pid, alloc)] if shape["modifier"] else [],
        "videos": [{"id": alloc("video"), "title": "%s video %d" % (name, i + 1),
                    "description": sentence(rng, 6), "sort_order": i, "type": "youtube",
                    "video_id": "vid%08x" % rng.getrandbits(32), "product_id": pid,
                    "length": "0:%02d" % rng.randint(10, 59)} for i in range(shape["videos"])],
    }
    if product["related_products"] == [-1] and rng.random() < 0.5:
        product["related_products"] = []
    return product


def product_name(rng, pid):
    return "%s %s %d" % (rng.choice(ADJ), rng.choice(NOUN), pid)


def bench_product(ctx, pid, cats, brands):
    """Bench product pid, derived from (seed, pid) alone."""
    rng = random.Random((ctx.seed << 40) ^ pid)
    shape = bench_shape(rng, pid)
    return build_product(rng, ctx, pid, BenchAlloc(pid), shape, bench_name(pid),
                         bench_sku(pid), [cats[pid % len(cats)]] if cats else [],
                         brands[pid % len(brands)] if brands else 0)


def bench_name(pid):
    return "Bench Product %07d" % pid


def bench_sku(pid):
    return "BP-%07d" % pid


def apply_product_traps(p, q):
    """JSON-fidelity traps (documented in README.md): p and q are two sample products."""
    p["name"] = "Caf\u00e9 Cre\u0300me \U0001F370 \u05e9\u05dc\u05d5\u05dd Deluxe"
    p["price"] = Raw("19.989999999999998", 19.99)
    p["calculated_price"] = 19.99
    p["cost_price"] = 0.1 + 0.2
    p["view_count"] = 9007199254740993
    p["description"] = ("<p>\u0645\u0631\u062d\u0628\u0627 \u2014 "
                        "\u05e9\u05dc\u05d5\u05dd \U0001F44B\u2028second line</p>")
    p["custom_url"] = {"url": Raw('"\\/cafe-creme-deluxe\\/"', "/cafe-creme-deluxe/"),
                       "is_customized": True}
    p["warranty"] = "Two years\tparts\u0001labour\nsee terms \u2028 \"quoted\" \\ end"
    p["search_keywords"] = Raw('"line\\u2028sep"', "line\u2028sep")
    p["related_products"] = []
    p["meta_keywords"] = []
    q["name"] = "Trap Numbers %d" % q["id"]
    q["width"] = Raw("1.0e2", 100.0)
    q["fixed_cost_shipping_price"] = Raw("-0.0", -0.0)
    q["depth"] = Raw("2.50", 2.5)
    q["reviews_rating_sum"] = 18446744073709551615


# ---- catalog structure --------------------------------------------------------------------

def gen_trees():
    return [{"id": 1, "name": "Default", "channels": [1]},
            {"id": 2, "name": "Second storefront", "channels": [2]}]


def _category(rng, cid, parent, tree, name, sort):
    return {"category_id": cid, "parent_id": parent, "tree_id": tree, "name": name,
            "description": "<p>%s</p>" % sentence(rng, 8), "views": rng.randint(0, 900),
            "sort_order": sort, "page_title": "", "meta_keywords": [],
            "meta_description": "", "layout_file": "category.html",
            "image_url": "", "is_visible": rng.random() < 0.95, "search_keywords": "",
            "default_product_sort": "use_store_settings",
            "url": {"path": "/%s/" % slug(name), "is_customized": False}}


def gen_categories(rng, n_main, n_second):
    """Tree 1: n_main categories, depth up to 3. Tree 2: n_second top-level ones."""
    cats, next_id = [], [0]

    def add(parent, tree, name, sort):
        next_id[0] += 1
        cats.append(_category(rng, next_id[0], parent, tree, name, sort))
        return next_id[0]

    roots = []
    for i in range(min(6, n_main)):
        roots.append(add(0, 1, "%s %ss" % (ADJ[i], NOUN[i]), i))
    level2 = []
    i = 0
    while len(cats) < n_main and roots:
        parent = roots[i % len(roots)]
        level2.append(add(parent, 1, "%s %s %d" % (rng.choice(ADJ), rng.choice(NOUN), i), i))
        i += 1
        if len(level2) % 3 == 0 and len(cats) < n_main:
            add(level2[-2], 1, "%s Sale %d" % (rng.choice(WORDS).title(), i), i)
    for j in range(n_second):
        add(0, 2, "Outlet %s" % NOUN[j], j)
    return cats


def gen_brands(rng, ctx, n):
    names = ["Alder", "Brightway", "Copperleaf", "Driftwood", "Everstone", "Fjord", "Granite",
             "Harbor", "Ivy Lane", "Juniper", "Kestrel", "Lumen", "Maple & Co", "Northwind",
             "Oakridge", "Pinecrest", "Quarry", "Riverbend", "Saltmarsh", "Tidewater",
             "Upland", "Vale", "Willow", "Yarrow", "Zephyr"]
    out = []
    for i in range(n):
        name = names[i % len(names)] + ("" if i < len(names) else " %d" % i)
        out.append({"id": i + 1, "name": name, "page_title": name,
                    "meta_keywords": [name.lower()] if i % 3 else [],
                    "meta_description": "%s products" % name,
                    "image_url": "" if i % 4 else "%s/_img/%s/brands/%d.png" % (ctx.base, ctx.hash,
                                                                                i + 1),
                    "search_keywords": "", "custom_url": {"url": "/brands/%s.html" % slug(name),
                                                          "is_customized": False}})
    return out


# ---- customers ----------------------------------------------------------------------------

ATTRIBUTES = [(1, "Loyalty tier", lambda r: r.choice(["bronze", "silver", "gold"])),
              (2, "Shoe size", lambda r: str(r.randint(36, 46))),
              (3, "Birthday", lambda r: "19%02d-%02d-%02d" % (r.randint(50, 99),
                                                              r.randint(1, 12),
                                                              r.randint(1, 28)))]


def address(rng, aid, cid, first, last):
    city, state, cc, country, zipc = rng.choice(CITIES)
    return {"id": aid, "address1": "%d %s Street" % (rng.randint(1, 999), rng.choice(LAST)),
            "address2": "" if rng.random() < 0.7 else "Unit %d" % rng.randint(1, 40),
            "address_type": rng.choice(["residential", "commercial"]), "city": city,
            "company": "", "country": country, "country_code": cc, "customer_id": cid,
            "first_name": first, "last_name": last,
            "phone": "+1 555 %04d" % rng.randint(0, 9999), "postal_code": zipc,
            "state_or_province": state, "form_fields": []}


def build_customer(rng, cid, alloc, email_=None):
    """Customer cid in dump shape; sub-record ids from alloc ("address", "attribute")."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    created = when(rng)
    modified = created + datetime.timedelta(seconds=rng.randrange(60 * 86400))
    addrs = []
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):
        addrs.append(address(rng, alloc("address"), cid, first, last))
    attrs = []
    for aid, _name, value in ATTRIBUTES:
        if rng.random() < 0.3:
            attrs.append({"id": alloc("attribute"), "attribute_id": aid,
                          "attribute_value": value(rng), "customer_id": cid,
                          "date_created": iso_z(created), "date_modified": iso_z(modified)})
    credit = round(rng.choice([0, 0, 0, 5, 12.5, 40]), 2)
    return {
        "id": cid, "authentication": {"force_password_reset": rng.random() < 0.05},
        "company": "" if rng.random() < 0.8 else "%s Ltd" % last,
        "customer_group_id": rng.choice([0, 0, 1, 2]),
        "email": email_ or "%s.%s.%d@example.com" % (slug(first), slug(last), cid),
        "first_name": first, "last_name": last, "notes": "",
        "phone": "" if rng.random() < 0.3 else "+1 555 %04d" % rng.randint(0, 9999),
        "registration_ip_address": "192.0.2.%d" % rng.randint(1, 254),
        "tax_exempt_category": "", "date_created": iso_z(created),
        "date_modified": iso_z(modified),
        "accepts_product_review_abandoned_cart_emails": rng.random() < 0.4,
        "origin_channel_id": 1, "channel_ids": None,
        "address_count": len(addrs), "attribute_count": len(attrs),
        "addresses": addrs, "store_credit_amounts": [{"amount": credit}],
        "attributes": attrs,
        "form_fields": [] if rng.random() < 0.6 else [
            {"name": "How did you hear about us?",
             "value": rng.choice(["Friend", "Search", "Podcast"])}],
    }


def gen_customers(rng, n):
    alloc = SeqAlloc()
    out = [build_customer(rng, cid, alloc) for cid in range(1, n + 1)]
    if n >= 3:
        c = out[2]
        c["first_name"] = "\u062f\u0627\u0646\u0629"
        c["last_name"] = "O\u0308lc\u0327er \U0001F600"
        c["notes"] = "RTL \u05e2\u05d1\u05e8\u05d9\u05ea and emoji \U0001F9ED"
    return out


def bench_customer(ctx, cid):
    """Bench customer cid, derived from (seed, cid) alone; its email from cid alone, so
    lookups by email need not generate it."""
    rng = random.Random("customer:%d:%d" % (ctx.seed, cid))
    return build_customer(rng, cid, BenchAlloc(cid), bench_email(cid))


def bench_email(cid):
    return "bench.customer.%07d@example.com" % cid


# ---- orders -------------------------------------------------------------------------------

def _order_address(rng, base, cust):
    city, state, cc, country, zipc = rng.choice(CITIES)
    first = cust["first_name"] if cust else rng.choice(FIRST)
    last = cust["last_name"] if cust else rng.choice(LAST)
    email_ = cust["email"] if cust else "guest.%d@example.com" % rng.randint(1, 99999)
    base.update({"first_name": first, "last_name": last, "company": "",
                 "street_1": "%d %s Road" % (rng.randint(1, 999), rng.choice(LAST)),
                 "street_2": "", "city": city, "state": state, "zip": zipc,
                 "country": country, "country_iso2": cc,
                 "phone": "+1 555 %04d" % rng.randint(0, 9999), "email": email_})
    return base


def _line(rng, ids, oid, addr_id, product, variant, qty):
    opid = ids("order_product")
    price = variant["price"]
    tax = round(price * 0.08, 4)
    opts = [{"id": ids("order_product_option"), "option_id": ov["option_id"],
             "order_product_id": opid, "product_option_id": ov["option_id"],
             "display_name": ov["option_display_name"], "display_value": ov["label"],
             "value": str(ov["id"]), "type": "Multiple choice", "name": ov["option_display_name"],
             "display_style": "Rectangle"} for ov in variant["option_values"]]
    return {"id": opid, "order_id": oid, "product_id": product["id"],
            "variant_id": variant["id"], "order_address_id": addr_id,
            "name": product["name"], "name_customer": product["name"],
            "name_merchant": product["name"], "sku": variant["sku"], "upc": "",
            "type": "physical", "base_price": money(price), "price_ex_tax": money(price),
            "price_inc_tax": money(price + tax), "price_tax": money(tax),
            "base_total": money(price * qty), "total_ex_tax": money(price * qty),
            "total_inc_tax": money((price + tax) * qty), "total_tax": money(tax * qty),
            "weight": money(variant["weight"]), "width": "0.0000", "height": "0.0000",
            "depth": "0.0000", "quantity": qty, "base_cost_price": "0.0000",
            "cost_price_inc_tax": "0.0000", "cost_price_ex_tax": "0.0000",
            "cost_price_tax": "0.0000", "is_refunded": False, "quantity_refunded": 0,
            "refund_amount": "0.0000", "return_id": 0, "wrapping_id": 0, "wrapping_name": "",
            "base_wrapping_cost": "0.0000", "wrapping_cost_ex_tax": "0.0000",
            "wrapping_cost_inc_tax": "0.0000", "wrapping_cost_tax": "0.0000",
            "wrapping_message": "", "quantity_shipped": 0, "event_name": None,
            "event_date": "", "fixed_shipping_cost": "0.0000", "ebay_item_id": "",
            "ebay_transaction_id": "", "option_set_id": None, "parent_order_product_id": None,
            "is_bundled_product": False, "bin_picking_number": "", "external_id": None,
            "fulfillment_source": "", "brand": "", "gift_certificate_id": None,
            "applied_discounts": [], "product_options": opts, "configurable_fields": [],
            "gtin": "", "mpn": ""}


def _pick_status(rng):
    r = rng.random()
    if r < 0.62:
        return 2
    if r < 0.72:
        return 10
    if r < 0.80:
        return 3
    return rng.choice([1, 5, 7, 9, 11, 11])


def gen_order(rng, ctx, ids, oid, customers, pick_product, coupons):
    cust = rng.choice(customers) if customers and rng.random() < 0.75 else None
    created = when(rng)
    status = _pick_status(rng)
    n_addr = 2 if rng.random() < 0.06 else 1
    addrs, lines = [], []
    for _ in range(n_addr):
        aid = ids("order_address")
        addrs.append(aid)
    for _ in range(rng.randint(1, 4)):
        product = pick_product(rng)
        variant = rng.choice(product["variants"])
        lines.append(_line(rng, ids, oid, rng.choice(addrs), product, variant,
                           rng.randint(1, 3)))
    items_total = sum(li["quantity"] for li in lines)
    shipped_lines = []
    if status in (2, 10):
        shipped_lines = [(li, li["quantity"]) for li in lines]
    elif status == 3:
        shipped_lines = [(lines[0], lines[0]["quantity"])] if len(lines) > 1 else [
            (lines[0], max(1, lines[0]["quantity"] - 1))]
        if shipped_lines[0][1] == items_total:
            status = 2
    for li, q in shipped_lines:
        li["quantity_shipped"] = q
    items_shipped = sum(q for _, q in shipped_lines)
    sub_ex = sum(float(li["total_ex_tax"]) for li in lines)
    sub_tax = sum(float(li["total_tax"]) for li in lines)
    ship = rng.choice([0, 4.95, 9.5, 12])
    order_coupons = []
    discount = 0.0
    if coupons and rng.random() < 0.15:
        c = rng.choice(coupons)
        discount = round(min(sub_ex, 5 + rng.randint(0, 10)), 2)
        order_coupons.append({"id": ids("order_coupon"), "coupon_id": c["id"],
                              "order_id": oid, "code": c["code"], "amount": discount,
                              "type": 1, "discount": discount})
    total_ex = sub_ex + ship - discount
    total_tax = sub_tax
    billing = _order_address(rng, {}, cust)
    billing["form_fields"] = []
    ship_addrs = []
    for aid in addrs:
        a = _order_address(rng, {"id": aid, "order_id": oid}, cust)
        mine = [li for li in lines if li["order_address_id"] == aid]
        a.update({"items_total": sum(li["quantity"] for li in mine),
                  "items_shipped": sum(li["quantity_shipped"] for li in mine),
                  "shipping_method": "Flat Rate", "base_cost": money(ship),
                  "cost_ex_tax": money(ship), "cost_inc_tax": money(ship),
                  "cost_tax": "0.0000", "cost_tax_class_id": 2,
                  "base_handling_cost": "0.0000", "handling_cost_ex_tax": "0.0000",
                  "handling_cost_inc_tax": "0.0000", "handling_cost_tax": "0.0000",
                  "handling_cost_tax_class_id": 2, "shipping_zone_id": 1,
                  "shipping_zone_name": "Default zone",
                  "shipping_quotes": {"url": "%s/v2/orders/%d/shipping_addresses/%d/"
                                             "shipping_quotes" % (ctx.api, oid, aid),
                                      "resource": "/orders/%d/shipping_addresses/%d/"
                                                  "shipping_quotes" % (oid, aid)},
                  "form_fields": []})
        ship_addrs.append(a)
    shipments = []
    shipped_at = created + datetime.timedelta(days=rng.randint(1, 6))
    for a in ship_addrs:
        items = [{"order_product_id": li["id"], "product_id": li["product_id"], "quantity": q}
                 for li, q in shipped_lines if li["order_address_id"] == a["id"]]
        if not items:
            continue
        addr = {k: a[k] for k in ("first_name", "last_name", "company", "street_1",
                                  "street_2", "city", "state", "zip", "country",
                                  "country_iso2", "phone", "email")}
        shipments.append({"id": ids("shipment"), "order_id": oid,
                          "customer_id": cust["id"] if cust else 0,
                          "order_address_id": a["id"], "date_created": rfc2822(shipped_at),
                          "tracking_number": "1Z%010d" % rng.randrange(10 ** 10),
                          "merchant_shipping_cost": "0.0000", "shipping_method": "Flat Rate",
                          "comments": "", "shipping_provider": "ups",
                          "tracking_carrier": "ups", "tracking_link": "",
                          "billing_address": {k: billing[k] for k in addr},
                          "shipping_address": addr, "items": items,
                          "shipping_provider_display_name": "UPS"})
    return {
        "id": oid, "customer_id": cust["id"] if cust else 0,
        "date_created": rfc2822(created),
        "date_modified": rfc2822(created + datetime.timedelta(days=rng.randint(0, 20))),
        "date_shipped": rfc2822(shipped_at) if items_shipped else "",
        "status_id": status, "status": STATUSES[status], "custom_status": STATUSES[status],
        "subtotal_ex_tax": money(sub_ex), "subtotal_inc_tax": money(sub_ex + sub_tax),
        "subtotal_tax": money(sub_tax), "base_shipping_cost": money(ship),
        "shipping_cost_ex_tax": money(ship), "shipping_cost_inc_tax": money(ship),
        "shipping_cost_tax": "0.0000", "shipping_cost_tax_class_id": 2,
        "base_handling_cost": "0.0000", "handling_cost_ex_tax": "0.0000",
        "handling_cost_inc_tax": "0.0000", "handling_cost_tax": "0.0000",
        "handling_cost_tax_class_id": 2, "base_wrapping_cost": "0.0000",
        "wrapping_cost_ex_tax": "0.0000", "wrapping_cost_inc_tax": "0.0000",
        "wrapping_cost_tax": "0.0000", "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(total_ex), "total_inc_tax": money(total_ex + total_tax),
        "total_tax": money(total_tax), "items_total": items_total,
        "items_shipped": items_shipped, "payment_method": "Credit Card",
        "payment_provider_id": "", "payment_status": "captured" if status else "",
        "refunded_amount": "0.0000", "order_is_digital": False,
        "store_credit_amount": "0.0000", "gift_certificate_amount": "0.0000",
        "ip_address": "198.51.100.%d" % rng.randint(1, 254), "ip_address_v6": "",
        "geoip_country": billing["country"], "geoip_country_iso2": billing["country_iso2"],
        "currency_id": 1, "currency_code": "USD", "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1, "default_currency_code": "USD", "staff_notes": "",
        "customer_message": "" if rng.random() < 0.9 else "Please leave at the door.",
        "discount_amount": "0.0000", "coupon_discount": money(discount),
        "shipping_address_count": len(ship_addrs), "is_deleted": False,
        "ebay_order_id": "0", "cart_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "billing_address": billing, "is_email_opt_in": False, "credit_card_type": None,
        "order_source": "www", "channel_id": 1, "external_source": None,
        "products": lines, "shipping_addresses": ship_addrs, "coupons": order_coupons,
        "external_id": None, "external_merchant_id": None, "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en", "external_order_id": "", "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "shipments": shipments,
    }


# ---- content and marketing ----------------------------------------------------------------

PAGE_TYPES = ["page"] * 12 + ["raw"] * 5 + ["contact_form"] * 4 + ["link"] * 5 + ["blog"] * 4


def gen_pages(rng, n):
    out = []
    for pid in range(1, n + 1):
        ptype = PAGE_TYPES[(pid - 1) % len(PAGE_TYPES)] if n >= 5 else \
            ["page", "raw", "contact_form", "link", "blog"][(pid - 1) % 5]
        name = "%s %s %d" % (rng.choice(ADJ), ptype.replace("_", " ").title(), pid)
        parent = 0 if pid < 6 or rng.random() < 0.6 else rng.randint(1, 5)
        page = {"id": pid, "channel_id": 1 if rng.random() < 0.85 else 2, "name": name,
                "is_visible": rng.random() < 0.9, "parent_id": parent, "sort_order": pid,
                "type": ptype, "is_homepage": False, "is_customers_only": rng.random() < 0.05,
                "search_keywords": "", "meta_title": "", "meta_keywords": "",
                "meta_description": "", "url": "/%s/" % slug(name)}
        if ptype == "link":
            page["link"] = "https://example.org/%s" % slug(name)
            page["url"] = ""
        if ptype == "contact_form":
            page["email"] = "contact@example.com"
            page["contact_fields"] = "fullname,phone,orderno"
        if ptype == "raw":
            page["content_type"] = "text/html"
        page["body"] = "" if ptype == "link" else "<h1>%s</h1><p>%s</p>" % (
            name, sentence(rng, 30))
        out.append(page)
    return out


def gen_blog_posts(rng, n):
    out = []
    for bid in range(1, n + 1):
        title = "%s thoughts on the %s %d" % (rng.choice(ADJ), rng.choice(NOUN).lower(), bid)
        dt = when(rng)
        url = "/blog/%s/" % slug(title)
        out.append({"id": bid, "title": title, "url": url, "preview_url": url,
                    "body": "<p>%s</p><p>%s</p>" % (sentence(rng, 40), sentence(rng, 25)),
                    "tags": rng.sample(["news", "guides", "craft", "care", "travel"],
                                       rng.randint(0, 3)),
                    "summary": sentence(rng, 10), "is_published": rng.random() < 0.85,
                    "published_date": {"date": dt.strftime("%Y-%m-%d %H:%M:%S.000000"),
                                       "timezone_type": 1, "timezone": "+00:00"},
                    "published_date_iso8601": iso(dt), "meta_description": "",
                    "meta_keywords": "", "author": rng.choice(FIRST),
                    "thumbnail_path": ""})
    return out


def gen_redirects(rng, ctx, n, products, brands, categories, pages, posts):
    out = []
    for rid in range(1, n + 1):
        kind = ["product", "brand", "category", "page", "post", "url"][rid % 6]
        pool = {"product": products, "brand": brands, "category": categories,
                "page": pages, "post": posts}.get(kind)
        if kind == "url" or not pool:
            to = {"type": "url", "url": "https://example.org/landing/%d" % rid}
            to_url = to["url"]
        else:
            target = rng.choice(pool)
            tid = target.get("id", target.get("category_id"))
            to = {"type": kind, "entity_id": tid}
            path = (target.get("custom_url") or target.get("url") or {})
            path = path.get("url", path.get("path", "/")) if isinstance(path, dict) else path
            if not isinstance(path, str):
                path = path.value
            to_url = ctx.domain + (path or "/")
        out.append({"id": rid, "site_id": 1000, "from_path": "/old/%s-%d" % (
            rng.choice(NOUN).lower(), rid), "to": to, "to_url": to_url})
    return out


def gen_coupons(rng, n, product_ids, category_ids):
    types = ["per_item_discount", "percentage_discount", "per_total_discount",
             "shipping_discount", "free_shipping"]
    out = []
    for cid in range(1, n + 1):
        created = when(rng)
        if rng.random() < 0.5 or not product_ids:
            applies = {"entity": "categories", "ids": [0] if rng.random() < 0.6 or
                       not category_ids else rng.sample(category_ids, 2)}
        else:
            applies = {"entity": "products", "ids": rng.sample(product_ids,
                                                               min(3, len(product_ids)))}
        out.append({"id": cid, "name": "Promo %d" % cid, "type": types[cid % len(types)],
                    "amount": money(rng.choice([5, 10, 15, 20])),
                    "min_purchase": money(rng.choice([0, 0, 25])),
                    "expires": "" if rng.random() < 0.6 else rfc2822(when(rng, 1400)),
                    "enabled": rng.random() < 0.8, "code": "SAVE%03d%s" % (
                        cid, rng.choice("ABCDEFGH")), "applies_to": applies,
                    "num_uses": rng.randint(0, 50), "max_uses": rng.choice([0, 100]),
                    "max_uses_per_customer": rng.choice([0, 1]),
                    "restricted_to": {} if rng.random() < 0.7 else {"countries": ["US"]},
                    "shipping_methods": None if rng.random() < 0.7 else ["shipping_flatrate"],
                    "date_created": rfc2822(created)})
    return out


def gen_themes(rng, n):
    specs = [("Cornerstone", False, ["Light", "Bold", "Warm"]),
             ("o7 Custom", True, ["Default"])]
    out = []
    for i in range(n):
        name, private, variations = specs[i % len(specs)]
        out.append({"uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "name": name if i < len(specs) else "%s %d" % (name, i),
                    "is_active": i == 0, "is_private": private,
                    "updated_at": iso(when(rng)),
                    "variations": [{"uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                                    "name": v, "external_id": "theme-%d-%s" % (i, v.lower()),
                                    "description": "%s variation" % v} for v in variations]})
    return out


def store_info(ctx):
    return {"id": ctx.hash, "domain": ctx.domain[8:], "secure_url": ctx.domain,
            "control_panel_base_url": ctx.domain, "status": "live",
            "name": "o7 sample store (%s)" % ctx.hash, "first_name": "Sam", "last_name": "Ple",
            "address": "1 Test Way\nAustin, Texas 78701\nUnited States",
            "country": "United States", "country_code": "US", "phone": "+1 555 0100",
            "admin_email": "owner@example.com", "order_email": "orders@example.com",
            "favicon_url": "", "timezone": {"name": "Etc/UTC", "raw_offset": 0,
                                            "dst_offset": 0, "date_format": {
                                                "display": "jS M Y",
                                                "export": "M jS Y",
                                                "extended_display": "M jS Y @ g:i A"}},
            "language": "en", "currency": "USD", "currency_symbol": "$",
            "decimal_separator": ".", "thousands_separator": ",", "decimal_places": 2,
            "currency_symbol_location": "left", "weight_units": "kg",
            "dimension_units": "Centimeters", "dimension_decimal_places": "2",
            "dimension_decimal_token": ".", "dimension_thousands_token": ",",
            "plan_name": "Standard", "plan_level": "Standard", "plan_is_trial": False,
            "industry": "Home & Garden", "logo": [], "is_price_entered_with_tax": False,
            "store_id": 1000000 + (ctx.seed % 1000), "default_channel_id": 1,
            "default_site_id": 1000, "active_comparison_modules": [],
            "features": {"stencil_enabled": True, "sitewidehttps_enabled": True,
                         "facebook_catalog_id": "", "checkout_type": "optimized",
                         "wishlists_enabled": True, "graphql_storefront_api_enabled": True,
                         "shopper_consent_tracking_enabled": False,
                         "multi_storefront_enabled": True,
                         "storefront_limits": {"active_channels": 2, "total_channels": 5}}}


# ---- store settings: channels, customer groups, tax classes ---------------------------------

# The storefront channels of each preset; every store has channel 1. Trees and pages hang from
# channels, and ids differ between stores, so a restore maps them by name.
CHANNELS = {"sample": ((1, "Default"), (2, "Second storefront"))}
TAX_CLASSES = ("Non-Taxable Products", "Shipping", "Gift Wrapping")
STAMP = "2024-01-15T10:00:00+00:00"


def channel(cid, name):
    return {"id": cid, "name": name, "type": "storefront", "platform": "bigcommerce",
            "status": "active", "is_listable_from_ui": True, "is_visible": True,
            "date_created": STAMP, "date_modified": STAMP}


def gen_channels(preset):
    return [channel(cid, name) for cid, name in CHANNELS.get(preset, ((1, "Default"),))]


def gen_customer_groups(category_id, product_id):
    """Three groups (the sample's customers point at 1 and 2); the third one's discount rules
    name a category and a product, which a restore must remap."""
    def group(gid, name, rules, access):
        return {"id": gid, "name": name, "is_default": False, "category_access": access,
                "discount_rules": rules, "is_group_for_guests": False,
                "date_created": STAMP, "date_modified": STAMP}
    vip = [{"type": "category", "method": "percent", "amount": "5.0000",
            "category_id": category_id}]
    if product_id:
        vip.append({"type": "product", "method": "fixed", "amount": "2.0000",
                    "product_id": product_id})
    return [group(1, "Retail", [], {"type": "all"}),
            group(2, "Wholesale", [{"type": "all", "method": "percent", "amount": "10.0000"}],
                  {"type": "all"}),
            group(3, "VIP", vip, {"type": "specific", "categories": [category_id]})]


def gen_tax_classes():
    return [{"id": i, "name": name, "created_at": STAMP, "updated_at": STAMP}
            for i, name in enumerate(TAX_CLASSES, 1)]


# ---- presets ------------------------------------------------------------------------------

def bench_sizes(preset):
    """(products, customers) of a bench:N or bench:N/C preset; customers is None for bench:N,
    whose handful of customers are generated like the sample's."""
    n, slash, c = preset[6:].partition("/")
    if not n.isdigit() or (slash and not c.isdigit()):
        raise ValueError("bench preset must be bench:N or bench:N/C, not %r" % preset)
    sizes = (int(n), int(c) if slash else None)
    if any(x is not None and x > 10 ** 7 for x in sizes):
        raise ValueError("bench size out of range")
    return sizes


def generate(ctx, preset):
    """Build every record of a preset. Returns (types dict of record lists, bench product
    count, bench customer count).

    For preset bench:N the products list is empty and the product count is N: products are
    then derived on demand by bench_product(). bench:N/C also leaves the customers list empty
    and derives C customers on demand by bench_customer(); orders then pick among the first
    ten of them.
    """
    bench_n, bench_c = 0, None
    if preset == "sample":
        counts = SAMPLE_COUNTS
    elif preset == "empty":
        counts = EMPTY_COUNTS
    elif preset.startswith("bench:"):
        counts = BENCH_COUNTS
        bench_n, bench_c = bench_sizes(preset)
    else:
        raise ValueError("unknown preset %r" % preset)
    rng = random.Random(ctx.seed)
    out = {"category_trees": gen_trees() if counts["categories"] else [gen_trees()[0]]}
    out["categories"] = gen_categories(rng, counts["categories"], counts["categories2"])
    out["brands"] = gen_brands(rng, ctx, counts["brands"])
    main_cats = [c["category_id"] for c in out["categories"] if c["tree_id"] == 1]
    brand_ids = [b["id"] for b in out["brands"]]
    products = []
    if not bench_n:
        alloc = SeqAlloc()
        for pid in range(1, counts.get("products", 0) + 1):
            cats = rng.sample(main_cats, min(len(main_cats), rng.randint(1, 3)))
            brand = rng.choice(brand_ids) if brand_ids and rng.random() < 0.8 else 0
            products.append(build_product(rng, ctx, pid, alloc, sample_shape(rng),
                                          product_name(rng, pid), "SKU-%05d" % pid,
                                          sorted(cats), brand))
        if len(products) >= 5:
            apply_product_traps(products[2], products[4])
    out["products"] = products
    if bench_c is None:
        out["customers"] = gen_customers(rng, counts["customers"])
        buyers = out["customers"]
    else:
        out["customers"] = []
        buyers = [bench_customer(ctx, cid) for cid in range(1, min(bench_c, 10) + 1)]
    out["coupons"] = gen_coupons(rng, counts["coupons"], [p["id"] for p in products[:50]],
                                 main_cats)
    if bench_n:
        def pick_product(r):
            return bench_product(ctx, r.randint(1, bench_n), main_cats, brand_ids)
    else:
        def pick_product(r):
            return r.choice(products)
    ids = SeqAlloc()
    orders = []
    if products or bench_n:
        for oid in range(100, 100 + counts["orders"]):
            orders.append(gen_order(rng, ctx, ids, oid, buyers, pick_product,
                                    out["coupons"]))
    out["orders"] = orders
    out["pages"] = gen_pages(rng, counts["pages"])
    out["blog_posts"] = gen_blog_posts(rng, counts["blog_posts"])
    out["redirects"] = gen_redirects(rng, ctx, counts["redirects"], products,
                                     out["brands"], out["categories"], out["pages"],
                                     out["blog_posts"])
    out["themes"] = gen_themes(rng, counts["themes"])
    out["channels"] = gen_channels(preset)
    settings = preset != "empty" and main_cats
    first_product = products[0]["id"] if products else (1 if bench_n else 0)
    out["customer_groups"] = gen_customer_groups(main_cats[0], first_product) if settings else []
    out["tax_classes"] = gen_tax_classes() if settings else []
    return out, bench_n, bench_c or 0

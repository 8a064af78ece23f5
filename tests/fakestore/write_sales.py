"""Customer, order and inventory write endpoints of the fake store, as a restore sends them.

Rules follow the reference's sections 4.3, 4.4, 4.10 and 7; README.md ("Writes") lists them
with the choices made where the reference is silent.
"""

import uuid

import data
from api import Resp, id_filters, json_resp, render_order
from writes import (alloc, body_of, check_read_only, check_required, clone, fail, iso_z_now,
                    missing, parse_rfc2822, rfc_now, scan, touched, v2_fail, want_array,
                    want_object)

CUSTOMERS_MAX = 10
CUSTOMER_RO = ("date_created", "date_modified", "registration_ip_address", "address_count",
               "attribute_count")
ADDRESS_REQUIRED = ("first_name", "last_name", "address1", "city", "country_code",
                    "state_or_province", "postal_code")
# the core fields whose combination makes an address unique (customers.v3.yml)
ADDRESS_CORE = ("customer_id", "first_name", "last_name", "company", "phone", "address_type",
                "address1", "address2", "city", "country_code", "state_or_province",
                "postal_code")
COUNTRIES = {c[2]: c[3] for c in data.CITIES}
ATTRIBUTE_IDS = set(a[0] for a in data.ATTRIBUTES)
DEFAULT_LOCATION = 1


@scan("address", "customers")
def _address_ids(r):
    return [a["id"] for a in r.get("addresses", [])]


@scan("attribute_value", "customers")
def _attribute_value_ids(r):
    return [a["id"] for a in r.get("attributes", [])]


@scan("order_product", "orders")
def _order_product_ids(r):
    return [p["id"] for p in r.get("products", [])]


@scan("order_address", "orders")
def _order_address_ids(r):
    return [a["id"] for a in r.get("shipping_addresses", [])]


@scan("shipment", "orders")
def _shipment_ids(r):
    return [s["id"] for s in r.get("shipments", [])]


# ---- customers --------------------------------------------------------------------------------

def new_address(store, cid, body, prefix=""):
    check_read_only(body, ("id",), prefix)
    errs = missing(body, ADDRESS_REQUIRED, prefix)
    if errs:
        fail(422, "The address is missing required fields.", errs)
    cc = body["country_code"]
    return {"id": alloc(store, "address"), "address1": body["address1"],
            "address2": body.get("address2", ""),
            "address_type": body.get("address_type", "residential"), "city": body["city"],
            "company": body.get("company", ""), "country": COUNTRIES.get(cc, cc),
            "country_code": cc, "customer_id": cid, "first_name": body["first_name"],
            "last_name": body["last_name"], "phone": body.get("phone", ""),
            "postal_code": body["postal_code"], "state_or_province": body["state_or_province"],
            "form_fields": clone(body.get("form_fields") or [])}


def core(addr):
    return tuple(addr.get(k, "") for k in ADDRESS_CORE)


def new_attribute(store, cid, body, stamp, prefix=""):
    aid = body.get("attribute_id")
    if aid not in ATTRIBUTE_IDS:
        fail(422, "The customer attribute does not exist.",
             {prefix + "attribute_id": "no attribute %r" % aid})
    value = body.get("attribute_value", body.get("value"))
    return {"id": alloc(store, "attribute_value"), "attribute_id": aid,
            "attribute_value": value, "customer_id": cid, "date_created": stamp,
            "date_modified": stamp}


def email_taken(store, email, own=None, batch=()):
    table = store.table("customers")
    low = email.lower()
    if low in batch:
        return True
    return any(table.field(i, "email").lower() == low for i in table.ids() if i != own)


def email_error(idx, email):
    fail(422, "Error creating or updating customers: the email is already in use.",
         {"%d.email" % idx: "The email address '%s' is already in use by another customer."
          % email})


def build_customer(store, body, cid, idx):
    prefix = "%d." % idx
    stamp = iso_z_now()
    auth = body.get("authentication") or {}
    cust = {"id": cid, "authentication": {"force_password_reset": bool(
        auth.get("force_password_reset", False))},
        "company": body.get("company", ""),
        "customer_group_id": body.get("customer_group_id", 0), "email": body["email"],
        "first_name": body["first_name"], "last_name": body["last_name"],
        "notes": body.get("notes", ""), "phone": body.get("phone", ""),
        "registration_ip_address": "", "tax_exempt_category": body.get(
            "tax_exempt_category", ""), "date_created": stamp, "date_modified": stamp,
        "accepts_product_review_abandoned_cart_emails": bool(body.get(
            "accepts_product_review_abandoned_cart_emails", False)),
        "origin_channel_id": body.get("origin_channel_id", 1),
        "channel_ids": clone(body.get("channel_ids")), "address_count": 0,
        "attribute_count": 0, "addresses": [], "store_credit_amounts": clone(
            body.get("store_credit_amounts") or [{"amount": 0}]), "attributes": [],
        "form_fields": clone(body.get("form_fields") or [])}
    addrs = body.get("addresses") or []
    if len(addrs) > 10:
        fail(422, "A customer can be created with at most 10 addresses.",
             {prefix + "addresses": "at most 10"})
    seen = set()
    for i, a in enumerate(addrs):
        addr = new_address(store, cid, a, "%saddresses.%d." % (prefix, i))
        if core(addr) not in seen:
            seen.add(core(addr))
            cust["addresses"].append(addr)
    for i, a in enumerate(body.get("attributes") or []):
        cust["attributes"].append(new_attribute(store, cid, a, stamp,
                                                "%sattributes.%d." % (prefix, i)))
    cust["address_count"] = len(cust["addresses"])
    cust["attribute_count"] = len(cust["attributes"])
    return cust


def post_customers(store, req, m):
    items = want_array(body_of(req), CUSTOMERS_MAX, "customer")
    for i, body in enumerate(items):
        check_read_only(body, CUSTOMER_RO + ("id",), "%d." % i)
        check_required(body, ("email", "first_name", "last_name"), "%d." % i)
    with store.lock:
        table = store.table("customers")
        made, emails = [], set()
        for i, body in enumerate(items):
            if email_taken(store, body["email"], batch=emails):
                email_error(i, body["email"])
            emails.add(body["email"].lower())
            made.append(build_customer(store, body, table.next_id() + i, i))
        for i, cust in enumerate(made):
            table.put(cust)
            touched(req, "customers", cust["id"])
            if items[i].get("trigger_account_created_notification"):
                store.emails.append({"kind": "account_created", "customer_id": cust["id"],
                                     "email": cust["email"]})
    return json_resp(200, {"data": made, "meta": {}})


def put_customers(store, req, m):
    items = want_array(body_of(req), CUSTOMERS_MAX, "customer")
    for i, body in enumerate(items):
        check_read_only(body, CUSTOMER_RO, "%d." % i)
        check_required(body, ("id",), "%d." % i)
    with store.lock:
        table = store.table("customers")
        news = []
        for i, body in enumerate(items):
            old = table.get(body["id"])
            if old is None:
                fail(422, "The customer does not exist.", {"%d.id" % i: "no customer %r"
                                                           % body["id"]})
            if "email" in body and email_taken(store, body["email"], old["id"]):
                email_error(i, body["email"])
            cust = clone(old)
            for k, v in body.items():
                if k in cust and k not in ("id", "addresses", "attributes",
                                           "store_credit_amounts", "authentication"):
                    cust[k] = clone(v)
            if "force_password_reset" in (body.get("authentication") or {}):
                cust["authentication"]["force_password_reset"] = bool(
                    body["authentication"]["force_password_reset"])
            cust["date_modified"] = iso_z_now()
            news.append(cust)
        for cust in news:
            table.put(cust)
            touched(req, "customers", cust["id"])
    return json_resp(200, {"data": news, "meta": {}})


def delete_customers(store, req, m):
    if "id:in" not in req.query:
        fail(422, "An id:in filter is required to delete customers.", {"id:in": "required"})
    with store.lock:
        table = store.table("customers")
        for cid in list(id_filters(req, table.ids())):
            table.delete(cid)
            touched(req, "customers", cid)
    return Resp(204)


def post_addresses(store, req, m):
    items = want_array(body_of(req), 0, "address")
    out = []
    with store.lock:
        table = store.table("customers")
        changed = {}
        for i, body in enumerate(items):
            cid = body.get("customer_id")
            cust = changed.get(cid) or (clone(table.get(cid)) if table.get(cid) else None)
            if cust is None:
                fail(422, "The customer does not exist.", {"%d.customer_id" % i:
                                                           "no customer %r" % cid})
            addr = new_address(store, cid, body, "%d." % i)
            if core(addr) in set(core(a) for a in cust["addresses"]):
                continue  # a duplicate is dropped from the answer, as the API does
            cust["addresses"].append(addr)
            cust["address_count"] = len(cust["addresses"])
            changed[cid] = cust
            out.append(addr)
        for cust in changed.values():
            table.put(cust)
            touched(req, "customers", cust["id"])
    return json_resp(200, {"data": out, "meta": {}})


def put_addresses(store, req, m):
    items = want_array(body_of(req), 0, "address")
    out = []
    with store.lock:
        table = store.table("customers")
        owner = {a["id"]: cid for cid in table.ids() for a in table.get(cid)["addresses"]}
        changed = {}
        for i, body in enumerate(items):
            cid = owner.get(body.get("id"))
            if cid is None:
                fail(422, "The address does not exist.", {"%d.id" % i: "no address %r"
                                                          % body.get("id")})
            cust = changed.get(cid) or clone(table.get(cid))
            j = next(k for k, a in enumerate(cust["addresses"]) if a["id"] == body["id"])
            addr = dict(cust["addresses"][j])
            addr.update({k: clone(v) for k, v in body.items() if k in addr and k != "id"})
            addr["country"] = COUNTRIES.get(addr["country_code"], addr["country_code"])
            others = set(core(a) for k, a in enumerate(cust["addresses"]) if k != j)
            if core(addr) in others:
                continue
            cust["addresses"][j] = addr
            changed[cid] = cust
            out.append(addr)
        for cust in changed.values():
            table.put(cust)
            touched(req, "customers", cust["id"])
    return json_resp(200, {"data": out, "meta": {}})


def put_attribute_values(store, req, m):
    items = want_array(body_of(req), 0, "attribute value")
    if len(set(b.get("customer_id") for b in items)) > CUSTOMERS_MAX:
        fail(413, "Attribute values of at most %d customers per request." % CUSTOMERS_MAX)
    out = []
    with store.lock:
        table = store.table("customers")
        changed = {}
        stamp = iso_z_now()
        for i, body in enumerate(items):
            check_required(body, ("customer_id", "attribute_id", "value"), "%d." % i)
            cid = body["customer_id"]
            cust = changed.get(cid) or (clone(table.get(cid)) if table.get(cid) else None)
            if cust is None:
                fail(422, "The customer does not exist.", {"%d.customer_id" % i: "no customer"})
            row = next((a for a in cust["attributes"]
                        if a["attribute_id"] == body["attribute_id"]), None)
            if row is None:
                row = new_attribute(store, cid, body, stamp, "%d." % i)
                cust["attributes"].append(row)
            else:
                row["attribute_value"] = body["value"]
                row["date_modified"] = stamp
            cust["attribute_count"] = len(cust["attributes"])
            changed[cid] = cust
            out.append({"id": row["id"], "attribute_id": row["attribute_id"],
                        "value": row["attribute_value"], "customer_id": cid,
                        "date_created": row["date_created"],
                        "date_modified": row["date_modified"]})
        for cust in changed.values():
            table.put(cust)
            touched(req, "customers", cust["id"])
    return json_resp(200, {"data": out, "meta": {}})


# ---- inventory ------------------------------------------------------------------------------

def set_stock(prod, variant_id, level):
    """Set a product's (variant_id None) or a variant's stock in a cloned product."""
    from write_catalog import sync_inventory
    if variant_id is None:
        prod["inventory_level"] = level
    else:
        var = next((v for v in prod["variants"] if v["id"] == variant_id), None)
        if var is None:
            return False
        var["inventory_level"] = level
        if var["id"] == prod.get("base_variant_id"):
            prod["inventory_level"] = level
    sync_inventory(prod)
    return True


def find_variant_owner(store, variant_id):
    table = store.table("products")
    rows = getattr(table, "overlay", None)
    pool = rows.items() if rows is not None else table.rows.items()
    for pid, rec in pool:
        if any(v["id"] == variant_id for v in rec.get("variants", [])):
            return pid
    return None


def put_inventory_absolute(store, req, m):
    body = want_object(body_of(req))
    items = body.get("items")
    if not isinstance(items, list) or not items:
        fail(422, "items is required.", {"items": "give at least one item"})
    with store.lock:
        table = store.table("products")
        changed = {}
        for i, it in enumerate(items):
            if it.get("location_id") != DEFAULT_LOCATION:
                fail(422, "The location does not exist.", {"items.%d.location_id" % i:
                                                           "only location 1 exists"})
            if not isinstance(it.get("quantity"), int) or it["quantity"] < 0:
                fail(422, "quantity must be a non-negative integer.",
                     {"items.%d.quantity" % i: "invalid"})
            vid = it.get("variant_id")
            pid = it.get("product_id") if vid is None else find_variant_owner(store, vid)
            if pid is None or table.get(pid) is None:
                fail(422, "The item does not exist.", {"items.%d" % i: "no such product "
                                                       "or variant"})
            prod = changed.get(pid) or clone(table.get(pid))
            set_stock(prod, vid, it["quantity"])
            changed[pid] = prod
        for pid, prod in changed.items():
            table.put(prod)
            touched(req, "products", pid)
    return json_resp(200, {"transaction_id": str(uuid.uuid4())})


# ---- orders (v2) ------------------------------------------------------------------------------

def money(x):
    return "%.4f" % float(x)


def order_line(store, oid, body, idx, addr_id):
    """One order product from a POST line: catalog (product_id [+ variant_id]) or custom."""
    qty = body.get("quantity")
    if not isinstance(qty, int) or qty < 1:
        v2_fail(400, "The field 'products[%d].quantity' is invalid." % idx)
    prod = var = None
    if body.get("product_id") is not None:
        prod = store.table("products").get(body["product_id"])
        if prod is None:
            v2_fail(400, "The product %r in products[%d] does not exist."
                    % (body["product_id"], idx))
        vid = body.get("variant_id", prod.get("base_variant_id"))
        var = next((v for v in prod["variants"] if v["id"] == vid), None)
        if var is None:
            v2_fail(400, "The field 'products[%d].variant_id' is invalid." % idx)
        name = getattr(prod["name"], "value", prod["name"])
    else:
        for f in ("name", "price_inc_tax", "price_ex_tax"):
            if body.get(f) is None:
                v2_fail(400, "The required field 'products[%d].%s' was not supplied."
                        % (idx, f))
        name = body["name"]
    ex = float(body.get("price_ex_tax", var["price"] if var else 0))
    inc = float(body.get("price_inc_tax", ex))
    opts = []
    for ov in (var or {}).get("option_values", []):
        opts.append({"id": alloc(store, "order_product_option"), "option_id": ov["option_id"],
                     "order_product_id": None, "product_option_id": ov["option_id"],
                     "display_name": ov["option_display_name"], "display_value": ov["label"],
                     "value": str(ov["id"]), "type": "Multiple choice",
                     "name": ov["option_display_name"], "display_style": "Rectangle"})
    opid = alloc(store, "order_product")
    for o in opts:
        o["order_product_id"] = opid
    line = {"id": opid, "order_id": oid, "product_id": prod["id"] if prod else 0,
            "variant_id": var["id"] if var else 0, "order_address_id": addr_id, "name": name,
            "name_customer": name, "name_merchant": name,
            "sku": var["sku"] if var else body.get("sku", ""), "upc": "",
            "type": "physical", "base_price": money(ex), "price_ex_tax": money(ex),
            "price_inc_tax": money(inc), "price_tax": money(inc - ex),
            "base_total": money(ex * qty), "total_ex_tax": money(ex * qty),
            "total_inc_tax": money(inc * qty), "total_tax": money((inc - ex) * qty),
            "quantity": qty, "quantity_shipped": 0, "is_refunded": False,
            "quantity_refunded": 0, "refund_amount": "0.0000", "applied_discounts": [],
            "product_options": opts, "configurable_fields": [], "external_id": None}
    return line, prod, var


def take_stock(store, lines, sign=-1):
    """Creating an order takes its quantities from tracked products and variants."""
    table = store.table("products")
    changed = {}
    for line in lines:
        pid = line["product_id"]
        if not pid or table.get(pid) is None:
            continue
        prod = changed.get(pid) or clone(table.get(pid))
        tracking = prod.get("inventory_tracking")
        var = next((v for v in prod["variants"] if v["id"] == line["variant_id"]), None)
        if tracking == "variant" and var is not None:
            set_stock(prod, var["id"], (var["inventory_level"] or 0) + sign * line["quantity"])
        elif tracking == "product":
            set_stock(prod, None, (prod["inventory_level"] or 0) + sign * line["quantity"])
        else:
            continue
        changed[pid] = prod
    for pid, prod in changed.items():
        table.put(prod)
    return list(changed)


@scan("order_product_option", "orders")
def _order_option_ids(r):
    return [o["id"] for p in r.get("products", []) for o in p.get("product_options", [])]


def order_address(body, base):
    out = dict(base)
    for k in ("first_name", "last_name", "company", "street_1", "street_2", "city", "state",
              "zip", "country", "country_iso2", "phone", "email"):
        out[k] = body.get(k, "")
    return out


def validate_order_post(body):
    if "id" in body:
        v2_fail(400, "The field 'id' cannot be written to.")
    bill = body.get("billing_address")
    if not isinstance(bill, dict):
        v2_fail(400, "The required field 'billing_address' was not supplied.")
    if len(str(bill.get("zip") or "")) < 2:
        v2_fail(400, "The field 'billing_address.zip' must be at least 2 characters.")
    if "products" in body and "consignments" in body:
        v2_fail(400, "An order takes either products or consignments, not both.")
    if not body.get("products") and not body.get("consignments"):
        v2_fail(400, "The required field 'products' was not supplied.")
    if "date_created" in body and parse_rfc2822(body["date_created"]) is None:
        v2_fail(400, "The field 'date_created' must be an RFC-2822 date.")
    status = body.get("status_id", 1)
    if status not in data.STATUSES:
        v2_fail(400, "The field 'status_id' is invalid.")


def consignment_lines(body):
    """The line items of consignments (pickup or shipping), flattened."""
    out = []
    cons = body.get("consignments")
    groups = cons if isinstance(cons, list) else [cons] if isinstance(cons, dict) else []
    for g in groups:
        for kind in g.values() if isinstance(g, dict) else []:
            for c in kind if isinstance(kind, list) else []:
                out += c.get("line_items") or []
    return out


def build_order(store, body, oid):
    bill = body["billing_address"]
    billing = order_address(bill, {})
    billing["form_fields"] = []
    ships = body.get("shipping_addresses") or [bill]
    addrs = [order_address(a, {"id": alloc(store, "order_address"), "order_id": oid})
             for a in ships]
    lines = []
    for i, lb in enumerate(body.get("products") or consignment_lines(body)):
        line, _, _ = order_line(store, oid, lb, i, addrs[0]["id"])
        lines.append(line)
    for a in addrs:
        mine = [li for li in lines if li["order_address_id"] == a["id"]]
        a.update({"items_total": sum(li["quantity"] for li in mine), "items_shipped": 0,
                  "shipping_method": (a.get("shipping_method") or "") or "",
                  "form_fields": []})
    sub_ex = sum(float(li["total_ex_tax"]) for li in lines)
    sub_inc = sum(float(li["total_inc_tax"]) for li in lines)
    status = body.get("status_id", 1)
    created = body.get("date_created") or rfc_now()
    z = "0.0000"
    order = {
        "id": oid, "customer_id": body.get("customer_id", 0), "date_created": created,
        "date_modified": rfc_now(), "date_shipped": "", "status_id": status,
        "status": data.STATUSES[status], "custom_status": data.STATUSES[status],
        "subtotal_ex_tax": money(sub_ex), "subtotal_inc_tax": money(sub_inc),
        "subtotal_tax": money(sub_inc - sub_ex), "base_shipping_cost": z,
        "shipping_cost_ex_tax": z, "shipping_cost_inc_tax": z, "shipping_cost_tax": z,
        "shipping_cost_tax_class_id": 2, "base_handling_cost": z, "handling_cost_ex_tax": z,
        "handling_cost_inc_tax": z, "handling_cost_tax": z, "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": z, "wrapping_cost_ex_tax": z, "wrapping_cost_inc_tax": z,
        "wrapping_cost_tax": z, "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": money(sub_ex), "total_inc_tax": money(sub_inc),
        "total_tax": money(sub_inc - sub_ex), "items_total": sum(li["quantity"] for li in lines),
        "items_shipped": 0, "payment_method": body.get("payment_method", "Manual"),
        "payment_provider_id": "", "payment_status": "", "refunded_amount": z,
        "order_is_digital": False, "store_credit_amount": z, "gift_certificate_amount": z,
        "ip_address": "", "ip_address_v6": "", "geoip_country": billing["country"],
        "geoip_country_iso2": billing["country_iso2"], "currency_id": 1,
        "currency_code": "USD", "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1, "default_currency_code": "USD",
        "staff_notes": body.get("staff_notes", ""),
        "customer_message": body.get("customer_message", ""),
        "discount_amount": money(body.get("discount_amount", 0)), "coupon_discount": z,
        "shipping_address_count": len(addrs), "is_deleted": False, "ebay_order_id": "0",
        "cart_id": "", "billing_address": billing, "is_email_opt_in": False,
        "credit_card_type": None, "order_source": "external",
        "channel_id": body.get("channel_id", 1), "external_source": body.get("external_source"),
        "products": lines, "shipping_addresses": addrs, "coupons": [], "external_id": None,
        "external_merchant_id": None, "tax_provider_id": "", "customer_locale": "en",
        "external_order_id": body.get("external_order_id", ""),
        "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": "1.0000000000", "shipments": []}
    return order


def post_order(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    validate_order_post(body)
    with store.lock:
        cid = body.get("customer_id", 0)
        if cid and store.table("customers").get(cid) is None:
            v2_fail(400, "The customer %r does not exist." % cid)
        table = store.table("orders")
        order = build_order(store, body, table.next_id())
        table.put(order)
        for pid in take_stock(store, order["products"]):
            touched(req, "products", pid)
    touched(req, "orders", order["id"])
    return json_resp(200, render_order(store, order))


ORDER_PUT_MEMBERS = ("status_id", "customer_id", "staff_notes", "customer_message",
                     "external_source", "external_order_id", "is_deleted", "payment_method",
                     "discount_amount", "channel_id")


def put_order(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    oid = int(m.group(1))
    if "date_created" in body:
        v2_fail(400, "The field 'date_created' can only be set when the order is created.")
    if "id" in body and body["id"] != oid:
        v2_fail(400, "The field 'id' cannot be written to.")
    if body.get("status_id", 1) not in data.STATUSES:
        v2_fail(400, "The field 'status_id' is invalid.")
    with store.lock:
        table = store.table("orders")
        old = table.get(oid)
        if old is None:
            v2_fail(404, "The requested resource was not found.")
        order = clone(old)
        for k in ORDER_PUT_MEMBERS:
            if k in body:
                order[k] = clone(body[k])
        order["status"] = order["custom_status"] = data.STATUSES[order["status_id"]]
        if isinstance(body.get("billing_address"), dict):
            order["billing_address"].update(clone(body["billing_address"]))
        patch_order_lines(store, order, body.get("products") or [])
        order["date_modified"] = rfc_now()
        table.put(order)
    touched(req, "orders", oid)
    return json_resp(200, render_order(store, order))


def patch_order_lines(store, order, patches):
    """PUT products work like PATCH: no id adds a line, an id updates it, quantity 0 removes."""
    addr = order["shipping_addresses"][0]["id"] if order["shipping_addresses"] else 0
    for i, p in enumerate(patches):
        if "id" not in p:
            line, _, _ = order_line(store, order["id"], p, i, addr)
            order["products"].append(line)
            continue
        j = next((k for k, li in enumerate(order["products"]) if li["id"] == p["id"]), None)
        if j is None:
            v2_fail(400, "The order product %r does not exist." % p["id"])
        if p.get("quantity") == 0:
            del order["products"][j]
        elif isinstance(p.get("quantity"), int):
            order["products"][j]["quantity"] = p["quantity"]
    order["items_total"] = sum(li["quantity"] for li in order["products"])


def delete_order(store, req, m):
    oid = int(m.group(1))
    with store.lock:
        table = store.table("orders")
        old = table.get(oid)
        if old is None:
            v2_fail(404, "The requested resource was not found.")
        order = clone(old)
        order["is_deleted"] = True
        table.put(order)
    touched(req, "orders", oid)
    return Resp(204)


def post_shipment(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    oid = int(m.group(1))
    with store.lock:
        table = store.table("orders")
        old = table.get(oid)
        if old is None:
            v2_fail(404, "The requested resource was not found.")
        order = clone(old)
        addr = next((a for a in order["shipping_addresses"]
                     if a["id"] == body.get("order_address_id")), None)
        if addr is None:
            v2_fail(422, "The field 'order_address_id' is not an address of order %d." % oid)
        items = body.get("items")
        if not isinstance(items, list) or not items:
            v2_fail(422, "The required field 'items' was not supplied.")
        ship_items = [ship_item(order, addr, it, i) for i, it in enumerate(items)]
        shipment = new_shipment(store, order, addr, body, ship_items)
        order["shipments"].append(shipment)
        shipped = sum(li["quantity_shipped"] for li in order["products"])
        order["items_shipped"] = shipped
        addr["items_shipped"] = sum(li["quantity_shipped"] for li in order["products"]
                                    if li["order_address_id"] == addr["id"])
        order["status_id"] = 2 if shipped >= order["items_total"] else 3
        order["status"] = order["custom_status"] = data.STATUSES[order["status_id"]]
        order["date_shipped"] = shipment["date_created"]
        table.put(order)
    touched(req, "orders", oid)
    return json_resp(201, shipment)


def ship_item(order, addr, it, idx):
    line = next((li for li in order["products"] if li["id"] == it.get("order_product_id")),
                None)
    if line is None or line["order_address_id"] != addr["id"]:
        v2_fail(422, "items[%d].order_product_id is not a product of this order and address."
                % idx)
    qty = it.get("quantity")
    if not isinstance(qty, int) or qty < 1 or line["quantity_shipped"] + qty > line["quantity"]:
        v2_fail(422, "items[%d].quantity is more than is left to ship." % idx)
    line["quantity_shipped"] += qty
    return {"order_product_id": line["id"], "product_id": line["product_id"], "quantity": qty}


def new_shipment(store, order, addr, body, items):
    keys = ("first_name", "last_name", "company", "street_1", "street_2", "city", "state",
            "zip", "country", "country_iso2", "phone", "email")
    return {"id": alloc(store, "shipment"), "order_id": order["id"],
            "customer_id": order["customer_id"], "order_address_id": addr["id"],
            "date_created": rfc_now(), "tracking_number": body.get("tracking_number", ""),
            "merchant_shipping_cost": "0.0000",
            "shipping_method": body.get("shipping_method", ""), "comments": body.get(
                "comments", ""), "shipping_provider": body.get("shipping_provider", ""),
            "tracking_carrier": body.get("tracking_carrier", ""),
            "tracking_link": body.get("tracking_link", ""),
            "billing_address": {k: order["billing_address"].get(k, "") for k in keys},
            "shipping_address": {k: addr.get(k, "") for k in keys}, "items": items}


NUM = r"(\d+)"
ROUTES = [
    ("POST", r"/v3/customers", post_customers, "customers", None),
    ("PUT", r"/v3/customers", put_customers, "customers", None),
    ("DELETE", r"/v3/customers", delete_customers, "customers", None),
    ("POST", r"/v3/customers/addresses", post_addresses, "customers", None),
    ("PUT", r"/v3/customers/addresses", put_addresses, "customers", None),
    ("PUT", r"/v3/customers/attribute-values", put_attribute_values, "customers", None),
    ("PUT", r"/v3/inventory/adjustments/absolute", put_inventory_absolute, "store_inventory",
     None),
    ("POST", r"/v2/orders", post_order, "orders", None),
    ("PUT", r"/v2/orders/" + NUM, put_order, "orders", None),
    ("DELETE", r"/v2/orders/" + NUM, delete_order, "orders", None),
    ("POST", r"/v2/orders/%s/shipments" % NUM, post_shipment, "orders", None),
]

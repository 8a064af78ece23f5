"""Store settings the fake store keeps per store: channels (read-only), customer groups (v2)
and tax classes (v2 read, v3 batch create). Ids differ between stores, so a restore maps
them by name; a test builds a target whose ids differ with POST /_fake/stores and these
endpoints (or the control API's mutate for channels).

Rules follow the reference's sections 4.3 and 4.10; README.md ("Writes") lists them with the
choices made where the reference is silent.
"""

from api import json_resp, v2_table, v3_list
from writes import (body_of, clone, fail, iso_now, touched, v2_fail, want_array,
                    want_object)

GROUP_MEMBERS = ("name", "is_default", "category_access", "discount_rules",
                 "is_group_for_guests")
RULE_TYPES = ("all", "category", "product", "price_list")
TAX_CLASSES_MAX = 50
NAME_MAX = 100

GROUP_LIST, GROUP_COUNT, GROUP_ONE = v2_table("customer_groups", ("name",))
TAX_LIST, _TAX_COUNT, TAX_ONE = v2_table("tax_classes", ("name",))


def get_channels(store, req, m):
    """GET /v3/channels: the store's channels, v3 offset pages."""
    table = store.table("channels")
    with store.lock:
        ids = table.ids()
    return v3_list(req, ids, table.get, lambda r: r, maximum=250)


# ---- customer groups ------------------------------------------------------------------------

def check_rules(rules):
    """400 unless rules is a list of rule objects of a known type with their reference."""
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        v2_fail(400, "The field 'discount_rules' must be an array of objects.")
    for r in rules:
        kind = r.get("type")
        if kind not in RULE_TYPES:
            v2_fail(400, "The discount rule type '%s' is not valid." % kind)
        need = {"category": "category_id", "product": "product_id",
                "price_list": "price_list_id"}.get(kind)
        if need and not isinstance(r.get(need), int):
            v2_fail(400, "A '%s' discount rule needs '%s'." % (kind, need))
    if any(r["type"] == "price_list" for r in rules) and len(rules) > 1:
        v2_fail(400, "A price_list discount rule must be the only rule of a group.")


def check_group(store, body, own_id):
    """400/409 for a group body that breaks the rules (own_id: the group being updated)."""
    for f in ("id", "date_created", "date_modified"):
        if f in body:
            v2_fail(400, "The field '%s' cannot be written to." % f)
    if "name" in body or own_id is None:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            v2_fail(400, "The required field 'name' was not supplied.")
        table = store.table("customer_groups")
        for gid in table.ids():
            if gid != own_id and table.get(gid)["name"].lower() == name.lower():
                v2_fail(409, "The customer group name '%s' is already in use." % name)
    if "discount_rules" in body:
        check_rules(body["discount_rules"])


def post_customer_group(store, req, m):
    body = want_object(body_of(req, v2=True), v2=True)
    with store.lock:
        check_group(store, body, None)
        table = store.table("customer_groups")
        group = {"id": table.next_id(), "name": body["name"], "is_default": False,
                 "category_access": {"type": "all"}, "discount_rules": [],
                 "is_group_for_guests": False, "date_created": iso_now(),
                 "date_modified": iso_now()}
        for f in GROUP_MEMBERS:
            if f in body:
                group[f] = clone(body[f])
        table.put(group)
    touched(req, "customer_groups", group["id"])
    return json_resp(201, group)


def put_customer_group(store, req, m):
    """Members sent replace the stored ones; discount_rules are replaced as a set."""
    body = want_object(body_of(req, v2=True), v2=True)
    gid = int(m.group(1))
    with store.lock:
        table = store.table("customer_groups")
        old = table.get(gid)
        if old is None:
            v2_fail(404, "The requested resource was not found.")
        check_group(store, body, gid)
        group = clone(old)
        for f in GROUP_MEMBERS:
            if f in body:
                group[f] = clone(body[f])
        group["date_modified"] = iso_now()
        table.put(group)
    touched(req, "customer_groups", gid)
    return json_resp(200, group)


# ---- tax classes ----------------------------------------------------------------------------

def post_tax_classes(store, req, m):
    """POST /v3/tax/classes: an array of {name} (at most 50), all or nothing."""
    items = want_array(body_of(req), TAX_CLASSES_MAX, "tax class")
    with store.lock:
        table = store.table("tax_classes")
        taken = {table.get(i)["name"].lower() for i in table.ids()}
        errors = {}
        for i, item in enumerate(items):
            name = item.get("name")
            if "id" in item:
                errors["%d.id" % i] = "id is read-only and cannot be written"
            elif not isinstance(name, str) or not name.strip():
                errors["%d.name" % i] = "name is required"
            elif len(name) > NAME_MAX:
                errors["%d.name" % i] = "name must be at most %d characters" % NAME_MAX
            elif name.lower() in taken:
                errors["%d.name" % i] = "the tax class name '%s' is already in use" % name
            else:
                taken.add(name.lower())
        if errors:
            fail(422, "The tax classes were not created.", errors)
        made = []
        for item in items:
            rec = {"id": table.next_id(), "name": item["name"], "created_at": iso_now(),
                   "updated_at": iso_now()}
            table.put(rec)
            made.append(rec)
    for rec in made:
        touched(req, "tax_classes", rec["id"])
    return json_resp(200, {"data": made, "meta": {}})


NUM = r"(\d+)"
ROUTES = [
    ("GET", r"/v3/channels", get_channels, "store_channel_settings", None),
    ("GET", r"/v2/customer_groups", GROUP_LIST, "customers", None),
    ("GET", r"/v2/customer_groups/count", GROUP_COUNT, "customers", None),
    ("GET", r"/v2/customer_groups/" + NUM, GROUP_ONE, "customers", None),
    ("POST", r"/v2/customer_groups", post_customer_group, "customers", None),
    ("PUT", r"/v2/customer_groups/" + NUM, put_customer_group, "customers", None),
    ("GET", r"/v2/tax_classes", TAX_LIST, "information", None),
    ("GET", r"/v2/tax_classes/" + NUM, TAX_ONE, "information", None),
    ("POST", r"/v3/tax/classes", post_tax_classes, "information", None),
]

"""Shared pieces of the fake store's write endpoints (used by restore tests).

Write handlers never change a stored record in place: they clone it, change the clone and put
it back, so a snapshot can keep references to the old records and diff them later (store.py).
Each handler names the records it touched with touched(); the pipeline logs them per request.
"""

import datetime
import email.utils
import json
from urllib.parse import urlsplit

from api import ApiError, v2_error, v3_error
from store import LazyTable

# sub-record id counters of a bench store start above every id bench_product or
# bench_customer can derive
BENCH_SUB_BASE = 2 * 10 ** 8


def clone(value):
    """A deep copy of plain JSON values; Raw tokens are immutable and shared."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso_now():
    return now().strftime("%Y-%m-%dT%H:%M:%S+00:00")


def iso_z_now():
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc_now():
    return email.utils.format_datetime(now())


def parse_rfc2822(text):
    """A datetime from an RFC-2822 string, or None when text is not one."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None or dt.tzinfo is None:
        return None
    return dt


def body_of(req, v2=False):
    """The request's JSON body; 400 in the path's error shape when it is not JSON."""
    try:
        return json.loads(req.body.decode("utf-8") or "null")
    except (ValueError, UnicodeDecodeError):
        msg = "The request body is not valid JSON."
        raise ApiError(v2_error(400, msg) if v2 else v3_error(400, msg))


def want_object(value, v2=False):
    if not isinstance(value, dict):
        msg = "The request body must be a JSON object."
        raise ApiError(v2_error(400, msg) if v2 else v3_error(400, msg))
    return value


def want_array(value, maximum, what):
    """A batch body: a JSON array of objects, 413 above `maximum` items."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ApiError(v3_error(400, "The request body must be a JSON array of objects."))
    if not value:
        raise ApiError(v3_error(422, "The request body must hold at least one %s." % what))
    if maximum and len(value) > maximum:
        raise ApiError(v3_error(413, "The maximum number of items allowed in the array is %d."
                                % maximum))
    return value


def fail(status, title, errors=None):
    raise ApiError(v3_error(status, title, errors))


def v2_fail(status, message):
    raise ApiError(v2_error(status, message))


def check_read_only(body, names, prefix=""):
    """422 naming every read-only member present in a create or update body."""
    bad = {prefix + n: "%s is read-only and cannot be written" % n for n in names if n in body}
    if bad:
        fail(422, "The request contains read-only fields.", bad)


def missing(body, names, prefix=""):
    """The error map of required members that are absent, null or empty strings."""
    return {prefix + n: "%s is required" % n for n in names
            if body.get(n) is None or body.get(n) == ""}


def check_required(body, names, prefix=""):
    errs = missing(body, names, prefix)
    if errs:
        fail(422, "The request is missing required fields.", errs)


def touched(req, rtype, rid):
    """Note that this request wrote record rid of rtype (for /_fake/.../writes)."""
    ids = req.__dict__.setdefault("touched", {}).setdefault(rtype, [])
    if rid not in ids:
        ids.append(rid)


# ---- sub-record ids -------------------------------------------------------------------------

# kind -> (record type, function giving the ids of that kind inside one record)
SCANS = {}


def scan(kind, rtype):
    def register(fn):
        SCANS[kind] = (rtype, fn)
        return fn
    return register


def alloc(store, kind):
    """The next id of a sub-record kind (variant, image, address, ...), store-wide."""
    seq = store.seq
    if kind not in seq:
        rtype, ids_of = SCANS[kind]
        table = store.table(rtype)
        if isinstance(table, LazyTable):
            top = BENCH_SUB_BASE
        else:
            top = max((i for r in table.rows.values() for i in ids_of(r)), default=0)
        seq[kind] = top
    seq[kind] += 1
    return seq[kind]


# ---- images ---------------------------------------------------------------------------------

def fetch_image(store, url):
    """Check that the store could fetch an image URL: only this server's own /_img/ paths of a
    known store that were not deleted. Returns the path; 422 naming the URL otherwise.

    Nothing is ever fetched from another host: any other URL counts as unreachable.
    """
    app = store.app
    ok = isinstance(url, str) and 0 < len(url) <= 255
    path = None
    if ok:
        parts = urlsplit(url)
        base = urlsplit(app.base)
        ok = (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and
              parts.port == base.port and parts.path.startswith("/_img/"))
        path = parts.path
    if ok:
        ok = app.image_exists(path)
    if not ok:
        fail(422, "The image could not be fetched.",
             {"image_url": "image could not be fetched from %s" % url})
    return path


def own_image_stem(store, kind, *parts):
    return "%s/_img/%s/%s/%s" % (store.app.base, store.hash, kind,
                                 "/".join(str(p) for p in parts))


# ---- batches with partial success -------------------------------------------------------------

def batch_response(data, errors, total, ok_status=200):
    """The answer to a batch whose items may fail one by one.

    errors is a list of (index, status, message). All succeeded: ok_status with data and meta.
    Some failed: 207 with the failures as v3 error objects. All failed: the failures' status
    (422 when they differ) with the v3 body naming every index.
    """
    from api import V3_ERROR_TYPE, json_resp
    meta = {"total": total, "success": len(data), "failed": len(errors)}
    if not errors:
        return json_resp(ok_status, {"data": data, "meta": meta})
    objs = [{"status": st, "title": msg, "type": V3_ERROR_TYPE, "errors": {str(i): msg}}
            for i, st, msg in errors]
    if data:
        return json_resp(207, {"data": data, "errors": objs, "meta": meta})
    statuses = set(st for _, st, _ in errors)
    status = statuses.pop() if len(statuses) == 1 else 422
    title = errors[0][2] if len(errors) == 1 else "None of the items could be saved."
    return json_resp(status, {"status": status, "title": title, "type": V3_ERROR_TYPE,
                              "errors": {str(i): msg for i, _, msg in errors}})


class ItemError(Exception):
    """One batch item failed: (status, message)."""

    def __init__(self, status, message):
        Exception.__init__(self, message)
        self.status = status
        self.message = message

"""State of one fake store: its records, tokens, rate-limit window, fault rules and stats.

Records live per type in a table keyed by the type's id member, in ascending id order, each in
dump shape (see data.py). The write endpoints (write_*.py) and the control API's mutate replace
whole records and never change one in place, so a snapshot is a cheap map of references.
"""

import bisect
import math
import re
import threading
import time
from array import array

import data

TYPES = ["products", "brands", "category_trees", "categories", "customers", "orders", "pages",
         "blog_posts", "redirects", "coupons", "themes", "channels", "customer_groups",
         "tax_classes"]
KEY = {"categories": "category_id", "themes": "uuid"}

AREAS = ["products", "customers", "orders", "transactions", "content", "marketing",
         "information"]
ALL_SCOPES = frozenset(["store_v2_%s_read_only" % a for a in AREAS] +
                       ["store_v2_%s" % a for a in AREAS] +
                       ["store_content_checkout_read_only", "store_content_checkout",
                        "store_themes_read_only", "store_themes_manage",
                        "store_channel_settings_read_only", "store_channel_settings",
                        "store_channel_listings_read_only", "store_channel_listings",
                        "store_sites_read_only", "store_sites", "store_inventory_read_only",
                        "store_inventory", "store_locations_read_only", "store_locations",
                        "store_metafield_write", "store_metafield_write_all",
                        "store_translations_read_only", "store_translations"])
SAMPLE_TOKEN = "o7-sample-token"
UNLIMITED = 1000000000


class Table:
    """Records of one type, keyed by id, in insertion (= ascending id) order."""

    def __init__(self, key, records):
        self.key = key
        self.rows = {r[key]: r for r in records}
        self._ids = None

    def ids(self):
        if self._ids is None:
            self._ids = list(self.rows)
        return self._ids

    def get(self, rid):
        return self.rows.get(rid)

    def field(self, rid, name):
        return self.rows[rid].get(name)

    def count(self):
        return len(self.rows)

    def next_id(self):
        ints = [k for k in self.rows if isinstance(k, int)]
        return max(ints) + 1 if ints else 1

    def put(self, record):
        self.rows[record[self.key]] = record
        self._ids = None

    def delete(self, rid):
        found = self.rows.pop(rid, None) is not None
        self._ids = None
        return found


class LazyTable:
    """Records of a bench store: a compact id array plus an overlay of changed records; an
    unchanged record is derived from its id by make() whenever it is asked for."""

    key = "id"

    def __init__(self, ctx, n):
        self.ctx, self.n = ctx, n
        self._ids = array("l", range(1, n + 1))
        self.overlay = {}

    def make(self, rid):
        raise NotImplementedError

    def ids(self):
        return self._ids

    def _has(self, rid):
        i = bisect.bisect_left(self._ids, rid)
        return i < len(self._ids) and self._ids[i] == rid

    def get(self, rid):
        if not isinstance(rid, int) or not self._has(rid):
            return None
        rec = self.overlay.get(rid)
        if rec is None:
            rec = self.make(rid)
        return rec

    def field(self, rid, name):
        rec = self.overlay.get(rid)
        if rec is not None:
            return rec.get(name)
        cheap = self.cheap_field(rid, name)
        return cheap if cheap is not None else self.get(rid).get(name)

    def cheap_field(self, rid, name):
        """A member of an unchanged record known without generating it, or None."""
        return None

    def count(self):
        return len(self._ids)

    def next_id(self):
        return (self._ids[-1] if len(self._ids) else self.n) + 1

    def put(self, record):
        rid = record["id"]
        if not self._has(rid):
            bisect.insort(self._ids, rid)
        self.overlay[rid] = record

    def delete(self, rid):
        if not self._has(rid):
            return False
        del self._ids[bisect.bisect_left(self._ids, rid)]
        self.overlay.pop(rid, None)
        return True


class LazyProducts(LazyTable):
    """Products of a bench store (data.bench_product)."""

    def __init__(self, ctx, n, cats, brands):
        LazyTable.__init__(self, ctx, n)
        self.cats, self.brands = cats, brands

    def make(self, rid):
        return data.bench_product(self.ctx, rid, self.cats, self.brands)

    def cheap_field(self, rid, name):
        if name == "sku":
            return data.bench_sku(rid)
        if name == "name":
            return data.bench_name(rid)
        return None


class LazyCustomers(LazyTable):
    """Customers of a bench:N/C store (data.bench_customer)."""

    def make(self, rid):
        return data.bench_customer(self.ctx, rid)

    def cheap_field(self, rid, name):
        return data.bench_email(rid) if name == "email" else None


class FaultRule:
    def __init__(self, spec):
        if not isinstance(spec, dict) or "path" not in spec:
            raise ValueError("a rule needs a path")
        self.spec = spec
        self.path = re.compile(spec["path"])
        self.method = spec.get("method")
        self.after = int(spec.get("after", 0))
        self.count = int(spec.get("count", 1))
        self.action = spec.get("action", "status")
        if self.action not in ("status", "reset", "delay", "truncate", "mutate", "total"):
            raise ValueError("unknown action %r" % self.action)
        self.seen = 0
        self.fired = 0

    def matches(self, method, path):
        if self.method and self.method.upper() != method:
            return False
        return self.path.search(path) is not None

    def fire(self):
        """Count a matching request; true when this one gets the fault."""
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.count >= 0 and self.fired >= self.count:
            return False
        self.fired += 1
        return True


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.total = 0
        self.by_pattern = {}
        self.served_429 = 0
        self.fault_5xx = 0
        self.max_concurrent = 0
        self.urls = []
        self.writes = []

    def as_json(self):
        return {"requests": self.total, "by_pattern": dict(self.by_pattern),
                "served_429": self.served_429, "fault_5xx": self.fault_5xx,
                "max_concurrent": self.max_concurrent, "urls": list(self.urls)}


class Store:
    def __init__(self, store_hash, preset, seed, base_url, quota=0, window_ms=30000,
                 latency_ms=0):
        self.hash = store_hash
        self.preset = preset
        self.seed = seed
        self.ctx = data.Ctx(store_hash, seed, base_url)
        self.lock = threading.RLock()
        self.tokens = {SAMPLE_TOKEN: ALL_SCOPES}
        self.quota = quota
        self.window_ms = window_ms
        self.default_latency_ms = latency_ms
        self.stats = Stats()
        self.inflight = 0
        self.gates = {}
        self.load()

    # ---- records ------------------------------------------------------------------------

    def load(self):
        """(Re)build the preset's initial state and clear faults, jobs and the window."""
        generated, bench_n, bench_c = data.generate(self.ctx, self.preset)
        tables = {t: Table(KEY.get(t, "id"), generated[t]) for t in TYPES}
        if bench_n:
            cats = [c["category_id"] for c in generated["categories"] if c["tree_id"] == 1]
            tables["products"] = LazyProducts(self.ctx, bench_n, cats,
                                              [b["id"] for b in generated["brands"]])
        if bench_c:
            tables["customers"] = LazyCustomers(self.ctx, bench_c)
        with self.lock:
            self.tables = tables
            self.info = data.store_info(self.ctx)
            self.rules = []
            self.latency_ms = self.default_latency_ms
            self.jobs = {}
            self.window_end = 0.0
            self.used = 0
            self.seq = {}
            self.snapshots = []
            self.gone_images = set()
            self.emails = []
            self.uploads = {}

    def table(self, rtype):
        if rtype not in self.tables:
            raise KeyError("unknown type %r" % rtype)
        return self.tables[rtype]

    def counts(self):
        with self.lock:
            return {t: self.tables[t].count() for t in TYPES}

    def mutate(self, body):
        """Apply a control-API mutation. Returns the affected id."""
        op, rtype = body.get("op"), body.get("type")
        with self.lock:
            table = self.table(rtype)
            rid = body.get("id")
            if op == "delete":
                if not table.delete(rid):
                    raise LookupError("no %s %r" % (rtype, rid))
                return rid
            record = body.get("record") or {}
            if op == "create":
                record = dict(record)
                rid = record.get(table.key)
                if rid is None or table.get(rid) is not None:
                    rid = table.next_id()
                record[table.key] = rid
                table.put(record)
                return rid
            if op == "update":
                old = table.get(rid)
                if old is None:
                    raise LookupError("no %s %r" % (rtype, rid))
                new = dict(old)
                new.update(record)
                new[table.key] = rid
                table.put(new)
                return rid
        raise ValueError("op must be delete, create or update")

    # ---- snapshots and the write log --------------------------------------------------------

    def snapshot(self):
        """Remember every table's records (by reference) and return the snapshot's id."""
        with self.lock:
            snap = {}
            for t in TYPES:
                table = self.tables[t]
                if isinstance(table, LazyTable):
                    snap[t] = ("lazy", array("l", table.ids()), dict(table.overlay))
                else:
                    snap[t] = ("rows", dict(table.rows))
            self.snapshots.append(snap)
            return len(self.snapshots)

    def diff(self, snap_id):
        """Per type: ids created, deleted, and changed (id -> changed member names)."""
        with self.lock:
            if not 1 <= snap_id <= len(self.snapshots):
                raise LookupError("no snapshot %r" % snap_id)
            snap = self.snapshots[snap_id - 1]
            return {t: self._diff_type(self.tables[t], snap[t]) for t in TYPES}

    def _diff_type(self, table, old):
        if old[0] == "lazy":
            old_ids, old_overlay = set(old[1]), old[2]
            new_ids = set(table.ids())
            suspects = (set(old_overlay) | set(table.overlay)) & old_ids & new_ids

            def before(rid):
                return old_overlay.get(rid) or table.make(rid)
        else:
            rows = old[1]
            old_ids, new_ids = set(rows), set(table.ids())
            suspects = [rid for rid in old_ids & new_ids if rows[rid] is not table.get(rid)]
            before = rows.get
        changed = {}
        for rid in sorted(suspects, key=str):
            a, b = before(rid), table.get(rid)
            names = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            if names:
                changed[str(rid)] = names
        return {"created": sorted(new_ids - old_ids, key=str),
                "deleted": sorted(old_ids - new_ids, key=str), "changed": changed}

    def log_write(self, method, pattern, status, ids):
        with self.lock:
            self.stats.writes.append({"method": method, "pattern": pattern, "status": status,
                                      "ids": ids})

    # ---- rate limiting --------------------------------------------------------------------

    def _roll(self, now):
        if now >= self.window_end:
            self.window_end = now + self.window_ms / 1000.0
            self.used = 0

    def _headers(self, now, left=None, reset_ms=None):
        quota = self.quota if self.quota > 0 else UNLIMITED
        if left is None:
            left = max(0, quota - self.used)
        if reset_ms is None:
            reset_ms = max(1, int(math.ceil((self.window_end - now) * 1000)))
        return [("X-Rate-Limit-Time-Window-Ms", str(self.window_ms)),
                ("X-Rate-Limit-Time-Reset-Ms", str(reset_ms)),
                ("X-Rate-Limit-Requests-Quota", str(quota)),
                ("X-Rate-Limit-Requests-Left", str(left))]

    def take(self):
        """Count one request in the window. Returns (allowed, headers)."""
        now = time.monotonic()
        with self.lock:
            self._roll(now)
            self.used += 1
            quota = self.quota if self.quota > 0 else UNLIMITED
            headers = self._headers(now)
            if self.used > quota:
                reset_ms = int(headers[1][1])
                return False, headers + [("X-Retry-After", str(math.ceil(reset_ms / 1000.0)))]
            return True, headers

    def peek(self):
        """Rate-limit headers of the current window without counting a request."""
        now = time.monotonic()
        with self.lock:
            self._roll(now)
            return self._headers(now)

    def set_quota(self, quota, window_ms):
        with self.lock:
            self.quota = int(quota)
            self.window_ms = int(window_ms)
            self.window_end = 0.0
            self.used = 0

    # ---- faults, gates, stats ---------------------------------------------------------------

    def set_faults(self, rules):
        parsed = [FaultRule(r) for r in rules]
        with self.lock:
            self.rules = parsed

    def fault_for(self, method, path):
        """The first rule that fires for this request; every matching rule counts it."""
        chosen = None
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path) and rule.fire() and chosen is None:
                    chosen = rule
        return chosen

    def enter(self, method, pattern, url, record):
        with self.lock:
            self.inflight += 1
            st = self.stats
            st.total += 1
            key = "%s %s" % (method, pattern)
            st.by_pattern[key] = st.by_pattern.get(key, 0) + 1
            st.max_concurrent = max(st.max_concurrent, self.inflight)
            if record:
                st.urls.append(url)

    def leave(self):
        with self.lock:
            self.inflight -= 1

    def gate(self, name, limit):
        """Take a slot of a per-endpoint concurrency cap; False when the cap is reached."""
        with self.lock:
            n = self.gates.get(name, 0)
            if n >= limit:
                return False
            self.gates[name] = n + 1
            return True

    def ungate(self, name):
        with self.lock:
            self.gates[name] -= 1

    def note_status(self, status, from_fault):
        with self.lock:
            if status == 429:
                self.stats.served_429 += 1
            if status >= 500 and from_fault:
                self.stats.fault_5xx += 1

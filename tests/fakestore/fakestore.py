#!/usr/bin/env python3
"""A fake BigCommerce REST API for o7's tests, on loopback only.

Serves /stores/{hash}/v2 and /v3 read endpoints from generated stores and the write
endpoints a restore uses (see README.md), a control API under /_fake/ for tests, signed theme
downloads under /_signed/ and product images under /_img/.
"""

import argparse
import gzip
import http
import ipaddress
import json
import math
import os
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import api  # noqa: E402
import themezip  # noqa: E402
import write_catalog  # noqa: E402
import write_content  # noqa: E402
import write_sales  # noqa: E402
import write_settings  # noqa: E402
from jsonraw import dumpb, dumps  # noqa: E402
from store import ALL_SCOPES, TYPES, UNLIMITED, Store  # noqa: E402

STORE_PATH = re.compile(r"^/stores/([^/]+)(/.*)?$")
CONTROL_STORE = re.compile(r"^/_fake/stores/([^/]+)(?:/([a-z]+))?/?$")
CONTROL_IMG = re.compile(r"^/_fake/stores/([^/]+)/img/(.+)$")
IMG_PATH = re.compile(r"^/_img/([^/]+)/(.+)$")
SIGNED_PATH = re.compile(r"^/_signed/([A-Za-z0-9_-]+)/theme\.zip$")
DUMP_CHUNK = 64 * 1024


class Closed(Exception):
    """The handler closed the connection on purpose (reset / truncate faults)."""


class App:
    """Everything the server shares between requests: stores, signed links, settings."""

    def __init__(self, base_url, args):
        self.base = base_url
        self.args = args
        self.lock = threading.Lock()
        self.stores = {}
        self.record_urls = False
        self.signed = {}
        self.signed_ttl_s = 60.0
        self.zips = {}
        self.theme_max_bytes = 50 * 1024 * 1024

    def add_store(self, store_hash, preset, seed, quota=None, window_ms=None,
                  latency_ms=None):
        if not re.match(r"^[A-Za-z0-9_-]{1,64}$", store_hash or ""):
            raise ValueError("a store hash is 1-64 letters, digits, _ or -")
        store = Store(store_hash, preset, int(seed), self.base,
                      quota=self.args.quota if quota is None else int(quota),
                      window_ms=self.args.window_ms if window_ms is None else int(window_ms),
                      latency_ms=self.args.latency_ms if latency_ms is None else int(latency_ms))
        store.app = self
        with self.lock:
            if store_hash in self.stores:
                raise KeyError(store_hash)
            self.stores[store_hash] = store
        return store

    def image_exists(self, path):
        """Whether /_img/{hash}/... serves an image: the store exists and the path was not
        deleted through the control API."""
        m = IMG_PATH.match(path)
        with self.lock:
            store = self.stores.get(m.group(1)) if m else None
        if store is None:
            return False
        with store.lock:
            return m.group(2) not in store.gone_images

    def sign_theme(self, store, theme_uuid, which, done_at):
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.signed[token] = (store.hash, theme_uuid, which, done_at + self.signed_ttl_s)
        return "%s/_signed/%s/theme.zip" % (self.base, token)

    def theme_bytes(self, store, theme_uuid, which):
        theme = store.table("themes").get(theme_uuid)
        if theme is None:
            return None
        if which == "original" and theme_uuid in store.uploads:
            return store.uploads[theme_uuid]
        key = (store.hash, dumps(theme), which)
        with self.lock:
            blob = self.zips.get(key)
        if blob is None:
            blob = themezip.theme_zip(theme, which)
            with self.lock:
                self.zips[key] = blob
        return blob


def control_error(status, message):
    return api.json_resp(status, {"error": message})


def parse_json(body):
    try:
        value = json.loads(body.decode("utf-8") or "{}")
    except ValueError:
        raise api.ApiError(control_error(400, "body is not JSON"))
    if not isinstance(value, dict):
        raise api.ApiError(control_error(400, "body must be a JSON object"))
    return value


def dump_chunks(store, rtype):
    """NDJSON of one type in id order, in chunks, without holding every line at once."""
    table = store.table(rtype)
    with store.lock:
        ids = list(table.ids())
    buf = []
    size = 0
    for rid in ids:
        rec = table.get(rid)
        if rec is None:
            continue
        line = dumpb(rec) + b"\n"
        buf.append(line)
        size += len(line)
        if size >= DUMP_CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


def control_store(app, method, store, action, req):
    """/_fake/stores/{hash}[/action]."""
    if action is None and method == "DELETE":
        with app.lock:
            app.stores.pop(store.hash, None)
        return api.Resp(204)
    if action == "reset" and method == "POST":
        store.load()
        return api.json_resp(200, store.counts())
    if action == "counts" and method == "GET":
        return api.json_resp(200, store.counts())
    if action == "dump" and method == "GET":
        rtype = req.query.get("type")
        if rtype not in TYPES:
            return control_error(400, "type must be one of %s" % ", ".join(TYPES))
        return api.Resp(200, ctype="application/x-ndjson", chunks=dump_chunks(store, rtype))
    if action == "mutate" and method == "POST":
        try:
            rid = store.mutate(parse_json(req.body))
        except LookupError as exc:
            return control_error(404, str(exc))
        except (ValueError, TypeError) as exc:
            return control_error(400, str(exc))
        return api.json_resp(200, {"id": rid})
    if action == "faults" and method in ("POST", "DELETE"):
        body = parse_json(req.body) if method == "POST" else {}
        try:
            store.set_faults(body.get("rules", []))
        except (ValueError, TypeError, re.error) as exc:
            return control_error(400, "bad rule: %s" % exc)
        if "latency_ms" in body:
            store.latency_ms = int(body["latency_ms"])
        return api.json_resp(200, {"rules": len(store.rules), "latency_ms": store.latency_ms})
    if action == "quota" and method == "POST":
        body = parse_json(req.body)
        store.set_quota(body.get("quota", store.quota), body.get("window_ms", store.window_ms))
        return api.json_resp(200, {"quota": store.quota, "window_ms": store.window_ms})
    if action == "snapshot" and method == "POST":
        return api.json_resp(200, {"snapshot": store.snapshot()})
    if action == "diff" and method == "GET":
        try:
            return api.json_resp(200, store.diff(int(req.query.get("snapshot", ""))))
        except (ValueError, LookupError) as exc:
            return control_error(404, "no such snapshot: %s" % exc)
    if action == "writes" and method == "GET":
        with store.lock:
            return api.json_resp(200, {"writes": list(store.stats.writes)})
    if action == "emails" and method == "GET":
        with store.lock:
            return api.json_resp(200, {"emails": list(store.emails)})
    if action == "tokens" and method == "POST":
        body = parse_json(req.body)
        scopes = body.get("scopes")
        with store.lock:
            store.tokens[body["token"]] = ALL_SCOPES if scopes is None else frozenset(scopes)
        return api.json_resp(200, {"token_count": len(store.tokens)})
    return control_error(404, "no such control endpoint")


def control(app, req):
    method, path = req.method, req.path
    if path == "/_fake/stores" and method == "POST":
        body = parse_json(req.body)
        try:
            store = app.add_store(body.get("hash"), body.get("preset", "sample"),
                                  body.get("seed", 1), body.get("quota"),
                                  body.get("window_ms"), body.get("latency_ms"))
        except KeyError:
            return control_error(409, "store exists")
        except ValueError as exc:
            return control_error(400, str(exc))
        return api.json_resp(201, {"hash": store.hash, "counts": store.counts()})
    if path == "/_fake/stores" and method == "GET":
        with app.lock:
            return api.json_resp(200, {"stores": sorted(app.stores)})
    if path == "/_fake/stats" and method == "GET":
        with app.lock:
            stores = list(app.stores.values())
        out = {}
        for s in stores:
            with s.lock:
                out[s.hash] = s.stats.as_json()
        return api.json_resp(200, {"record": app.record_urls, "stores": out})
    if path == "/_fake/stats/record" and method == "POST":
        app.record_urls = bool(parse_json(req.body).get("on"))
        return api.json_resp(200, {"record": app.record_urls})
    if path == "/_fake/stats/reset" and method == "POST":
        with app.lock:
            stores = list(app.stores.values())
        for s in stores:
            with s.lock:
                s.stats.reset()
        return api.json_resp(200, {"reset": len(stores)})
    if path == "/_fake/config" and method == "POST":
        body = parse_json(req.body)
        if "signed_url_ttl_ms" in body:
            app.signed_ttl_s = int(body["signed_url_ttl_ms"]) / 1000.0
        if "theme_max_bytes" in body:
            app.theme_max_bytes = int(body["theme_max_bytes"])
        return api.json_resp(200, {"signed_url_ttl_ms": int(app.signed_ttl_s * 1000),
                                   "theme_max_bytes": app.theme_max_bytes})
    m = CONTROL_IMG.match(path)
    if m and method == "DELETE":
        with app.lock:
            store = app.stores.get(m.group(1))
        if store is None:
            return control_error(404, "no such store")
        with store.lock:
            store.gone_images.add(m.group(2))
        return api.Resp(204)
    m = CONTROL_STORE.match(path)
    if m:
        with app.lock:
            store = app.stores.get(m.group(1))
        if store is None:
            return control_error(404, "no such store")
        return control_store(app, method, store, m.group(2), req)
    return control_error(404, "no such control endpoint")


def signed_download(app, req):
    m = SIGNED_PATH.match(req.path)
    with app.lock:
        entry = app.signed.get(m.group(1)) if m else None
        store = app.stores.get(entry[0]) if entry else None
    if entry is None or store is None:
        return api.Resp(403, b"signed link not valid\n", ctype="text/plain")
    if time.monotonic() > entry[3]:
        return api.Resp(403, b"signed link expired\n", ctype="text/plain")
    blob = app.theme_bytes(store, entry[1], entry[2])
    if blob is None:
        return api.Resp(404, b"theme gone\n", ctype="text/plain")
    return api.Resp(200, blob, ctype="application/zip")


def fault_response(store, rule, path):
    spec = rule.spec
    status = int(spec.get("status", 503))
    if "body" in spec:
        body = spec["body"].encode("utf-8")
        resp = api.Resp(status, body)
    else:
        resp = api.error_for(path, status, "Injected fault: %d" % status)
    if not spec.get("no_headers"):
        if status == 429:
            reset_ms = int(spec.get("reset_ms", 1000))
            heads = store.peek()
            heads[1] = ("X-Rate-Limit-Time-Reset-Ms", str(reset_ms))
            heads[3] = ("X-Rate-Limit-Requests-Left", "0")
            resp.headers += heads + [("X-Retry-After", str(math.ceil(reset_ms / 1000.0)))]
        else:
            resp.headers += store.peek()
    resp.headers += [(str(k), str(v)) for k, v in (spec.get("headers") or {}).items()]
    return resp


def authorise(store, req, area):
    token = req.headers.get("X-Auth-Token")
    with store.lock:
        scopes = store.tokens.get(token) if token else None
    if scopes is None:
        return api.v3_error(401, "Unauthorized: the X-Auth-Token is missing or not valid.")
    if not api.scope_ok(scopes, area, req.method):
        return api.v3_error(403, "You don't have a required scope to access the endpoint")
    return None


def serve_store(app, handler, store, req):
    """One /stores/{hash}/... request: faults, latency, gates, quota, auth, then the route."""
    routed = api.route(req.method, req.path)
    rule = store.fault_for(req.method, req.path)
    action = rule.action if rule else None
    if action == "mutate":
        try:
            store.mutate(rule.spec.get("mutation") or {})
        except (LookupError, ValueError, TypeError, KeyError):
            pass
    if action == "reset":
        handler.abort(rule.spec.get("rst", False))
    if action == "total":
        # served normally, but a v3 offset page reports this total instead
        req.fake_total = int(rule.spec.get("total", 0))
    gate = routed[3] if not isinstance(routed, api.Resp) else None
    if gate and not store.gate(*gate):
        resp = api.v3_error(429, "Too many concurrent requests to this endpoint.")
        resp.headers += store.peek() + [("X-Retry-After", "1")]
        return resp, None
    try:
        delay = store.latency_ms + (int(rule.spec.get("delay_ms", 0)) if rule else 0)
        if delay > 0:
            time.sleep(delay / 1000.0)
        if action == "status":
            return fault_response(store, rule, req.path), rule
        allowed, heads = store.take()
        if not allowed:
            resp = api.v3_error(429, "Too many requests: the rate limit has been reached.")
        else:
            resp = authorise(store, req, None if isinstance(routed, api.Resp) else routed[2])
        if resp is None and isinstance(routed, api.Resp):
            resp = routed
        if resp is None:
            try:
                resp = routed[0](store, req, routed[1])
            except api.ApiError as exc:
                resp = exc.resp
            if req.method != "GET":
                store.log_write(req.method, api.pattern_of(req.path), resp.status,
                                getattr(req, "touched", {}))
        resp.headers += heads
        return resp, rule
    finally:
        if gate:
            store.ungate(gate[0])


def unknown_store_headers(app):
    quota = app.args.quota if app.args.quota > 0 else UNLIMITED
    window = app.args.window_ms
    return [("X-Rate-Limit-Time-Window-Ms", str(window)),
            ("X-Rate-Limit-Time-Reset-Ms", str(window)),
            ("X-Rate-Limit-Requests-Quota", str(quota)),
            ("X-Rate-Limit-Requests-Left", str(quota))]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server_version = "o7-fakestore"

    def log_message(self, fmt, *args):
        if self.server.app.args.verbose:
            sys.stderr.write("fakestore: " + (fmt % args) + "\n")

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def abort(self, rst):
        """Close the connection without answering; rst=True makes it a TCP reset."""
        self.close_connection = True
        try:
            if rst:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Closed()

    def dispatch(self):
        app = self.server.app
        url = urlsplit(self.path)
        path = unquote(url.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        req = api.Req(self.command, path, dict(pairs), pairs, self.read_body(), self.headers)
        store, rule = None, None
        try:
            if path.startswith("/_fake/"):
                resp = control(app, req)
            elif path.startswith("/_signed/"):
                resp = signed_download(app, req)
            elif path.startswith("/_img/"):
                if app.image_exists(path):
                    resp = api.Resp(200, themezip.png_for(path), ctype="image/png")
                else:
                    resp = api.Resp(404, b"image not found\n", ctype="text/plain")
            else:
                m = STORE_PATH.match(path)
                with app.lock:
                    store = app.stores.get(m.group(1)) if m else None
                if store is None:
                    resp = api.v3_error(404, "Store not found.")
                    resp.headers += unknown_store_headers(app)
                else:
                    req.path = m.group(2) or "/"
                    store.enter(req.method, api.pattern_of(req.path), self.path,
                                app.record_urls)
                    try:
                        resp, rule = serve_store(app, self, store, req)
                    finally:
                        store.leave()
                    store.note_status(resp.status, rule is not None and
                                      rule.action == "status")
        except api.ApiError as exc:
            resp = exc.resp
        except Closed:
            return
        except Exception:  # a bug in the fake must show as a 500, not a dropped connection
            traceback.print_exc()
            resp = api.v3_error(500, "Internal error in the fake store.")
        truncate = rule is not None and rule.action == "truncate"
        self.send(resp, truncate)

    def send(self, resp, truncate=False):
        status = resp.status
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Status"
        heads = ["HTTP/1.1 %d %s" % (status, reason),
                 "Date: " + self.date_time_string(), "Server: " + self.server_version]
        body = resp.body
        if status != 204:
            ctype = resp.ctype
            if ctype == "application/json":
                ctype += "; charset=utf-8"
            heads.append("Content-Type: " + ctype)
        gz = "gzip" in self.headers.get("Accept-Encoding", "") and status != 204
        if resp.chunks is not None:
            heads.append("Transfer-Encoding: chunked")
        elif status != 204:
            if gz and body:
                body = gzip.compress(body, compresslevel=1, mtime=0)
                heads.append("Content-Encoding: gzip")
            heads.append("Vary: Accept-Encoding")
            length = len(body)
            if truncate:
                body = body[:len(body) // 2]
            heads.append("Content-Length: %d" % length)
        heads += ["%s: %s" % kv for kv in resp.headers]
        if self.close_connection or truncate:
            heads.append("Connection: close")
        head = ("\r\n".join(heads) + "\r\n\r\n").encode("latin-1")
        try:
            if resp.chunks is None:
                self.wfile.write(head + body)
            else:
                self.wfile.write(head)
                for chunk in resp.chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        if truncate:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def loopback(host):
    if host == "localhost":
        host = "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    return host if addr.version == 4 and addr.is_loopback else None


def parse_args(argv):
    p = argparse.ArgumentParser(description="Fake BigCommerce API for o7 tests (loopback only)")
    p.add_argument("--port", type=int, default=8788)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--quota", type=int, default=0, help="requests per window; 0 = unlimited")
    p.add_argument("--window-ms", type=int, default=30000)
    p.add_argument("--store", action="append", default=[], help="HASH=PRESET[:SEED]")
    p.add_argument("--token", action="append", default=[], help="HASH=TOKEN:scope1,scope2")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def add_cli_stores(app, args):
    specs = args.store or ["o7sample=sample:1"]
    for spec in specs:
        store_hash, _, rest = spec.partition("=")
        preset, seed = rest or "sample", 1
        if re.search(r":\d+$", preset) and not re.match(r"^bench:\d+$", preset):
            preset, seed = preset.rsplit(":", 1)
        elif re.match(r"^bench:\d+:\d+$", preset):
            preset, seed = preset.rsplit(":", 1)
        app.add_store(store_hash, preset, int(seed))
    for spec in args.token:
        store_hash, _, rest = spec.partition("=")
        token, _, scopes = rest.partition(":")
        store = app.stores[store_hash]
        store.tokens[token] = frozenset(s for s in scopes.split(",") if s)


def main(argv):
    api.register(write_catalog.ROUTES + write_sales.ROUTES + write_content.ROUTES +
                 write_settings.ROUTES)
    args = parse_args(argv)
    host = loopback(args.host)
    if host is None:
        sys.stderr.write("fakestore: refusing to bind %r: only IPv4 loopback is allowed\n"
                         % args.host)
        return 2
    server = Server((host, args.port), Handler)
    base = "http://%s:%d" % (host, server.server_address[1])
    server.app = App(base, args)
    try:
        add_cli_stores(server.app, args)
    except (ValueError, KeyError) as exc:
        sys.stderr.write("fakestore: bad --store/--token: %s\n" % exc)
        server.server_close()
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    sys.stdout.write("listening on %s\n" % base)
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    server.shutdown()
    thread.join()
    server.server_close()
    sys.stderr.write("fakestore: stopped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

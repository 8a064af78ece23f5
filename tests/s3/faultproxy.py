#!/usr/bin/env python3
"""faultproxy.py - a fault-injecting HTTP proxy for o7's S3 tests (stdlib only).

Sits on 127.0.0.1 between the backend and an S3 server on 127.0.0.1 and
passes requests through unchanged (Host included, so signatures still
verify), except where a fault is asked for:

    --slowdown N        the first N part uploads and single PUTs get 503 SlowDown
    --reset N           the N-th part upload is cut mid-body with a TCP reset
    --skew N            the first N requests get 403 RequestTimeTooSkewed (with
                        this machine's Date header, as S3 answers)
    --fail-key TEXT     every request whose path (query included) holds TEXT
                        gets 500 InternalError (a failure that never heals);
                        --fail-method limits it to one method

    faultproxy.py --port P --upstream PORT [faults] [--max-seconds S]

It forwards at most --max-requests requests (default 20000) and stops by
itself after --max-seconds (default 900). Counts of what it did are written
to --stats FILE (JSON) after each request.
"""
import argparse
import http.client
import json
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOWDOWN = (b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>"
            b"<Message>Please reduce your request rate.</Message></Error>")
SKEWED = (b"<?xml version=\"1.0\"?><Error><Code>RequestTimeTooSkewed</Code>"
          b"<Message>The difference between the request time and the current time is "
          b"too large.</Message></Error>")
INTERNAL = (b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"
            b"<Message>We encountered an internal error.</Message></Error>")


class Faults:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stats = {"forwarded": 0, "skewed": 0, "slowdown": 0, "reset": 0,
                      "failed_key": 0, "parts": 0}

    def save(self):
        if self.args.stats:
            with open(self.args.stats, "w", encoding="utf-8") as f:
                json.dump(self.stats, f)

    def decide(self, method, path):
        """'slowdown', 'reset', 'fail' or None for this request."""
        with self.lock:
            if self.stats["forwarded"] >= self.args.max_requests:
                return "fail"
            if self.stats["skewed"] < self.args.skew:
                self.stats["skewed"] += 1
                return "skew"
            if (self.args.fail_key and self.args.fail_key in path and
                    self.args.fail_method in ("", method)):
                self.stats["failed_key"] += 1
                return "fail"
            is_upload = method == "PUT"
            if is_upload and "partNumber=" in path:
                self.stats["parts"] += 1
                if self.stats["parts"] == self.args.reset:
                    self.stats["reset"] += 1
                    return "reset"
            if is_upload and self.stats["slowdown"] < self.args.slowdown:
                self.stats["slowdown"] += 1
                return "slowdown"
            self.stats["forwarded"] += 1
            return None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_error_body(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def cut(self, length):
        """Reads half the body, then resets the connection."""
        self.rfile.read(length // 2)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def handle_any(self):
        faults = self.server.faults
        length = int(self.headers.get("Content-Length", "0") or 0)
        verdict = faults.decide(self.command, self.path)
        if verdict == "reset":
            self.cut(length)
            faults.save()
            return
        body = self.rfile.read(length) if length else b""
        if verdict == "slowdown":
            self.send_error_body(503, SLOWDOWN)
        elif verdict == "skew":
            self.send_error_body(403, SKEWED)
        elif verdict == "fail":
            self.send_error_body(500, INTERNAL)
        else:
            self.forward(body)
        faults.save()

    def forward(self, body):
        up = http.client.HTTPConnection("127.0.0.1", self.server.faults.args.upstream,
                                        timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        up.request(self.command, self.path, body=body, headers=headers)
        resp = up.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        # A HEAD answer keeps the object's length; a body gets its own.
        length = resp.getheader("Content-Length", "0") if self.command == "HEAD" else len(data)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        up.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--slowdown", type=int, default=0)
    ap.add_argument("--reset", type=int, default=0)
    ap.add_argument("--skew", type=int, default=0)
    ap.add_argument("--fail-key", default="")
    ap.add_argument("--fail-method", default="")
    ap.add_argument("--stats", default="")
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Proxy)
    server.daemon_threads = True
    server.faults = Faults(args)
    print("faultproxy listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    threading.Timer(args.max_seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

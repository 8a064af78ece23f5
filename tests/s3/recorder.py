#!/usr/bin/env python3
"""recorder.py - a small recording S3 server for o7's tests (stdlib only).

Listens on 127.0.0.1 only. It records every request as one JSON line in the
--log file and checks its SigV4 signature (header or query) with its own
implementation, written from the SigV4 specification and independent of
o7's C signer. It implements just what s3rver cannot judge: virtual-host
requests, query values holding ( ) * ! ', multipart uploads with abort and
ListMultipartUploads, and the x-amz-acl: private header on every PUT/create.

    recorder.py --port N --log FILE [--bucket NAME] [--access KEY]
                [--endpoint-host HOST] [--region R] [--max-seconds S]

The secret comes from the environment (RECORDER_SECRET), never argv. A bad
signature is answered 403 SignatureDoesNotMatch, a credential scope
for another region 400 AuthorizationHeaderMalformed, as S3 would. The server
stops by itself after --max-seconds (default 900).
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def uri_encode(raw: bytes, keep_slash: bool) -> str:
    out = []
    for b in raw:
        c = chr(b)
        if c in UNRESERVED or (keep_slash and c == "/"):
            out.append(c)
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def split_query(raw_query: str):
    """[(key bytes, value bytes)] from a raw query, percent-decoded ('+' kept)."""
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        pairs.append((urllib.parse.unquote_to_bytes(key), urllib.parse.unquote_to_bytes(value)))
    return pairs


def canonical_query(pairs, drop=()):
    enc = [(uri_encode(k, False), uri_encode(v, False))
           for k, v in pairs if k.decode() not in drop]
    enc.sort()
    return "&".join("%s=%s" % kv for kv in enc)


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def squeeze(value: str) -> str:
    return " ".join(value.strip().split())


class Verdict:
    def __init__(self, ok, why, signed_headers=()):
        self.ok, self.why, self.signed_headers = ok, why, list(signed_headers)


def verify(method, raw_path, raw_query, headers, secret, access, body_sha, want_region):
    """Checks the SigV4 signature of one request. headers: lower-case dict."""
    pairs = split_query(raw_query)
    qd = {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}
    auth = headers.get("authorization", "")
    if auth.startswith("AWS4-HMAC-SHA256 "):
        fields = dict(f.strip().split("=", 1) for f in auth[17:].split(","))
        cred, signed, given = fields["Credential"], fields["SignedHeaders"], fields["Signature"]
        amz_date = headers.get("x-amz-date", "")
        payload = headers.get("x-amz-content-sha256", "")
        if payload != "UNSIGNED-PAYLOAD" and payload != body_sha:
            return Verdict(False, "x-amz-content-sha256 is not the body's hash")
        drop = ()
    elif qd.get("X-Amz-Algorithm") == "AWS4-HMAC-SHA256":
        cred, signed = qd["X-Amz-Credential"], qd["X-Amz-SignedHeaders"]
        given = qd["X-Amz-Signature"]
        amz_date, payload, drop = qd["X-Amz-Date"], "UNSIGNED-PAYLOAD", ("X-Amz-Signature",)
        start = time.mktime(time.strptime(amz_date, "%Y%m%dT%H%M%SZ")) - time.timezone
        if time.time() > start + int(qd["X-Amz-Expires"]):
            return Verdict(False, "expired")
    else:
        return Verdict(False, "no signature")
    key_id, date, region, service, term = cred.split("/")
    if key_id != access:
        return Verdict(False, "unknown access key")
    if region != want_region:
        return Verdict(False, "wrong region")
    names = signed.split(";")
    canon_headers = "".join("%s:%s\n" % (n, squeeze(headers.get(n, ""))) for n in names)
    # The path as the client sent it, decoded and encoded once more by the
    # S3 rule: a client that encoded anything differently fails here.
    path = uri_encode(urllib.parse.unquote_to_bytes(raw_path), True)
    creq = "\n".join([method, path, canonical_query(pairs, drop), canon_headers, signed, payload])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join([date, region, service, term]),
                     hashlib.sha256(creq.encode()).hexdigest()])
    key = signing_key(secret, date, region, service)
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, given):
        return Verdict(False, "signature mismatch", names)
    return Verdict(True, "ok", names)


class State:
    def __init__(self, args, secret):
        self.args, self.secret = args, secret
        self.lock = threading.Lock()
        self.objects = {}   # key -> bytes
        self.uploads = {}   # upload id -> {"key", "parts": {n: bytes}, "initiated"}
        self.next_id = 1
        self.log = open(args.log, "a", encoding="utf-8")

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()


def xml_escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "o7-recorder"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing -------------------------------------------------------
    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code):
        body = ("<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>%s</Message></Error>"
                % (code, code)).encode()
        self.reply(status, body, {"Content-Type": "application/xml"})

    def bucket_and_key(self):
        """Virtual-host (bucket.HOST) or path-style addressing."""
        st = self.server.state
        host = self.headers.get("Host", "").split(":")[0]
        raw_path = self.path.split("?", 1)[0]
        path = urllib.parse.unquote_to_bytes(raw_path).decode("utf-8", "replace")
        suffix = "." + st.args.endpoint_host
        if host.endswith(suffix):
            return host[: -len(suffix)], path[1:], "virtual"
        bucket, _, key = path[1:].partition("/")
        return bucket, key, "path"

    def handle_any(self):
        st = self.server.state
        length = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(length) if length else b""
        raw_path, _, raw_query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        verdict = verify(self.command, raw_path, raw_query, headers, st.secret, st.args.access,
                         hashlib.sha256(body).hexdigest(), st.args.region)
        bucket, key, style = self.bucket_and_key()
        query = {k.decode(): v.decode("utf-8", "replace") for k, v in split_query(raw_query)}
        st.record({"method": self.command, "raw_path": raw_path, "raw_query": raw_query,
                   "bucket": bucket, "key": key, "style": style,
                   "query": {k: v for k, v in query.items() if k != "X-Amz-Signature"},
                   "acl": headers.get("x-amz-acl"), "sig_ok": verdict.ok, "why": verdict.why,
                   "signed_headers": verdict.signed_headers, "bytes": len(body)})
        if verdict.why == "wrong region":
            return self.error(400, "AuthorizationHeaderMalformed")
        if not verdict.ok:
            return self.error(403, "SignatureDoesNotMatch")
        if bucket != st.args.bucket:
            return self.error(404, "NoSuchBucket")
        with st.lock:
            return self.dispatch(key, query, body)

    # ---- the operations ----------------------------------------------------
    def dispatch(self, key, q, body):
        st = self.server.state
        m = self.command
        if not key:
            if m == "GET" and "uploads" in q:
                return self.list_uploads(q.get("prefix", ""))
            if m == "GET":
                return self.list_objects(q.get("prefix", ""))
            return self.error(405, "MethodNotAllowed")
        if m == "POST" and "uploads" in q:
            uid = "up%d" % st.next_id
            st.next_id += 1
            st.uploads[uid] = {"key": key, "parts": {}, "initiated": time.time()}
            return self.reply(200, ("<InitiateMultipartUploadResult><UploadId>%s</UploadId>"
                                    "</InitiateMultipartUploadResult>" % uid).encode())
        if "uploadId" in q:
            return self.multipart(key, q, body)
        if m == "PUT":
            st.objects[key] = body
            return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        data = st.objects.get(key)
        if m == "DELETE":
            st.objects.pop(key, None)
            return self.reply(204)
        if data is None:
            return self.error(404, "NoSuchKey") if m == "GET" else self.reply(404)
        return self.reply(200, data, {"ETag": '"%s"' % hashlib.md5(data).hexdigest(),
                                      "Last-Modified": "Fri, 04 Dec 2026 00:00:00 GMT"})

    def multipart(self, key, q, body):
        st = self.server.state
        up = st.uploads.get(q["uploadId"])
        if up is None or up["key"] != key:
            return self.error(404, "NoSuchUpload")
        if self.command == "PUT":
            up["parts"][int(q["partNumber"])] = body
            return self.reply(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if self.command == "DELETE":
            del st.uploads[q["uploadId"]]
            return self.reply(204)
        if self.command == "POST":
            data = b"".join(up["parts"][n] for n in sorted(up["parts"]))
            st.objects[key] = data
            del st.uploads[q["uploadId"]]
            return self.reply(200, b"<CompleteMultipartUploadResult><ETag>\"x-%d\"</ETag>"
                              b"</CompleteMultipartUploadResult>" % len(up["parts"]))
        return self.error(405, "MethodNotAllowed")

    def list_objects(self, prefix):
        st = self.server.state
        items = "".join("<Contents><Key>%s</Key><Size>%d</Size><ETag>\"%s\"</ETag></Contents>"
                        % (xml_escape(k), len(v), hashlib.md5(v).hexdigest())
                        for k, v in sorted(st.objects.items()) if k.startswith(prefix))
        self.reply(200, ("<ListBucketResult><IsTruncated>false</IsTruncated>%s"
                         "</ListBucketResult>" % items).encode())

    def list_uploads(self, prefix):
        st = self.server.state
        items = "".join(
            "<Upload><Key>%s</Key><UploadId>%s</UploadId><Initiated>%s</Initiated></Upload>"
            % (xml_escape(u["key"]), uid,
               time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(u["initiated"])))
            for uid, u in sorted(st.uploads.items()) if u["key"].startswith(prefix))
        self.reply(200, ("<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>%s"
                         "</ListMultipartUploadsResult>" % items).encode())

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log", required=True)
    ap.add_argument("--bucket", default="bkt")
    ap.add_argument("--access", default="RECORDER")
    ap.add_argument("--endpoint-host", default="localhost")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    secret = os.environ.get("RECORDER_SECRET", "RECORDERSECRET")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args, secret)
    print("recorder listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
    threading.Timer(args.max_seconds, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""test_s3_storage.py - o7's S3 backend against a real S3 server.

Starts on free 127.0.0.1 ports: s3rver 4.0.4 (tests/s3/s3server.js, which
verifies SigV4 for path-style requests), our recording server
(tests/s3/recorder.py, an independent SigV4 check plus what s3rver lacks)
and the fault proxy (tests/s3/faultproxy.py). Drives the backend through
bench/s3_put (built beside the o7 binary) and cross-checks bytes with awscli
and curl. Tests that depend on the recording server say so in their name.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.environ.get("O7_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
S3DIR = os.path.join(SRC, "tests", "s3")
BUCKET = "bkt"
PREFIX = "it dir/"
AK, SK = "O7TESTKEY", "o7-test-secret/With+Plus"
REC_AK, REC_SK = "RECORDER", "recorder-secret-42"


def find_driver():
    cands = [os.environ.get("O7_S3_PUT", "")]
    if os.environ.get("O7_BIN"):
        cands.append(os.path.join(os.path.dirname(os.environ["O7_BIN"]), "s3_put"))
    for c in cands:
        if c and os.access(c, os.X_OK):
            return c
    raise SystemExit("s3_put not found beside O7_BIN (set O7_S3_PUT)")


class Servers:
    """Every process the tests start; each is stopped by its own pid."""

    def __init__(self, tmp):
        self.tmp, self.procs = tmp, []

    def start(self, argv, env=None, ready="listening on 127.0.0.1:"):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env=env, text=True)
        self.procs.append(p)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = p.stdout.readline()
            if ready in line:
                return int(line.strip().rsplit(":", 1)[1])
            if not line and p.poll() is not None:
                break
        raise RuntimeError("%s did not start" % argv[1])

    def s3rver(self):
        d = tempfile.mkdtemp(dir=self.tmp)
        env = dict(os.environ, S3RVER_EXTRA_CREDS="%s:%s" % (AK, SK))
        return self.start(["node", "--openssl-legacy-provider", os.path.join(S3DIR, "s3server.js"),
                           "--port", "0", "--dir", d, "--bucket", BUCKET], env=env)

    def recorder(self, log):
        env = dict(os.environ, RECORDER_SECRET=REC_SK)
        return self.start([sys.executable, os.path.join(S3DIR, "recorder.py"), "--port", "0",
                           "--log", log, "--bucket", BUCKET, "--access", REC_AK,
                           "--max-seconds", "600"], env=env)

    def proxy(self, upstream, *faults):
        return self.start([sys.executable, os.path.join(S3DIR, "faultproxy.py"), "--port", "0",
                           "--upstream", str(upstream), "--max-seconds", "600"] + list(faults))

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Ctx:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="o7-s3-")
        self.servers = Servers(self.tmp)
        self.driver = find_driver()
        self.port = self.servers.s3rver()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.awsconf = os.path.join(self.tmp, "aws-config")
        with open(self.awsconf, "w") as f:
            f.write("[default]\nregion = us-east-1\n"
                    "request_checksum_calculation = when_required\n"
                    "response_checksum_validation = when_required\n"
                    "s3 =\n    addressing_style = path\n")

    def env(self, endpoint=None, url=None, ak=AK, sk=SK, extra=None):
        e = dict(os.environ, O7_S3_URL=url or "s3://%s/%s" % (BUCKET, PREFIX),
                 O7_S3_ENDPOINT=endpoint or self.endpoint, O7_S3_REGION="us-east-1",
                 AWS_ACCESS_KEY_ID=ak, AWS_SECRET_ACCESS_KEY=sk)
        e.pop("O7_TEST_TINY_PARTS", None)
        e.update(extra or {})
        return e

    def o7(self, *args, env=None, check=True, stdin=None):
        r = subprocess.run([self.driver] + list(args), env=env or self.env(), input=stdin,
                           capture_output=True, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError("s3_put %s failed (%d): %s" % (args[0], r.returncode,
                                                                 r.stderr.decode()))
        return r

    def aws(self, *args, check=True):
        env = dict(os.environ, AWS_CONFIG_FILE=self.awsconf, AWS_ACCESS_KEY_ID=AK,
                   AWS_SECRET_ACCESS_KEY=SK,
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.tmp, "none"))
        r = subprocess.run(["aws", "--endpoint-url", self.endpoint] + list(args), env=env,
                           capture_output=True, timeout=300)
        if check and r.returncode != 0:
            raise AssertionError("aws %s failed: %s" % (" ".join(args), r.stderr.decode()))
        return r

    def file(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()


def eq(a, b, what=""):
    if a != b:
        ra, rb = repr(a), repr(b)
        raise AssertionError("%s: %s != %s" % (what, ra[:200], rb[:200]))


SPECIAL_KEYS = ["sp ace.txt", "a+b", "til~de", "eq=ual", "co:lon", "ünï-ßé/日本.txt",
                "semi;amp&.dat", "a b"]


def test_special_keys_o7_put_awscli_get(c):
    for i, key in enumerate(SPECIAL_KEYS):
        data = ("object %d %s\n" % (i, key)).encode() * (i + 1)
        c.o7("put", key, c.file("in%d" % i, data))
        out = os.path.join(c.tmp, "aws-out%d" % i)
        c.aws("s3", "cp", "s3://%s/%s%s" % (BUCKET, PREFIX, key), out)
        eq(c.read(out), data, key)


def test_awscli_put_o7_get(c):
    for i, key in enumerate(SPECIAL_KEYS):
        data = os.urandom(1000 + i)
        c.aws("s3", "cp", c.file("aws-in%d" % i, data), "s3://%s/%sup/%s" % (BUCKET, PREFIX, key))
        eq(c.o7("get", "up/" + key, "-").stdout, data, key)


def test_plus_and_space_are_two_objects(c):
    c.o7("put", "pair/a+b", "-", stdin=b"plus")
    c.o7("put", "pair/a b", "-", stdin=b"space")
    eq(c.o7("get", "pair/a+b", "-").stdout, b"plus")
    eq(c.o7("get", "pair/a b", "-").stdout, b"space")
    listed = c.o7("list", "pair/").stdout.decode().splitlines()
    eq(listed, ["5\tpair/a b", "4\tpair/a+b"], "listing")


def test_head_delete_and_absent(c):
    c.o7("put", "hd/x", "-", stdin=b"12345")
    eq(c.o7("head", "hd/x").stdout.split()[0], b"5")
    c.o7("delete", "hd/x")
    c.o7("delete", "hd/x")  # absent: still fine
    r = c.o7("head", "hd/x", check=False)
    eq(r.returncode, 3, "head of a deleted object")
    r = c.o7("get", "hd/x", "-", check=False)
    eq(r.returncode, 3, "get of a deleted object")


def test_multipart_tiny_parts_awscli_reads_back(c):
    data = os.urandom(3 * 1024 * 1024 + 12345)
    env = c.env(extra={"O7_TEST_TINY_PARTS": "1"})
    r = c.o7("--part-size", str(512 * 1024), "--parallel", "3", "put", "mp/big obj.bin",
             c.file("mp", data), env=env)
    if b"7 parts" not in r.stderr:
        raise AssertionError("expected a 7-part upload: %s" % r.stderr.decode())
    out = os.path.join(c.tmp, "mp-out")
    c.aws("s3", "cp", "s3://%s/%smp/big obj.bin" % (BUCKET, PREFIX), out)
    eq(c.read(out), data, "awscli bytes")
    eq(c.o7("get", "mp/big obj.bin", "-").stdout, data, "o7 bytes")


def test_tiny_parts_refused_without_test_switch(c):
    r = c.o7("--part-size", "100000", "put", "x", "-", stdin=b"x", check=False)
    eq(r.returncode, 1)
    if b"5 MiB" not in r.stderr:
        raise AssertionError(r.stderr.decode())


def test_list_more_than_1000_keys(c):
    c.o7("put-many", "many/k", "1100")
    lines = c.o7("list", "many/").stdout.decode().splitlines()
    keys = [l.split("\t", 1)[1] for l in lines]
    eq(len(keys), 1100, "count")
    eq(keys, sorted(keys), "order")
    eq(keys[0], "many/k00000")
    eq(keys[-1], "many/k01099")


def test_presigned_url_then_expiry(c):
    data = os.urandom(2048)
    c.o7("put", "ps/file +x.bin", c.file("ps", data))
    url = c.o7("presign", "ps/file +x.bin", "2").stdout.decode().strip()
    got = subprocess.run(["curl", "-sS", "-f", url], capture_output=True, timeout=30)
    eq(got.returncode, 0, "curl: " + got.stderr.decode())
    eq(got.stdout, data)
    time.sleep(3)
    late = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
                          capture_output=True, timeout=30)
    eq(late.stdout, b"403", "status after the ttl")
    r = c.o7("presign", "ps/file +x.bin", "60")
    if b"X-Amz-Signature" in r.stderr or b"X-Amz-Credential" in r.stderr:
        raise AssertionError("signed URL in the log: %r" % r.stderr)
    r = c.o7("presign", "ps/x", "604801", check=False)
    eq(r.returncode, 1, "ttl over 7 days")


def test_wrong_secret_names_bucket_not_secret(c):
    bad = "definitely-Wrong-Secret-9"
    r = c.o7("put", "ws/x", "-", stdin=b"x", env=c.env(sk=bad), check=False)
    eq(r.returncode, 1)
    msg = r.stderr.decode()
    for want in (BUCKET, c.endpoint, "SignatureDoesNotMatch", "secret key"):
        if want not in msg:
            raise AssertionError("%r not in %r" % (want, msg))
    if bad in msg or "X-Amz-Signature" in msg or "Signature=" in msg:
        raise AssertionError("secret or signature leaked: %r" % msg)
    r = c.o7("get", "ws/x", "-", env=c.env(ak="NOSUCHKEY"), check=False)
    if r.returncode != 1 or b"InvalidAccessKeyId" not in r.stderr:
        raise AssertionError(r.stderr.decode())


def test_missing_bucket_says_check_bucket_name(c):
    r = c.o7("put", "x", "-", stdin=b"x", env=c.env(url="s3://no-such-bucket/p"), check=False)
    eq(r.returncode, 1)
    msg = r.stderr.decode()
    for want in ("no-such-bucket", c.endpoint, "NoSuchBucket", "bucket name"):
        if want not in msg:
            raise AssertionError("%r not in %r" % (want, msg))


def fault_put(c, proxy_port, key, data, parts=True):
    env = c.env(endpoint="http://127.0.0.1:%d" % proxy_port,
                extra={"O7_TEST_TINY_PARTS": "1"})
    args = ["--part-size", str(256 * 1024)] if parts else []
    return c.o7(*(args + ["put", key, c.file("fault", data)]), env=env, check=False)


def test_fault_slowdown_burst_commits(c):
    p = c.servers.proxy(c.port, "--slowdown", "3")
    data = os.urandom(1024 * 1024 + 7)
    r = fault_put(c, p, "fault/slow.bin", data)
    eq(r.returncode, 0, r.stderr.decode())
    if b"retry" not in r.stderr:
        raise AssertionError("no retry logged: " + r.stderr.decode())
    eq(c.o7("get", "fault/slow.bin", "-").stdout, data)


def test_fault_reset_mid_part_commits(c):
    p = c.servers.proxy(c.port, "--reset", "2")
    data = os.urandom(1024 * 1024 + 99)
    r = fault_put(c, p, "fault/reset.bin", data)
    eq(r.returncode, 0, r.stderr.decode())
    eq(c.o7("get", "fault/reset.bin", "-").stdout, data)


def test_fault_manifest_key_fails_nothing_visible(c):
    p = c.servers.proxy(c.port, "--fail-key", "manifest")
    r = fault_put(c, p, "fault/manifest.json", b'{"types": []}', parts=False)
    eq(r.returncode, 1)
    if b"manifest.json" not in r.stderr or BUCKET.encode() not in r.stderr:
        raise AssertionError(r.stderr.decode())
    eq(c.o7("head", "fault/manifest.json", check=False).returncode, 3, "visible after failure")


def test_fault_clock_skew_corrected_once(c):
    p = c.servers.proxy(c.port, "--skew", "1")
    r = fault_put(c, p, "fault/skew.bin", b"skewed clock", parts=False)
    eq(r.returncode, 0, r.stderr.decode())
    if b"clock differs" not in r.stderr:
        raise AssertionError(r.stderr.decode())
    eq(c.o7("get", "fault/skew.bin", "-").stdout, b"skewed clock")
    # A server that keeps saying so is not retried forever.
    p = c.servers.proxy(c.port, "--skew", "5")
    r = fault_put(c, p, "fault/skew2.bin", b"x", parts=False)
    eq(r.returncode, 1, "second skew error")
    if b"RequestTimeTooSkewed" not in r.stderr:
        raise AssertionError(r.stderr.decode())


# ---- against the recording server ------------------------------------------

def recorder_setup(c):
    log = os.path.join(c.tmp, "rec-%d.log" % time.time_ns())
    port = c.servers.recorder(log)
    return port, log


def rec_env(c, port, extra=None):
    return c.env(endpoint="http://localhost:%d" % port, ak=REC_AK, sk=REC_SK, extra=extra)


def rec_entries(log):
    with open(log, encoding="utf-8") as f:
        return [json.loads(l) for l in f]


def test_recorder_virtual_host_signatures(c):
    port, log = recorder_setup(c)
    env = rec_env(c, port)
    c.o7("--virtual", "put", "v/a b+c", "-", stdin=b"vh", env=env)
    eq(c.o7("--virtual", "get", "v/a b+c", "-", env=env).stdout, b"vh")
    eq(c.o7("--virtual", "list", "v/", env=env).stdout, b"2\tv/a b+c\n")
    es = rec_entries(log)
    eq({e["style"] for e in es}, {"virtual"})
    eq([e for e in es if not e["sig_ok"]], [], "bad signatures")
    eq(es[0]["raw_path"], "/it%20dir/v/a%20b%2Bc", "wire path")
    # And a wrong secret is caught by the recorder's own check.
    bad = rec_env(c, port)
    bad["AWS_SECRET_ACCESS_KEY"] = "wrong"
    eq(c.o7("--virtual", "get", "v/a b+c", "-", env=bad, check=False).returncode, 1)
    eq(rec_entries(log)[-1]["why"], "signature mismatch")


def test_recorder_wrong_region_says_check_region(c):
    port, log = recorder_setup(c)
    env = rec_env(c, port, {"O7_S3_REGION": "eu-west-9"})
    r = c.o7("put", "rg/x", "-", stdin=b"x", env=env, check=False)
    eq(r.returncode, 1)
    msg = r.stderr.decode()
    for want in (BUCKET, "AuthorizationHeaderMalformed", "region"):
        if want not in msg:
            raise AssertionError("%r not in %r" % (want, msg))
    eq(len(rec_entries(log)), 1, "a permanent failure is not retried")


def test_recorder_query_values_with_sub_delims(c):
    port, log = recorder_setup(c)
    env = rec_env(c, port)
    key = "q/it's (1)*!.txt"
    c.o7("put", key, "-", stdin=b"subdelims", env=env)
    eq(c.o7("list", "q/it's (1)*!", env=env).stdout, b"9\tq/it's (1)*!.txt\n")
    url = c.o7("presign", key, "60", env=env).stdout.decode().strip()
    got = subprocess.run(["curl", "-sS", "-f", url], capture_output=True, timeout=30)
    eq(got.stdout, b"subdelims", "presigned GET: " + got.stderr.decode())
    es = rec_entries(log)
    eq([e for e in es if not e["sig_ok"]], [], "bad signatures")
    lists = [e for e in es if e["query"].get("list-type") == "2"]
    eq(lists[0]["query"]["prefix"], "it dir/q/it's (1)*!")
    if "%28" not in lists[0]["raw_query"] or "%27" not in lists[0]["raw_query"]:
        raise AssertionError(lists[0]["raw_query"])


def test_recorder_acl_private_on_every_put_and_create(c):
    port, log = recorder_setup(c)
    env = rec_env(c, port, {"O7_TEST_TINY_PARTS": "1"})
    c.o7("put", "acl/small", "-", stdin=b"s", env=env)
    c.o7("--part-size", "100000", "put", "acl/big", "-", stdin=os.urandom(350000), env=env)
    es = rec_entries(log)
    writes = [e for e in es if (e["method"] == "PUT" and "partNumber" not in e["query"]) or
              (e["method"] == "POST" and "uploads" in e["query"])]
    eq(len(writes), 2, "object PUT and CreateMultipartUpload")
    eq([e["acl"] for e in writes], ["private", "private"])
    parts = [e for e in es if "partNumber" in e["query"]]
    eq(len(parts), 4, "parts")
    heads = [e for e in es if e["method"] == "HEAD"]
    eq(len(heads), 2, "a HEAD confirms each commit")


def test_recorder_failed_parts_abort_the_upload(c):
    port, log = recorder_setup(c)
    proxy = c.servers.proxy(port, "--fail-key", "partNumber=", "--fail-method", "PUT")
    env = c.env(endpoint="http://localhost:%d" % proxy, ak=REC_AK, sk=REC_SK,
                extra={"O7_TEST_TINY_PARTS": "1"})
    r = c.o7("--part-size", "100000", "put", "ab/doomed", "-", stdin=os.urandom(250000),
             env=env, check=False)
    eq(r.returncode, 1, "upload with failing parts")
    es = rec_entries(log)
    aborts = [e for e in es if e["method"] == "DELETE" and "uploadId" in e["query"]]
    eq(len(aborts), 1, "AbortMultipartUpload sent")
    eq(aborts[0]["sig_ok"], True)
    # Nothing left open, nothing visible.
    direct = rec_env(c, port)
    c.o7("gc", "0", env=direct)
    es = rec_entries(log)
    eq(len([e for e in es if e["method"] == "DELETE"]), 1, "gc found an open upload")
    eq(c.o7("head", "ab/doomed", env=direct, check=False).returncode, 3)


def test_recorder_gc_aborts_stale_uploads(c):
    port, log = recorder_setup(c)
    # The proxy swallows the writer's own abort, so an upload stays open.
    proxy = c.servers.proxy(port, "--fail-key", "uploadId=", "--fail-method", "DELETE")
    env = c.env(endpoint="http://localhost:%d" % proxy, ak=REC_AK, sk=REC_SK,
                extra={"O7_TEST_TINY_PARTS": "1"})
    c.o7("--part-size", "100000", "put-abort", "gc/left", "-", stdin=os.urandom(250000),
         env=env, check=False)
    direct = rec_env(c, port)
    c.o7("gc", "3600", env=direct)  # too young: kept
    eq([e for e in rec_entries(log) if e["method"] == "DELETE" and e["sig_ok"]], [])
    time.sleep(1.2)
    r = c.o7("gc", "1", env=direct)
    aborted = [e for e in rec_entries(log) if e["method"] == "DELETE" and e["sig_ok"]]
    eq(len(aborted), 1, "stale upload aborted")
    eq(aborted[0]["key"], "it dir/gc/left")
    if b"aborted 1 stale" not in r.stderr:
        raise AssertionError(r.stderr.decode())


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    c = Ctx()
    passed = failed = 0
    try:
        for t in TESTS:
            try:
                t(c)
                passed += 1
                print("ok   %s" % t.__name__, flush=True)
            except Exception:
                failed += 1
                print("FAIL %s" % t.__name__, flush=True)
                traceback.print_exc()
    finally:
        c.servers.stop_all()
        shutil.rmtree(c.tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())

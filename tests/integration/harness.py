"""Shared pieces of o7's integration tests: a fake store on a free
127.0.0.1 port, a scratch o7.conf, running the real o7 binary, and exact
comparison of backed-up records with what the store holds.

Every server a test starts listens on 127.0.0.1 and is stopped when the
test ends."""

import atexit
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

SOURCE = os.environ.get("O7_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
O7 = os.environ.get("O7_BIN") or os.path.join(SOURCE, "build", "o7")
TOKEN = "o7-sample-token"


class FakeStore:
    """tests/fakestore on a free port; stores given as HASH=PRESET[:SEED]."""

    def __init__(self, stores=("o7sample=sample:1",), args=()):
        cmd = [sys.executable, os.path.join(SOURCE, "tests", "fakestore", "fakestore.py"),
               "--port", "0"]
        for s in stores:
            cmd += ["--store", s]
        cmd += list(args)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.wait(10)
            self.log.seek(0)
            raise RuntimeError("fake store did not start: %r\n%s" % (line, self.log.read()[-3000:]))
        self.url = line.split("listening on", 1)[1].strip()
        atexit.register(self.stop)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
        return json.loads(text) if text.strip().startswith(("{", "[")) else text

    def dump(self, store, type_):
        with urllib.request.urlopen("%s/_fake/stores/%s/dump?type=%s" % (self.url, store, type_),
                                    timeout=60) as r:
            body = r.read().decode("utf-8")
        return [line for line in body.split("\n") if line]

    def faults(self, store, rules, latency_ms=None):
        body = {"rules": rules}
        if latency_ms is not None:
            body["latency_ms"] = latency_ms
        return self.call("POST", "/_fake/stores/%s/faults" % store, body)

    def stats(self):
        return self.call("GET", "/_fake/stats")


class Workspace:
    """A scratch folder with its own o7.conf, catalog, key and backups."""

    def __init__(self, api_url, extra="", codec="gzip", storage=None):
        self.dir = tempfile.mkdtemp(prefix="o7-test-")
        atexit.register(shutil.rmtree, self.dir, True)
        self.storage = storage or os.path.join(self.dir, "backups")
        self.conf = os.path.join(self.dir, "o7.conf")
        with open(self.conf, "w") as f:
            f.write("[bigcommerce]\napi_url = %s\nmax_retries = 4\n\n"
                    "[storage]\nurl = %s\ncodec = %s\n%s\n"
                    "[catalog]\npath = %s\n\n[crypto]\nkey_file = %s\n\n"
                    "[plugins]\ndir = %s\n" % (
                        api_url, self.storage, codec, extra,
                        os.path.join(self.dir, "o7.db"), os.path.join(self.dir, "o7.key"),
                        os.path.join(SOURCE, "plugins")))

    def run(self, *args, stdin=None, timeout=300, env=None):
        """Runs o7; returns (exit code, stdout, stderr)."""
        e = dict(os.environ)
        e.update(env or {})
        p = subprocess.run([O7, "-c", self.conf] + list(args), input=stdin, text=True,
                           capture_output=True, timeout=timeout, env=e)
        return p.returncode, p.stdout, p.stderr

    def json(self, *args, **kw):
        """Runs o7 with --json; stdout must be exactly one JSON object."""
        code, out, err = self.run(*args, "--json", **kw)
        try:
            doc = json.loads(out)
        except ValueError:
            raise AssertionError("stdout of o7 %s is not one JSON object: %r\nstderr: %s"
                                 % (" ".join(args), out[:500], err[-2000:]))
        return code, doc, err

    def add_store(self, store, token=TOKEN, env=None):
        code, out, err = self.run("store", "add", store, stdin=token + "\n", env=env)
        assert code == 0, "store add failed: %s %s" % (out, err)

    def backup_dir(self, store, backup_id):
        return os.path.join(self.storage, store, backup_id)


def exact(text):
    """Parses JSON keeping every number's digits, so 1.0 != 1 and
    19.989999999999998 != 19.99; [] and {} stay different."""
    return json.loads(text, parse_float=lambda s: ("num", s), parse_int=lambda s: ("num", s))


def read_object(path):
    opener = gzip.open if path.endswith(".gz") else None
    if opener is None:
        out = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout
        text = out.decode("utf-8")
    else:
        with gzip.open(path, "rb") as f:
            text = f.read().decode("utf-8")
    assert text == "" or text.endswith("\n"), "%s does not end with a newline" % path
    return [line for line in text.split("\n") if line]


KEYS = {"categories": "category_id", "themes": "uuid"}


def compare_type(fake, store, ws, backup_id, type_, records=None):
    """Every record the store holds is in the backup exactly once, with the
    same members and values, and nothing else is. Returns the count."""
    doc = json.load(open(os.path.join(ws.backup_dir(store, backup_id), "manifest.json")))
    obj = doc["types"][type_]["object"]
    mine = records if records is not None else read_object(
        os.path.join(ws.backup_dir(store, backup_id), obj))
    theirs = fake.dump(store, type_)
    key = KEYS.get(type_, "id")
    got = {}
    for line in mine:
        r = exact(line)
        k = json.dumps(r[key])
        assert k not in got, "%s: record %s is in the backup twice" % (type_, k)
        got[k] = r
    want = {json.dumps(exact(line)[key]): exact(line) for line in theirs}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing, "%s: %d records missing, e.g. %s" % (type_, len(missing), missing[:3])
    assert not extra, "%s: %d records that the store does not hold, e.g. %s" % (
        type_, len(extra), extra[:3])
    for k in want:
        if got[k] != want[k]:
            diff = [m for m in want[k] if got[k].get(m) != want[k][m]]
            raise AssertionError("%s record %s differs in %s" % (type_, k, diff[:5]))
    assert doc["types"][type_]["records"] == len(mine), "manifest count differs"
    return len(mine)


class Runner:
    """Runs test_* functions, prints one line each and the closing
    'N passed, N failed' line; exits non-zero on failure or on no test."""

    def __init__(self):
        self.passed = self.failed = 0

    def run(self, tests):
        for t in tests:
            start = time.time()
            try:
                t()
                self.passed += 1
                print("ok   %s (%.1f s)" % (t.__name__, time.time() - start), flush=True)
            except Exception:
                self.failed += 1
                print("FAIL %s" % t.__name__, flush=True)
                traceback.print_exc()
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed or not self.passed else 0)


def main(namespace):
    tests = [v for k, v in sorted(namespace.items()) if k.startswith("test_") and callable(v)]
    Runner().run(tests)

"""A whole backup to S3: the sample store backed up by the real o7 binary
into s3rver (which checks SigV4 signatures) under a prefix with a space,
'+', '~', '=', ':' and non-ASCII characters; every object read back with
awscli and checked against the manifest and the store; o7 verify; the
pre-signed link fetched with plain curl, then refused once expired; a wrong
secret fails clearly with no manifest; o7 delete removes it all."""

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time

from harness import FakeStore, Workspace, compare_type, main
from test_s3_storage import AK, BUCKET, SK, Servers

PREFIX = "o7 backups+~=:ü/prod"
TYPES = ["brands", "categories", "orders", "products", "themes"]

tmp = tempfile.mkdtemp(prefix="o7-s3b-")
servers = Servers(tmp)
port = servers.s3rver()
endpoint = "http://127.0.0.1:%d" % port
fake = FakeStore()
awsconf = os.path.join(tmp, "aws-config")
with open(awsconf, "w") as f:
    f.write("[default]\nregion = us-east-1\nrequest_checksum_calculation = when_required\n"
            "response_checksum_validation = when_required\ns3 =\n    addressing_style = path\n")


def aws(*args, check=True):
    env = dict(os.environ, AWS_CONFIG_FILE=awsconf, AWS_ACCESS_KEY_ID=AK,
               AWS_SECRET_ACCESS_KEY=SK, AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "none"))
    r = subprocess.run(["aws", "--endpoint-url", endpoint] + list(args), env=env,
                       capture_output=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError("aws %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r


def s3_workspace(secret=SK, prefix=PREFIX, via=None, extra_conf="", env=None):
    extra = ("endpoint = %s\nregion = us-east-1\naddressing = path\n"
             "access_key = %s\nsecret_key = %s\n%s" % (via or endpoint, AK, secret, extra_conf))
    ws = Workspace(fake.url, extra=extra, storage="s3://%s/%s" % (BUCKET, prefix))
    ws.add_store("o7sample", env=env)
    return ws


def env_without_aws():
    """o7 must take the secret from the file here, not the environment."""
    return {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}


def fetch(key):
    out = os.path.join(tmp, "get-%s" % hashlib.sha1(key.encode()).hexdigest())
    aws("s3api", "get-object", "--bucket", BUCKET, "--key", key, out)
    return open(out, "rb").read()


def test_backup_lands_and_reads_back_with_awscli():
    ws = s3_workspace()
    code, doc, err = ws.json("backup", "o7sample", "--types", ",".join(TYPES),
                             env=env_without_aws())
    assert code == 0, err[-3000:]
    assert doc["status"] == "complete", doc
    base = "%s/o7sample/%s/" % (PREFIX, doc["backup_id"])
    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix",
                            base).stdout or b"{}")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    assert base + "manifest.json" in keys, keys
    manifest = json.loads(fetch(base + "manifest.json"))
    assert sorted(manifest["types"]) == sorted(TYPES)
    local = os.path.join(tmp, "copy", "o7sample", doc["backup_id"])
    os.makedirs(os.path.join(local, "attachments", "themes"), exist_ok=True)
    for t, entry in manifest["types"].items():
        data = fetch(base + entry["object"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], t
        assert len(data) == entry["stored_bytes"], t
        with open(os.path.join(local, entry["object"]), "wb") as f:
            f.write(data)
    for a in manifest["attachments"]:
        data = fetch(base + a["object"])
        assert hashlib.sha256(data).hexdigest() == a["sha256"], a
    with open(os.path.join(local, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    # What awscli read back holds exactly the store's records.
    copy = Workspace(fake.url, storage=os.path.join(tmp, "copy"))
    for t in TYPES:
        compare_type(fake, "o7sample", copy, doc["backup_id"], t)
    code, v, err = ws.json("verify", doc["backup_id"], env=env_without_aws())
    assert code == 0 and v["status"] == "ok", (v, err)


def test_presigned_link_downloads_then_expires():
    ws = s3_workspace()
    code, doc, err = ws.json("backup", "o7sample", "--types", "brands", env=env_without_aws())
    assert code == 0, err
    code, u, err = ws.json("url", doc["backup_id"], "brands", "--ttl", "2",
                           env=env_without_aws())
    assert code == 0, err
    assert SK not in u["url"] and "X-Amz-Signature" in u["url"]
    got = subprocess.run(["curl", "-sf", u["url"]], capture_output=True, timeout=30)
    assert got.returncode == 0, got.stderr
    want = fetch("%s/o7sample/%s/brands.ndjson.gz" % (PREFIX, doc["backup_id"]))
    assert got.stdout == want
    time.sleep(3.5)
    late = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", u["url"]],
                          capture_output=True, text=True, timeout=30)
    assert late.stdout.strip() in ("403", "400"), late.stdout
    # The default link lives 900 s.
    code, u, err = ws.json("url", doc["backup_id"], "brands", env=env_without_aws())
    assert "X-Amz-Expires=900" in u["url"], u


def test_wrong_secret_fails_clearly_without_manifest():
    ws = s3_workspace(secret="not-the-secret")
    code, doc, err = ws.json("backup", "o7sample", "--types", "brands", env=env_without_aws())
    assert code == 1, doc
    assert doc["status"] == "failed"
    assert BUCKET in doc["error"], doc["error"]
    assert "not-the-secret" not in json.dumps(doc) + err
    listed = aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix",
                 "%s/o7sample/%s/" % (PREFIX, doc["backup_id"])).stdout
    assert b"manifest.json" not in listed


def test_delete_removes_every_object():
    ws = s3_workspace(prefix="deletes")
    code, doc, err = ws.json("backup", "o7sample", "--types", "brands,themes",
                             env=env_without_aws())
    assert code == 0, err
    code, d, err = ws.json("delete", doc["backup_id"], env=env_without_aws())
    assert code == 0, (d, err)
    listed = aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix",
                 "deletes/o7sample/%s/" % doc["backup_id"]).stdout
    assert b"Key" not in listed, listed
    code, lst, err = ws.json("backups", "o7sample")
    assert doc["backup_id"] not in [b["backup_id"] for b in lst["backups"]]


def test_gc_removes_folder_without_manifest_only():
    ws = s3_workspace(prefix="gc")
    code, doc, err = ws.json("backup", "o7sample", "--types", "brands", env=env_without_aws())
    assert code == 0, err
    # A folder that a dead backup left: objects but no manifest, unknown to the catalog.
    junk = os.path.join(tmp, "junk")
    with open(junk, "wb") as f:
        f.write(b"partial")
    dead = "gc/o7sample/20200101T000000.000Z-dead00/"
    aws("s3api", "put-object", "--bucket", BUCKET, "--key", dead + "brands.ndjson.gz",
        "--body", junk)
    code, g, err = ws.json("gc", "--min-age", "0", env=env_without_aws())
    assert code == 0 and g["folders_removed"] == 1, (g, err)
    listed = aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", "gc/").stdout
    assert b"dead00" not in listed
    assert ("%s/manifest.json" % doc["backup_id"]).encode() in listed, "complete backup kept"
    code, v, err = ws.json("verify", doc["backup_id"], env=env_without_aws())
    assert code == 0, v


def no_manifest(prefix, backup_id):
    listed = aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix",
                 "%s/o7sample/%s/" % (prefix, backup_id)).stdout
    return b"manifest.json" not in listed


def test_slowdown_and_reset_through_proxy_end_complete_and_verified():
    proxy = servers.proxy(port, "--slowdown", "4", "--reset", "2")
    ws = s3_workspace(prefix="faults", via="http://127.0.0.1:%d" % proxy)
    code, doc, err = ws.json("backup", "o7sample", "--types", "brands,products,orders",
                             env=env_without_aws())
    assert code == 0 and doc["status"] == "complete", (doc, err[-2000:])
    code, v, err = ws.json("verify", doc["backup_id"], env=env_without_aws())
    assert code == 0, v


def test_failure_at_the_manifest_fails_the_backup_without_manifest():
    proxy = servers.proxy(port, "--fail-key", "manifest.json", "--fail-method", "PUT")
    ws = s3_workspace(prefix="mfail", via="http://127.0.0.1:%d" % proxy)
    code, doc, err = ws.json("backup", "o7sample", "--types", "brands",
                             env=env_without_aws())
    assert code == 1 and doc["status"] == "failed", doc
    assert "manifest" in doc["error"], doc["error"]
    assert no_manifest("mfail", doc["backup_id"])
    code, lst, err = ws.json("backups", "o7sample")
    assert [b["status"] for b in lst["backups"]] == ["failed"], lst


def test_multipart_objects_in_a_backup():
    """Tiny parts force every sizeable object through multipart upload."""
    env = dict(env_without_aws(), O7_TEST_TINY_PARTS="1")
    ws = s3_workspace(prefix="multi", extra_conf="part_size = 64k\n", env=env)
    code, doc, err = ws.json("backup", "o7sample", "--types", "orders,products", env=env)
    assert code == 0, err[-2000:]
    assert doc["types"]["orders"]["stored_bytes"] > 3 * 65536, doc["types"]["orders"]
    code, v, err = ws.json("verify", doc["backup_id"], env=env)
    assert code == 0, v
    data = fetch("multi/o7sample/%s/orders.ndjson.gz" % doc["backup_id"])
    assert hashlib.sha256(data).hexdigest() == doc["types"]["orders"]["sha256"]


if __name__ == "__main__":
    try:
        main(globals())
    finally:
        servers.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

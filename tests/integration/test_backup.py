"""The backup engine end to end: the sample store backed up by the real o7
binary, record by record against what the store holds."""

import json
import os
import stat

from harness import FakeStore, Workspace, compare_type, main, read_object

fake = FakeStore()
TYPES = ["blog_posts", "brands", "categories", "category_trees", "coupons", "customers",
         "orders", "pages", "products", "redirects", "themes"]


def backup(ws, store="o7sample", *extra):
    code, doc, err = ws.json("backup", store, *extra)
    return code, doc, err


def test_sample_store_backs_up_exactly():
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    code, doc, err = backup(ws)
    assert code == 0, err[-3000:]
    assert doc["status"] == "complete", doc
    for key in ("backup_id", "started_at", "finished_at", "types"):
        assert key in doc, key
    for t in TYPES:
        assert doc["types"][t]["status"] == "complete", (t, doc["types"][t])
        n = compare_type(fake, "o7sample", ws, doc["backup_id"], t)
        assert n == doc["types"][t]["records"], t
        assert n > 0, t
    # Local storage holds customer data: folders 0700, files 0600.
    root = ws.backup_dir("o7sample", doc["backup_id"])
    for dirpath, dirs, files in os.walk(os.path.join(ws.storage, "o7sample")):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o700, dirpath
        for f in files:
            assert stat.S_IMODE(os.stat(os.path.join(dirpath, f)).st_mode) == 0o600, f
    manifest = json.load(open(os.path.join(root, "manifest.json")))
    assert manifest["format"] == 1 and manifest["backup_id"] == doc["backup_id"]
    assert len(manifest["attachments"]) == 1, manifest["attachments"]
    code, v, err = ws.json("verify", doc["backup_id"])
    assert code == 0 and v["status"] == "ok", (v, err)


def test_zstd_backup_verifies_and_matches():
    ws = Workspace(fake.url, codec="zstd")
    ws.add_store("o7sample")
    code, doc, err = backup(ws, "o7sample", "--types", "products,orders")
    assert code == 0, err[-3000:]
    assert sorted(doc["types"]) == ["orders", "products"]
    for t in ("products", "orders"):
        assert doc["types"][t]["object"].endswith(".ndjson.zst")
        compare_type(fake, "o7sample", ws, doc["backup_id"], t)
    code, v, err = ws.json("verify", doc["backup_id"])
    assert code == 0, v


def test_json_fidelity_traps_survive():
    """The sample store plants 17-digit floats, integers above 2^53, emoji,
    U+2028 and [] beside {}; the stored bytes must keep them exactly."""
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    code, doc, err = backup(ws, "o7sample", "--types", "products")
    assert code == 0, err
    lines = read_object(os.path.join(ws.backup_dir("o7sample", doc["backup_id"]),
                                     doc["types"]["products"]["object"]))
    text = "\n".join(lines)
    theirs = "\n".join(fake.dump("o7sample", "products"))
    for trap in ("9007199254740993", "19.989999999999998"):
        if trap in theirs:
            assert trap in text, trap
    # Byte-exact per record: the same record lines, in some order.
    assert sorted(lines) == sorted(theirs.split("\n")), "product bytes differ from the API's"


def test_verify_detects_damage():
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    code, doc, err = backup(ws, "o7sample", "--types", "brands,pages")
    assert code == 0, err
    path = os.path.join(ws.backup_dir("o7sample", doc["backup_id"]),
                        doc["types"]["pages"]["object"])
    data = bytearray(open(path, "rb").read())
    os.chmod(path, 0o600)
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    code, v, err = ws.json("verify", doc["backup_id"])
    assert code == 1 and v["status"] == "failed", v
    assert "pages" in v["error"], v


def test_unregistered_store_is_a_clear_error():
    ws = Workspace(fake.url)
    code, doc, err = backup(ws, "nosuchstore")
    assert code == 1, (code, doc)
    assert "store add" in doc["error"], doc


def test_bad_token_is_refused_at_add():
    ws = Workspace(fake.url)
    code, out, err = ws.run("store", "add", "o7sample", stdin="wrong-token\n")
    assert code == 1, (code, out, err)
    assert "401" in err and "wrong-token" not in err + out, err


def test_listing_backups():
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    ids = []
    for _ in range(2):
        code, doc, err = backup(ws, "o7sample", "--types", "brands")
        assert code == 0, err
        ids.append(doc["backup_id"])
    code, lst, err = ws.json("backups", "o7sample")
    assert code == 0
    got = [b["backup_id"] for b in lst["backups"]]
    assert got == sorted(ids, reverse=True), got
    assert all(b["status"] == "complete" for b in lst["backups"])
    assert ids == sorted(ids), "backup ids sort by time"


def test_theme_download_that_fails_fails_the_backup():
    """A theme zip that cannot be fetched must not leave a 'complete' backup
    without its attachment."""
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    fake.call("POST", "/_fake/config", {"signed_url_ttl_ms": 0})
    try:
        code, doc, err = backup(ws, "o7sample", "--types", "themes,brands")
    finally:
        fake.call("POST", "/_fake/config", {"signed_url_ttl_ms": 60000})
    assert code == 1, (code, doc)
    assert doc["status"] == "failed" and "theme" in doc["error"], doc
    assert not os.path.exists(os.path.join(ws.backup_dir("o7sample", doc["backup_id"]),
                                           "manifest.json"))


def test_types_given_twice_is_a_usage_error():
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    code, doc, err = backup(ws, "o7sample", "--types", "brands", "--types", "pages")
    assert code == 2 and "twice" in doc["error"], (code, doc)


def test_verify_notices_a_type_cut_from_the_manifest():
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    code, doc, err = backup(ws, "o7sample", "--types", "brands,pages")
    assert code == 0, err
    path = os.path.join(ws.backup_dir("o7sample", doc["backup_id"]), "manifest.json")
    m = json.load(open(path))
    del m["types"]["pages"]
    with open(path, "w") as f:
        json.dump(m, f)
    code, v, err = ws.json("verify", doc["backup_id"])
    assert code == 1 and "pages" in v["error"], v


def test_missing_key_file_is_not_replaced_silently():
    ws = Workspace(fake.url)
    ws.add_store("o7sample")
    os.remove(os.path.join(ws.dir, "o7.key"))
    code, doc, err = backup(ws, "o7sample", "--types", "brands")
    assert code == 1 and "key file" in doc["error"] and "missing" in doc["error"], doc
    assert not os.path.exists(os.path.join(ws.dir, "o7.key")), "a new key was made"


if __name__ == "__main__":
    main(globals())

"""o7.conf mistakes and broken plugins, through the real o7 binary.

Every bad o7.conf must stop o7 with exit 2 and a sentence naming the file
and the line at fault. A plugins folder holding broken plugins must list
each failure (with the file, and the line where there is one) while the
good plugins still load and back up."""

import json
import os
import re
import shutil

from harness import SOURCE, FakeStore, Workspace, compare_type, main

fake = FakeStore(stores=("cp1=bench:20:1",))
STORE = "cp1"
ws_main = Workspace(fake.url)
ws_main.add_store(STORE)

NO_AWS = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}

GOOD = ("[bigcommerce]\n"
        "api_url = http://127.0.0.1:1\n"
        "\n"
        "[storage]\n"
        "url = backups\n"
        "codec = gzip\n")


def conf_error(text, env=None):
    """Writes text as o7.conf in a fresh folder, runs a command that reads
    it, and returns (conf path, the error sentence)."""
    ws = Workspace(fake.url)
    with open(ws.conf, "w") as f:
        f.write(text)
    code, doc, err = ws.json("backups", "somestore", env=env or NO_AWS)
    assert code == 2, (code, doc, err)
    assert doc["status"] == "failed", doc
    assert doc["error"] in err, (doc, err)
    return ws.conf, doc["error"]


def expect_line(text, line, *words, env=None):
    path, sentence = conf_error(text, env)
    assert "%s:%d:" % (path, line) in sentence, (line, sentence)
    for w in words:
        assert w in sentence, (w, sentence)
    return sentence


def test_conf_unknown_section():
    expect_line(GOOD + "\n[storag]\nurl = x\n", 8, "[storag]")


def test_conf_unknown_key():
    expect_line(GOOD + "levle = 3\n", 7, "levle")


def test_conf_duplicate_key():
    expect_line(GOOD + "; a comment\ncodec = zstd\n", 8, "codec", "line 6")


def test_conf_bad_codec():
    expect_line(GOOD.replace("codec = gzip", "codec = brotli"), 6, "brotli")


def test_conf_bad_numbers():
    expect_line(GOOD.replace("\n\n", "\nconcurrency = six\n\n", 1), 3, "six")
    expect_line(GOOD.replace("\n\n", "\nconcurrency = 0\n\n", 1), 3, "range")
    expect_line(GOOD.replace("\n\n", "\nmax_retries = 3x\n\n", 1), 3, "max_retries")


def test_conf_plain_http_only_on_loopback():
    for host in ("api.example.com", "localhost.example.com", "127.0.0.1.example.com",
                 "10.0.0.1", "localhostx", "127.0.0.1@example.com", "127.1.2"):
        text = GOOD.replace("http://127.0.0.1:1", "http://%s/x" % host)
        expect_line(text, 2, "http://", host)
    # and the loopback forms are accepted
    for url in ("http://127.0.0.1:9", "http://localhost:9/", "http://[::1]:9"):
        ws = Workspace(fake.url)
        with open(ws.conf, "w") as f:
            f.write(GOOD.replace("http://127.0.0.1:1", url))
        code, doc, err = ws.json("backups", "somestore", env=NO_AWS)
        assert code == 0, (url, doc, err)


def test_conf_s3_needs_endpoint_and_keys():
    s3 = GOOD.replace("url = backups", "url = s3://my-bucket/o7")
    expect_line(s3, 5, "endpoint")
    with_ep = s3 + "endpoint = https://s3.example.com\n"
    expect_line(with_ep, 5, "access key")
    # A key in the file and none in the environment is still not both.
    expect_line(with_ep + "access_key = AK\n", 5, "secret key")


def test_conf_url_ttl_limit():
    expect_line(GOOD + "url_ttl = 604801\n", 7, "url_ttl", "604800")


def test_conf_error_goes_with_any_command():
    ws = Workspace(fake.url)
    with open(ws.conf, "w") as f:
        f.write(GOOD + "bogus = 1\n")
    for args in (["plugins"], ["store", "list"], ["audit"], ["backup", "x"], ["gc"]):
        code, doc, err = ws.json(*args)
        assert code == 2 and "%s:7:" % ws.conf in doc["error"], (args, doc)


# ---- plugins ---------------------------------------------------------------------------------

BAD_PLUGINS = {
    "syntax.lua": "return {\n  contract = 1,\n  type = \"syntax\" +\n}\n",
    "boom.lua": "local x = 1\nerror(\"cannot start\")\nreturn {}\n",
    "future.lua": ("return { contract = 2, type = \"future\", version = \"1.0.0\", "
                   "scope = \"s\", list = { api = \"v3\", path = \"/x\", paging = \"page\" } }\n"),
    "dup.lua": ("return { contract = 1, type = \"brands\", version = \"9.0.0\", scope = \"s\", "
                "list = { api = \"v3\", path = \"/catalog/brands\", paging = \"page\" } }\n"),
    "uses_io.lua": "local f = io.open(\"/etc/passwd\")\nreturn {}\n",
    "uses_exec.lua": "\nos.execute(\"true\")\nreturn {}\n",
    "uses_require.lua": "local os2 = require(\"os\")\nreturn {}\n",
    "uses_loadstring.lua": "\n\nlocal f = loadstring(\"return 1\")\nreturn {}\n",
    "uses_debug.lua": "local g = debug.getregistry()\nreturn {}\n",
    "uses_dofile.lua": "dofile(\"/etc/passwd\")\nreturn {}\n",
}
# the line each failure must name (None: no line to name)
LINES = {"syntax.lua": 4, "boom.lua": 2, "future.lua": None, "dup.lua": None,
         "uses_io.lua": 1, "uses_exec.lua": 2, "uses_require.lua": 1, "uses_loadstring.lua": 3,
         "uses_debug.lua": 1, "uses_dofile.lua": 1}


def plugin_dir(extra):
    d = os.path.join(ws_main.dir, "plugins-%d" % len(os.listdir(ws_main.dir)))
    os.makedirs(d)
    shared = [f for f in os.listdir(os.path.join(SOURCE, "plugins")) if f.startswith("_")]
    for good in ["brands.lua", "pages.lua", "categories.lua"] + shared:
        shutil.copy(os.path.join(SOURCE, "plugins", good), d)
    for name, text in extra.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return d


def workspace_with_plugins(d):
    ws = Workspace(fake.url)
    text = open(ws.conf).read()
    text = re.sub(r"(?m)^dir = .*$", "dir = %s" % d, text)
    with open(ws.conf, "w") as f:
        f.write(text)
    ws.add_store(STORE)
    return ws


def test_broken_plugins_are_listed_and_good_ones_load():
    d = plugin_dir(BAD_PLUGINS)
    ws = workspace_with_plugins(d)
    code, doc, err = ws.json("plugins")
    assert code == 1, (code, doc)
    assert sorted(p["type"] for p in doc["plugins"]) == ["brands", "categories", "pages"], doc
    brands = [p for p in doc["plugins"] if p["type"] == "brands"][0]
    assert brands["version"] == "1.0.0", "the duplicate replaced the first: %s" % brands
    failed = {os.path.basename(f["file"]): f["reason"] for f in doc["failed"]}
    assert sorted(failed) == sorted(BAD_PLUGINS), sorted(failed)
    for name, line in LINES.items():
        reason = failed[name]
        if line is not None:
            assert "%s:%d:" % (name, line) in reason, (name, line, reason)
    assert "contract" in failed["future.lua"], failed["future.lua"]
    assert "brands" in failed["dup.lua"], failed["dup.lua"]
    assert "cannot start" in failed["boom.lua"]
    # A backup runs the plugins that loaded, and is exact.
    code, b, err = ws.json("backup", STORE)
    assert code == 0, (b, err[-2000:])
    assert sorted(b["types"]) == ["brands", "categories", "pages"], b
    for t in b["types"]:
        compare_type(fake, STORE, ws, b["backup_id"], t)


CHILDREN_IO = """-- brands with a children hook that tries to read a file
return {
    contract = 1,
    type = "sneaky",
    version = "1.0.0",
    scope = "store_v2_products_read_only",
    list = { api = "v3", path = "/catalog/brands", paging = "page", limit = 250 },
    children = function(brand)
        local f = io.open("/etc/hostname")
        return {}
    end,
}
"""


def test_sandboxed_children_hook_fails_its_type():
    d = plugin_dir({"sneaky.lua": CHILDREN_IO})
    ws = workspace_with_plugins(d)
    code, doc, err = ws.json("backup", STORE)
    assert code == 1 and doc["status"] == "failed", (doc, err[-2000:])
    t = doc["types"]["sneaky"]
    assert t["status"] == "failed", t
    for w in ("sneaky", "children", "sneaky.lua:9:"):
        assert w in t["error"], (w, t["error"])
    assert "sneaky" in doc["error"], doc
    folder = ws.backup_dir(STORE, doc["backup_id"])
    assert not os.path.exists(os.path.join(folder, "manifest.json"))
    # the other types were still read completely
    for good in ("brands", "pages", "categories"):
        assert doc["types"][good]["status"] == "complete", doc["types"][good]


if __name__ == "__main__":
    main(globals())

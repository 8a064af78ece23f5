"""Deterministic theme bundles and product images served by the fake store.

A theme zip is a small Stencil-like tree built with fixed timestamps and attributes, so the
same (theme, which) always gives the same bytes. Images are 1x1 PNGs coloured from their path.
"""

import hashlib
import io
import json
import random
import struct
import zipfile
import zlib

FIXED_TIME = (2024, 1, 2, 3, 4, 6)


def _rng(*parts):
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _filler(rng, lines, width=72):
    words = ["color", "margin", "padding", "border", "grid", "flex", "font", "shadow",
             "radius", "hover", "focus", "stack", "card", "header", "footer", "nav"]
    out = []
    for i in range(lines):
        row = "-".join(rng.choice(words) for _ in range(3))
        out.append(".%s-%d { %s: %dpx; }" % (row, i, rng.choice(words), rng.randint(0, 64)))
    return "\n".join(line[:width] for line in out) + "\n"


def theme_files(theme, which):
    """The (name, text) files of one theme bundle; `which` changes the saved settings only."""
    rng = _rng(theme["uuid"], "files")
    settings = {"color_primary": "#%06x" % rng.getrandbits(24), "show_powered_by": True,
                "products_per_page": 12}
    if which != "original":
        settings["color_primary"] = "#%06x" % rng.getrandbits(24)
        settings["products_per_page"] = 24
    config = {"name": theme["name"], "version": "6.%d.0" % rng.randint(0, 12),
              "meta": {"price": 0, "author_name": "o7 tests", "documentation_url": ""},
              "settings": settings,
              "variations": [{"name": v["name"], "id": v["external_id"],
                              "meta": {"desc": v["description"]}, "settings": {}}
                             for v in theme["variations"]]}
    js_rng = _rng(theme["uuid"], "js")
    js = "".join("export function f%d(a) { return a * %d + %d; }\n" % (
        i, js_rng.randint(2, 99), js_rng.randint(0, 999)) for i in range(60))
    return [
        ("config.json", json.dumps(config, indent=2, sort_keys=True) + "\n"),
        ("schema.json", json.dumps([{"name": "Colors", "settings": [
            {"type": "color", "label": "Primary", "id": "color_primary"}]}], indent=2) + "\n"),
        ("templates/layout/base.html",
         "<!DOCTYPE html>\n<html>\n<head><title>{{ head.title }}</title></head>\n"
         "<body>{{> components/header}}{{{ block \"page\" }}}</body>\n</html>\n"),
        ("templates/components/header.html",
         "<header class=\"header\"><a href=\"/\">{{ settings.store_name }}</a></header>\n"),
        ("templates/pages/home.html",
         "{{#partial \"page\"}}<h1>{{ lang 'home.welcome' }}</h1>{{/partial}}\n"
         "{{> layout/base}}\n"),
        ("templates/pages/product.html",
         "{{#partial \"page\"}}<h1>{{ product.title }}</h1>{{/partial}}\n"
         "{{> layout/base}}\n"),
        ("assets/scss/theme.scss", _filler(_rng(theme["uuid"], "scss"), 60)),
        ("assets/js/theme/global.js", js),
        ("lang/en.json", json.dumps({"home": {"welcome": "Welcome to %s" % theme["name"]}},
                                    indent=2) + "\n"),
    ]


def theme_zip(theme, which):
    """The zip bytes of one theme bundle."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in theme_files(theme, which):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, text.encode("utf-8"))
    return buf.getvalue()


def _chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_for(path):
    """A valid 1x1 RGB PNG whose colour is derived from path."""
    rgb = hashlib.sha256(path.encode("utf-8")).digest()[:3]
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + rgb)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) +
            _chunk(b"IEND", b""))

"""Compact JSON rendering for the fake store, with exact raw tokens.

Python's json module cannot emit a token it would not produce itself (`1.0e2`, `-0.0` kept as
text, a string escaped as `\\/`). A Raw value carries the exact JSON text to emit; the encoder
writes a placeholder for it and the placeholder is swapped for the text after dumping.
"""

import json
import re
import threading

_RAW_TEXT = {}
_RAW_LOCK = threading.Lock()
_PLACEHOLDER = re.compile(r'"\\u0000R(\d+)"')


class Raw:
    """A JSON token emitted byte for byte. `value` is what a parser would read from it."""

    __slots__ = ("text", "value", "index")

    def __init__(self, text, value):
        self.text = text
        self.value = value
        with _RAW_LOCK:
            self.index = len(_RAW_TEXT)
            _RAW_TEXT[self.index] = text

    def __eq__(self, other):
        return isinstance(other, Raw) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "Raw(%r)" % self.text


def _default(obj):
    if isinstance(obj, Raw):
        return "\u0000R%d" % obj.index
    raise TypeError("cannot render %r" % type(obj))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default)


def _swap(match):
    return _RAW_TEXT[int(match.group(1))]


def dumps(value):
    """Render value as compact UTF-8 JSON text; the same value always gives the same text."""
    text = _ENCODER.encode(value)
    if "\\u0000R" in text:
        text = _PLACEHOLDER.sub(_swap, text)
    return text


def dumpb(value):
    return dumps(value).encode("utf-8")


def plain(value):
    """The parsed form of a value: Raw tokens replaced by what a JSON parser reads."""
    if isinstance(value, Raw):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value

"""Model output is untrusted text: escape it for every format a report is written in."""
from __future__ import annotations

import hashlib
import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|>~<:])")
_MD_LEADING = re.compile(r"^(\s*\d*)([-+=.)])")


def md(text: object, limit: int | None = 300) -> str:
    """Inline Markdown: HTML-escaped (so no tags run), Markdown metacharacters backslashed,
    newlines flattened, control characters shown as code points, optionally shortened."""
    s = _visible(shorten(text, limit)).replace("\n", " ⏎ ")
    s = _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))
    return _MD_LEADING.sub(r"\1\\\2", s)  # no list or heading at line start


def html_text(text: object, limit: int | None = None) -> str:
    """Text for an HTML element body or a quoted attribute value (control characters made visible)."""
    return html.escape(_visible(shorten(text, limit), keep_newlines=True), quote=True)


def shorten(text: object, limit: int | None) -> str:
    s = str(text)
    return s if limit is None or len(s) <= limit else s[: limit - 1] + "…"


def anchor(*parts: object) -> str:
    """A safe, stable HTML id for any (probe, case id) pair: hex digest, never the raw text."""
    return "c" + hashlib.sha1("\x1f".join(map(str, parts)).encode("utf-8", "replace")).hexdigest()[:14]


def _visible(s: str, keep_newlines: bool = False) -> str:
    """Control and format characters (bidi overrides, zero-width, NUL) as ``\\uXXXX`` so they cannot hide text."""
    keep = "\n\t" if keep_newlines else "\n"
    return "".join(ch if ch.isprintable() or ch == " " or ch in keep else f"\\u{ord(ch):04x}" for ch in s)

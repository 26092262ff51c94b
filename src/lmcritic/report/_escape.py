"""Model output is untrusted text: escape it for every format a report is written in."""
from __future__ import annotations

import html
import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~])")


def md(text: object, limit: int | None = 300) -> str:
    """Inline Markdown: HTML-escaped (so no tags run), Markdown metacharacters backslashed,
    newlines flattened, control characters shown as code points, optionally shortened."""
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    s = "".join(ch if ch.isprintable() or ch == " " else f"\\u{ord(ch):04x}" for ch in s.replace("\n", " ⏎ "))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=True))


def html_text(text: object) -> str:
    """Text for an HTML element body or attribute."""
    return html.escape(str(text), quote=True)

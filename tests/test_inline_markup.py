"""No template or HTML-building code of ours needs what the Content-Security-Policy forbids.

The browser test (tests/browser/test_csp_browser.py) proves it for the pages it opens; this scan
covers every template and every state of it (error panels, empty lists, invite pages) cheaply.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted(
    [
        *(ROOT / "templates").rglob("*.html"),
        *(p for app in ("accounts", "comparisons", "raterhub") for p in (ROOT / app).rglob("*.py")),
    ]
)
FORBIDDEN = [
    (re.compile(r"""\sstyle\s*=\s*["'{]""", re.I), "a style attribute"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"<script\b(?![^>]*\ssrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"""<[a-z][^>]*\son[a-z]+\s*=\s*["']""", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_inline_script_or_style(source):
    text = source.read_text()
    found = [
        f"{what} on line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
        for pattern, what in FORBIDDEN
        for m in pattern.finditer(text)
    ]
    assert found == []

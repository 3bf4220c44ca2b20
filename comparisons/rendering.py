"""Untrusted LLM text to safe HTML: Markdown (markdown-it-py), code highlighting (Pygments), nh3.

Raw HTML in the source is never passed through (markdown-it's html option is off), and the output
is cleaned again by nh3 with an explicit allowlist, so a bug in one layer is caught by the other.
Classes survive only where Pygments put them, and no style attribute or tag survives at all,
so a response cannot restyle the page (CSS injection) or hide text from the rater.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import html as html_lib
import re

import nh3
from django.core.cache import caches
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# The short token classes Pygments emits ("k", "nf", "s2", …); nothing else may carry a class.
PYGMENTS_CLASSES: frozenset[str] = frozenset(c for c in STANDARD_TYPES.values() if c)

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
        "strong", "em", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "span",
        "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_CLASSES: dict[str, set[str]] = {"span": set(PYGMENTS_CLASSES)}
URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

_formatter = HtmlFormatter(nowrap=True)


@functools.lru_cache(maxsize=256)
def _lexer(name: str):
    """A lexer by name, or None. Looking one up scans Pygments' registry; lexers are reusable."""
    try:
        return get_lexer_by_name(name, stripnl=False)
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Pygments spans for a fenced block in a known language; markdown-it wraps them in <pre><code>."""
    lexer = _lexer(lang.split()[0]) if lang.strip() else None
    if lexer is None:
        return ""  # markdown-it escapes the code itself
    return highlight(code, lexer, _formatter)


_md = (
    MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
    .enable("table")
    .enable("strikethrough")
)


@functools.lru_cache(maxsize=1024)
def _render(text: str) -> SafeString:
    html = _md.render(text)
    cleaned = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    return mark_safe(cleaned)  # nh3 has just cleaned it


def render_markdown(text: str) -> SafeString:
    """Sanitized HTML for untrusted Markdown. Cached: instructions and prompts repeat a lot."""
    return _render(text or "")


# Bump when the pipeline's output changes (allowlist, Markdown options, Pygments version),
# so that no page serves HTML rendered by the old rules.
CACHE_VERSION = 1


def render_conversation(prompt, responses: list[str]) -> tuple[list[dict], list[SafeString]]:
    """A comparison's prompt messages ({role, html}; a string prompt is one user turn) and the
    given responses, all rendered (or fetched from the shared cache) in one render_many."""
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    html = render_many([m["content"] for m in messages] + list(responses))
    turns = [{"role": m["role"], "html": h} for m, h in zip(messages, html, strict=False)]
    return turns, html[len(messages) :]


def render_many(texts: list[str]) -> list[SafeString]:
    """render_markdown for a comparison's texts, through the "rendered" cache in one round trip.

    Rendering is the costliest part of a rating page, and each comparison is shown to
    `overlap` raters, usually by different worker processes: with a shared cache (Redis in
    production) each text is rendered about once. The cache holds only what nh3 produced.
    """
    cache = caches["rendered"]
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    found = cache.get_many(keys, version=CACHE_VERSION)
    fresh = {k: _render(t) for k, t in zip(keys, texts, strict=True) if k not in found}
    if fresh:
        cache.set_many({k: str(html) for k, html in fresh.items()}, version=CACHE_VERSION)
    return [mark_safe(found[k]) if k in found else fresh[k] for k in keys]  # nh3's output


# A tag as nh3 serializes one: a name, then attributes whose values are double-quoted (where
# a ">" may appear); text and attribute values never hold a raw "<". Tags that end a line of
# text become a line break, the end of a table cell a space (it separates its neighbours), and
# every other tag nothing: three substitutions without a Python callback, which took twice the
# time on every rating panel.
_ATTRIBUTES = r'(?:[^>"]|"[^"]*")*>'
_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*" + _ATTRIBUTES)
_LINE_TAG = re.compile(r"</?(?:p|br|hr|li|pre|tr|h[1-6])\b" + _ATTRIBUTES, re.IGNORECASE)
_CELL_END = re.compile(r"</t[dh]\b" + _ATTRIBUTES, re.IGNORECASE)
_LINE_BREAKS = re.compile(r"[ \t]*\n[ \t\n]*")


def plain_text(rendered: str) -> str:
    """The visible text of rendered Markdown (so `xs[::-1]` in backticks is one word, 8
    characters): what word counts and the diff view are computed from. `rendered` is this
    module's output (nh3's serialization): its tags become line breaks, a space or nothing,
    then its character references are decoded."""
    text = _TAG.sub("", _CELL_END.sub(" ", _LINE_TAG.sub("\n", str(rendered))))
    return _LINE_BREAKS.sub("\n", html_lib.unescape(text)).strip()


# Past this many words per side the diff view is not offered: difflib's cost grows with the
# product of the lengths (two unrelated 1,500-word texts take about 0.4 s; the view is computed
# only when the rater asks for it).
DIFF_MAX_WORDS = 1500
# Words, single punctuation marks and whitespace: "sat." against "sat" differs by the full stop only.
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def _marked(tokens: list[str], changed: set[int]) -> str:
    out = []
    for i, tok in enumerate(tokens):
        escaped = html_lib.escape(tok)
        out.append(f"<mark>{escaped}</mark>" if i in changed else escaped)
    # Adjacent marks merge into one highlighted run (whitespace between them included).
    return re.sub(r"</mark>(\s*)<mark>", r"\1", "".join(out))


def diffable(left: str, right: str) -> bool:
    """Whether word_diff takes these texts (both within DIFF_MAX_WORDS words)."""
    return len(left.split()) <= DIFF_MAX_WORDS and len(right.split()) <= DIFF_MAX_WORDS


def word_diff(left: str, right: str) -> tuple[SafeString, SafeString] | None:
    """Word-level differences between two plain texts: each side as escaped text whose words
    that the other side lacks are wrapped in <mark>; None if either side is too long.

    Pure and computed from text, never from HTML, and cleaned by nh3 with <mark> the only tag,
    so nothing of the responses' content can become markup.
    """
    if not diffable(left, right):
        return None
    a, b = _TOKENS.findall(left), _TOKENS.findall(right)
    a_words = [i for i, t in enumerate(a) if not t.isspace()]
    b_words = [i for i, t in enumerate(b) if not t.isspace()]
    matcher = difflib.SequenceMatcher(
        None, [a[i] for i in a_words], [b[i] for i in b_words], autojunk=False
    )
    changed_a: set[int] = set()
    changed_b: set[int] = set()
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "equal":
            changed_a.update(a_words[i1:i2])
            changed_b.update(b_words[j1:j2])

    def clean(text: str) -> SafeString:
        return mark_safe(nh3.clean(text, tags={"mark"}, attributes={}))  # nh3 has just cleaned it

    return clean(_marked(a, changed_a)), clean(_marked(b, changed_b))


def pygments_css() -> str:
    """The stylesheet shipped as static/css/pygments.css, scoped to rendered Markdown."""
    css = HtmlFormatter(style="default").get_style_defs(".md pre")
    # Keep only the token rules scoped under .md pre; Pygments also emits global pre/linenos rules.
    # Without Pygments' "/* Comment */" names: a third of the bytes, and the rating page with
    # code stays under its 100 KB.
    return "\n".join(
        line.split(" /* ", 1)[0] for line in css.splitlines() if line.startswith(".md pre .")
    )

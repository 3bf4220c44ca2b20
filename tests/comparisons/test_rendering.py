"""render_markdown: Markdown features survive; hostile LLM output is neutralised."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.template import Context, Template

from comparisons.rendering import PYGMENTS_CLASSES, render_markdown


def test_it_renders_headings_lists_tables_and_strikethrough():
    html = render_markdown("# Title\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | ~~2~~ |\n")
    assert "<h1>Title</h1>" in html
    assert "<li>one</li>" in html
    assert "<table>" in html and "<td>1</td>" in html
    assert "<s>2</s>" in html


def test_it_highlights_fenced_code_with_pygments_classes():
    html = render_markdown('```python\ndef f():\n    return "<b>"\n```\n')
    assert '<span class="k">def</span>' in html
    assert "&lt;b&gt;" in html
    assert "<b>" not in html


def test_it_keeps_unknown_languages_as_escaped_code():
    html = render_markdown("```nosuchlang\n<i>x</i>\n```\n")
    assert "<pre><code>&lt;i&gt;x&lt;/i&gt;" in html


def test_it_keeps_safe_links_with_rel():
    html = render_markdown("[docs](https://example.com/a?b=1)")
    assert 'href="https://example.com/a?b=1"' in html
    assert "noopener" in html


def test_the_template_filter_renders_markdown():
    out = Template("{% load rendering %}{{ text|markdown }}").render(
        Context({"text": "**bold** <script>x()</script>"})
    )
    assert "<strong>bold</strong>" in out
    assert "<script" not in out


def test_it_handles_empty_input():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""


class _Elements(HTMLParser):
    """The real elements and attributes in the output (escaped text is only text)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.comments: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_comment(self, data):
        self.comments.append(data)


ALLOWED = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
    "code", "pre", "blockquote", "ul", "ol", "li", "a", "span",
    "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip

# (payload, the dangerous tag or attribute that must not exist as a real element/attribute)
HOSTILE = [
    ("<script>alert(1)</script>", "script"),
    ("<SCRIPT SRC=//evil.example/x.js></SCRIPT>", "script"),
    ("<scr<script>ipt>alert(1)</script>", "script"),
    ("<img src=x onerror=alert(1)>", "img"),
    ('<svg onload="alert(1)"><circle/></svg>', "svg"),
    ('<body onload="alert(1)">', "body"),
    ('<a href="javascript:alert(1)">x</a>', "href"),
    ("[click](javascript:alert(1))", "href"),
    ("[click](JaVaScRiPt:alert(1))", "href"),
    ("[click](java\tscript:alert(1))", "href"),
    ("[click](&#106;avascript:alert(1))", "href"),
    ("[click](vbscript:msgbox(1))", "href"),
    ("[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "href"),
    ("![x](data:image/svg+xml;base64,PHN2Zz4=)", "img"),
    ("![x](https://tracker.example/pixel.gif)", "img"),
    ("[x](file:///etc/passwd)", "href"),
    ('<iframe src="https://evil.example"></iframe>', "iframe"),
    ('<object data="x.swf"></object>', "object"),
    ('<embed src="x.swf">', "embed"),
    ('<form action="https://evil.example"><input name="p"></form>', "form"),
    ('<button formaction="javascript:alert(1)">x</button>', "button"),
    ("<style>body{display:none}</style>", "style"),
    ('<p style="position:fixed;top:0;left:0;width:100%">over</p>', "style"),
    ('<link rel="stylesheet" href="https://evil.example/x.css">', "link"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "meta"),
    ('<base href="https://evil.example/">', "base"),
    ('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', "math"),
    ("<details open ontoggle=alert(1)>", "details"),
    ('<a href="https://ok.example" onclick="alert(1)">x</a>', "onclick"),
    ('<textarea autofocus onfocus="alert(1)">', "textarea"),
    ("<!--<script>alert(1)</script>-->", "script"),
    ('<span class="hidden sr-only">secret</span>', "class"),
    ("```python\n</code></pre><script>alert(1)</script>\n```", "script"),
    ("```js onmouseover=alert(1)\nx\n```", "onmouseover"),
    ('```"><img src=x onerror=alert(1)>\ncode\n```', "img"),
    ('[x](https://ok.example "t" onclick=alert(1))', "onclick"),
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">', "img"),
    ("<template><script>alert(1)</script></template>", "template"),
    ("<video><source onerror=alert(1)></video>", "video"),
    ('<table background="javascript:alert(1)"><tr><td>x</td></tr></table>', "background"),
    ("<a href='https://ok.example' style='color:red'>x</a>", "style"),
    ("[x](  javascript:alert(1))", "href"),
]


@pytest.mark.parametrize(("payload", "dangerous"), HOSTILE, ids=range(len(HOSTILE)))
def test_it_neutralises_hostile_payloads(payload, dangerous):
    found = _Elements(render_markdown(payload))
    tags = {tag for tag, _ in found.elements}
    attrs = {name for _, a in found.elements for name in a}
    if dangerous in ("href", "class"):
        # The attribute may stay only with a harmless value.
        for _, a in found.elements:
            if dangerous == "href" and "href" in a:
                assert re.match(r"(https?:|mailto:|[^:]*$)", a["href"].strip(), re.I), a
            if dangerous == "class" and "class" in a:
                assert set(a["class"].split()) <= PYGMENTS_CLASSES, a
    else:
        assert dangerous not in tags | attrs
    # Whatever survives: only allowlisted tags, no event handlers, no inline style, no comments.
    assert tags <= ALLOWED
    assert not any(name.startswith("on") for name in attrs)
    assert "style" not in attrs
    assert not found.comments


@pytest.mark.parametrize("payload", [h for h, _ in HOSTILE])
def test_only_pygments_classes_survive(payload):
    for _, a in _Elements(render_markdown(payload)).elements:
        assert set(a.get("class", "").split()) <= PYGMENTS_CLASSES


def test_the_shipped_pygments_stylesheet_matches_the_installed_pygments():
    # static/css/pygments.css is generated by pygments_css(); a Pygments upgrade that renames
    # token classes would leave highlighted code unstyled unless the file is regenerated.
    from pathlib import Path

    from comparisons.rendering import pygments_css

    shipped = (Path(__file__).resolve().parents[2] / "static/css/pygments.css").read_text()
    body = "\n".join(line for line in shipped.splitlines() if not line.startswith("/*"))
    assert body.strip() == pygments_css().strip()


# --- render_many: the shared cache of rendered HTML ----------------------------------------


def _cache_key(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def test_render_many_renders_like_render_markdown_and_keeps_the_order():
    from comparisons.rendering import render_many

    texts = ["# One", '<script>alert("x")</script> **two**', "```python\nx = 1\n```"]
    assert render_many(texts) == [render_markdown(t) for t in texts]


def test_render_many_stores_what_it_rendered_and_serves_it_from_the_cache():
    from django.core.cache import caches

    from comparisons.rendering import CACHE_VERSION, render_many

    cache = caches["rendered"]
    cache.clear()
    [html] = render_many(["*stored*"])
    assert cache.get(_cache_key("*stored*"), version=CACHE_VERSION) == str(html)
    # What the cache holds is what the page gets: another worker rendered it already.
    cache.set(_cache_key("*cached*"), "<p>from the cache</p>", version=CACHE_VERSION)
    assert render_many(["*cached*", "*stored*"]) == ["<p>from the cache</p>", html]


def test_render_many_ignores_html_cached_under_an_older_version():
    from django.core.cache import caches

    from comparisons.rendering import CACHE_VERSION, render_many

    caches["rendered"].set(_cache_key("*old*"), "<p>old rules</p>", version=CACHE_VERSION - 1)
    assert render_many(["*old*"]) == [render_markdown("*old*")] != ["<p>old rules</p>"]


@pytest.mark.redis
def test_render_many_shares_rendered_html_between_processes_through_redis(settings):
    """Two cache handles on one Redis stand in for two gunicorn workers."""
    import uuid

    from django.core.cache.backends.redis import RedisCache

    from comparisons.rendering import CACHE_VERSION, render_many
    from conftest import REDIS_URL

    prefix = f"test-rendered-{uuid.uuid4().hex}"
    settings.CACHES = {
        **settings.CACHES,
        "rendered": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": prefix,
        },
    }
    text = "| a | b |\n|---|---|\n| 1 | 2 |"
    [html] = render_many([text])
    other_worker = RedisCache(REDIS_URL, {"KEY_PREFIX": prefix})
    try:
        assert other_worker.get(_cache_key(text), version=CACHE_VERSION) == str(html)
    finally:
        other_worker.delete(_cache_key(text), version=CACHE_VERSION)


def test_plain_text_is_what_the_reader_sees():
    from comparisons.rendering import plain_text

    text = plain_text(render_markdown("# Hi\n\nUse `xs[::-1]` &amp; go.\n\n- one\n- two"))
    assert text == "Hi\nUse xs[::-1] & go.\none\ntwo"


def test_word_diff_marks_the_words_each_side_lacks_and_escapes_the_rest():
    from comparisons.rendering import DIFF_MAX_WORDS, word_diff

    left, right = word_diff("the cat sat on the mat.", 'the dog sat on the <b>mat</b> "now".')
    assert str(left) == "the <mark>cat</mark> sat on the mat."
    assert str(right) == (
        'the <mark>dog</mark> sat on the <mark>&lt;b&gt;</mark>mat<mark>&lt;/b&gt; "now"</mark>.'
    )
    assert word_diff("same words", "same words") == ("same words", "same words")
    assert word_diff("x " * (DIFF_MAX_WORDS + 1), "x") is None

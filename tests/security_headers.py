"""The security headers every response must carry, checked by the URL walk and the browser test.

The expected policy is written out here rather than read from settings, so that weakening the
setting (say, adding 'unsafe-inline') fails the tests instead of moving the goalposts with it.
A view that is given more with django-csp's `@csp_update` (API docs, say) is an exception its
own test states, not a change to STRICT_CSP.
"""

from __future__ import annotations

from collections.abc import Mapping

STRICT_CSP: dict[str, set[str]] = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
    "connect-src": {"'self'"},
}

# Any of these keeps the path and query of a page (a project slug, an export id) from leaving the site.
SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin"}


def parse_csp(header: str) -> dict[str, set[str]]:
    directives: dict[str, set[str]] = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name.lower()] = set(sources)
    return directives


def header_problems(headers: Mapping[str, str]) -> list[str]:
    """What is missing or wrong in one response's security headers; empty when all is right."""
    got = {name.lower(): value for name, value in headers.items()}
    problems = []
    expected = {
        "x-content-type-options": "nosniff",
        "cross-origin-opener-policy": "same-origin",
        "x-frame-options": "DENY",
    }
    for name, value in expected.items():
        if got.get(name) != value:
            problems.append(f"{name} is {got.get(name)!r}, expected {value!r}")
    if got.get("referrer-policy") not in SAFE_REFERRER_POLICIES:
        problems.append(f"referrer-policy is {got.get('referrer-policy')!r}")
    if "content-security-policy" not in got:
        problems.append("no content-security-policy")
    elif parse_csp(got["content-security-policy"]) != STRICT_CSP:
        problems.append(f"content-security-policy is {got['content-security-policy']!r}")
    return problems

"""A small Content-Security-Policy middleware for the pages that show untrusted LLM text.

The rating page's JavaScript lives in static files and uses no inline handlers or style
attributes, so the policy can forbid inline script and style outright: even if sanitising ever
let markup through, it could neither run script nor restyle the page.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

DEFAULT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Sets the policy on responses under RATERHUB_CSP_PATHS (default: the rating pages)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.policy = getattr(settings, "RATERHUB_CSP", DEFAULT_POLICY)
        self.prefixes = tuple(getattr(settings, "RATERHUB_CSP_PATHS", ("/rate/",)))

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.prefixes) and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = self.policy
        return response

"""/api/docs/: Swagger UI from drf-spectacular-sidecar's vendored files (no CDN), started by a
static script, so the page runs under the site's strict CSP with nothing added to it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@login_required
@require_GET
def api_docs(request: HttpRequest) -> HttpResponse:
    return render(request, "api/docs.html")

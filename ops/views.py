"""Probes for the load balancer and the orchestrator, and the Prometheus endpoint.

None needs a login (a probe has no session) and none touches the session; /metrics is limited
to the METRICS_TOKEN bearer or the METRICS_ALLOWED_NETWORKS addresses.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from ops import metrics, probes


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No database, cache or broker call, so a dependency's
    outage never gets a healthy node restarted."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when the database, the cache and the broker all answer, else 503 naming
    what failed (the load balancer or orchestrator stops sending new work meanwhile)."""
    checks = probes.readiness()
    ok = all(result == "ok" for result in checks.values())
    response = JsonResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )
    # probes.readiness logged what failed; not one more ERROR line per probe from Django.
    response._has_been_logged = True
    return response


def _metrics_allowed(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _metrics_allowed(request):
        # The same answer as for a page that does not exist: nothing to learn from outside.
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

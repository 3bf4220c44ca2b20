"""The metrics a process observes itself (prometheus-client objects).

Under gunicorn each worker process has its own values: with PROMETHEUS_MULTIPROC_DIR set (the
deploy and cluster configurations set it, one folder per node), prometheus-client writes them to
files there and /metrics adds up every worker's. Everything that the database or the broker
already knows (judgments, open comparisons, exports, queue depth) is read at scrape time instead
(ops.metrics), so it is right whichever node or worker is asked, and survives restarts.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

request_latency = Histogram(
    "raterhub_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (URL name), method and status class.",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)
cache_errors = Counter(
    "raterhub_cache_errors",
    "Cache calls answered as a miss because the cache server was unavailable.",
    ["cache", "operation"],
)
database_unavailable = Counter(
    "raterhub_database_unavailable_responses",
    "Requests answered 503 (retry) because the database connection failed.",
)

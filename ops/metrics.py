"""/metrics: what the processes observed (ops.counters) plus what the database and the broker
know, read at scrape time.

Why read at scrape time: judgments, open comparisons and export jobs are rows, and the Celery
queue is a list in the broker. Counting them when Prometheus asks gives the same answer from
every node and worker, survives restarts, and needs no process to have seen the event (an
export finishes in a Celery worker, which serves no HTTP). Per-request latencies exist only in
the process that served the request: those use prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR) so a scrape adds up all of a node's gunicorn workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

from django.db.models import Count, F
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from comparisons.models import Comparison, ExportJob, JobStatus, Judgment, ProjectStatus
from ops import probes

logger = logging.getLogger(__name__)

EXPORT_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def _export_duration_histogram(durations: list[tuple[str, float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "raterhub_export_duration_seconds",
        "Time from start to finish of the export jobs that succeeded, by format.",
        labels=["format"],
    )
    by_format: dict[str, list[float]] = {}
    for fmt, seconds in durations:
        by_format.setdefault(fmt, []).append(seconds)
    for fmt, values in sorted(by_format.items()):
        buckets = [(str(b), sum(1 for v in values if v <= b)) for b in EXPORT_BUCKETS]
        buckets.append(("+Inf", len(values)))
        family.add_metric([fmt], buckets, sum_value=sum(values))
    return family


class DatabaseCollector:
    """Counts from the database and the broker, each a handful of indexed aggregate queries."""

    def collect(self) -> Iterator[Metric]:
        judgments = CounterMetricFamily(
            "raterhub_judgments", "Judgments recorded, by project.", labels=["project"]
        )
        for row in Judgment.objects.values("project__slug").annotate(n=Count("pk")).order_by():
            judgments.add_metric([row["project__slug"]], row["n"])
        yield judgments

        open_comparisons = GaugeMetricFamily(
            "raterhub_open_comparisons",
            "Comparisons that still want judgments (open slots), by project not archived.",
            labels=["project"],
        )
        rows = (
            Comparison.objects.filter(open_slots__gt=0)
            .exclude(project__status=ProjectStatus.ARCHIVED)
            .values("project__slug")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for row in rows:
            open_comparisons.add_metric([row["project__slug"]], row["n"])
        yield open_comparisons

        jobs = GaugeMetricFamily(
            "raterhub_export_jobs", "Export jobs by status.", labels=["status"]
        )
        counts = dict(ExportJob.objects.values_list("status").annotate(n=Count("pk")).order_by())
        for status in JobStatus.values:
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs

        failures = CounterMetricFamily(
            "raterhub_export_failures", "Export jobs that failed, by format.", labels=["format"]
        )
        failed = (
            ExportJob.objects.filter(status=JobStatus.FAILED)
            .values_list("format")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for fmt, n in failed:
            failures.add_metric([fmt], n)
        yield failures

        finished = ExportJob.objects.filter(
            status=JobStatus.SUCCEEDED, started_at__isnull=False, finished_at__isnull=False
        ).values_list("format", F("finished_at") - F("started_at"))
        yield _export_duration_histogram(
            [(fmt, max(0.0, took.total_seconds())) for fmt, took in finished]
        )

        depth = GaugeMetricFamily(
            "raterhub_celery_queue_depth",
            "Tasks waiting in the broker's queue (absent when the broker is unreachable).",
            labels=["queue"],
        )
        try:
            depth.add_metric([probes.DEFAULT_QUEUE], probes.queue_depth())
        except Exception as exc:
            logger.warning("metrics: the broker's queue depth is unavailable: %s", exc)
        yield depth


def exposition() -> bytes:
    """The whole /metrics body in Prometheus' text format."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    # One process (runserver, tests): its own registry holds the observed metrics.
    return generate_latest(REGISTRY) + generate_latest(registry)

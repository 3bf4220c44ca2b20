"""gunicorn configuration for a RaterHub web node (`gunicorn -c deploy/gunicorn.conf.py raterhub.wsgi`).

Every value can be changed by its environment variable; the defaults suit one node behind the
nginx of deploy/nginx/raterhub.conf. Sync workers: a rating request is short and CPU-bound
(rendering, one transaction), so a process per core (plus one to cover database waits) is what
a node can use; more workers only queue for the same cores.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
# A request that runs longer than this is killed and its worker replaced (exports never run
# in a request: they are Celery jobs).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM or a HUP reload: workers finish the request in hand for up to this long.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Sync workers close the connection after each response (gunicorn's keepalive applies to its
# threaded and async workers only), so nginx connects anew per request: on this machine the
# threaded worker with keep-alive cost the same CPU per request (1.0 ms for /healthz).
# Recycle workers now and then (slow leaks), staggered so they never restart together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
# nginx logs every request; the app logs one JSON line per request with its id (ops.middleware).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# gunicorn's own lines (boot, worker timeouts) as JSON too, like the app's (settings.LOGGING).
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": loglevel.upper(), "propagate": False}
    },
}
# Only nginx on this machine talks to gunicorn: trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proc_name = os.environ.get("GUNICORN_PROC_NAME", "raterhub-web")


def on_starting(server) -> None:
    """prometheus-client's multiprocess mode: each worker writes its metrics to files in
    PROMETHEUS_MULTIPROC_DIR (one folder per node), emptied when the node starts."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

"""The Celery app for a worker whose pool process dies at the start of its first task, as a
worker killed mid-export would (started by test_export_worker with `celery -A`)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from celery.signals import task_prerun

from raterhub.celery import app

__all__ = ["app"]

# A file, not a variable: the pool process that dies takes its memory with it.
MARKER = Path(os.environ["RATERHUB_TEST_DIE_ONCE"])


@task_prerun.connect
def _die_once(**kwargs) -> None:
    if not MARKER.exists():
        MARKER.touch()
        os.kill(os.getpid(), signal.SIGKILL)

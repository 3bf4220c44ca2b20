"""The Celery app: configured from Django's settings (CELERY_ namespace), tasks autodiscovered."""

from __future__ import annotations

import os
from pathlib import Path

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raterhub.settings")

app = Celery("raterhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


@signals.before_task_publish.connect
@signals.worker_init.connect
def ensure_broker_folders(**_signal) -> None:
    """kombu's filesystem transport (the embedded broker) fails to send, and its worker
    crashes, without its folders: create them before a message goes out or a worker starts."""
    if not str(app.conf.broker_url).startswith("filesystem://"):
        return
    options = app.conf.broker_transport_options or {}
    for key in _FOLDERS:
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)

#!/usr/bin/env bash
# Runs the demo site and a Celery worker (with beat) on the embedded broker; Ctrl+C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var/celery/queue var/celery/processed
.venv/bin/celery -A raterhub worker --beat --loglevel=INFO --concurrency=1 \
    --schedule=var/celerybeat-schedule >var/celery-worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM
echo "Celery worker (pid $WORKER) logging to var/celery-worker.log"
echo "RaterHub on http://127.0.0.1:8000/  (admin: /admin/)"
$PY manage.py runserver 127.0.0.1:8000

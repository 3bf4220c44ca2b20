#!/usr/bin/env bash
# Runs the demo site and a Celery worker (with beat) on the embedded broker; Ctrl+C stops both.
# PORT (default 8000) is the web server's port: `make demo PORT=8123`.
set -euo pipefail
PORT="${PORT:-8000}"
if [[ ! "$PORT" =~ ^[0-9]+$ ]] || (( PORT < 1 || PORT > 65535 )); then
    echo "PORT must be a port number (1-65535), not '$PORT'" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var/celery/queue var/celery/processed
.venv/bin/celery -A raterhub worker --beat --loglevel=INFO --concurrency=1 \
    --schedule=var/celerybeat-schedule >var/celery-worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null || true' EXIT INT TERM
echo "Celery worker (pid $WORKER) logging to var/celery-worker.log"
echo "RaterHub on http://127.0.0.1:$PORT/  (admin: /admin/)"
$PY manage.py runserver "127.0.0.1:$PORT"

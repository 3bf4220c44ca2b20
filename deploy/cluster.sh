#!/usr/bin/env bash
# The multi-node layout on one machine (make cluster / make cluster-stop / make cluster-status):
# nginx (TLS, load balancer) on 127.0.0.1 in front of two gunicorn nodes on their own ports,
# each with its own folder and metrics (no shared local state), two Celery workers and one
# beat, on PostgreSQL and Redis. Everything lives in $CLUSTER_DIR; stop kills what start began,
# by the process ids it recorded.
#
# Variables (defaults in brackets):
#   CLUSTER_DATABASE_URL [postgres://postgres@127.0.0.1:5432/raterhub_cluster]  created if missing
#   CLUSTER_REDIS_URL    [redis://127.0.0.1:6379/1]    cache and broker
#   CLUSTER_NGINX_PORT   [8443]   HTTPS; CLUSTER_WEB_PORTS ["8001 8002"]; CLUSTER_WORKERS [2]
#   CLUSTER_WEB_CONCURRENCY [2] gunicorn workers per node; CLUSTER_DIR [var/cluster]
#   CLUSTER_WEB_CPUS, CLUSTER_OTHER_CPUS [unset]  the cores (taskset -c) of the web nodes, and of
#       the workers, beat and nginx: "0" and "1" measure what one web core holds (loadtest/run.py)
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_DIR=$(mkdir -p "${CLUSTER_DIR:-var/cluster}" && cd "${CLUSTER_DIR:-var/cluster}" && pwd)
DATABASE_URL=${CLUSTER_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/raterhub_cluster}
REDIS_URL=${CLUSTER_REDIS_URL:-redis://127.0.0.1:6379/1}
NGINX_PORT=${CLUSTER_NGINX_PORT:-8443}
WEB_PORTS=${CLUSTER_WEB_PORTS:-"8001 8002"}
WORKERS=${CLUSTER_WORKERS:-2}
VENV=$(pwd)/.venv
PIDS=$CLUSTER_DIR/pids
LOGS=$CLUSTER_DIR/logs

environment() {
    # The production settings, with local names and a self-signed certificate.
    if [ ! -f "$CLUSTER_DIR/secret_key" ]; then
        head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$CLUSTER_DIR/secret_key"
    fi
    export DEBUG=0 SECRET_KEY="$(cat "$CLUSTER_DIR/secret_key")"
    export ALLOWED_HOSTS=127.0.0.1,localhost
    export CSRF_TRUSTED_ORIGINS="https://127.0.0.1:$NGINX_PORT,https://localhost:$NGINX_PORT"
    export DATABASE_URL REDIS_URL USE_X_FORWARDED_PROTO=1 TRUSTED_PROXY_COUNT=1
    export SECURE_HSTS_SECONDS=0  # never pin HSTS on 127.0.0.1 in a developer's browser
    export LOG_FORMAT=json MEDIA_ROOT="$CLUSTER_DIR/media" STATIC_ROOT="$CLUSTER_DIR/static"
    export DJANGO_SETTINGS_MODULE=raterhub.settings
    # The same environment for scripts run beside the cluster (the load and fault suites).
    export -p | grep -E ' (DEBUG|SECRET_KEY|ALLOWED_HOSTS|CSRF_TRUSTED_ORIGINS|DATABASE_URL|REDIS_URL|USE_X_FORWARDED_PROTO|TRUSTED_PROXY_COUNT|SECURE_HSTS_SECONDS|LOG_FORMAT|MEDIA_ROOT|STATIC_ROOT|DJANGO_SETTINGS_MODULE)=' \
        >"$CLUSTER_DIR/env"
    echo "export CLUSTER_URL=https://127.0.0.1:$NGINX_PORT" >>"$CLUSTER_DIR/env"
    # One variable a line: loadtest.common.cluster_env reads each line's last assignment.
    echo "export CLUSTER_WEB_CPUS=${CLUSTER_WEB_CPUS:-}" >>"$CLUSTER_DIR/env"
    echo "export CLUSTER_OTHER_CPUS=${CLUSTER_OTHER_CPUS:-}" >>"$CLUSTER_DIR/env"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The prefixes that keep a command on the cores given (none: anywhere).
WEB_ON=()
[ -z "${CLUSTER_WEB_CPUS:-}" ] || WEB_ON=(taskset -c "$CLUSTER_WEB_CPUS")
OTHER_ON=()
[ -z "${CLUSTER_OTHER_CPUS:-}" ] || OTHER_ON=(taskset -c "$CLUSTER_OTHER_CPUS")

start_process() {  # name, then the command: its own session (process group), logs, pid file
    local name=$1
    shift
    if running "$PIDS/$name.pid"; then
        echo "  $name already running (pid $(cat "$PIDS/$name.pid"))"
        return
    fi
    setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$name.pid"
    echo "  $name: pid $!, log $LOGS/$name.log"
}

ensure_nginx() {
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        echo "Installing nginx (Debian package)…"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
    fi
}

ensure_database() {
    local name=${DATABASE_URL##*/}
    name=${name%%\?*}
    local server=${DATABASE_URL%/*}
    if ! psql "$server/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
        psql "$server/postgres" -qc "CREATE DATABASE \"$name\""
    fi
}

write_nginx_conf() {
    mkdir -p "$CLUSTER_DIR/nginx/logs" "$CLUSTER_DIR/nginx/tmp"
    if [ ! -f "$CLUSTER_DIR/tls.crt" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
            -keyout "$CLUSTER_DIR/tls.key" -out "$CLUSTER_DIR/tls.crt" 2>/dev/null
    fi
    local servers=""
    for port in $WEB_PORTS; do
        servers+="        server 127.0.0.1:$port max_fails=3 fail_timeout=5s;"$'\n'
    done
    # deploy/nginx/raterhub.conf, with local ports, paths and no port-80 redirect.
    cat >"$CLUSTER_DIR/nginx.conf" <<NGINX
worker_processes 1;
pid $CLUSTER_DIR/nginx/nginx.pid;
error_log $CLUSTER_DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log $CLUSTER_DIR/nginx/logs/access.log combined buffer=64k flush=5s;
    client_body_temp_path $CLUSTER_DIR/nginx/tmp/body;
    proxy_temp_path $CLUSTER_DIR/nginx/tmp/proxy;
    fastcgi_temp_path $CLUSTER_DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $CLUSTER_DIR/nginx/tmp/uwsgi;
    scgi_temp_path $CLUSTER_DIR/nginx/tmp/scgi;
    upstream raterhub_web {
        least_conn;
$servers        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl http2;
        server_name 127.0.0.1 localhost;
        ssl_certificate $CLUSTER_DIR/tls.crt;
        ssl_certificate_key $CLUSTER_DIR/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:raterhub_tls:10m;
        client_max_body_size 100m;
        location = /metrics { return 404; }
        location / {
            proxy_pass http://raterhub_web;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host:\$server_port;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Request-ID \$request_id;
            proxy_connect_timeout 2s;
            proxy_read_timeout 35s;
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 2;
        }
    }
}
NGINX
}

wait_ready() {
    local url="https://127.0.0.1:$NGINX_PORT/readyz"
    for _ in $(seq 1 60); do
        if curl -ksf -o /dev/null "$url"; then
            echo "Ready: https://127.0.0.1:$NGINX_PORT/ (self-signed certificate; /readyz answers 200)"
            return 0
        fi
        sleep 0.5
    done
    echo "The cluster did not become ready; see $LOGS/" >&2
    return 1
}

start() {
    mkdir -p "$PIDS" "$LOGS" "$CLUSTER_DIR/media"
    ensure_nginx
    [ -n "${CLUSTER_REVIVE:-}" ] || ensure_database
    environment
    if [ -z "${CLUSTER_REVIVE:-}" ]; then
        "$VENV/bin/python" manage.py migrate --noinput -v 0
        "$VENV/bin/python" manage.py collectstatic --noinput -v 0
        write_nginx_conf
    fi
    echo "Starting the cluster in $CLUSTER_DIR:"
    for port in $WEB_PORTS; do
        # Each node: its own folder and metrics; nothing local is shared with the other.
        mkdir -p "$CLUSTER_DIR/web-$port"
        RATERHUB_VAR_DIR="$CLUSTER_DIR/web-$port" \
            PROMETHEUS_MULTIPROC_DIR="$CLUSTER_DIR/web-$port/metrics" \
            GUNICORN_BIND="127.0.0.1:$port" GUNICORN_PROC_NAME="raterhub-web-$port" \
            WEB_CONCURRENCY="${CLUSTER_WEB_CONCURRENCY:-2}" \
            start_process "web-$port" "${WEB_ON[@]}" \
            "$VENV/bin/gunicorn" -c deploy/gunicorn.conf.py raterhub.wsgi
    done
    # Workers yield the cores to the web nodes (as Nice=10 in their systemd unit): an export
    # or a metrics recompute can wait a moment, a rater's submit should not.
    for n in $(seq 1 "$WORKERS"); do
        mkdir -p "$CLUSTER_DIR/worker-$n"
        RATERHUB_VAR_DIR="$CLUSTER_DIR/worker-$n" start_process "worker-$n" \
            "${OTHER_ON[@]}" nice -n 10 \
            "$VENV/bin/celery" -A raterhub worker -n "worker$n@%h" --concurrency=1 --loglevel=INFO
    done
    RATERHUB_VAR_DIR="$CLUSTER_DIR" start_process beat "${OTHER_ON[@]}" \
        "$VENV/bin/celery" -A raterhub beat --loglevel=INFO --schedule="$CLUSTER_DIR/celerybeat-schedule"
    if ! running "$CLUSTER_DIR/nginx/nginx.pid"; then
        "${OTHER_ON[@]}" /usr/sbin/nginx -c "$CLUSTER_DIR/nginx.conf" -p "$CLUSTER_DIR/nginx" -e "$CLUSTER_DIR/nginx/logs/error.log"
    fi
    echo "  nginx: pid $(cat "$CLUSTER_DIR/nginx/nginx.pid"), https://127.0.0.1:$NGINX_PORT/"
    wait_ready
}

stop_pidfile() {  # TERM the leader, then KILL its whole process group after 30 s
    local file=$1
    [ -f "$file" ] || return 0
    local pid
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        # The leader alone: gunicorn and Celery shut their own children down gracefully.
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

stop() {
    if [ -f "$CLUSTER_DIR/nginx/nginx.pid" ]; then
        kill -QUIT "$(cat "$CLUSTER_DIR/nginx/nginx.pid")" 2>/dev/null || true
        sleep 0.5
    fi
    for file in "$PIDS"/*.pid; do
        [ -e "$file" ] || continue
        echo "  stopping $(basename "$file" .pid)"
        stop_pidfile "$file"
    done
    echo "Cluster stopped."
}

status() {
    for file in "$PIDS"/*.pid "$CLUSTER_DIR/nginx/nginx.pid"; do
        [ -e "$file" ] || continue
        if running "$file"; then state=running; else state=stopped; fi
        echo "  $(basename "$file" .pid): pid $(cat "$file") $state"
    done
}

case "${1:-}" in
    start) start ;;
    # Start again only what died (as systemd's Restart=always would), skipping migrate and
    # collectstatic: the fault suite brings back a node or a worker it killed.
    revive) CLUSTER_REVIVE=1 start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|revive|stop|status" >&2; exit 2 ;;
esac

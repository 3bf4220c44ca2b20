"""RaterHub settings: one file, driven by environment variables.

Development defaults need no services (SQLite in var/, file cache, the embedded filesystem
broker, console e-mail). Production differs only by variables: DEBUG=0, SECRET_KEY,
ALLOWED_HOSTS, DATABASE_URL, REDIS_URL.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("RATERHUB_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    """A boolean variable; anything but 1/0, true/false, yes/no or on/off is refused, so a
    typo (DEBUG=flase) cannot silently mean False."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1 or 0).")
    return value in _TRUE


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_networks(
    name: str, default: str = ""
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """A comma-separated list of addresses or CIDR networks; a bad entry is refused."""
    try:
        return [ipaddress.ip_network(item, strict=False) for item in env_list(name, default)]
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-raterhub-development-only-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "django_htmx",
    "template_partials",
    "csp",
    "accounts",
    "comparisons",
    "ops",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    # Outermost: the request id and the latency cover everything below.
    "ops.middleware.RequestIdMiddleware",
    "ops.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Above WhiteNoise, so static files carry the policy too (an SVG is a document).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "raterhub.urls"
WSGI_APPLICATION = "raterhub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite in var/ unless DATABASE_URL says otherwise.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        # A connection the server dropped (PostgreSQL restarted) is noticed and replaced at
        # the start of the next request instead of failing it.
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A server that does not answer fails fast (503, retried by the page) instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5)
    )
# comparisons.sql prepares its statements once per PostgreSQL connection; a pooler in
# transaction mode (pgbouncer) hands each transaction another server session: set it off there.
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # two queue picks serialize instead of failing with "database is locked" on upgrade.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# allauth: e-mail is the login; invite-only (the adapter closes open sign-up).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "accounts.adapter.InviteOnlyAccountAdapter"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/rate/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"  # never served publicly: exports go through an authenticated view.
# Stored exports and uploads get the mode of an export the CLI writes (exports.EXPORT_FILE_MODE):
# owner and group, never everyone on the machine.
FILE_UPLOAD_PERMISSIONS = 0o640

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
if env_str("AWS_STORAGE_BUCKET_NAME"):
    # S3-compatible storage for export files (pip install django-storages[s3]); the
    # AWS_* variables (endpoint, keys, region) are read by django-storages itself.
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "default_acl": "private",
            "querystring_auth": True,
        },
    }

REDIS_URL = env_str("REDIS_URL")

# Cache: Redis in production (allauth's login rate limits need a cache shared by all
# workers); by default a file cache, which processes on one machine share without a server.
# "rendered" holds sanitized HTML of LLM text (comparisons.rendering.render_many) for all the
# workers; without Redis there is none, and each process's own small LRU is all there is.
# With Redis down, ops.cache answers misses (sessions are then read from the database) and
# counts allauth's login rate limits in each process's memory instead (see the README).
if REDIS_URL:
    REDIS_CACHE = "ops.cache.FailSoftRedisCache"
    # A Redis that does not answer costs at most this long, then a miss.
    REDIS_OPTIONS = {
        "socket_connect_timeout": env_int("REDIS_TIMEOUT_MS", 500) / 1000,
        "socket_timeout": env_int("REDIS_TIMEOUT_MS", 500) / 1000,
    }
    CACHES = {
        "default": {
            "BACKEND": REDIS_CACHE,
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_OPTIONS,
            "ALIAS": "default",
            "LOCAL_FALLBACK_PREFIXES": ["allauth:rl:"],
        },
        "rendered": {
            "BACKEND": REDIS_CACHE,
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_OPTIONS,
            "ALIAS": "rendered",
            "KEY_PREFIX": "rendered",
            "TIMEOUT": 7 * 24 * 3600,
        },
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        },
        "rendered": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }

# Sessions are read from the cache and written through to the database: one query less on
# every request, and nothing lost when the cache is flushed.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# E-mail: console by default; SMTP when EMAIL_HOST is set.
if env_str("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env_str("EMAIL_HOST")
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "RaterHub <raterhub@localhost>")

# Celery: Redis when configured, else kombu's filesystem transport (an embedded broker: no
# server to start; the worker and the web process share a folder in var/).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL or "filesystem://"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # raterhub.celery creates these folders before the first message goes out or comes in.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
        # kombu polls the folder once a second by default: too slow a start for a click.
        "polling_interval": 0.1,
    }
else:
    # Redis hands an unacknowledged task to another worker only after this long; above the
    # longest export, so a slow job is not run twice meanwhile. A dead worker's export does not
    # wait for it: its heartbeat stops, and beat sends it again within two minutes.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 3600),
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    }
# Publishing while the broker is down fails within about a second instead of hanging the request
# (an export stays queued and unsent; beat sends it once the broker is back).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A worker or beat outlives a broker outage: it reconnects for as long as it takes.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# The workers log through LOGGING (JSON, with the task id as request id), not Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Tasks in the web process (no worker) is a development convenience only: in production it
# would run exports inside a request, past every timeout.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
if CELERY_TASK_ALWAYS_EAGER and not DEBUG:
    raise ImproperlyConfigured("CELERY_TASK_ALWAYS_EAGER is for development only (DEBUG=1).")
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {
    # Dashboards read the latest snapshot; refresh active projects that have new judgments.
    "recompute-metrics": {
        "task": "comparisons.tasks.recompute_active_metrics",
        "schedule": env_int("RATERHUB_METRICS_EVERY_SECONDS", 600),
    },
    # Exports whose worker died (no heartbeat for a minute) and exports never sent (the broker
    # was down when they were requested) go to a worker again.
    "requeue-stalled-exports": {
        "task": "comparisons.tasks.requeue_stalled_export_jobs",
        "schedule": 30.0,
    },
    # Webhooks: comparisons.completed (batched) and project.completed since the last sweep.
    "webhook-completions": {
        "task": "api.tasks.sweep_webhook_completions",
        "schedule": env_int("RATERHUB_WEBHOOK_SWEEP_SECONDS", 60),
    },
    # A pick that finds nothing open reclaims expired leases; this frees the rest every minute.
    "reclaim-expired-leases": {
        "task": "comparisons.tasks.reclaim_expired_leases",
        "schedule": 60.0,
    },
}

# Security: strict whenever DEBUG is off; each setting can be relaxed by its variable
# (e.g. SECURE_SSL_REDIRECT=0 behind a proxy that already redirects).
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie: the token travels in hx-headers.
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# One strict policy on every response (django-csp). Pages show untrusted LLM text: with no inline
# script or style allowed, markup that ever slipped past sanitising could neither run nor restyle
# the page. All script and style are static files; a view that needs more (e.g. API docs) says so
# with csp.decorators.csp_update rather than loosening this for everyone.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes and Prometheus talk to each node directly over the internal network, in HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_bool("USE_X_FORWARDED_PROTO", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# RaterHub's own knobs.
RATERHUB_IMPORT_MAX_CONTENT_CHARS = env_int("RATERHUB_IMPORT_MAX_CONTENT_CHARS", 200_000)
RATERHUB_IMPORT_BATCH_SIZE = env_int("RATERHUB_IMPORT_BATCH_SIZE", 2000)
# Serialized (compact JSON, UTF-8) size of one comparison's metadata.
RATERHUB_IMPORT_MAX_METADATA_BYTES = env_int("RATERHUB_IMPORT_MAX_METADATA_BYTES", 64 * 1024)
# One import line, checked before it is parsed. 8 MiB holds a prompt and two responses at the
# content limit even when json.dumps's default ensure_ascii writes every character as a \u
# escape (up to 12 bytes a character), plus the metadata.
RATERHUB_IMPORT_MAX_LINE_BYTES = env_int("RATERHUB_IMPORT_MAX_LINE_BYTES", 8 * 1024 * 1024)
# An admin upload of more lines than this is imported by a Celery job with progress, not
# within the request (200k lines took longer than gunicorn's 30 s timeout).
RATERHUB_IMPORT_SYNC_MAX_LINES = env_int("RATERHUB_IMPORT_SYNC_MAX_LINES", 5000)
RATERHUB_RATIONALE_MAX_CHARS = env_int("RATERHUB_RATIONALE_MAX_CHARS", 10_000)

# The token API (api/): JSON only (no browsable pages), tokens, a lead check and a per-token
# rate limit on every view, errors as {"detail": ...}.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.IsLead"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RaterHub API",
    "DESCRIPTION": "The token API: projects, comparisons, judgments, exports, metrics, webhooks. "
    "Send `Authorization: Token <key>` (keys: /accounts/tokens/).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema for a token (scripts, Schemathesis) or a signed-in user (the docs page).
    "SERVE_AUTHENTICATION": [
        "api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "comparisons.models.JobStatus",
        "ProjectStatusEnum": "comparisons.models.ProjectStatus",
    },
}
# Requests per token, e.g. "1200/min" (DRF's format), counted in the cache shared by all nodes.
RATERHUB_API_RATE_LIMIT = env_str("RATERHUB_API_RATE_LIMIT", "1200/min")
RATERHUB_API_PAGE_SIZE = env_int("RATERHUB_API_PAGE_SIZE", 100)
RATERHUB_API_MAX_PAGE_SIZE = env_int("RATERHUB_API_MAX_PAGE_SIZE", 5000)
# Largest upload body; more lines than RATERHUB_IMPORT_SYNC_MAX_LINES go to an import job.
RATERHUB_API_MAX_UPLOAD_BYTES = env_int("RATERHUB_API_MAX_UPLOAD_BYTES", 256 * 1024 * 1024)
# The site's address as webhook receivers should reach it (links in webhook bodies).
RATERHUB_PUBLIC_URL = env_str("RATERHUB_PUBLIC_URL", "http://127.0.0.1:8000")
# Webhooks to private, loopback or reserved addresses (SSRF) only when allowed: development only.
RATERHUB_WEBHOOK_ALLOW_PRIVATE = env_bool("RATERHUB_WEBHOOK_ALLOW_PRIVATE", DEBUG)
RATERHUB_WEBHOOK_TIMEOUT_SECONDS = env_int("RATERHUB_WEBHOOK_TIMEOUT_SECONDS", 10)
RATERHUB_WEBHOOK_MAX_ATTEMPTS = env_int("RATERHUB_WEBHOOK_MAX_ATTEMPTS", 8)
# The first retry's delay; each further one doubles it (capped at an hour).
RATERHUB_WEBHOOK_RETRY_SECONDS = env_int("RATERHUB_WEBHOOK_RETRY_SECONDS", 30)

# /metrics (ops.views): a scraper sends "Authorization: Bearer <METRICS_TOKEN>" or comes from
# one of these networks. Behind nginx every request comes from nginx's address, so the shipped
# nginx configuration refuses /metrics itself; scrape each node directly.
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")

# Behind a load balancer every client has its address: allauth's per-address login limits
# read the client from X-Forwarded-For, trusting this many proxies (1 behind the shipped nginx).
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)

# Logs: one JSON object per line (python-json-logger) with the request or task id, or plain
# text for a developer's terminal. JSON by default whenever DEBUG is off.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be json or text.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "ops.logs.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per request from ops.middleware; Django's own would repeat 4xx/5xx.
        "django.request": {"level": "ERROR"},
        # The per-request access line: LOG_REQUESTS=0 silences it (nginx logs access too).
        "raterhub.request": {"level": "INFO" if env_bool("LOG_REQUESTS", True) else "WARNING"},
    },
}

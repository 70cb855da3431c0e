"""Settings shared by every environment. Everything comes from the environment.

The environment-specific modules (dev, test, prod) import this module and
override only what differs. Read a value with ``env(...)``; never hard-code a
secret here.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import environ
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(environ.Env().str("MAHTQA_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_htmx",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "apps.core",
    "apps.accounts",
    "apps.models",
    "apps.monitoring",
    "apps.clinical",
    "apps.issues",
    "apps.outbox",
    "apps.datasets",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "apps.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "apps.core.error_pages.DomainErrorMiddleware",
    # Last: turns a lockout flagged by the axes backend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "mahtqa.urls"
WSGI_APPLICATION = "mahtqa.wsgi.application"
ASGI_APPLICATION = "mahtqa.asgi.application"

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
                "apps.core.navigation.navigation",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
# Axes first (refuses locked-out users and counts failures), then password
# authentication for people only: API-client accounts are token-only.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "apps.accounts.backends.PeopleOnlyBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Files ---------------------------------------------------------------
# Two storages, on purpose:
#  - "default" (MEDIA_ROOT): de-identified derivatives only.
#  - "phi": originals that carry PHI. PhiStorage.url() refuses to build a URL,
#    and no URL pattern serves PHI_ROOT: PHI leaves it only through
#    permission-checked views.
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MAHTQA_MEDIA_ROOT", default=str(VAR_DIR / "media")))
PHI_ROOT = Path(env.str("MAHTQA_PHI_ROOT", default=str(VAR_DIR / "phi")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "phi": {
        "BACKEND": "apps.core.storage.PhiStorage",
        "OPTIONS": {"location": PHI_ROOT},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Received studies are on the device before the 202 (apps.core.storage.file_write):
# data and directory entry synced; files of 1 MiB and more written with O_DIRECT.
MAHTQA_STORAGE_SYNC = env.bool("MAHTQA_STORAGE_SYNC", default=True)
MAHTQA_STORAGE_DIRECT_IO = env.bool("MAHTQA_STORAGE_DIRECT_IO", default=True)

# Upload limits. DICOM files are the big ones; the clinical intake checks
# DICOM_MAX_UPLOAD_BYTES itself and answers 413 "payload_too_large".
DICOM_MAX_UPLOAD_BYTES = env.int("DICOM_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = env.int("DJANGO_FILE_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# --- MAHT-QA ---------------------------------------------------------------
# Key for keyed pseudonyms (HMAC) of patient identifiers. Required in prod.
PHI_PSEUDONYM_KEY = env.str("PHI_PSEUDONYM_KEY", default="")
MAHTQA_MODEL_DIR = Path(env.str("MAHTQA_MODEL_DIR", default=str(VAR_DIR / "models")))
MAHTQA_INFER_SOFT_LIMIT_S = env.int("MAHTQA_INFER_SOFT_LIMIT_S", default=120)
MAHTQA_INFER_HARD_LIMIT_S = env.int("MAHTQA_INFER_HARD_LIMIT_S", default=180)
# Last resort: a study queued or processing for longer than every time limit allows
# (hard limit + a minute) is re-enqueued by beat. Derived, not a fixed 10 minutes.
MAHTQA_STUDY_LEASE_S = env.int("MAHTQA_STUDY_LEASE_S", default=MAHTQA_INFER_HARD_LIMIT_S + 60)
# A worker's main process beats every MAHTQA_WORKER_HEARTBEAT_S; one silent for
# MAHTQA_WORKER_DEAD_S is dead and its studies are taken over (beat, every 5 s).
MAHTQA_WORKER_HEARTBEAT_S = env.float("MAHTQA_WORKER_HEARTBEAT_S", default=2.0)
MAHTQA_WORKER_DEAD_S = env.float("MAHTQA_WORKER_DEAD_S", default=15.0)
DICOM_MAX_ROWS = env.int("DICOM_MAX_ROWS", default=8192)
DICOM_MAX_COLS = env.int("DICOM_MAX_COLS", default=8192)
# --- Datasets ---------------------------------------------------------------
# Folders engineers may register datasets from (colon-separated); nothing outside
# them is read. Uploaded zips are extracted under MAHTQA_DATASET_STORE.
MAHTQA_DATASET_STORE = Path(env.str("MAHTQA_DATASET_STORE", default=str(VAR_DIR / "datasets")))
MAHTQA_DATASET_ROOTS = [
    Path(p)
    for p in env.str("MAHTQA_DATASET_ROOTS", default=str(MAHTQA_DATASET_STORE)).split(":")
    if p
]
MAHTQA_DATASET_MAX_FILES = env.int("MAHTQA_DATASET_MAX_FILES", default=200_000)
MAHTQA_DATASET_ZIP_MAX_BYTES = env.int("MAHTQA_DATASET_ZIP_MAX_BYTES", default=2 * 1024**3)
MAHTQA_DATASET_ZIP_MAX_ENTRIES = env.int("MAHTQA_DATASET_ZIP_MAX_ENTRIES", default=50_000)
MAHTQA_DATASET_ZIP_MAX_UNCOMPRESSED = env.int(
    "MAHTQA_DATASET_ZIP_MAX_UNCOMPRESSED", default=8 * 1024**3
)
# A training run's history is diagnosed at most this often while metrics arrive.
MAHTQA_RUN_DIAGNOSE_EVERY_S = env.int("MAHTQA_RUN_DIAGNOSE_EVERY_S", default=30)
# Threads checking images within one step (decode and OpenCV release the GIL).
MAHTQA_DATASET_WORKERS = env.int("MAHTQA_DATASET_WORKERS", default=1)
MAHTQA_DATASET_CHUNK = env.int("MAHTQA_DATASET_CHUNK", default=500)  # images per validation step
# A running validation whose heartbeat is older than this is picked up again (beat).
MAHTQA_DATASET_LEASE_S = env.int("MAHTQA_DATASET_LEASE_S", default=120)

# Clinical performance monitor: the cases it reads (lookback), and the size of the
# reference a site's drift is measured against (docs/monitoring.md).
MAHTQA_CLINICAL_MONITOR_DAYS = env.int("MAHTQA_CLINICAL_MONITOR_DAYS", default=90)
MAHTQA_CLINICAL_MONITOR_MAX_CASES = env.int("MAHTQA_CLINICAL_MONITOR_MAX_CASES", default=20000)
MAHTQA_CLINICAL_REFERENCE_CASES = env.int("MAHTQA_CLINICAL_REFERENCE_CASES", default=200)
MAHTQA_DEVICE = env.str("MAHTQA_DEVICE", default="cpu")
MAHTQA_NUM_THREADS = env.int("MAHTQA_NUM_THREADS", default=0) or None
# Review: a claim with no activity for this long returns to the queue (beat).
MAHTQA_CLAIM_IDLE_MINUTES = env.int("MAHTQA_CLAIM_IDLE_MINUTES", default=30)
# Absolute links in escalation emails/webhooks; empty = relative paths.
MAHTQA_BASE_URL = env.str("MAHTQA_BASE_URL", default="")
EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="maht-qa@localhost")
# SMTP (with DJANGO_EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend).
EMAIL_HOST = env.str("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=10)

# --- Brute-force protection, caches, headers ---------------------------------------
# Password logins (site and /admin/): after AXES_FAILURE_LIMIT failures the
# username and the client IP are each locked for AXES_COOLOFF_TIME hours; an
# admin clears a lockout with `manage.py account_unlock` (audited as a security
# event). Failed token authentications per client IP are limited too.
AXES_FAILURE_LIMIT = env.int("MAHTQA_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("MAHTQA_LOGIN_COOLOFF_HOURS", default=0.25)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False  # unlocks go through our audited action and command
# Client address for lockouts and token-failure limits: REMOTE_ADDR only, unless
# MAHTQA_PROXY_COUNT trusted proxies sit in front (then X-Forwarded-For, counted from
# the right, through django-ipware). Never the client-supplied header by default.
MAHTQA_PROXY_COUNT = env.int("MAHTQA_PROXY_COUNT", default=0)
AXES_IPWARE_PROXY_COUNT = MAHTQA_PROXY_COUNT or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if MAHTQA_PROXY_COUNT else ("REMOTE_ADDR",)
)
MAHTQA_TOKEN_FAILURE_LIMIT = env.int("MAHTQA_TOKEN_FAILURE_LIMIT", default=10)
MAHTQA_TOKEN_FAILURE_WINDOW_S = env.int("MAHTQA_TOKEN_FAILURE_WINDOW_S", default=300)
# Prometheus scrape endpoint GET /metrics (docs/operations.md): served to clients in
# MAHTQA_METRICS_ALLOW (CIDRs, comma-separated; default loopback only) or presenting
# "Authorization: Bearer $MAHTQA_METRICS_TOKEN". No default token: unset, only the
# networks may scrape. A token shorter than 32 characters is refused at start-up.
MAHTQA_METRICS_TOKEN = env.str("MAHTQA_METRICS_TOKEN", default="")
if MAHTQA_METRICS_TOKEN and len(MAHTQA_METRICS_TOKEN) < 32:
    raise ValueError("MAHTQA_METRICS_TOKEN must be at least 32 characters.")
MAHTQA_METRICS_ALLOW = [
    str(ipaddress.ip_network(net.strip(), strict=False))  # a bad CIDR fails at start-up
    for net in env.list("MAHTQA_METRICS_ALLOW", default=["127.0.0.1/32", "::1/128"])
    if net.strip()
]
# Shared by every process (token-failure counts, DRF throttles): Redis in
# production (CACHE_URL=redis://host:6379/1); one process in the embedded default.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://mahtqa")}

# Strict CSP: scripts and styles from our own origin only; no inline code, no eval
# (htmx runs with allowEval off and no indicator <style>, see base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
    "midi=(), magnetometer=(), gyroscope=(), accelerometer=(), display-capture=(), "
    "clipboard-read=()"
)

# --- REST API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First class decides the WWW-Authenticate header, so 401 (not 403).
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["apps.accounts.throttling.ApiTokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_client": env.str("MAHTQA_API_THROTTLE", default="600/minute"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MAHT-QA API",
    "DESCRIPTION": "Clinical QA platform for the MAHT-Net cephalometric landmark model.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery ----------------------------------------------------------------
# The database is the source of truth for every job; the broker only carries
# wake-ups, so no result backend. Never task_always_eager.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
# Redis redelivers an unacknowledged message after the visibility timeout: longer
# than the longest task (the inference hard limit), or a slow task would run twice.
# A killed worker's studies are taken over sooner through its heartbeat.
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
    "visibility_timeout": MAHTQA_INFER_HARD_LIMIT_S + 60,
    "socket_connect_timeout": 3,
    "socket_timeout": 10,
}
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu's Redis transport, except that a broker lost while messages are
    # unacknowledged does not kill the worker (see apps/core/broker.py).
    CELERY_BROKER_TRANSPORT = "apps.core.broker:RedisTransport"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("inference", Exchange("inference"), routing_key="inference"),
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("checks", Exchange("checks"), routing_key="checks"),
)
# Routes by task-name prefix (glob). Model inference goes to "inference"
# (GPU workers); everything else to "default".
CELERY_TASK_ROUTES = {
    "apps.clinical.tasks.study_infer*": {"queue": "inference", "routing_key": "inference"},
    "apps.models.tasks.inference_*": {"queue": "inference", "routing_key": "inference"},
    "apps.datasets.tasks.*": {"queue": "checks", "routing_key": "checks"},
    "apps.models.tasks.run_*": {"queue": "checks", "routing_key": "checks"},
    "*": {"queue": "default", "routing_key": "default"},
}
# Periodic work; apps add their own entries (clinical: escalation, re-enqueue).
CELERY_BEAT_SCHEDULE = {
    "datasets-requeue-stale": {
        "task": "apps.datasets.tasks.validation_run_requeue_stale_task",
        "schedule": env.float("MAHTQA_DATASET_REQUEUE_SECONDS", default=60.0),
    },
    "clinical-requeue-stuck": {
        "task": "apps.clinical.tasks.study_requeue_stuck_task",
        "schedule": env.float("MAHTQA_REQUEUE_EVERY_SECONDS", default=5.0),
    },
    "clinical-escalate-overdue": {
        "task": "apps.clinical.tasks.review_task_escalate_overdue_task",
        "schedule": env.float("MAHTQA_ESCALATE_EVERY_SECONDS", default=60.0),
    },
    "clinical-release-idle-claims": {
        "task": "apps.clinical.tasks.review_task_release_idle_task",
        "schedule": env.float("MAHTQA_RELEASE_IDLE_EVERY_SECONDS", default=60.0),
    },
    "monitoring-heartbeat": {
        "task": "apps.monitoring.tasks.ping",
        "schedule": env.float("MAHTQA_HEARTBEAT_SECONDS", default=60.0),
        "kwargs": {"source": "beat"},
    },
    "monitoring-readiness-record": {
        "task": "apps.monitoring.tasks.readiness_record_task",
        "schedule": env.float("MAHTQA_READINESS_RECORD_SECONDS", default=60.0),
    },
    "clinical-orphan-sweep": {
        "task": "apps.clinical.tasks.storage_orphans_sweep_task",
        "schedule": env.float("MAHTQA_ORPHAN_SWEEP_SECONDS", default=3600.0),
    },
    "outbox-purge": {
        "task": "apps.outbox.tasks.outbox_purge_task",
        "schedule": env.float("MAHTQA_OUTBOX_PURGE_SECONDS", default=3600.0),
    },
    "monitoring-health-run": {
        "task": "apps.monitoring.tasks.health_run_task",
        "schedule": env.float("MAHTQA_HEALTH_SECONDS", default=300.0),
    },
    "monitoring-incidents-escalate": {
        "task": "apps.monitoring.tasks.incidents_escalate_task",
        "schedule": env.float("MAHTQA_INCIDENT_ESCALATE_SECONDS", default=30.0),
    },
    # The clinical performance monitor: a safety alert opens an incident within 60 s.
    "monitoring-clinical-monitor": {
        "task": "apps.monitoring.tasks.clinical_monitor_task",
        "schedule": env.float("MAHTQA_CLINICAL_MONITOR_SECONDS", default=30.0),
    },
    "issues-overdue-notify": {
        "task": "apps.issues.tasks.issues_overdue_notify_task",
        "schedule": env.float("MAHTQA_ISSUES_OVERDUE_SECONDS", default=300.0),
    },
}
# Environment verification (docs/operations.md): every worker reports on each queue it
# consumes; the queue and its routing key are explicit (the "*" route would say "default").
MAHTQA_ENV_REPORT_SECONDS = env.float("MAHTQA_ENV_REPORT_SECONDS", default=300.0)
for _queue in CELERY_TASK_QUEUES:
    CELERY_BEAT_SCHEDULE[f"monitoring-environment-{_queue.name}"] = {
        "task": "apps.monitoring.tasks.environment_report_task",
        "schedule": MAHTQA_ENV_REPORT_SECONDS,
        "kwargs": {"queue": _queue.name},
        "options": {"queue": _queue.name, "routing_key": _queue.routing_key},
    }
del _queue
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Outbox ------------------------------------------------------------------------
# Work that must follow a commit is written to apps.outbox in the same transaction;
# a dispatcher thread in every worker publishes it (see docs/operations.md).
MAHTQA_OUTBOX_DISPATCH_IN_WORKER = env.bool("MAHTQA_OUTBOX_DISPATCH_IN_WORKER", default=True)
MAHTQA_OUTBOX_POLL_S = env.float("MAHTQA_OUTBOX_POLL_S", default=0.5)
# A published message no worker picked up is published again after this (doubling).
MAHTQA_OUTBOX_REDELIVER_S = env.float("MAHTQA_OUTBOX_REDELIVER_S", default=20.0)
MAHTQA_OUTBOX_BACKOFF_MAX_S = env.float("MAHTQA_OUTBOX_BACKOFF_MAX_S", default=5.0)
# After this many publishes without a pick-up (~6 h with the doubling, capped) a row is
# dead; a queued study is then re-enqueued by the lease (a new row): never lost.
MAHTQA_OUTBOX_MAX_PUBLISHES = env.int("MAHTQA_OUTBOX_MAX_PUBLISHES", default=60)
MAHTQA_OUTBOX_KEEP_HOURS = env.int("MAHTQA_OUTBOX_KEEP_HOURS", default=72)
# /readyz warns (without failing) when work has waited longer than this.
MAHTQA_OUTBOX_STALE_S = env.float("MAHTQA_OUTBOX_STALE_S", default=300.0)
if not MAHTQA_OUTBOX_DISPATCH_IN_WORKER:  # then beat publishes (every 2 s) as a backstop
    CELERY_BEAT_SCHEDULE["outbox-dispatch"] = {
        "task": "apps.outbox.tasks.outbox_dispatch_task",
        "schedule": env.float("MAHTQA_OUTBOX_BEAT_DISPATCH_SECONDS", default=2.0),
    }

# --- Logging ---------------------------------------------------------------
# Never log PHI. The redaction filter is a second line of defence only.
LOG_LEVEL = env.str("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_phi": {"()": "apps.core.logfilters.RedactPhiFilter"}},
    "formatters": {
        "kv": {
            "format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s "
            "pid=%(process)d msg=%(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "kv",
            "filters": ["redact_phi"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
        "axes": {"level": "WARNING"},  # its INFO lines on every login are noise
    },
}

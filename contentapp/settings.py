"""Settings for contentapp, read from the environment.

With no environment at all the app runs on SQLite, executes Celery tasks
eagerly in-process and caches in local memory, so a newcomer's first command
gives a working demo. Production sets ``CONTENTAPP_ENV=production`` plus
``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY`` and ``ALLOWED_HOSTS``.
"""

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def envbool(name: str, default: bool = False) -> bool:
    """Read a boolean from the environment ("1", "true", "yes", "on")."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    """Read an integer from the environment."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def envlist(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list from the environment."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


ENVIRONMENT = os.environ.get("CONTENTAPP_ENV", "development").strip().lower()
PRODUCTION = ENVIRONMENT == "production"

DEBUG = envbool("DEBUG", default=not PRODUCTION)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-in-production-0123456789"  # noqa: S105 - development only; refused in production
SECRET_KEY = os.environ.get("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
# Django's deploy check (security.W009) only warns about a short key; production refuses it.
if PRODUCTION and (not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set in production (CONTENTAPP_ENV=production): "
        "a random string of at least 50 characters, kept out of the code."
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost,testserver")
if PRODUCTION and not ALLOWED_HOSTS:
    # Otherwise every request would answer 400 with no hint why.
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS must be set in production, e.g. ALLOWED_HOSTS=content.example.com"
    )
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "content_modules.accounts",
    "content_modules.audit",
    "content_modules.library",
    "content_modules.review",
    "content_modules.affinity",
    "content_modules.delivery",
    "content_modules.engagement",
    "content_modules.webhooks",
    "content_modules.experiments",
    "content_modules.analytics",
]

MIDDLEWARE = [
    # X-Request-Id on every answer; under /api/ every 4xx in the API's one error shape.
    "contentapp.middleware.ApiEnvelopeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "contentapp.middleware.ContentSecurityPolicyMiddleware",
    # Input bounds: a NUL in the query string is a 400 before any view runs.
    "contentapp.middleware.RefuseUnstorableQueryMiddleware",
]

ROOT_URLCONF = "contentapp.urls"

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
                "content_modules.accounts.context_processors.roles",
            ],
        },
    },
]

WSGI_APPLICATION = "contentapp.wsgi.application"
ASGI_APPLICATION = "contentapp.asgi.application"

# Database: DATABASE_URL (PostgreSQL in production and CI), SQLite otherwise.
if PRODUCTION and not os.environ.get("DATABASE_URL"):
    # A silent fallback would put production data in a SQLite file next to the code.
    raise ImproperlyConfigured(
        "DATABASE_URL must be set in production, e.g. postgres://app:pw@db:5432/contentapp"
    )
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=envint("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One writer at a time; wait instead of failing with "database is locked".
    # IMMEDIATE takes the write lock when a transaction starts, so two writers
    # queue instead of deadlocking on a read-to-write lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Hot-path queries (token lookup, serving snapshot, recommendation log) run as prepared
# statements on PostgreSQL, planned once per connection (contentapp/db.py). Set 0 behind
# a pooler that cannot keep prepared statements.
DATABASE_PREPARED_STATEMENTS = envbool("DATABASE_PREPARED_STATEMENTS", True)
if DATABASE_PREPARED_STATEMENTS and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Django hands psycopg prepare_threshold=None, which turns prepared statements off
    # altogether, prepare=True included. A threshold no statement reaches keeps psycopg
    # from preparing anything by itself (Django's own cursors bind on the client and
    # never prepare) and lets run_prepared prepare the statements it names.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 2**31 - 1)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: Celery broker, result backend and cache. Absent: eager tasks, locmem cache.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            # Answers misses while Redis is down (contentapp/cache.py): never a 500.
            "BACKEND": "contentapp.cache.TolerantRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a message whose worker died (late ack) after this many seconds
# (plus up to one restore period, below). 10 minutes: a killed worker's task comes
# back within minutes, not hours; longer than every short task's hard time limit
# (review jobs 300 s, one embedding 180 s), so those never run twice at once. The two
# jobs that may run longer (training, 1800 s; the embedding sweep, 3600 s) hold a
# PostgreSQL advisory lock, so a copy redelivered while the first still runs skips,
# and a training request already answered is never trained again.
# A worker looks for such messages once per restore period: kombu's
# unacked_restore_interval x unacked_restore_throttle, 10 s x 10 by default.
_RESTORE_SECONDS = max(envint("CELERY_UNACKED_RESTORE_SECONDS", 100), 1)
_RESTORE_INTERVAL = min(_RESTORE_SECONDS, 10)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 600),
    "unacked_restore_interval": _RESTORE_INTERVAL,
    "unacked_restore_throttle": max(_RESTORE_SECONDS // _RESTORE_INTERVAL, 1),
}
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 1800)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 1700)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # MLR review: mark expired approvals and warn owners ahead (daily), remind overdue tasks.
    "review-expire-versions": {
        "task": "content_modules.review.tasks.expire_versions",
        "schedule": envint("REVIEW_EXPIRY_INTERVAL_SECONDS", 24 * 3600),
    },
    "review-remind-overdue": {
        "task": "content_modules.review.tasks.remind_overdue_tasks",
        "schedule": envint("REVIEW_REMINDER_INTERVAL_SECONDS", 3600),
    },
    # Affinity: embed versions whose embedding was missed (Redis or workers were down).
    "affinity-embed-missing": {
        "task": "content_modules.affinity.tasks.embed_missing_task",
        "schedule": envint("EMBED_SWEEP_INTERVAL_SECONDS", 15 * 60),
    },
    # Affinity: run training requests the broker did not take (Redis was down).
    "affinity-train-pending": {
        "task": "content_modules.affinity.tasks.train_pending_task",
        "schedule": envint("TRAINING_SWEEP_INTERVAL_SECONDS", 60),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "accounts:login"
# "home" sends reviewers to their queue and authors to their modules (review/work.py).
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Uploads. Images are checked against IMAGE_MAX_BYTES before any decoding.
IMAGE_MAX_BYTES = envint("IMAGE_MAX_BYTES", 10 * 1024 * 1024)
IMAGE_MAX_PIXELS = envint("IMAGE_MAX_PIXELS", 40_000_000)
IMAGE_WEB_MAX_SIDE = envint("IMAGE_WEB_MAX_SIDE", 1200)
IMAGE_THUMB_MAX_SIDE = envint("IMAGE_THUMB_MAX_SIDE", 240)
REFERENCE_PDF_MAX_BYTES = envint("REFERENCE_PDF_MAX_BYTES", 20 * 1024 * 1024)
# Request bodies: JSON batches of 10,000 events fit in 8 MB; files are streamed to disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = envint("DATA_UPLOAD_MAX_MEMORY_SIZE", 16 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = envint("FILE_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024)
FILE_UPLOAD_PERMISSIONS = 0o640

# Content rules.
MODULE_BODY_MAX_CHARS = envint("MODULE_BODY_MAX_CHARS", 5000)
REQUIRED_REVIEW_ROLES = envlist("REQUIRED_REVIEW_ROLES", "medical,legal,regulatory")
# Review tasks are due this many business days after submission.
REVIEW_DUE_BUSINESS_DAYS = envint("REVIEW_DUE_BUSINESS_DAYS", 5)
# Owners are warned this many days before an approval expires.
EXPIRY_NOTICE_DAYS = envint("EXPIRY_NOTICE_DAYS", 30)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "content_modules.accounts.authentication.BearerOrTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only (415 for any other body); JSON bodies over DATA_UPLOAD_MAX_MEMORY_SIZE
    # answer 413. The views that take a file add multipart (library/api.py).
    "DEFAULT_PARSER_CLASSES": ["contentapp.parsers.SizeLimitedJSONParser"],
    # Requests made with an API token: ENGINE_THROTTLE_RATE per token (429 past it).
    "DEFAULT_THROTTLE_CLASSES": ["contentapp.throttling.TokenRateThrottle"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "contentapp.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "contentapp.autoschema.AutoSchema",
    "EXCEPTION_HANDLER": "contentapp.api.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The /api/docs/ page's introduction (Markdown): how a client gets and sends a token.
API_DESCRIPTION = """\
Modular content library, MLR review and HCP content affinity. The personalization
engine's contract lives under `/api/v1/` (operations tagged **engine**).

## Getting a token

Swap a username and password for an API token (throttled; the secret is shown once):

```sh
curl -X POST http://127.0.0.1:8000/api/v1/auth/token \\
    -H 'Content-Type: application/json' \\
    -d '{"username": "engine", "password": "...", "name": "engine-prod"}'
```

An admin can also issue one on the server for a service account:
`python manage.py issue_api_token <username>`.

## Sending it

Send the token on every request in the `Authorization` header, as
`Authorization: Token <key>` or `Authorization: Bearer <key>`
(on this page: **Authorize**, then `Token <key>`). List your tokens with
`GET /api/v1/auth/tokens`; revoke one with `DELETE /api/v1/auth/tokens/{id}`, or the
one in use with `DELETE /api/v1/auth/token`.

## Keeping a copy of approved content

`GET /api/v1/content?changed_since=0` walks the whole list by cursor; every answer
carries a `next_cursor`. Ask again with it to get only what changed: approvals in
`results`, and `tombstones` for versions withdrawn, expired (also by date, before any
expiry job) or superseded. Apply a page's tombstones (drop a module's entry if it holds
that `version_id`), then its results; follow `next` while `has_more`.
"""

SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "contentapp API",
    "DESCRIPTION": API_DESCRIPTION,
    "VERSION": "1.0.0",
    # operationIds and tags start after /api/v1/ (contentapp/autoschema.py names them).
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "TAGS": [
        {"name": "engine", "description": "The personalization engine's contract (API.md)."},
        {"name": "authoring", "description": "Modules, versions, vocabularies, references."},
        {"name": "review", "description": "MLR review: tasks, decisions, annotations."},
        {"name": "admin", "description": "Admins only: reassignment, audit exports, models."},
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files: the CSP allows no CDN, and CI has no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status"; name each choice set after its model.
    # The API-wide error answers (API.md), documented on every operation.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "contentapp.schema.add_error_responses",
        "contentapp.schema.type_audit_entries",
    ],
    "ENUM_NAME_OVERRIDES": {
        "VersionStatusEnum": "content_modules.library.models.VersionStatus",
        "TaskStatusEnum": "content_modules.review.models.TaskStatus",
        "EventTypeEnum": "content_modules.affinity.models.EventType",
        # Two choice sets of fields named "field": annotations keep the name they had.
        "FieldEnum": "content_modules.review.models.AnnotationField",
        "ClaimFieldEnum": "content_modules.library.models.ClaimField",
    },
}

# Embeddings: any sentence-transformers model path; default is the packaged MiniLM.
EMBEDDING_MODEL_PATH = os.environ.get("EMBEDDING_MODEL_PATH", "")

# Delivery: a module delivered to an HCP within this many days is not recommended
# again unless nothing else qualifies; exploration rate of the epsilon-greedy policy.
DELIVERY_FREQUENCY_CAP_DAYS = envint("DELIVERY_FREQUENCY_CAP_DAYS", 7)
DELIVERY_EPSILON = float(os.environ.get("DELIVERY_EPSILON", "0.1"))
# The recommendation log (every answer and its items) commits without waiting for the
# WAL flush on PostgreSQL: a database crash may lose the last fraction of a second of
# logged answers (never part of one). Set 0 to make every logged answer durable.
DELIVERY_LOG_ASYNC_COMMIT = envbool("DELIVERY_LOG_ASYNC_COMMIT", True)

# Engagement events: how far ahead of the server clock an event may be dated (clock skew).
EVENTS_FUTURE_TOLERANCE_SECONDS = envint("EVENTS_FUTURE_TOLERANCE_SECONDS", 300)
# Reuse finder: a key message whose best cosine to any approved claim is below this is
# flagged as a new claim (measured in bench/reuse_threshold.py; see affinity/reuse.py).
REUSE_NOVELTY_THRESHOLD = float(os.environ.get("REUSE_NOVELTY_THRESHOLD", "0.60"))

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "contentapp@localhost")

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# Topic blocks: each topic keeps its settings in its own block below, so that work on
# one topic does not collide with another's.

# --- affinity model: champion/challenger gate, scheduled training ---
# Scheduled training (celery beat), every this many seconds (0: never). Each run is a
# training request like POST /api/v1/affinity/train and goes through the same gate:
# the model is activated only if it beats popularity and the model in use.
AFFINITY_TRAIN_SCHEDULE = envint("AFFINITY_TRAIN_SCHEDULE", 24 * 3600)
if AFFINITY_TRAIN_SCHEDULE > 0:
    CELERY_BEAT_SCHEDULE["affinity-train-scheduled"] = {
        "task": "content_modules.affinity.tasks.train_scheduled_task",
        "schedule": AFFINITY_TRAIN_SCHEDULE,
    }
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["AffinityModelStatusEnum"] = (
    "content_modules.affinity.models.ModelStatus"
)


# --- security: logins, lockout, throttles, sessions, API tokens ---
# Proxies of ours in front of the app that append to X-Forwarded-For. 0: the header
# is ignored and the client is REMOTE_ADDR (a client could otherwise pick a new
# address per request and shake off every throttle and lock). DRF reads it too.
NUM_PROXIES = envint("NUM_PROXIES", 0)
REST_FRAMEWORK["NUM_PROXIES"] = NUM_PROXIES
# Requests made with an API token (the engine above all), per token, counted in Redis:
# past this many in the period the answer is 429 with Retry-After and RateLimit-*.
# Empty: no limit. Without Redis each process counts on its own.
ENGINE_THROTTLE_RATE = os.environ.get("ENGINE_THROTTLE_RATE", "6000/min")
# Sign-in throttle per client address (login page, admin login, token endpoint), kept
# in the database so that it holds while Redis is down.
LOGIN_THROTTLE_RATE = os.environ.get("LOGIN_THROTTLE_RATE", "10/min")
# Lockout: this many failed password checks from one client for one username lock
# that username for that client for LOCKOUT_SECONDS (logins, tokens and signatures).
LOCKOUT_MAX_FAILURES = envint("LOCKOUT_MAX_FAILURES", 5)
LOCKOUT_SECONDS = envint("LOCKOUT_SECONDS", 15 * 60)
# Past this many failures for one username from all clients in the window, sign-ins
# for it are slowed to one try every LOCKOUT_SLOW_SECONDS (never blocked), except from
# a client that signed in as that user within LOCKOUT_KNOWN_CLIENT_DAYS.
LOCKOUT_USERNAME_SLOW_AFTER = envint("LOCKOUT_USERNAME_SLOW_AFTER", 20)
LOCKOUT_SLOW_SECONDS = envint("LOCKOUT_SLOW_SECONDS", 30)
LOCKOUT_KNOWN_CLIENT_DAYS = envint("LOCKOUT_KNOWN_CLIENT_DAYS", 30)
# Failed e-signatures: the admins are emailed when one signer fails this many times
# within LOCKOUT_SECONDS (and again at every further multiple).
SIGNATURE_FAILURE_ALERT_AFTER = envint("SIGNATURE_FAILURE_ALERT_AFTER", 3)
# API tokens: lifetime, and how many live tokens one user may hold.
API_TOKEN_EXPIRY_DAYS = envint("API_TOKEN_EXPIRY_DAYS", 90)
API_TOKEN_MAX_PER_USER = envint("API_TOKEN_MAX_PER_USER", 20)
# People's sessions end after this many minutes without a request (the engine uses
# tokens); a session in use has its end moved forward at most once a minute (a write).
SESSION_IDLE_TIMEOUT_MINUTES = envint("SESSION_IDLE_TIMEOUT_MINUTES", 30)
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT_MINUTES * 60
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "content_modules.accounts.middleware.IdleSessionMiddleware",
)
CELERY_BEAT_SCHEDULE["accounts-prune-attempts"] = {
    "task": "content_modules.accounts.tasks.prune_attempts",
    "schedule": 3600,
}


# --- security: input bounds (JSON depth, stored sizes, accepted times) ---
# JSON bodies (and JSON fields of multipart forms) nesting deeper than this are refused
# with 400 before they are parsed: Python's json module recurses once per level.
JSON_MAX_DEPTH = envint("JSON_MAX_DEPTH", 32)
# Free JSON stored as sent: a recommendation's `context` (logged with every answer) and
# an HCP's `attributes`. Size in bytes of compact UTF-8 JSON (413 past it) and depth in
# nested containers (400 past it).
RECOMMENDATION_CONTEXT_MAX_BYTES = envint("RECOMMENDATION_CONTEXT_MAX_BYTES", 16_384)
RECOMMENDATION_CONTEXT_MAX_DEPTH = envint("RECOMMENDATION_CONTEXT_MAX_DEPTH", 8)
HCP_ATTRIBUTES_MAX_BYTES = envint("HCP_ATTRIBUTES_MAX_BYTES", 16_384)
HCP_ATTRIBUTES_MAX_DEPTH = envint("HCP_ATTRIBUTES_MAX_DEPTH", 8)
# An HCP's local time zone when the profile gives none: the market's (the region's
# prefix, "UK-London" -> "UK"), else the default (affinity/localtime.py).
MARKET_TIMEZONES = {
    "UK": "Europe/London",
    "IE": "Europe/Dublin",
    "DE": "Europe/Berlin",
    "FR": "Europe/Paris",
    "ES": "Europe/Madrid",
    "IT": "Europe/Rome",
    "NL": "Europe/Amsterdam",
    "US": "America/New_York",
    "CA": "America/Toronto",
    "JP": "Asia/Tokyo",
    "AU": "Australia/Sydney",
}
DEFAULT_HCP_TIMEZONE = os.environ.get("DEFAULT_HCP_TIMEZONE", "UTC")
# Accepted times: nothing dated before this day (events, filters); event times at most
# EVENTS_FUTURE_TOLERANCE_SECONDS ahead; expiry dates at most this many years ahead.
INPUT_EARLIEST_DATE = os.environ.get("INPUT_EARLIEST_DATE", "2000-01-01")
EXPIRES_ON_MAX_YEARS = envint("EXPIRES_ON_MAX_YEARS", 20)


# --- security: audit chain key and checkpoints ---
# The audit chain is an HMAC chain keyed with AUDIT_HMAC_KEY, which lives here, never in
# the database (development default: derived from SECRET_KEY; `check --deploy` refuses
# production without a key of its own). A beat task signs the chain's last entry into
# AUDIT_CHECKPOINT_DIR (write-once files; put it on storage the DBAs cannot rewrite), and
# `verify_audit --checkpoints` holds the trail against them. README: "Audit trail tamper
# evidence".
AUDIT_HMAC_KEY = os.environ.get("AUDIT_HMAC_KEY", "")
AUDIT_CHECKPOINT_DIR = os.environ.get(
    "AUDIT_CHECKPOINT_DIR", "" if PRODUCTION else str(BASE_DIR / "audit-checkpoints")
)
AUDIT_CHECKPOINT_INTERVAL_SECONDS = envint("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 300)
# Every entry's data is checked against its action's shape (content_modules/audit/shapes.py).
# On (the default outside production) a mismatch raises and nothing is written, so tests
# catch it; off (production) the entry is still written and the mismatch logged as an
# error: a compliance trail must never lose an entry over the shape of its details.
AUDIT_DATA_STRICT = envbool("AUDIT_DATA_STRICT", default=not PRODUCTION)
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "content_modules.audit.tasks.write_checkpoint",
    "schedule": AUDIT_CHECKPOINT_INTERVAL_SECONDS,
}


# --- security: uploads and bounded enqueue ---
# Request paths send tasks through contentapp.celery.enqueue: one broker connect attempt
# and one publish, each within this many seconds, then the outbox (the sweepers).
BROKER_ENQUEUE_TIMEOUT_SECONDS = float(os.environ.get("BROKER_ENQUEUE_TIMEOUT_SECONDS", "1"))
# Nothing reads task results; a sender that subscribes to one waits on the result
# backend's 20 one-second reconnects when Redis is down.
CELERY_TASK_IGNORE_RESULT = True


# --- engine integration: idempotent calls, content sync, webhooks (issue 13) ---
# A retry with the same Idempotency-Key within this many hours replays the first answer.
IDEMPOTENCY_TTL_HOURS = envint("IDEMPOTENCY_TTL_HOURS", 24)
CELERY_BEAT_SCHEDULE["delivery-prune-idempotency"] = {
    "task": "content_modules.delivery.tasks.prune_idempotency",
    "schedule": 3600,
}
# Webhooks: each delivery is POSTed within WEBHOOK_TIMEOUT_SECONDS; a failure is retried
# after RETRY_BASE * 2**(attempt-1) seconds (at most RETRY_MAX), by the beat sweep, until
# WEBHOOK_MAX_ATTEMPTS, then it is a dead letter (Django admin: webhook deliveries).
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))
WEBHOOK_RETRY_BASE_SECONDS = float(os.environ.get("WEBHOOK_RETRY_BASE_SECONDS", "10"))
WEBHOOK_RETRY_MAX_SECONDS = float(os.environ.get("WEBHOOK_RETRY_MAX_SECONDS", "3600"))
WEBHOOK_MAX_ATTEMPTS = envint("WEBHOOK_MAX_ATTEMPTS", 12)
WEBHOOK_SWEEP_INTERVAL_SECONDS = envint("WEBHOOK_SWEEP_INTERVAL_SECONDS", 10)
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "content_modules.webhooks.tasks.sweep_webhooks_task",
    "schedule": WEBHOOK_SWEEP_INTERVAL_SECONDS,
}

# Engagement (content_modules/engagement): the bounds of the recommended touches per
# week (the curve of opens against recent touches decides within them), the number of
# microsegments, and the longest horizon a next-best-action request may ask about.
ENGAGEMENT_MIN_PER_WEEK = float(os.environ.get("ENGAGEMENT_MIN_PER_WEEK", "0.5"))
ENGAGEMENT_MAX_PER_WEEK = float(os.environ.get("ENGAGEMENT_MAX_PER_WEEK", "5"))
ENGAGEMENT_MICROSEGMENTS = envint("ENGAGEMENT_MICROSEGMENTS", 6)
# Off-policy evaluation (affinity/learning/ope.py) joins the champion/challenger gate only
# with at least this many logged decisions that got feedback.
OPE_GATE_MIN_DECISIONS = envint("OPE_GATE_MIN_DECISIONS", 500)

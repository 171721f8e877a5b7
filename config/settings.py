"""Aurum settings: one file, driven by environment variables.

With nothing set, Aurum runs embedded: a SQLite file under var/, Celery tasks executed
in-process, a local-memory cache, local file storage, DEBUG on and a dev-only secret key.
DATABASE_URL (postgres://…), CELERY_BROKER_URL (redis://…) and AURUM_CACHE_URL switch to
the real services. AURUM_ENV=production refuses to start without a real secret key and
allowed hosts, and turns on every protection `manage.py check --deploy` asks for.
The variables are listed in docs/operations.md.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from apps.kernel.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AURUM_VAR_DIR", str(BASE_DIR / "var")))

AURUM_ENV = env_str("AURUM_ENV", "development")
if AURUM_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(f"AURUM_ENV={AURUM_ENV!r}: use 'development' or 'production'")
PRODUCTION = AURUM_ENV == "production"

_DEV_SECRET_KEY = "django-insecure-aurum-development-only-key-never-use-in-production"
SECRET_KEY = env_str("AURUM_SECRET_KEY", "" if PRODUCTION else _DEV_SECRET_KEY)
DEBUG = env_bool("AURUM_DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("AURUM_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("AURUM_CSRF_TRUSTED_ORIGINS")

if PRODUCTION:
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure") or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("AURUM_ENV=production needs AURUM_SECRET_KEY: 50+ random characters.")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("AURUM_ENV=production needs AURUM_ALLOWED_HOSTS (comma-separated).")
    if DEBUG:
        raise ImproperlyConfigured("AURUM_ENV=production refuses AURUM_DEBUG=1.")

INSTALLED_APPS = [
    "config.apps.AurumAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "auditlog",
    "django_celery_beat",
    # The ten module apps, lowest layer first.
    "apps.security.apps.SecurityConfig",
    "apps.runtime.apps.RuntimeConfig",
    "apps.trust.apps.TrustConfig",
    "apps.utilities.apps.UtilitiesConfig",
    "apps.host.apps.HostConfig",
    "apps.access.apps.AccessConfig",
    "apps.storage.apps.StorageConfig",
    "apps.compute.apps.ComputeConfig",
    "apps.consumption.apps.ConsumptionConfig",
    "apps.action.apps.ActionConfig",
]

MIDDLEWARE = [
    "apps.runtime.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.security.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.access.middleware.TenantContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]

if PRODUCTION:  # runserver serves static files in development
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("AURUM_DB_CONN_MAX_AGE", 60))}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "aurum.sqlite3",
            "OPTIONS": {
                # WAL lets the web server and the beat process read while the other writes;
                # IMMEDIATE takes the write lock up front instead of failing mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
CACHE_URL = env_str("AURUM_CACHE_URL")
if CACHE_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "apps.kernel.cache.RedisCache", "LOCATION": CACHE_URL}}
elif CACHE_URL:
    raise ImproperlyConfigured(f"AURUM_CACHE_URL={CACHE_URL!r}: only redis:// URLs are supported")
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "aurum"}}

# --- Auth -----------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; anonymous requests get nothing.

# --- I18N / static / media ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security -------------------------------------------------------------------------
AURUM_MAX_REQUEST_BYTES = env_int("AURUM_MAX_REQUEST_BYTES", 10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = AURUM_MAX_REQUEST_BYTES
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("AURUM_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("AURUM_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # /health/* is probed over plain HTTP by load balancers inside the perimeter.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]

# --- REST API -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.access.authentication.ApiTokenAuthentication",
        "apps.access.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.kernel.api.permissions.TenantAccess"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "apps.kernel.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "apps.kernel.api.schema.ProblemAwareAutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["apps.kernel.api.throttling.PrincipalRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"principal": env_str("AURUM_API_RATE", "1200/min")},
    "EXCEPTION_HANDLER": "apps.kernel.api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Aurum API",
    "DESCRIPTION": (
        "Governance portal for trusted data. Authenticate with `Authorization: Bearer <token>` "
        "(tokens are created in the portal, by API, or with `manage.py create_api_token`). "
        "Errors are RFC 9457 problem details (`application/problem+json`) with a stable `type` "
        "(`urn:aurum:problem:<slug>`), `title`, `status`, `detail`, `instance`, `request_id`, and for "
        "validation errors an `errors` list of `{pointer, detail, code}`. A method an endpoint does not "
        "offer answers 405; a body above the size limit 413; too many requests 429 with `Retry-After`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc assets are served from our own static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set, shared by every field that uses it.
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "apps.kernel.roles.RoleChoices",
        "FieldRoleEnum": "apps.host.choices.FieldRoleChoices",
        "ContractStatusEnum": "apps.host.choices.ContractStatusChoices",
        "TenantStatusEnum": "apps.host.choices.TenantStatusChoices",
        "PolicyStatusEnum": "apps.host.choices.PolicyStatusChoices",
        "PolicyKindEnum": "apps.host.choices.PolicyKindChoices",
        "QualityRuleKindEnum": "apps.host.choices.QualityRuleKindChoices",
        "PayloadFormatEnum": "apps.storage.choices.PayloadFormatChoices",
        "SourceKindEnum": "apps.compute.choices.SourceKindChoices",
        "NormalizationKindEnum": "apps.compute.choices.NormalizationKindChoices",
        "BatchStatusEnum": "apps.storage.choices.BatchStatusChoices",
        "CalendarKindEnum": "apps.storage.calendars.choices.CalendarKindChoices",
        "KpiKindEnum": "apps.compute.kpis.choices.KpiKindChoices",
        "KpiAggregationEnum": "apps.compute.kpis.choices.AggregationChoices",
        "KpiCumulativeModeEnum": "apps.compute.kpis.choices.CumulativeModeChoices",
        "KpiGrainLevelEnum": "apps.compute.kpis.choices.GrainLevelChoices",
        "KpiDirectionEnum": "apps.compute.kpis.choices.DirectionChoices",
        "KpiDisplayFormatEnum": "apps.compute.kpis.choices.DisplayFormatChoices",
        "KpiToleranceKindEnum": "apps.compute.kpis.choices.ToleranceKindChoices",
        "KpiTargetStatusEnum": "apps.compute.kpis.choices.TargetStatusChoices",
        "KpiValueStatusEnum": "apps.storage.kpi_values.KpiStatusChoices",
        "WebhookEventTypeEnum": "apps.consumption.webhooks.choices.WebhookEventTypeChoices",
        "WebhookDeliveryStatusEnum": "apps.consumption.webhooks.choices.WebhookDeliveryStatusChoices",
        "ProductKindEnum": "apps.consumption.catalog.choices.ProductKindChoices",
        "ProductStatusEnum": "apps.consumption.catalog.choices.ProductStatusChoices",
        "ProductVisibilityEnum": "apps.consumption.catalog.choices.ProductVisibilityChoices",
        "FreshnessEnum": "apps.consumption.catalog.choices.FreshnessChoices",
        "SlaStatusEnum": "apps.consumption.catalog.choices.SlaStatusChoices",
        "ExportFormatEnum": "apps.consumption.exports.models.ExportFormatChoices",
        "ExportModeEnum": "apps.consumption.exports.models.ExportModeChoices",
        "ExportStatusEnum": "apps.consumption.exports.models.ExportStatusChoices",
        "PublicationKindEnum": "apps.storage.published.PublicationKindChoices",
        "PublicationRequestStatusEnum": "apps.compute.publication.choices.PublicationRequestStatusChoices",
        "RestatementStatusEnum": "apps.compute.publication.choices.RestatementStatusChoices",
    },
}

# --- Celery ---------------------------------------------------------------------------
# Nothing configured: an in-memory broker and tasks executed in the calling process, so a
# fresh machine needs no Redis. Beat still runs (it executes due tasks in its own process).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "memory://localhost/")
CELERY_TASK_ALWAYS_EAGER = env_bool("AURUM_CELERY_EAGER", CELERY_BROKER_URL.startswith("memory://"))
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("AURUM_TASK_SOFT_TIME_LIMIT", 540)
CELERY_TASK_TIME_LIMIT = env_int("AURUM_TASK_TIME_LIMIT", 600)
CELERY_TASK_DEFAULT_QUEUE = env_str("AURUM_CELERY_QUEUE", "aurum")
# With late acks a message is redelivered only after the visibility timeout; it must be
# longer than the longest task or a slow task would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_EMBEDDED = CELERY_BROKER_URL.startswith("memory://")

# --- Aurum ----------------------------------------------------------------------------
AURUM_OUTBOX_SWEEP_AFTER_SECONDS = env_int("AURUM_OUTBOX_SWEEP_AFTER_SECONDS", 30)
AURUM_HANDLER_MAX_RETRIES = env_int("AURUM_HANDLER_MAX_RETRIES", 5)
# Ingestion: bodies up to this size are accepted (413 beyond); up to the inline limit a batch
# is processed within the request, above it on a worker; records are committed in chunks.
AURUM_MAX_INGEST_BYTES = env_int("AURUM_MAX_INGEST_BYTES", 1024 * 1024 * 1024)
AURUM_INLINE_BATCH_BYTES = env_int("AURUM_INLINE_BATCH_BYTES", 2 * 1024 * 1024)
AURUM_INGEST_CHUNK_SIZE = env_int("AURUM_INGEST_CHUNK_SIZE", 5000)
# The keys a batch's validator keeps in memory to find repeats (primary key, unique values; ~200 bytes
# each); a larger batch keeps the others in a temporary file (apps/compute/keybook.py).
AURUM_INGEST_KEYS_IN_MEMORY = env_int("AURUM_INGEST_KEYS_IN_MEMORY", 1_000_000)
# PostgreSQL: merge each committed chunk into Golden Data Points on a second connection while the
# next chunk is prepared (apps/compute/ingest/merger.py); off, the whole merge runs after the chunks.
AURUM_INGEST_MERGE_ALONGSIDE = env_bool("AURUM_INGEST_MERGE_ALONGSIDE", True)
AURUM_STALLED_BATCH_SECONDS = env_int("AURUM_STALLED_BATCH_SECONDS", 600)
# Paths whose bodies may reach AURUM_MAX_INGEST_BYTES instead of AURUM_MAX_REQUEST_BYTES.
AURUM_LARGE_BODY_PATHS = [r"^/api/v1/sources/[^/]+/batches/$"]
# OpenLineage RunEvents of pipeline runs: to a JSON-lines file and/or an HTTP endpoint.
AURUM_OPENLINEAGE_FILE = env_str("AURUM_OPENLINEAGE_FILE")
AURUM_OPENLINEAGE_URL = env_str("AURUM_OPENLINEAGE_URL")
# Read API responses (catalog lists, KPI values) are served from the cache for up to this many
# seconds, unless the tenant changed since (apps/kernel/api/readcache.py); 0 turns it off.
AURUM_API_READ_CACHE_SECONDS = env_int("AURUM_API_READ_CACHE_SECONDS", 10)
AURUM_API_READ_CACHE_MB = env_int("AURUM_API_READ_CACHE_MB", 32)  # per worker process
# An authenticated API token's context is reused for up to this many seconds, unless a token,
# membership, user or tenant changed since (apps/access/tokencache.py); 0 turns it off. Off by
# default without a shared cache: another process would not hear of a revocation.
AURUM_TOKEN_CACHE_SECONDS = env_int("AURUM_TOKEN_CACHE_SECONDS", 30 if CACHE_URL else 0)
# Exports: up to this many rows an export streams in the response, above it a background job writes a
# file; its signed download link is valid this many seconds.
AURUM_EXPORT_STREAM_MAX_ROWS = env_int("AURUM_EXPORT_STREAM_MAX_ROWS", 100_000)
AURUM_EXPORT_LINK_MAX_AGE = env_int("AURUM_EXPORT_LINK_MAX_AGE", 3600)
# Retention: background export files are deleted this many days after they were written (the job
# stays, as expired), finished webhook deliveries this many days after their last attempt.
AURUM_EXPORT_FILE_DAYS = env_int("AURUM_EXPORT_FILE_DAYS", 7)
AURUM_WEBHOOK_DELIVERY_DAYS = env_int("AURUM_WEBHOOK_DELIVERY_DAYS", 30)
# Webhooks: request timeout, attempts per message (retries with backoff from the base delay up to
# the cap), failed messages in a row before an endpoint is disabled, rotation grace period.
AURUM_WEBHOOK_TIMEOUT_SECONDS = env_int("AURUM_WEBHOOK_TIMEOUT_SECONDS", 15)
AURUM_WEBHOOK_MAX_ATTEMPTS = env_int("AURUM_WEBHOOK_MAX_ATTEMPTS", 12)
AURUM_WEBHOOK_RETRY_BASE_SECONDS = env_int("AURUM_WEBHOOK_RETRY_BASE_SECONDS", 10)
AURUM_WEBHOOK_RETRY_MAX_SECONDS = env_int("AURUM_WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600)
AURUM_WEBHOOK_DISABLE_AFTER_FAILURES = env_int("AURUM_WEBHOOK_DISABLE_AFTER_FAILURES", 10)
AURUM_WEBHOOK_ROTATION_GRACE_SECONDS = env_int("AURUM_WEBHOOK_ROTATION_GRACE_SECONDS", 24 * 3600)
# Mail (webhook endpoint disabled notices): the console in development, SMTP in production.
EMAIL_BACKEND = env_str(
    "AURUM_EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("AURUM_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("AURUM_EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("AURUM_DEFAULT_FROM_EMAIL", "aurum@localhost")

# --- Logging --------------------------------------------------------------------------
LOG_JSON = env_bool("AURUM_LOG_JSON", PRODUCTION)
LOG_LEVEL = env_str("AURUM_LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "apps.runtime.logging.RequestContextFilter"}},
    "formatters": {
        "json": {"()": "apps.runtime.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [req=%(request_id)s user=%(user)s tenant=%(tenant)s] %(message)s"
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_context"],
            "formatter": "json" if LOG_JSON else "text",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING" if not DEBUG else "INFO"},
        "celery.app.trace": {"level": "WARNING"},  # one line per task is noise; failures still log
    },
}

"""CHAPI settings: one module, driven by environment variables.

Every variable is documented in docs/configuration.md and listed in .env.example. With no
configuration at all the product runs for development on the embedded PostgreSQL and Redis
that `python3 dev.py run` starts. With DEBUG=false the process refuses to start on an
insecure configuration and names the variable to fix (see `_refuse_insecure_production`).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import environ
from corsheaders.defaults import default_headers
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from chapi.embedded import embedded_database_url, embedded_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEV_SECRET_KEY = "django-insecure-chapi-development-only-never-use-in-production"  # noqa: S105 - refused when DEBUG=false
DEV_JWT_SECRET = "chapi-development-jwt-secret-never-use-in-production"  # noqa: S105 - refused when DEBUG=false

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
JWT_SECRET = env.str("JWT_SECRET", default=DEV_JWT_SECRET)

# --- Hosts ---------------------------------------------------------------------------------
# The public site lives on ROOT_DOMAIN, each company on <slug>.ROOT_DOMAIN.
ROOT_DOMAIN = env.str("ROOT_DOMAIN", default="localhost").lower().strip(".")
API_HOST = env.str("API_HOST", default="0.0.0.0")  # noqa: S104 - listen address of the dev server
API_PORT = env.int("API_PORT", default=8000)
# Extra hosts (custom company domains, an internal load balancer name...). Company hosts under
# ROOT_DOMAIN are always allowed; the tenant middleware then answers 404 for unknown ones.
EXTRA_ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
ALLOWED_HOSTS = [ROOT_DOMAIN, f".{ROOT_DOMAIN}", *EXTRA_ALLOWED_HOSTS]
if DEBUG:
    ALLOWED_HOSTS += ["127.0.0.1", "[::1]"]

# --- Model provider (used by the assistant) --------------------------------------------------
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_MAX_TOKENS = env.int("OPENAI_MAX_TOKENS", default=2000)
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
LLM_CONNECT_TIMEOUT = env.float("LLM_CONNECT_TIMEOUT", default=5.0)
LLM_READ_TIMEOUT = env.float("LLM_READ_TIMEOUT", default=30.0)
LLM_MAX_ATTEMPTS = env.int("LLM_MAX_ATTEMPTS", default=3)
LLM_RETRY_BUDGET_SECONDS = env.float("LLM_RETRY_BUDGET_SECONDS", default=20.0)
LLM_RETRY_AFTER_CAP_SECONDS = env.float("LLM_RETRY_AFTER_CAP_SECONDS", default=10.0)
LLM_BACKOFF_BASE_SECONDS = env.float("LLM_BACKOFF_BASE_SECONDS", default=0.5)

# --- REST API ------------------------------------------------------------------------------
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=4000)
CHAT_MAX_BODY_BYTES = 32 * 1024
CHAT_REPLY_TIMEOUT = env.float("CHAT_REPLY_TIMEOUT", default=90.0)
# Requests per minute: per API key, per conversation (session id) and per client IP.
API_RATE_LIMIT_PER_KEY = env.int("API_RATE_LIMIT_PER_KEY", default=600)
API_RATE_LIMIT_PER_SESSION = env.int("API_RATE_LIMIT_PER_SESSION", default=30)
API_RATE_LIMIT_PER_IP = env.int("API_RATE_LIMIT_PER_IP", default=300)
# The web widget (docs/widget.md): messages per visitor and per IP, new connections per IP.
WIDGET_RATE_LIMIT_PER_SESSION = env.int("WIDGET_RATE_LIMIT_PER_SESSION", default=20)
WIDGET_RATE_LIMIT_PER_IP = env.int("WIDGET_RATE_LIMIT_PER_IP", default=60)
WIDGET_CONNECTIONS_PER_IP = env.int("WIDGET_CONNECTIONS_PER_IP", default=120)
WIDGET_MAX_FRAME_BYTES = 32 * 1024
# Messaging channels (docs/channels/): the providers' API base URLs (settings so that tests
# and staging can point them at local simulators), the product's public URL for the webhooks
# it registers, and how long a burst of messages from one person is gathered into one answer.
TELEGRAM_API_BASE_URL = env.str("TELEGRAM_API_BASE_URL", default="https://api.telegram.org")
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
WHATSAPP_CLOUD_API_BASE_URL = env.str(
    "WHATSAPP_CLOUD_API_BASE_URL", default="https://graph.facebook.com"
)
WHATSAPP_CLOUD_API_VERSION = env.str("WHATSAPP_CLOUD_API_VERSION", default="v21.0")
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="").rstrip("/")
CHANNEL_BURST_SECONDS = env.float("CHANNEL_BURST_SECONDS", default=3.0)
CHANNEL_HTTP_TIMEOUT = env.float("CHANNEL_HTTP_TIMEOUT", default=10.0)
CHANNEL_SEND_MAX_ATTEMPTS = env.int("CHANNEL_SEND_MAX_ATTEMPTS", default=5)
CHANNEL_MAX_BODY_BYTES = 1024 * 1024
# Leads' CRM webhook (docs/leads/crm-webhook.md): seconds per attempt (connect at most 5),
# attempts before a delivery fails, and whether it may reach private, loopback or link-local
# addresses (a CRM on the local network; development).
CRM_WEBHOOK_TIMEOUT = env.float("CRM_WEBHOOK_TIMEOUT", default=10.0)
CRM_WEBHOOK_MAX_ATTEMPTS = env.int("CRM_WEBHOOK_MAX_ATTEMPTS", default=6)
CRM_WEBHOOK_ALLOW_PRIVATE = env.bool("CRM_WEBHOOK_ALLOW_PRIVATE", default=DEBUG)
# The model's reading of a lead waits this long after a reply and gives way to a later message's
# (one reading per pause in the conversation instead of one per message).
LEAD_MODEL_READING_DELAY_SECONDS = env.float("LEAD_MODEL_READING_DELAY_SECONDS", default=20.0)
API_JWT_TTL_SECONDS = env.int("API_JWT_TTL_SECONDS", default=3600)

# --- Encryption of stored secrets ----------------------------------------------------------
# Fernet keys (urlsafe base64 of 32 bytes), newest first. Older keys still decrypt, the first
# encrypts; `manage.py rotate_encryption_keys` re-encrypts everything under the first one.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
for _key in FIELD_ENCRYPTION_KEYS:
    try:
        Fernet(_key.encode())
    except ValueError as _exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds an invalid key: each must be 32 url-safe base64-encoded "
            "bytes, as printed by Fernet.generate_key()."
        ) from _exc
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]

# --- Applications --------------------------------------------------------------------------
SHARED_APPS = [
    "django_tenants",
    "apps.tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.admin",
    "apps.accounts",
    "apps.dashboard",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "corsheaders",
    "channels",
    "django_celery_beat",
    "apps.api",
    "apps.widget",
    "apps.webhooks",
    "adrf",
    "drf_spectacular_sidecar",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.admin",
    "apps.accounts",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "apps.audit",
    "apps.assistants",
    "apps.conversations",
    "apps.leads",
    "apps.channels",
    "apps.analytics",
    "apps.flows",
    "apps.followups",
    "apps.experiments",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Company"
TENANT_DOMAIN_MODEL = "tenants.Domain"
PUBLIC_SCHEMA_NAME = "public"
PUBLIC_SCHEMA_URLCONF = "chapi.urls_public"
ROOT_URLCONF = "chapi.urls_tenant"
# New companies are cloned from this always-migrated template schema instead of running every
# migration (see docs/architecture.md, "Creating a company").
TENANT_BASE_SCHEMA = "tenant_template"
# Set the search path once per schema switch, not before every query.
TENANT_LIMIT_SET_CALLS = True
TENANT_CREATION_FAKES_MIGRATIONS = True

MIDDLEWARE = [
    "chapi.health.HealthCheckMiddleware",
    "apps.tenants.middleware.CompanyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "chapi.static.StaticFilesMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "apps.tenants.middleware.CompanyLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.accounts.context_processors.membership",
                "apps.dashboard.context_processors.navigation",
            ],
        },
    },
]

ASGI_APPLICATION = "chapi.asgi.application"
WSGI_APPLICATION = None

# --- Database ------------------------------------------------------------------------------
DATABASE_URL = env.str("DATABASE_URL", default="") or embedded_database_url()
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A pool of open connections per process (Django's psycopg pool) instead of a new connection
# for every request and task. Safe with django-tenants: its close() forgets the schema, so the
# search path is set again on every connection taken from the pool.
DATABASE_POOL = env.bool("DATABASE_POOL", default=False)
if DATABASE_POOL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them; Django requires 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Redis: cache, channel layer, Celery -----------------------------------------------------
def _redis_urls(url: str) -> tuple[str, str]:
    """Return (redis-py URL, Celery/kombu URL) for a redis:// rediss:// or unix:// URL."""
    parsed = urlparse(url)
    if parsed.scheme in {"redis", "rediss"}:
        return url, url
    if parsed.scheme == "unix":
        db = parse_qs(parsed.query).get("db", ["0"])[0]
        return url, f"redis+socket://{parsed.path}?virtual_host={db}"
    raise ImproperlyConfigured(
        f"REDIS_URL must start with redis://, rediss:// or unix:// (got {parsed.scheme!r})."
    )


REDIS_URL = env.str("REDIS_URL", default="") or embedded_redis_url()
_REDIS_CLIENT_URL, _CELERY_BROKER_URL = _redis_urls(REDIS_URL)

CACHES = {
    "default": {
        "BACKEND": "chapi.cache.Cache",
        "LOCATION": _REDIS_CLIENT_URL,
        "KEY_FUNCTION": "django_tenants.cache.make_key",
        "REVERSE_KEY_FUNCTION": "django_tenants.cache.reverse_key",
        "KEY_PREFIX": "chapi",
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # The socket timeout must outlast the layer's 5-second blocking reads, or an idle
            # wait for a reply fails after 5 s (redis-py's default is 5 s too); kept short
            # because a cancelled receive may wait for the read in progress to end.
            # redis-py's async pools raise (not wait) past max_connections (100 by default):
            # a burst of websocket messages needs more.
            "hosts": [{"address": _REDIS_CLIENT_URL, "socket_timeout": 8, "max_connections": 2000}],
            "prefix": "chapi:asgi",
            # All consumers and reply channels of one web process share one list, and an
            # event for a full list is dropped: room for bursts of deltas of many replies.
            "capacity": 20000,
            "expiry": 120,
        },
    }
}

# A streamed reply's text goes out at most once per this many seconds (the first part at once):
# each delta is a channel-layer group send, so fewer deltas cost the worker and web less.
REPLY_DELTA_INTERVAL_SECONDS = env.float("REPLY_DELTA_INTERVAL_SECONDS", default=0.04)

CELERY_BROKER_URL = _CELERY_BROKER_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Model calls are I/O bound and slow: their own queue, for a worker with a large threads pool.
CELERY_TASK_ROUTES = {
    "conversations.reply_generate": {"queue": "llm"},
    "leads.model_extract": {"queue": "llm"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Keep database connections across tasks (Celery's Django fixup closes them after every task
# otherwise, whatever CONN_MAX_AGE says).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=200)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "invitations-expire": {
        "task": "accounts.invitations_expire_dispatch",
        "schedule": 3600.0,
    },
    "followups": {
        "task": "followups.dispatch",
        "schedule": env.float("FOLLOWUP_DISPATCH_SECONDS", default=60.0),
    },
}
CELERY_BEAT_SCHEDULE["analytics-rollup"] = {
    "task": "analytics.dispatch",
    "schedule": env.float("ANALYTICS_ROLLUP_SECONDS", default=60.0),
}
# Events are rolled up once this old (a transaction may commit after a later event's id).
ANALYTICS_ROLLUP_LAG_SECONDS = env.float("ANALYTICS_ROLLUP_LAG_SECONDS", default=60.0)
# Each company's rollup starts up to this many seconds after the dispatcher's tick.
ANALYTICS_ROLLUP_JITTER_SECONDS = env.float("ANALYTICS_ROLLUP_JITTER_SECONDS", default=10.0)
# Each company's follow-up run starts up to this many seconds after the dispatcher's tick.
FOLLOWUP_JITTER_SECONDS = env.float("FOLLOWUP_JITTER_SECONDS", default=20.0)
# Tests run tasks in-process; the real worker is exercised by the run command's smoke test.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Accounts ------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard:home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "apps.accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[CHAPI] "
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key", "reset_password": "5/m/ip,3/m/key"}
MFA_ADAPTER = "apps.accounts.adapter.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "CHAPI"
SIGNUP_HANDOFF_TTL_SECONDS = 120
INVITATION_TTL_DAYS = 7

SESSION_COOKIE_NAME = "chapi_session"
SESSION_COOKIE_AGE = 60 * 60 * 24 * 14
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_NAME = "chapi_csrftoken"
LANGUAGE_COOKIE_NAME = "chapi_language"

# --- Internationalization ------------------------------------------------------------------
LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Spanish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static files --------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Email ---------------------------------------------------------------------------------
# consolemail:// prints mail in development; smtp+tls://user:pass@host:587 sends it.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="CHAPI <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API and CORS ---------------------------------------------------------------------
REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "CHAPI API",
    "DESCRIPTION": "Chat with a company's assistant and read its conversations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/v1",
}
CORS_ALLOWED_ORIGINS = env.list("CORS_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/v1/.*$"
CORS_ALLOW_HEADERS = (*default_headers, "idempotency-key")
CORS_EXPOSE_HEADERS = ["Retry-After"]

# --- Security ------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("TRUST_X_FORWARDED_PROTO", False) else None
)
# Behind a proxy that rewrites the Host: request URLs (e.g. the one Twilio signed) use its
# X-Forwarded-Host. Only with a proxy that sets it; the value is still checked against
# ALLOWED_HOSTS.
USE_X_FORWARDED_HOST = env.bool("TRUST_X_FORWARDED_HOST", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = [f"https://{ROOT_DOMAIN}", f"https://*.{ROOT_DOMAIN}"] + [
        f"https://{host.lstrip('.')}" for host in EXTRA_ALLOWED_HOSTS
    ]
    SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "chapi.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}


def _refuse_insecure_production() -> None:
    """With DEBUG off, stop at start-up on settings that would be unsafe in production."""
    problems: list[str] = []
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50:
        problems.append("SECRET_KEY must be set to a random value of at least 50 characters.")
    if JWT_SECRET == DEV_JWT_SECRET or len(JWT_SECRET) < 32:
        problems.append("JWT_SECRET must be set to a random value of at least 32 characters.")
    if not FIELD_ENCRYPTION_KEYS:
        problems.append(
            "FIELD_ENCRYPTION_KEYS must hold at least one Fernet key "
            "(python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')."
        )
    for variable in ("DATABASE_URL", "REDIS_URL"):
        if not env.str(variable, default=""):
            problems.append(f"{variable} must point at the production server.")
    if "*" in EXTRA_ALLOWED_HOSTS or ROOT_DOMAIN in {"", "*"}:
        problems.append("ALLOWED_HOSTS and ROOT_DOMAIN must not be wildcards.")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG=false on an insecure configuration:\n  - "
            + "\n  - ".join(problems)
        )


if not DEBUG:
    _refuse_insecure_production()

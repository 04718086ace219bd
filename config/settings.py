"""Routeplane settings: one module, read from the environment, local defaults.

DATABASE_URL / REDIS_URL unset -> those of the run command running with the same
ROUTEPLANE_DATA_DIR (config.instance: its DEBUG too), else the embedded PostgreSQL / Redis
already running there; else a one-line refusal saying what to run. Settings never start a
server. PostgreSQL only.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded
from config.instance import SetupRequired, joined_url, running_instance

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected 1/0/true/false")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number")
    return int(raw)


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# A command beside `./scripts/run.sh` joins that run: its servers and its DEBUG default.
_DATA_DIR = embedded.data_dir(create=False)
_RUN = (
    running_instance(_DATA_DIR)
    if not (
        os.environ.get("DATABASE_URL")
        and (os.environ.get("REDIS_URL") or os.environ.get("CELERY_BROKER_URL"))
    )
    else None
)

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    DATABASE_URL = joined_url("DATABASE_URL", _RUN, _DATA_DIR, embedded.running_postgres_url)
    os.environ["DATABASE_URL"] = DATABASE_URL  # child processes join the same server
REDIS_URL = os.environ.get("REDIS_URL", "") or os.environ.get("CELERY_BROKER_URL", "")
if not REDIS_URL:
    REDIS_URL = joined_url("REDIS_URL", _RUN, _DATA_DIR, embedded.running_redis_url)
    os.environ["REDIS_URL"] = REDIS_URL

DEBUG = env_bool("DEBUG", _RUN.debug if _RUN else False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        joining = (
            f"The Routeplane running with data dir {_DATA_DIR} runs with DEBUG off: "
            if _RUN
            else ""
        )
        raise SetupRequired(
            f"{joining}SECRET_KEY is required when DEBUG is off: set SECRET_KEY=<a long random "
            "string> (python -c 'import secrets; print(secrets.token_urlsafe(50))'), or DEBUG=1 "
            "for local development."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if not DEBUG else "*")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "template_partials",
    "controlplane",
    "controlplane.webhooks",
    "tracking",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.staticfiles.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.login_limit.LoginLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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

# --- Database: PostgreSQL only -----------------------------------------------------------
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Routeplane needs PostgreSQL: DATABASE_URL must be postgres://…")
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, throttling, Celery broker ---------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or REDIS_URL
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", "") or REDIS_URL
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = "UTC"

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

# --- Auth, sessions ----------------------------------------------------------------------
# Every password login (dashboard, admin) passes the failed-login limit (dashboard/login_limit).
AUTHENTICATION_BACKENDS = ["dashboard.login_limit.LoginLimitedModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the template, not the cookie

# --- HTTPS: on by default when DEBUG is off (`check --deploy` passes); each one switchable -----
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER=1 (the proxy must set
# X-Forwarded-Proto); a plain-HTTP local run (config/run.py) turns the rest off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes speak plain HTTP to the container
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("SECURE_PROXY_SSL_HEADER", False) else None
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "staticfiles"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
STATICFILES_DIRS: list[Path] = []  # each app's static/ (dashboard/static) is found by app
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from the packages when collectstatic has not run

# --- API ---------------------------------------------------------------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # bigger bodies get 413
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "controlplane.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["controlplane.api.permissions.IsRouterReader"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["controlplane.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "controlplane.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["controlplane.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": os.environ.get("ROUTEPLANE_API_RATE", "6000/min"),
        "login": "10/min",
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Routeplane API",
    "DESCRIPTION": "Control plane for RouteLLM routers: flags, config revisions, events, reports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Routeplane --------------------------------------------------------------------------
ROUTEPLANE_DATA_DIR = os.environ.get("ROUTEPLANE_DATA_DIR", str(BASE_DIR / "var"))
# How often the flags fast path re-reads revisions even without a notification (self-healing).
ROUTEPLANE_FLAGS_RECHECK_SECONDS = float(os.environ.get("ROUTEPLANE_FLAGS_RECHECK_SECONDS", "0.5"))
# Router clients (controlplane/clients.py): at most this many rows per router (client ids past
# it are not recorded; one warning per router every few minutes), deleted after this many days
# unseen (a daily beat task).
ROUTEPLANE_MAX_CLIENTS_PER_ROUTER = env_int("ROUTEPLANE_MAX_CLIENTS_PER_ROUTER", 1000)
ROUTEPLANE_CLIENT_RETENTION_DAYS = max(1, env_int("ROUTEPLANE_CLIENT_RETENTION_DAYS", 30))

# --- Metrics and webhooks (config/metrics.py, controlplane/webhooks/) -------------------
# /metrics also accepts this token as Bearer (besides an operator API key).
ROUTEPLANE_METRICS_TOKEN = os.environ.get("ROUTEPLANE_METRICS_TOKEN", "")
ROUTEPLANE_METRICS_CACHE_SECONDS = float(os.environ.get("ROUTEPLANE_METRICS_CACHE_SECONDS", "5"))
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # each worker's counters live there (run.py)
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
ROUTEPLANE_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("ROUTEPLANE_WEBHOOK_MAX_ATTEMPTS", "6"))
ROUTEPLANE_WEBHOOK_BACKOFF_SECONDS = float(
    os.environ.get("ROUTEPLANE_WEBHOOK_BACKOFF_SECONDS", "30")
)
ROUTEPLANE_WEBHOOK_TIMEOUT_SECONDS = float(
    os.environ.get("ROUTEPLANE_WEBHOOK_TIMEOUT_SECONDS", "10")
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own defaults give "django" a console handler of its own (with DEBUG on) on
        # top of propagating to root: every warning was printed twice. Root prints it once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}

# Threshold calibration (tracking.calibration) and the dynamic-threshold job: the fewest events
# with a win rate a proposal may rest on, the default window, and the job's bounds and step.
ROUTEPLANE_CALIBRATION_MIN_SAMPLE = env_int("ROUTEPLANE_CALIBRATION_MIN_SAMPLE", 500)
ROUTEPLANE_CALIBRATION_DAYS = env_int("ROUTEPLANE_CALIBRATION_DAYS", 7)
ROUTEPLANE_DYNAMIC_THRESHOLD_MIN = float(os.environ.get("ROUTEPLANE_DYNAMIC_THRESHOLD_MIN", "0.01"))
ROUTEPLANE_DYNAMIC_THRESHOLD_MAX = float(os.environ.get("ROUTEPLANE_DYNAMIC_THRESHOLD_MAX", "0.99"))
ROUTEPLANE_DYNAMIC_THRESHOLD_MAX_STEP = float(
    os.environ.get("ROUTEPLANE_DYNAMIC_THRESHOLD_MAX_STEP", "0.05")
)

"""Honua settings: every value comes from the environment (12-factor), see README."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DATA_DIR = Path(env.str("HONUA_DATA_DIR", default=str(BASE_DIR / ".data")))
PG_PORT = env.int("HONUA_PG_PORT", default=54329)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="honua-insecure-development-key-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "django_q",
    "controlplane.apps.ControlPlaneConfig",
    "executors.apps.ExecutorsConfig",
    "ogcprocesses.apps.OgcProcessesConfig",
    "gpserver.apps.GpServerConfig",
    "browser.apps.BrowserConfig",
]

MIDDLEWARE = [
    # First: /healthz, /readyz and /metrics are answered before host checks and redirects.
    "honua.operations.OperationsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "honua.urls"
WSGI_APPLICATION = "honua.wsgi.application"

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

DATABASES = {
    "default": env.db(
        "DATABASE_URL",
        default=f"postgis://honua:honua@127.0.0.1:{PG_PORT}/honua",
        engine="django.contrib.gis.db.backends.postgis",
    )
}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("HONUA_DB_CONN_MAX_AGE", default=60))
# Server-side parameter binding: values travel apart from the SQL text. (Django leaves
# psycopg's prepare_threshold at None, so statements are not prepared; preparing the ledger's
# hot statements is a lead for the 1-feature latency, not yet measured.)
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env.bool(
    "HONUA_DB_SERVER_SIDE_BINDING", default=True
)
# Health checks cost a round trip per request; a broken connection is dropped after its error.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("HONUA_DB_HEALTH_CHECKS", default=False)
# One test database per pytest process, so concurrent test runs on one cluster don't collide
# (tests/conftest.py drops those left behind by runs that died).
DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str(
    "HONUA_TEST_DB_NAME", default=f"test_honua_{os.getpid()}"
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The job browser (/app/) signs people in with Django's auth views under /accounts/.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "browser:job-list"
LOGOUT_REDIRECT_URL = "login"

GDAL_LIBRARY_PATH = env.str("GDAL_LIBRARY_PATH", default=None)
GEOS_LIBRARY_PATH = env.str("GEOS_LIBRARY_PATH", default=None)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("HONUA_MEDIA_ROOT", default=str(DATA_DIR / "artifacts")))

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("HONUA_MAX_REQUEST_BYTES", default=50 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}

# django-q2: ORM broker by default; REDIS_URL switches to Redis for scale-out.
Q_CLUSTER: dict = {
    "name": "honua",
    "workers": env.int("HONUA_Q_WORKERS", default=2),
    "recycle": 500,
    "timeout": env.int("HONUA_Q_TIMEOUT", default=6 * 3600),
    "retry": env.int("HONUA_Q_RETRY", default=6 * 3600 + 60),
    "max_attempts": 1,
    "ack_failures": True,
    # The ProcessRun ledger records every run; django-q2 keeps only failed tasks.
    "save_limit": -1,
    "bulk": env.int("HONUA_Q_BULK", default=4),
    "catch_up": False,
    "poll": env.float("HONUA_Q_POLL", default=0.05),
    "label": "Task queue",
    "orm": "default",
}
if env.str("REDIS_URL", default=""):
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = env.str("REDIS_URL")
# Tests may run tasks inline; production never does.
Q_CLUSTER["sync"] = env.bool("HONUA_Q_SYNC", default=False)

# Honua behaviour
HONUA = {
    "BASE_URL": env.str("HONUA_BASE_URL", default=""),
    "SYNC_DEADLINE_SECONDS": env.float("HONUA_SYNC_DEADLINE_SECONDS", default=20.0),
    "LEASE_SECONDS": env.float("HONUA_LEASE_SECONDS", default=30.0),
    "RESULT_TTL_HOURS": env.float("HONUA_RESULT_TTL_HOURS", default=6.0),
    # Outputs larger than this are kept in the artifact store instead of the ledger row.
    "OUTPUT_SPILL_BYTES": env.int("HONUA_OUTPUT_SPILL_BYTES", default=256 * 1024),
    # Threads per web process that run sync executions which may overrun the deadline.
    "INLINE_THREADS": env.int("HONUA_INLINE_THREADS", default=8),
    "ARTIFACT_LINK_SECONDS": env.int("HONUA_ARTIFACT_LINK_SECONDS", default=3600),
    "POSTGIS_ROLE": env.str("HONUA_POSTGIS_ROLE", default="honua_gp_exec"),
    # Inline inputs on the postgis tier: "pinned" (only when a tenant override pins the
    # tier order), "always", or "never" (see DESIGN data locality).
    "POSTGIS_INLINE": env.str("HONUA_POSTGIS_INLINE", default="pinned"),
    "POSTGIS_STATEMENT_TIMEOUT_MS": env.int("HONUA_POSTGIS_STATEMENT_TIMEOUT_MS", default=30000),
    "CALLBACK_ATTEMPTS": env.int("HONUA_CALLBACK_ATTEMPTS", default=3),
    "CALLBACK_TIMEOUT_SECONDS": env.float("HONUA_CALLBACK_TIMEOUT_SECONDS", default=10.0),
    # Hosts that outbound requests may reach even if they resolve to private addresses
    # (operators' own services; tests' loopback receivers).
    "OUTBOUND_ALLOW_HOSTS": env.list("HONUA_OUTBOUND_ALLOW_HOSTS", default=[]),
    # The SSRF guard's other bounds (controlplane/services/outbound.py): ports other hosts may
    # use (empty: any), time per connect and per read, the whole request's deadline, the
    # largest body fetched, and how many redirects are followed (each vetted again).
    "OUTBOUND_ALLOW_PORTS": env.list("HONUA_OUTBOUND_ALLOW_PORTS", cast=int, default=[80, 443, 8080, 8443]),
    "OUTBOUND_CONNECT_TIMEOUT_SECONDS": env.float("HONUA_OUTBOUND_CONNECT_TIMEOUT_SECONDS", default=5.0),
    "OUTBOUND_READ_TIMEOUT_SECONDS": env.float("HONUA_OUTBOUND_READ_TIMEOUT_SECONDS", default=30.0),
    "OUTBOUND_DEADLINE_SECONDS": env.float("HONUA_OUTBOUND_DEADLINE_SECONDS", default=60.0),
    "OUTBOUND_MAX_BYTES": env.int("HONUA_OUTBOUND_MAX_BYTES", default=100 * 1024 * 1024),
    "OUTBOUND_MAX_REDIRECTS": env.int("HONUA_OUTBOUND_MAX_REDIRECTS", default=5),
    # Request bodies per surface, refused (413) before they are read (unset: the
    # DATA_UPLOAD_MAX_MEMORY_SIZE of HONUA_MAX_REQUEST_BYTES); client JSON is refused past a
    # nesting depth (400) or a number of values (413) before it is parsed.
    "OGC_MAX_BODY_BYTES": env.int("HONUA_OGC_MAX_BODY_BYTES", default=None),
    "GP_MAX_BODY_BYTES": env.int("HONUA_GP_MAX_BODY_BYTES", default=None),
    "JSON_MAX_DEPTH": env.int("HONUA_JSON_MAX_DEPTH", default=64),
    "JSON_MAX_ITEMS": env.int("HONUA_JSON_MAX_ITEMS", default=10_000_000),
    # Feature inputs given by URL (an Esri FeatureServer/MapServer layer): the time one read
    # of the remote layer may take (all pages), and the features and bytes it may bring when
    # the process declares no max_features / max_bytes of its own.
    "REFERENCE_TIMEOUT_SECONDS": env.float("HONUA_REFERENCE_TIMEOUT_SECONDS", default=30.0),
    "REFERENCE_MAX_FEATURES": env.int("HONUA_REFERENCE_MAX_FEATURES", default=100000),
    "REFERENCE_MAX_BYTES": env.int("HONUA_REFERENCE_MAX_BYTES", default=50 * 1024 * 1024),
    "DEFAULT_TENANT": env.str("HONUA_DEFAULT_TENANT", default="demo"),
    # Authentication: requests without credentials are the default tenant's anonymous caller,
    # who may run the processes no access rule closes to anonymous when this is true.
    "ANONYMOUS": env.bool("HONUA_ANONYMOUS", default=True),
    # GPServer generateToken: the expiration clients get when they ask none, and the cap.
    "TOKEN_MINUTES": env.int("HONUA_TOKEN_MINUTES", default=60),
    "TOKEN_MAX_MINUTES": env.int("HONUA_TOKEN_MAX_MINUTES", default=1440),
    # GPServer uploads: the largest file (one-shot, or all parts together), how long an
    # upload is kept, and the file types accepted (sniffed from the content; empty: the
    # built-in list, see controlplane/services/mediatypes.py).
    "UPLOAD_MAX_BYTES": env.int("HONUA_UPLOAD_MAX_BYTES", default=100 * 1024 * 1024),
    "UPLOAD_TTL_HOURS": env.float("HONUA_UPLOAD_TTL_HOURS", default=24.0),
    "UPLOAD_MEDIA_TYPES": env.list("HONUA_UPLOAD_MEDIA_TYPES", default=[]),
    # Layer catalog: tables operators allow as layers ("schema.table" or "schema.*"; none by
    # default), and the limits of files ingested as layers.
    "LAYER_TABLES": env.list("HONUA_LAYER_TABLES", default=[]),
    "LAYER_MAX_BYTES": env.int("HONUA_LAYER_MAX_BYTES", default=200 * 1024 * 1024),
    "LAYER_MAX_FEATURES": env.int("HONUA_LAYER_MAX_FEATURES", default=1_000_000),
    # Runs of a resource class that may be in flight at once (queued or running), all tenants
    # together: admission refuses beyond it with 429 (backpressure, not worker slots); a class
    # left out has no limit. Also the capacity the metrics report.
    "CLASS_CAPACITY": {
        name: int(slots)
        for name, slots in env.dict(
            "HONUA_CLASS_CAPACITY",
            default={"cpu_burst": 512, "db_heavy": 128, "python_batch": 64, "long_tail": 64},
        ).items()
    },
    # Operations: /metrics behind this bearer token when set; time budgets of /readyz checks
    # and of the ledger query behind the gauges of a scrape.
    "METRICS_TOKEN": env.str("HONUA_METRICS_TOKEN", default=""),
    "READYZ_TIMEOUT_SECONDS": env.float("HONUA_READYZ_TIMEOUT_SECONDS", default=2.0),
    "METRICS_QUERY_TIMEOUT_MS": env.int("HONUA_METRICS_QUERY_TIMEOUT_MS", default=2000),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "honua.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": env.str("HONUA_LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django-q": {"level": env.str("HONUA_Q_LOG_LEVEL", default="WARNING")},
    },
}

# Debian 12 ships GDAL 3.6; client-supplied spatial references are parsed by PROJ (pyproj),
# never handed to GDAL's SRS parser, so the GDAL >= 3.9 network-blocking warning is moot.
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

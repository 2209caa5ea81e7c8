"""Revenge settings. Everything comes from the environment; each variable is documented in README.md.

Bad values raise `ImproperlyConfigured` with the variable's name at start-up (see `revenge/env.py`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import zoneinfo
from pathlib import Path
from typing import Any

import dj_database_url
import imageio_ffmpeg
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from apps.playback.progress.schedule import WhileBuffered
from apps.streaming.profiles import DEFAULT_PROFILES, SEGMENT_FORMATS, LadderMode, ladder_check
from revenge import embedded
from revenge.env import (
    env_bool,
    env_choice,
    env_cidrs,
    env_int,
    env_list,
    env_path,
    env_str,
    env_url,
)
from revenge.keys import key_file_read_or_create
from revenge.profiles import PROFILES

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("REVENGE_DATA_DIR", BASE_DIR / "var")
# `default` or `small` (a 1-2 GB NAS or ARM board): revenge/profiles.py, README "Sizing".
REVENGE_PROFILE = env_choice("REVENGE_PROFILE", "default", PROFILES)

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    """`SECRET_KEY` from the environment; else one generated once and kept in the data folder.

    A self-hosted server must start with nothing set, and a key that changed at every start would log
    everybody out. Production deployments set `SECRET_KEY` (docs: README, deploy/.env.example).
    """
    value = env_str("SECRET_KEY")
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured("SECRET_KEY: use at least 32 random characters.")
        return value
    return key_file_read_or_create(DATA_DIR / "secret_key", lambda: secrets.token_urlsafe(50))


SECRET_KEY = _secret_key()


def _app_password_key() -> str:
    """`APP_PASSWORD_KEY` (a Fernet key) from the environment, checked; "" when unset.

    Encrypts the OpenSubsonic app passwords at rest (apps.accounts.app_passwords). A key of its own, not derived
    from SECRET_KEY: rotating SECRET_KEY (sessions, signatures) must not lock every Subsonic app out, and
    a leaked SECRET_KEY must not decrypt them. Unset, one is generated into APP_PASSWORD_KEY_FILE when an
    app password is first encrypted or read (not here: a collectstatic at image build time writes nothing).
    """
    value = env_str("APP_PASSWORD_KEY")
    if value:
        try:
            if len(base64.urlsafe_b64decode(value.encode())) != 32:
                raise ValueError
        except ValueError:
            raise ImproperlyConfigured(
                "APP_PASSWORD_KEY: expected 32 bytes in URL-safe base64 (a Fernet key, 44 characters)."
            ) from None
    return value


APP_PASSWORD_KEY = _app_password_key()
APP_PASSWORD_KEY_FILE = DATA_DIR / "app_password_key"
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- Behind a reverse proxy, over HTTPS -------------------------------------------------------------
# Peers whose X-Forwarded-For / -Proto are believed (apps.ops.middleware.TrustedProxyMiddleware); from
# anyone else those headers are dropped. Empty: Revenge faces clients directly.
REVENGE_TRUSTED_PROXIES = env_cidrs("REVENGE_TRUSTED_PROXIES")
if REVENGE_TRUSTED_PROXIES:
    # Safe only because the middleware above removes the header when the peer is not trusted.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Served to browsers over HTTPS: secure cookies, redirect plain HTTP, HSTS.
REVENGE_HTTPS = env_bool("REVENGE_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = REVENGE_HTTPS
SECURE_SSL_REDIRECT = REVENGE_HTTPS
# Health checks and Prometheus scrape over plain HTTP on the internal network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if REVENGE_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Every page is served with this policy (and deploy/nginx sends the same one). blob: is where hls.js
# puts the MediaSource and its worker.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django.contrib.postgres",
    "django_filters",
    "apps.accounts",
    "apps.library",
    "apps.streaming",
    "apps.playback",
    "apps.podcasts",
    "apps.collections",
    "apps.ops",
    "apps.web",
    "apps.subsonic",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # First of ours: everything below reads the real client address and scheme.
    "apps.ops.middleware.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.ops.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "revenge.urls"
WSGI_APPLICATION = "revenge.wsgi.application"

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

# --- PostgreSQL -------------------------------------------------------------------------------------
DATABASE_URL = env_url("DATABASE_URL", embedded.database_url(DATA_DIR), schemes=("postgres", "postgresql"))
_database = dj_database_url.parse(
    DATABASE_URL,
    conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
    conn_health_checks=True,
)
# django-prometheus' wrapper of the PostgreSQL backend counts queries, errors and connection time.
_database["ENGINE"] = "django_prometheus.db.backends.postgresql"
_database.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis ------------------------------------------------------------------------------------------
REDIS_URL = env_url("REDIS_URL", embedded.redis_url(DATA_DIR), schemes=("redis", "rediss", "unix"))
REDIS_SOCKET_TIMEOUT_S = env_int("REDIS_SOCKET_TIMEOUT", 5, minimum=1)
CACHES = {
    "default": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "revenge"),
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": REDIS_SOCKET_TIMEOUT_S,
            "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT_S,
        },
    }
}
# Sessions in PostgreSQL alone, not `cached_db`: with Redis down its cache writes raise (every signed-in
# page a 500), and a cache that missed a write during an outage (a sign-out, a new key after sign-in) would
# serve the stale session once Redis is back. A page reads the user's row from PostgreSQL anyway; the
# session row is one more primary-key read.
SESSION_ENGINE = "django.contrib.sessions.backends.db"


def _celery_redis_url(url: str) -> str:
    """redis-py spells a unix socket `unix://path?db=N`; kombu and Celery spell it `redis+socket://`."""
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


# --- Celery -----------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL",
    _celery_redis_url(REDIS_URL),
    schemes=("redis", "rediss", "redis+socket", "amqp", "amqps", "pyamqp"),
)
CELERY_RESULT_BACKEND = env_url(
    "CELERY_RESULT_BACKEND",
    _celery_redis_url(REDIS_URL),
    schemes=("redis", "rediss", "redis+socket", "rpc"),
)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# One exchange per queue name keeps the routing identical on Redis and RabbitMQ.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    for name in ("default", "scan", "transcode.interactive", "transcode.bulk", "podcasts", "artwork")
]
# Routed by module, so a transcode worker machine only needs `-Q transcode.interactive,transcode.bulk`.
# On-demand transcodes are sent to `transcode.interactive` explicitly by their caller.
CELERY_TASK_ROUTES = {
    "apps.library.tasks.library_scan_task": {"queue": "scan"},
    "apps.library.tasks.artwork_variants_task": {"queue": "artwork"},
    "apps.streaming.tasks.renditions_housekeeping_task": {"queue": "default"},
    "apps.streaming.tasks.renditions_reclaim_task": {"queue": "default"},
    "apps.streaming.tasks.renditions_after_scan_task": {"queue": "default"},
    "apps.streaming.tasks.*": {"queue": "transcode.bulk"},
    # Feed refreshes and episode downloads wait on other servers: their own queue, never behind transcodes.
    "apps.podcasts.tasks.*": {"queue": "podcasts"},
}
# A worker takes one message at a time: a transcode may run for minutes and must not sit on others.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Defaults for every task; long jobs (scans, transcodes) set acks_late / reject_on_worker_lost and their
# own limits on the task itself.
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 35 * 60, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be greater than CELERY_TASK_SOFT_TIME_LIMIT.")
# With acks_late on a Redis broker, a message not acknowledged within the visibility timeout is given
# to another worker: it must outlast the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": max(3600, 2 * CELERY_TASK_TIME_LIMIT),
    # An idle worker's BRPOP comes back empty and is sent again every `polling_interval` s (kombu's default:
    # 1 s, a Redis command and a wake-up of worker and Redis a second). A message is taken at once whatever
    # this is (BRPOP answers as soon as one is pushed); a dead connection is still found within
    # polling_interval + 2 x health_check_interval (25 s). Idle gain: see README, Benchmarks (bench-idle).
    "polling_interval": 10,
}
if REVENGE_PROFILE == "small":
    # Procfile.small's one worker consumes every queue, transcode.interactive first in its -Q; polled in
    # that order (not kombu's round robin), a waiting interactive transcode is the next task it takes.
    CELERY_BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] = "priority"
# Task events (sent, received, started, succeeded) are for a monitor such as Flower: nothing of Revenge reads
# them, and each one is a message through Redis for every task (a progress flush every few seconds).
CELERY_WORKER_SEND_TASK_EVENTS = env_bool("CELERY_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_WORKER_SEND_TASK_EVENTS
# Worker and beat log through Django's LOGGING below (so LOG_FORMAT=json covers them too).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "clear-expired-sessions": {"task": "apps.ops.tasks.ops_clear_sessions_task", "schedule": 24 * 3600},
    "library-scans-due": {"task": "apps.library.tasks.library_scans_due_task", "schedule": 60},
    "renditions-housekeeping": {"task": "apps.streaming.tasks.renditions_housekeeping_task", "schedule": 15 * 60},
    # Transcodes of a worker that died are queued again within this (see services.renditions_reclaim); a
    # check that finds nothing is one index probe. A late one is worthless once the next is due.
    "renditions-reclaim": {
        "task": "apps.streaming.tasks.renditions_reclaim_task",
        "schedule": 30,
        "options": {"expires": 30},
    },
}

# --- Files ------------------------------------------------------------------------------------------
MEDIA_ROOT = env_path("MEDIA_ROOT", DATA_DIR / "media")
STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", DATA_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Auth and API -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

TOKEN_LOGIN_RATE = env_str("TOKEN_LOGIN_RATE", "10/min")
# N >= 1: a rate of 0 would lock everybody out of signing in.
if not re.fullmatch(r"0*[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)", TOKEN_LOGIN_RATE):
    raise ImproperlyConfigured(
        f"TOKEN_LOGIN_RATE={TOKEN_LOGIN_RATE!r}: expected N/second, N/min, N/hour or N/day with N >= 1."
    )
API_PAGE_SIZE = env_int("API_PAGE_SIZE", 50, minimum=1, maximum=1000)

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.ops.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "apps.ops.pagination.PageNumberPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    "DEFAULT_SCHEMA_CLASS": "apps.ops.schema.AutoSchema",
    "EXCEPTION_HANDLER": "apps.ops.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token_login": TOKEN_LOGIN_RATE},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles key on REMOTE_ADDR, which TrustedProxyMiddleware has already set to the real client; DRF's
    # default (None) would read X-Forwarded-For as sent by anyone.
    "NUM_PROXIES": 0,
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "Revenge API",
    "DESCRIPTION": "Self-hosted audio server: libraries, HLS streaming and playback progress.",
    "VERSION": "1",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # PATCH views here parse with the full serializer (required fields stay required, e.g. a session
    # heartbeat's `state`): no "Patched" copy with every field optional.
    "COMPONENT_SPLIT_PATCH": False,
    "SERVE_INCLUDE_SCHEMA": False,
    # Docs UI assets served by Revenge itself, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- ffmpeg -----------------------------------------------------------------------------------------
# The static build shipped in the imageio-ffmpeg wheel unless FFMPEG_BINARY names another one.
FFMPEG_BINARY = env_str("FFMPEG_BINARY") or imageio_ffmpeg.get_ffmpeg_exe()
if not os.access(FFMPEG_BINARY, os.X_OK):
    raise ImproperlyConfigured(f"FFMPEG_BINARY={FFMPEG_BINARY!r}: not an executable file.")

# --- Streaming --------------------------------------------------------------------------------------
RENDITIONS_ROOT = env_path("RENDITIONS_ROOT", DATA_DIR / "renditions")
STREAMING_PROFILES = env_list("STREAMING_PROFILES", list(DEFAULT_PROFILES))
HLS_SEGMENT_FORMAT = env_choice("HLS_SEGMENT_FORMAT", "fmp4", SEGMENT_FORMATS)
HLS_SEGMENT_SECONDS = env_int("HLS_SEGMENT_SECONDS", 6, minimum=2, maximum=30)
if _ladder_problem := ladder_check(STREAMING_PROFILES, HLS_SEGMENT_FORMAT):
    raise ImproperlyConfigured(f"STREAMING_PROFILES / HLS_SEGMENT_FORMAT: {_ladder_problem}.")
# `fitted`: each lossy source gets only the rungs below its own bitrate and a copy of itself or its class
# (profiles.ladder_fit); `full`: every track gets all of STREAMING_PROFILES, as before.
STREAMING_LADDER = LadderMode(env_choice("STREAMING_LADDER", LadderMode.FITTED, tuple(LadderMode)))
# The secret of the signed /hls/ URLs; nginx's secure_link_md5 must be given the same value. Derived from
# SECRET_KEY when unset (fine when Django serves /hls/ itself).
HLS_SIGNING_SECRET = env_str("HLS_SIGNING_SECRET") or hashlib.sha256(f"hls:{SECRET_KEY}".encode()).hexdigest()
HLS_URL_LIFETIME_S = env_int("HLS_URL_LIFETIME", 6 * 3600, minimum=60)
# Pre-transcode every new or changed track after a scan (off: only on demand, when a client asks).
TRANSCODE_AFTER_SCAN = env_bool("TRANSCODE_AFTER_SCAN", True)
# Time limit of one transcode: a base plus this many seconds per hour of audio. The default allows the
# whole ladder to run at only 4x realtime; ffmpeg does 100x and more on one core.
TRANSCODE_TIME_LIMIT_BASE_S = env_int("TRANSCODE_TIME_LIMIT_BASE", 300, minimum=10)
TRANSCODE_TIME_LIMIT_PER_HOUR_S = env_int("TRANSCODE_TIME_LIMIT_PER_HOUR", 900, minimum=1)
# How often a failed transcode is tried again on demand before it waits for an admin's "Retry".
TRANSCODE_MAX_ATTEMPTS = env_int("TRANSCODE_MAX_ATTEMPTS", 3, minimum=1)
# Tracks longer than 1.5x this many seconds are transcoded in chunks of about this length, each its own task,
# the one at the listener's position first (issue 18; apps/streaming/chunks.py). 0: every track in one run.
TRANSCODE_CHUNK_SECONDS = env_int("TRANSCODE_CHUNK_SECONDS", 300, minimum=0, maximum=86400)
# ffmpeg threads per transcode (0: ffmpeg decides).
TRANSCODE_THREADS = env_int("TRANSCODE_THREADS", 0, minimum=0, maximum=64)
# Bulk (pre-transcode) ffmpeg runs at this niceness: on a machine where a listener's cold start and a backlog
# share the cores, the listener's ffmpeg gets the CPU first (bench-cold-start (c)). 0: as the worker.
TRANSCODE_BULK_NICE = env_int("TRANSCODE_BULK_NICE", 10, minimum=0, maximum=19)
# Behind nginx: direct play answers X-Accel-Redirect to this internal location + the file's absolute path.
USE_X_ACCEL_REDIRECT = env_bool("USE_X_ACCEL_REDIRECT", False)
X_ACCEL_REDIRECT_PREFIX = env_str("X_ACCEL_REDIRECT_PREFIX", "/_originals").rstrip("/")
if not X_ACCEL_REDIRECT_PREFIX.startswith("/"):
    raise ImproperlyConfigured(
        f"X_ACCEL_REDIRECT_PREFIX={X_ACCEL_REDIRECT_PREFIX!r}: expected a path starting with / "
        "(nginx's internal location)."
    )

# --- Loudness and silences (issue 21) -----------------------------------------------------------------
# The level track and album gains bring playback to (LUFS; -18 is ReplayGain 2.0's reference), never lifting
# a true peak over -1 dBTP.
LOUDNESS_REFERENCE_LUFS = env_int("LOUDNESS_REFERENCE_LUFS", -18, minimum=-40, maximum=-5)
# Spoken word (audiobooks, podcasts): a silence is at least SILENCE_MIN_MS long with every 400 ms block more
# than SILENCE_THRESHOLD_LU under the track's integrated loudness (speech at -20 LUFS: under -45 LUFS).
SILENCE_THRESHOLD_LU = env_int("SILENCE_THRESHOLD_LU", 25, minimum=6, maximum=60)
SILENCE_MIN_MS = env_int("SILENCE_MIN_MS", 1000, minimum=400, maximum=60_000)

# --- Artwork ----------------------------------------------------------------------------------------
# Cover originals (by content hash) and their pre-sized variants, beside the renditions; served under /art/.
ARTWORK_ROOT = env_path("ARTWORK_ROOT", DATA_DIR / "artwork")
# An image bigger than this (bytes on disk or embedded) is not used: recorded on the album with the reason.
ARTWORK_MAX_BYTES = env_int("ARTWORK_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
# Width x height above this is refused from the image's header, before any pixel is decoded (a few-kB PNG
# can claim 30 000 x 30 000 pixels: 2.7 GB once decoded).
ARTWORK_MAX_PIXELS = env_int("ARTWORK_MAX_PIXELS", 25_000_000, minimum=10_000)
# A cover that nothing (album, track, file) has referenced for this long is deleted with its files by the
# `artwork-collect` beat task. At least an hour: a scan's reader refreshes a stored cover's mtime when it meets
# it and trusts it for ARTWORK_TOUCH_EVERY_S (apps.library.artwork.storage) before the writer references it.
ARTWORK_COLLECT_GRACE_S = env_int("ARTWORK_COLLECT_GRACE_S", 86400, minimum=3600)
CELERY_BEAT_SCHEDULE["artwork-collect"] = {"task": "apps.library.tasks.artwork_collect_task", "schedule": 6 * 3600}
# Signed /art/ URLs live at least this long and change once a day (so browsers keep them cached).
ART_URL_LIFETIME_S = env_int("ART_URL_LIFETIME", 7 * 86400, minimum=3600)

# --- Library ----------------------------------------------------------------------------------------
# Artist and genre names that contain a separator ("/" in ID3) but are one name.
LIBRARY_UNSPLIT_NAMES = env_list("LIBRARY_UNSPLIT_NAMES", ["AC/DC"])
# Processes that read tags in parallel during a scan (1: read in the scanning process itself).
LIBRARY_SCAN_WORKERS = env_int("LIBRARY_SCAN_WORKERS", max(1, min(4, os.cpu_count() or 1)), minimum=1, maximum=64)

# --- Playback progress ------------------------------------------------------------------------------
# buffered: a PUT lands in Redis (atomic Lua compare-and-set) and beat flushes to PostgreSQL in one
# statement every PROGRESS_FLUSH_INTERVAL seconds; Redis unreachable → written straight to PostgreSQL.
# direct: every PUT is a PostgreSQL transaction.
PROGRESS_WRITE_MODE = env_choice("PROGRESS_WRITE_MODE", "buffered", ("buffered", "direct"))
PROGRESS_FLUSH_INTERVAL_S = env_int("PROGRESS_FLUSH_INTERVAL", 5, minimum=1, maximum=300)
# How long a flushed (clean) entry stays in Redis so the next heartbeat needs no PostgreSQL read.
# Dirty entries never expire.
PROGRESS_BUFFER_TTL_S = env_int("PROGRESS_BUFFER_TTL", 3600, minimum=60)
# A play-through counts (one Listen, play_count + 1) at this share of the track, or after
# ..._AFTER seconds for music (min of both, as Last.fm scrobbles).
PROGRESS_COMPLETION = {
    "music": {
        "percent": env_int("PROGRESS_MUSIC_COMPLETE_PERCENT", 50, minimum=1, maximum=100),
        "after_ms": env_int("PROGRESS_MUSIC_COMPLETE_AFTER", 240, minimum=1) * 1000,
    },
    "audiobook": {
        "percent": env_int("PROGRESS_AUDIOBOOK_COMPLETE_PERCENT", 90, minimum=1, maximum=100),
        "after_ms": None,
    },
    "podcast": {
        "percent": env_int("PROGRESS_PODCAST_COMPLETE_PERCENT", 90, minimum=1, maximum=100),
        "after_ms": None,
    },
}
# An open playback session without a heartbeat for this long is closed by beat.
PLAYBACK_SESSION_IDLE_TIMEOUT_S = env_int("PLAYBACK_SESSION_IDLE_TIMEOUT", 600, minimum=30)
CELERY_BEAT_SCHEDULE["progress-buffer-flush"] = {
    "task": "apps.playback.tasks.progress_buffer_flush_task",
    # Due only while the buffer holds something: an idle server sends no flush task at all.
    "schedule": WhileBuffered(PROGRESS_FLUSH_INTERVAL_S),
    # A flush queued while the worker was down is worthless once the next one is due.
    "options": {"expires": PROGRESS_FLUSH_INTERVAL_S * 2},
}
CELERY_BEAT_SCHEDULE["playback-sessions-close-idle"] = {
    "task": "apps.playback.tasks.playback_sessions_close_idle_task",
    "schedule": 60,
}

# --- Podcasts ---------------------------------------------------------------------------------------
# Feeds and episodes are fetched from public addresses only (no loopback, private, link-local or metadata
# address, checked at every redirect and for every resolved IP) unless this is on: for tests and for a
# feed served inside your own network.
PODCAST_ALLOW_PRIVATE_HOSTS = env_bool("PODCAST_ALLOW_PRIVATE_HOSTS", False)
PODCAST_FEED_MAX_BYTES = env_int("PODCAST_FEED_MAX_MB", 20, minimum=1, maximum=1024) * 1024 * 1024
PODCAST_EPISODE_MAX_BYTES = env_int("PODCAST_EPISODE_MAX_MB", 1024, minimum=1) * 1024 * 1024
# Seconds to connect, and without a byte while reading: a stalling server fails the fetch, not the worker.
PODCAST_FETCH_TIMEOUT_S = env_int("PODCAST_FETCH_TIMEOUT", 30, minimum=1, maximum=600)
# Failed refreshes in a row after which a subscription stops downloading by itself (refreshes go on).
PODCAST_PAUSE_AFTER_FAILURES = env_int("PODCAST_PAUSE_AFTER_FAILURES", 5, minimum=1)
CELERY_BEAT_SCHEDULE["podcasts-refresh-due"] = {
    "task": "apps.podcasts.tasks.subscriptions_refresh_due_task",
    "schedule": 60,
    "options": {"expires": 60},
}
CELERY_BEAT_SCHEDULE["podcasts-retention"] = {"task": "apps.podcasts.tasks.episodes_retention_task", "schedule": 3600}

# --- Operations -------------------------------------------------------------------------------------
METRICS_ALLOWED_CIDRS = env_cidrs("METRICS_ALLOWED_CIDRS", ["127.0.0.0/8", "::1/128"])
METRICS_TOKEN = env_str("METRICS_TOKEN")
PROMETHEUS_METRIC_NAMESPACE = ""

LOG_FORMAT = env_choice("LOG_FORMAT", "text", ("text", "json"))
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "filters": {
        "one_line_when_unreachable": {"()": "apps.ops.logfilters.OneLineWhenUnreachable"},
        # Celery warns at every broker connection loss, in 9 lines, that this setting will default to True
        # in Celery 6. We keep False: a transcode running through a Redis restart finishes, and its
        # redelivery finds the rendition ready and does nothing.
        "celery_6_notice": {
            "()": "apps.ops.logfilters.DropContaining",
            "text": "worker_cancel_long_running_tasks_on_connection_loss",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Request logs come from gunicorn's access log; keep Django's to warnings and errors.
        "django.request": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
        # While Redis or PostgreSQL is down: each scheduled send beat cannot make, each task that fails for
        # it, each worker step that cannot restart, in one line.
        "celery.beat": {"filters": ["one_line_when_unreachable"]},
        "celery.app.trace": {"filters": ["one_line_when_unreachable"]},
        "celery.bootsteps": {"filters": ["one_line_when_unreachable"]},
        "py.warnings": {"filters": ["celery_6_notice"]},
    },
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
if TIME_ZONE not in zoneinfo.available_timezones():
    raise ImproperlyConfigured(f"TIME_ZONE={TIME_ZONE!r}: not a known time zone name (e.g. UTC, Europe/Paris).")
USE_I18N = True
USE_TZ = True

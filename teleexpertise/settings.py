"""Settings, all read from the environment (docs/operations.md lists every one)."""

import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from teleexpertise.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BASE_DIR.parent
VAR_DIR = Path(env_str("TELEEXPERTISE_VAR_DIR", str(PROJECT_DIR / "var")))

DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me"  # noqa: S105 - refused when DEBUG is off

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
DEMO_MODE = env_bool("DEMO_MODE", False)
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

if not DEBUG:
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a long random value when DEBUG is off "
            "(the development key is refused in production)."
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must list the served host names when DEBUG is off.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "huey.contrib.djhuey",
    "teleexpertise.core",
    "teleexpertise.audit",
    "teleexpertise.accounts",
    "teleexpertise.directory",
    "teleexpertise.patients",
    "teleexpertise.cases",
    "teleexpertise.messaging",
    "teleexpertise.reports",
    "teleexpertise.documents",
    "teleexpertise.billing",
    "teleexpertise.api",
    "teleexpertise.webhooks",
    "ninja",  # the API's interactive docs (Swagger UI) are served from its static files, not a CDN
]

# "Browser..." wrap a middleware (WhiteNoise, sessions, CSRF, the session user, messages, the TOTP gate) that the
# bearer-token calls of /api/ and /fhir/ go past (core/middleware.py).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "teleexpertise.core.middleware.SecurityHeadersMiddleware",
    "teleexpertise.core.middleware.BrowserStaticFiles",
    "teleexpertise.core.middleware.BrowserSession",
    "teleexpertise.core.middleware.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "teleexpertise.core.middleware.BrowserCsrf",
    "teleexpertise.core.middleware.BrowserUser",
    "teleexpertise.core.middleware.BrowserMessages",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "teleexpertise.core.middleware.BrowserSecondFactor",
]

ROOT_URLCONF = "teleexpertise.urls"
WSGI_APPLICATION = "teleexpertise.wsgi.application"

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
                "teleexpertise.core.context.platform",
            ],
        },
    }
]

# --- Database: SQLite under var/ by default, PostgreSQL (or any URL) through DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'teleexpertise.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a writer commits; IMMEDIATE takes the write lock at BEGIN so
    # concurrent writers queue instead of failing with "database is locked" half-way.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": env_str("SQLITE_TEST_NAME", "") or None}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_PREPARED_STATEMENTS", False):
    # Parameters bound by the server, and statements prepared from their 5th run on a connection: PostgreSQL then
    # keeps their plans instead of planning every query again (~4 ms for the case page's joins, more than running
    # it). Pays with persistent connections (DB_CONN_MAX_AGE); not behind a pooler in transaction mode that cannot
    # keep prepared statements (PgBouncer < 1.21).
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_str("DB_RANDOM_PAGE_COST"):
    # The planner's price of a random page read, for this platform's connections only. PostgreSQL's default (4)
    # models spinning disks: on SSD or with the data in memory it hashes whole tables (every patient, every
    # professional) to join the 25 rows of a list page; 1.1, as PostgreSQL's documentation suggests for SSDs,
    # halved the API lists' execution time (bench/README.md, `api`).
    try:
        cost = float(env_str("DB_RANDOM_PAGE_COST"))
    except ValueError:
        raise ImproperlyConfigured("DB_RANDOM_PAGE_COST must be a number, for instance 1.1.") from None
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c random_page_cost={cost:g}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits and lockout counters must be shared by every web process).
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache_entries"}
    }

# --- Background jobs (huey): SQLite file by default, Redis when REDIS_URL is set.
JOBS_IMMEDIATE = env_bool("JOBS_IMMEDIATE", False)
if REDIS_URL:
    HUEY = {"huey_class": "huey.RedisHuey", "name": "teleexpertise", "url": REDIS_URL,
            "immediate": JOBS_IMMEDIATE}
else:
    HUEY = {"huey_class": "huey.SqliteHuey", "name": "teleexpertise",
            "filename": str(VAR_DIR / "jobs.sqlite3"), "immediate": JOBS_IMMEDIATE}
HUEY["consumer"] = {"workers": env_int("JOBS_WORKERS", 2), "worker_type": "thread"}

# --- Accounts: e-mail login, mandatory TOTP second factor, lockout after repeated failures.
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "cases:inbox"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "teleexpertise.accounts.adapter.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
LOGIN_FAILURES_ALLOWED = env_int("LOGIN_FAILURES_ALLOWED", 5)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
ACCOUNT_RATE_LIMITS = {
    "login_failed": f"{LOGIN_FAILURES_ALLOWED}/{LOGIN_LOCKOUT_MINUTES}m/key,50/{LOGIN_LOCKOUT_MINUTES}m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env_str("MFA_TOTP_ISSUER", "Téléexpertise")
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30) * 60
SESSION_SAVE_EVERY_REQUEST = True  # the 30 minutes count from the last request: an idle timeout
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG and env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
if env_bool("TRUST_PROXY_HTTPS_HEADER", False):  # only behind a proxy that sets X-Forwarded-Proto itself
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- E-mail: console by default, an SMTP relay by settings.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)  # seconds per SMTP operation: a stuck relay must not hold a worker
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Téléexpertise <ne-pas-repondre@teleexpertise.localhost>")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS (STARTTLS, port 587) and EMAIL_USE_SSL (implicit TLS, port 465) "
                               "exclude each other: set one of them.")

# --- Distribution of signed reports (e-mail / MSSanté): huey retries each sending, then a periodic sweep
# tries failed and forgotten ones again.
REPORT_DELIVERY_RETRIES = env_int("REPORT_DELIVERY_RETRIES", 4)
REPORT_DELIVERY_RETRY_DELAY = env_int("REPORT_DELIVERY_RETRY_DELAY", 300)
REPORT_DELIVERY_SWEEP_MINUTES = env_int("REPORT_DELIVERY_SWEEP_MINUTES", 15)
if not 1 <= REPORT_DELIVERY_SWEEP_MINUTES <= 60 or 60 % REPORT_DELIVERY_SWEEP_MINUTES:
    raise ImproperlyConfigured("REPORT_DELIVERY_SWEEP_MINUTES must divide 60 (e.g. 5, 10, 15, 20, 30 or 60).")

# --- Domain settings.
CASE_MAX_DEADLINE_DAYS = env_int("CASE_MAX_DEADLINE_DAYS", 7)
PAGE_SIZE = env_int("PAGE_SIZE", 25)

# --- REST API (teleexpertise/api): per-token rate budget, OAuth2 token endpoint budget per address, and the
# lifetime of an organisation client's access token. Rates are "<count>/<s|min|hour|day>".
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "1200/min")
API_TOKEN_RATE_LIMIT = env_str("API_TOKEN_RATE_LIMIT", "30/min")
API_CLIENT_TOKEN_SECONDS = env_int("API_CLIENT_TOKEN_SECONDS", 3600)
# A token checked by a server process is trusted for this long without reading it again, unless a credential
# changed meanwhile (teleexpertise/api/token_cache.py): the bound for changes made without model signals.
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 60)
# --- Webhooks (teleexpertise/webhooks, docs/webhooks.md): signed POSTs to organisation clients on case events.
# A failed delivery is tried again after each of these delays (seconds), then marked failed; a subscription whose
# WEBHOOK_DISABLE_AFTER deliveries in a row failed is disabled (audited, its contact told). http:// and non-public
# addresses (127.0.0.1, private networks) are accepted only with WEBHOOK_ALLOW_LOCAL_TARGETS (default: DEBUG).
try:
    WEBHOOK_RETRY_DELAYS = [int(delay) for delay in env_list("WEBHOOK_RETRY_DELAYS", "60,300,1800,7200,43200")]
except ValueError as exc:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS must be seconds separated by commas, e.g. 60,300,1800.") from exc
WEBHOOK_TIMEOUT = env_int("WEBHOOK_TIMEOUT", 10)  # seconds to connect, and to wait for the answer
WEBHOOK_DISABLE_AFTER = env_int("WEBHOOK_DISABLE_AFTER", 10)
WEBHOOK_ALLOW_LOCAL_TARGETS = env_bool("WEBHOOK_ALLOW_LOCAL_TARGETS", DEBUG)
if any(delay < 1 for delay in WEBHOOK_RETRY_DELAYS) or not 1 <= WEBHOOK_TIMEOUT <= 60 or WEBHOOK_DISABLE_AFTER < 1:
    raise ImproperlyConfigured("WEBHOOK_RETRY_DELAYS must be positive seconds, WEBHOOK_TIMEOUT between 1 and 60 "
                               "seconds and WEBHOOK_DISABLE_AFTER at least 1.")
# Days after closing when the requester is asked what happened next (6 weeks).
FOLLOW_UP_DELAY_DAYS = env_int("FOLLOW_UP_DELAY_DAYS", 42)
if FOLLOW_UP_DELAY_DAYS < 1:
    raise ImproperlyConfigured("FOLLOW_UP_DELAY_DAYS must be at least 1 (days after closing).")
# Expected answer time shown before sending: the median over this many days, when at least this many were answered.
ANSWER_ESTIMATE_DAYS = env_int("ANSWER_ESTIMATE_DAYS", 30)
ANSWER_ESTIMATE_MIN_CASES = env_int("ANSWER_ESTIMATE_MIN_CASES", 5)
if ANSWER_ESTIMATE_DAYS < 1 or ANSWER_ESTIMATE_MIN_CASES < 1:
    raise ImproperlyConfigured("ANSWER_ESTIMATE_DAYS and ANSWER_ESTIMATE_MIN_CASES must be at least 1.")

# --- Deadlines that hold (periodic jobs in cases/tasks.py): a pooled case nobody claimed within these hours is
# escalated to the network's dispatchers; an on-call expert acknowledges a synchronous request within
# ONCALL_ACK_MINUTES or it passes to the backup, then to the dispatchers.
POOL_ESCALATION_HOURS = env_int("POOL_ESCALATION_HOURS", 24)
POOL_ESCALATION_URGENT_HOURS = env_int("POOL_ESCALATION_URGENT_HOURS", 1)
ONCALL_ACK_MINUTES = env_int("ONCALL_ACK_MINUTES", 15)
if min(POOL_ESCALATION_HOURS, POOL_ESCALATION_URGENT_HOURS, ONCALL_ACK_MINUTES) < 1:
    raise ImproperlyConfigured("POOL_ESCALATION_HOURS, POOL_ESCALATION_URGENT_HOURS and ONCALL_ACK_MINUTES "
                               "must be at least 1.")
# How often an open case page (and the inbox, for on-call requests) asks the server what changed.
LIVE_POLL_SECONDS = env_int("LIVE_POLL_SECONDS", 5)
# The video room of a synchronous request, e.g. https://visio.example.fr/{case_reference}; empty: no video link.
VIDEO_URL_TEMPLATE = env_str("VIDEO_URL_TEMPLATE", "")
if VIDEO_URL_TEMPLATE and (not VIDEO_URL_TEMPLATE.startswith("https://")
                           or "{case_reference}" not in VIDEO_URL_TEMPLATE
                           or VIDEO_URL_TEMPLATE.replace("{case_reference}", "").count("{")):
    raise ImproperlyConfigured("VIDEO_URL_TEMPLATE must be an https:// URL containing {case_reference} and no other "
                               "placeholder.")

# --- Patient access to the signed report: a personal link, the birth date as second factor.
PATIENT_LINK_DAYS = env_int("PATIENT_LINK_DAYS", 30)
PATIENT_LINK_MAX_ATTEMPTS = env_int("PATIENT_LINK_MAX_ATTEMPTS", 5)  # wrong birth dates before the link locks
PATIENT_LINK_SESSION_MINUTES = env_int("PATIENT_LINK_SESSION_MINUTES", 15)  # how long a verified birth date lasts
PATIENT_LINK_IP_FAILURES = env_int("PATIENT_LINK_IP_FAILURES", 20)  # failures per address and hour before refusal
# Delivers the link (e-mail through Django's mail, SMS through a gateway): a dotted path to a class like
# teleexpertise.reports.senders.DefaultSender, whose SMS go to the console only where PATIENT_LINK_SMS_CONSOLE is on.
PATIENT_LINK_SENDER = env_str("PATIENT_LINK_SENDER", "teleexpertise.reports.senders.DefaultSender")
PATIENT_LINK_SMS_CONSOLE = env_bool("PATIENT_LINK_SMS_CONSOLE", DEBUG or DEMO_MODE)

# --- Clinical documents: checked by content, encrypted at rest (AES-256-GCM, per-file keys wrapped by a
# master key). DOCUMENT_MASTER_KEYS is "key-id:base64-of-32-bytes[,older-id:key...]"; the active id encrypts new
# files, the others still open old ones until `manage.py rewrap_document_keys` has moved them.
DOCUMENT_MAX_FILE_BYTES = env_int("DOCUMENT_MAX_FILE_BYTES", 500 * 1024 * 1024)
DOCUMENT_MAX_CASE_BYTES = env_int("DOCUMENT_MAX_CASE_BYTES", 2 * 1024 * 1024 * 1024)
DOCUMENT_IMAGE_MAX_PIXELS = env_int("DOCUMENT_IMAGE_MAX_PIXELS", 60_000_000)
DOCUMENT_STORAGE = env_str("DOCUMENT_STORAGE", "local")  # "local" or "s3"
DOCUMENT_ROOT = Path(env_str("DOCUMENT_ROOT", str(VAR_DIR / "documents")))
# Upload spools are written around the page cache (O_DIRECT) where the file system allows it (documents.spool_writer)
DOCUMENT_SPOOL_DIRECT_IO = env_bool("DOCUMENT_SPOOL_DIRECT_IO", True)
DOCUMENT_S3_BUCKET = env_str("DOCUMENT_S3_BUCKET", "")
DOCUMENT_S3_ENDPOINT_URL = env_str("DOCUMENT_S3_ENDPOINT_URL", "")
DOCUMENT_S3_REGION = env_str("DOCUMENT_S3_REGION", "us-east-1")
DOCUMENT_S3_ACCESS_KEY = env_secret("DOCUMENT_S3_ACCESS_KEY", "")
DOCUMENT_S3_SECRET_KEY = env_secret("DOCUMENT_S3_SECRET_KEY", "")
DOCUMENT_MASTER_KEYS = env_secret("DOCUMENT_MASTER_KEYS", "")
DOCUMENT_ACTIVE_KEY_ID = env_str("DOCUMENT_ACTIVE_KEY_ID", "")
# Every uploaded file is encrypted while it is received (documents/spool.py): no plaintext temporary file.
FILE_UPLOAD_HANDLERS = ["teleexpertise.documents.upload_handlers.EncryptingUploadHandler"]
CLAMAV_ADDRESS = env_str("CLAMAV_ADDRESS", "")  # "host:port" or a unix socket path; empty: no scan
if not DEBUG and not DOCUMENT_MASTER_KEYS:
    raise ImproperlyConfigured("DOCUMENT_MASTER_KEYS must be set when DEBUG is off (documents are encrypted at rest).")

# --- Report exports (CDA, XDS/XDM, FHIR) and the DMP outbox that a DMP connector reads (docs/operations.md).
# PLATFORM_OID roots the identifiers the platform mints (local patient ids, requests, submission sets): replace it
# with the establishment's registered OID where there is one. DMP_OUTBOX_DIR set to "" turns the DMP export off.
PLATFORM_OID = env_str("PLATFORM_OID", "2.25.289077145262516853911594331186597253287")
if not re.fullmatch(r"[0-2](\.(0|[1-9][0-9]*))+", PLATFORM_OID) or len(PLATFORM_OID) > 64:
    raise ImproperlyConfigured(f"PLATFORM_OID must be an OID of at most 64 characters, got {PLATFORM_OID!r}")
DMP_OUTBOX_DIR = env_str("DMP_OUTBOX_DIR", str(VAR_DIR / "dmp-outbox"))
DMP_FACILITY_TYPE = env_str("DMP_FACILITY_TYPE", "SA01")  # TRE_R02 healthcareFacilityTypeCode
DMP_PRACTICE_SETTING = env_str("DMP_PRACTICE_SETTING", "ETABLISSEMENT")  # TRE_A01 practiceSettingCode

# --- National directory import: an administrator's uploaded extract is written here until its import ends.
DIRECTORY_IMPORT_DIR = env_str("DIRECTORY_IMPORT_DIR", str(VAR_DIR / "directory-imports"))

# --- Internationalisation: French first, English available.
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("Français")), ("en", _("English"))]
# locale_allauth: hand-kept French overrides of allauth messages; listed here so they win over allauth's catalog.
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "locale_allauth"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "Europe/Paris"

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Structured logging: one JSON object a line on stderr.
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "teleexpertise.core.logging.JsonFormatter"}},
    "filters": {"redact": {"()": "teleexpertise.core.logging.RedactPatientLinks"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}},
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
    # huey's consumer adds a plain-text handler unless its logger already has one.
    "loggers": {"huey": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
                "django.db.backends": {"level": "INFO"}},
}

"""Default configuration.

Precedence, lowest first: these defaults, ``instance/config.py``, environment
variables prefixed ``CLOSEDLOOP_`` (``CLOSEDLOOP_DATABASE_URL``,
``CLOSEDLOOP_SECRET_KEY`` ...), then the mapping given to ``create_app``.
Nothing here reads files or the environment: the factory does that.
"""

from __future__ import annotations

#: The placeholder secret. ``create_app`` refuses to serve with it outside
#: debug or testing mode.
DEFAULT_SECRET_KEY = "dev-only-change-me"
#: Secrets anyone can read: the default and the one in ``instance/config.example.py``.
PLACEHOLDER_SECRET_KEYS = frozenset({DEFAULT_SECRET_KEY, "replace-with-a-long-random-string"})
#: The example webhook secret of ``instance/config.example.py``: refused like the keys above.
PLACEHOLDER_WEBHOOK_SECRETS = frozenset({"replace-with-another-long-random-string"})


class DefaultConfig:
    SECRET_KEY = DEFAULT_SECRET_KEY
    #: ``None`` means the embedded default: ``<instance>/closedloop.sqlite3``.
    DATABASE_URL: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}

    #: Shared secret for ``POST /api/v1/ticket-events`` (HMAC-SHA256).
    WEBHOOK_SECRET: str | None = None
    #: Accepted clock difference for ``X-ClosedLoop-Timestamp``, seconds.
    WEBHOOK_TOLERANCE_SECONDS = 300
    #: Largest webhook body accepted, bytes.
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024

    BABEL_DEFAULT_LOCALE = "en"
    #: Time zone in which staff pages show times (data is stored in UTC).
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    #: Locales offered to users (code, native name).
    LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}

    #: werkzeug's password hashing; the suite uses a cheap one to stay fast.
    PASSWORD_HASH_METHOD = "scrypt"
    #: Failed sign-ins before an account is paused, and for how long.
    LOGIN_MAX_FAILURES = 5
    LOGIN_LOCKOUT_MINUTES = 15

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: ``None``: Secure when served over https (PREFERRED_URL_SCHEME or PUBLIC_URL).
    SESSION_COOKIE_SECURE: bool | None = None

    # Serving in production (see survey_app.security, .logs, .health, .ratelimit).
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted.
    TRUSTED_PROXIES = 0
    #: Strict-Transport-Security max-age, sent on https requests only; 0 = never.
    HSTS_SECONDS = 365 * 24 * 3600
    #: Directives overriding survey_app.security.CONTENT_SECURITY_POLICY ("" drops one).
    CSP: dict[str, str] = {}
    #: Cache lifetime of a static file asked for without its version, seconds.
    STATIC_MAX_AGE = 3600
    #: "text" or "json" (one object a line, with the request id); and the root level.
    LOG_FORMAT = "text"
    LOG_LEVEL = "INFO"
    #: How long /readyz waits for the database or the broker, seconds.
    READINESS_TIMEOUT_SECONDS = 2.0
    #: Flask-Limiter: storage (unset: the Redis broker, else memory) and the limits.
    RATELIMIT_STORAGE_URI: str | None = None
    RATELIMIT_SURVEY = "600 per minute"
    RATELIMIT_WEBHOOK = "1200 per minute"
    #: Sign-in attempts (POST /login) per client address.
    RATELIMIT_LOGIN = "20 per minute"
    WTF_CSRF_TIME_LIMIT = None

    #: Rows per page on staff lists.
    PAGE_SIZE = 50

    #: The name customers see on survey pages and e-mails.
    ORGANISATION_NAME = "ClosedLoop"
    #: Where customers reach this app: the base of every link in an e-mail.
    PUBLIC_URL = "http://127.0.0.1:5000"

    #: Where outgoing mail goes: "smtp" (MAIL_SERVER, below) or "outbox", which writes
    #: each message as an .eml file under <instance>/outbox/ for admins to read at
    #: /admin/outbox and connects to nothing. ``make run`` uses the outbox; never in production.
    MAIL_BACKEND = "smtp"
    # Outgoing mail (Flask-Mail): a real SMTP server.
    MAIL_SERVER = "localhost"
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USE_SSL = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "ClosedLoop <feedback@localhost>"
    #: Flask-Mail would silently drop mail in testing mode; the tests use a real server.
    MAIL_SUPPRESS_SEND = False
    #: A ticket import file may have at most this many rows and header columns; past
    #: them it is refused with a message (a tiny .xlsx can declare a million rows).
    IMPORT_MAX_ROWS = 500_000
    IMPORT_MAX_COLUMNS = 200
    #: Seconds to wait for the SMTP server at each step (survey_app.outbound).
    MAIL_TIMEOUT = 30.0
    #: Seconds to wait for a webhook receiver (alerts, the SMS/WeChat gateway).
    WEBHOOK_TIMEOUT = 10.0
    #: Outbound webhooks to loopback, private, link-local (cloud metadata) or reserved
    #: addresses are refused; True allows them, for a gateway on the organisation's own
    #: network. Leave False where managers may enter webhook URLs.
    OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    #: Gateway for SMS / WeChat / in-app invitations (customers without e-mail).
    SURVEY_WEBHOOK_URL: str | None = None
    SURVEY_WEBHOOK_SECRET: str | None = None

    #: Celery broker, e.g. "redis://127.0.0.1:6379/0". Unset: tasks run in-process.
    CELERY_BROKER_URL: str | None = None
    #: Seconds between dispatch runs (beat, or the thread of ``closedloop run``); 0 = off.
    DISPATCH_INTERVAL_SECONDS = 60
    #: How long a runner holds a periodic job before another may take it over (a runner
    #: that died frees its jobs after this); longer than any job's round.
    JOB_LEASE_SECONDS = 900

    #: Sentiment scores inside this band (low, high) are labelled neutral: too uncertain to
    #: call. Chosen on the service corpus's frozen dev split (confident verdicts wrong <= 3 %).
    SENTIMENT_NEUTRAL_BAND = (0.2, 0.8)
    #: Labels ``closedloop sentiment train --from-responses`` reads off the scores:
    #: positive when NPS >= positive_nps or overall CSAT >= positive_csat; negative
    #: when NPS <= negative_nps or overall CSAT <= negative_csat.
    SENTIMENT_TRAINING_LABELS = {
        "positive_nps": 9,
        "negative_nps": 4,
        "positive_csat": 5,
        "negative_csat": 2,
    }

"""Every setting of ClosedLoop, declared once, with its default and what it does.

Precedence, lowest first: these defaults, ``instance/config.py``, environment
variables prefixed ``CLOSEDLOOP_`` (``CLOSEDLOOP_DATABASE_URL``,
``CLOSEDLOOP_SECRET_KEY`` ...), then the mapping given to ``create_app``.
Nothing here reads files or the environment: the factory does that.

All three packages read their settings from here (``current_app.config["KEY"]``,
never an inline default), so a new setting is one line below with its ``#:``
comment. That comment is the setting's description in the table of
``docs/operations/configuration.md``, written by ``python -m
survey_app.config_docs --write`` (``tests/test_config.py`` fails when the page
and this class disagree, or when code reads a setting not declared here).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

#: The placeholder secret. ``create_app`` refuses to serve with it outside
#: debug or testing mode.
DEFAULT_SECRET_KEY = "dev-only-change-me"
#: Secrets anyone can read: the default and the one in ``instance/config.example.py``.
PLACEHOLDER_SECRET_KEYS = frozenset({DEFAULT_SECRET_KEY, "replace-with-a-long-random-string"})
#: The example webhook secret of ``instance/config.example.py``: refused like the keys above.
PLACEHOLDER_WEBHOOK_SECRETS = frozenset({"replace-with-another-long-random-string"})


class DefaultConfig:
    """The defaults: every setting, grouped by ``# -- section`` comments, each after its
    ``#:`` description."""

    # -- The application
    #: Signs sessions and survey links. A placeholder: the app **refuses to start** with it
    #: (or an empty one) unless in debug or testing mode; ``closedloop init`` writes a random one.
    SECRET_KEY = DEFAULT_SECRET_KEY
    #: SQLAlchemy URL of the database. ``None``: the SQLite file
    #: ``<instance>/closedloop.sqlite3`` (WAL journal, foreign keys on).
    DATABASE_URL: str | None = None
    #: Extra ``create_engine`` options (PostgreSQL also gets ``pool_pre_ping`` and a 5 s
    #: connect timeout).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    #: The name customers see on survey pages and e-mails.
    ORGANISATION_NAME = "ClosedLoop"
    #: Where customers reach this app: the base of every link in an e-mail.
    PUBLIC_URL = "http://127.0.0.1:5000"
    #: Rows per page on staff lists.
    PAGE_SIZE = 50

    # -- Languages and time
    #: Language of pages when neither the user nor the browser says one (``en`` or ``zh_Hans``).
    BABEL_DEFAULT_LOCALE = "en"
    #: Time zone in which staff pages show times (data is stored in UTC).
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    #: Locales offered to users (code, native name).
    LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}
    #: Where the compiled translations are; ``None``: ``survey_app/translations``.
    BABEL_TRANSLATION_DIRECTORIES: str | None = None

    # -- Sign-in and sessions
    #: werkzeug's password hashing; the suite uses a cheap one to stay fast.
    PASSWORD_HASH_METHOD = "scrypt"
    #: Failed sign-ins from one address before the account is paused for that address.
    LOGIN_MAX_FAILURES = 5
    #: How long such a pause lasts, minutes.
    LOGIN_LOCKOUT_MINUTES = 15
    #: The session cookie is out of reach of page scripts.
    SESSION_COOKIE_HTTPONLY = True
    #: The session cookie is not sent on cross-site requests.
    SESSION_COOKIE_SAMESITE = "Lax"
    #: ``None``: Secure when served over https (``PREFERRED_URL_SCHEME`` or ``PUBLIC_URL``).
    SESSION_COOKIE_SECURE: bool | None = None
    #: The "remember me" cookie's Secure flag; ``None``: as ``SESSION_COOKIE_SECURE``.
    REMEMBER_COOKIE_SECURE: bool | None = None
    #: The "remember me" cookie is out of reach of page scripts.
    REMEMBER_COOKIE_HTTPONLY = True
    #: The "remember me" cookie is not sent on cross-site requests.
    REMEMBER_COOKIE_SAMESITE = "Lax"
    #: CSRF tokens on every form (Flask-WTF); only tests turn this off.
    WTF_CSRF_ENABLED = True
    #: Lifetime of a CSRF token, seconds; ``None``: as long as the session.
    WTF_CSRF_TIME_LIMIT: int | None = None

    # -- Serving in production
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted.
    TRUSTED_PROXIES = 0
    #: Strict-Transport-Security max-age, sent on https requests only; 0 = never.
    HSTS_SECONDS = 365 * 24 * 3600
    #: Directives overriding ``survey_app.security.CONTENT_SECURITY_POLICY`` ("" drops one).
    CSP: dict[str, str] = {}
    #: Cache lifetime of a static file asked for without its version, seconds.
    STATIC_MAX_AGE = 3600
    #: ``"text"`` or ``"json"`` (one object a line, with the request id).
    LOG_FORMAT = "text"
    #: The root logger's level.
    LOG_LEVEL = "INFO"
    #: How long ``/readyz`` waits for the database or the broker, seconds.
    READINESS_TIMEOUT_SECONDS = 2.0
    #: Where the rate limiter counts; ``None``: the Redis broker if there is one, else memory.
    RATELIMIT_STORAGE_URI: str | None = None
    #: Survey page requests per client address.
    RATELIMIT_SURVEY = "600 per minute"
    #: Ticket webhook requests per client address.
    RATELIMIT_WEBHOOK = "1200 per minute"
    #: Sign-in attempts (``POST /login``) per client address.
    RATELIMIT_LOGIN = "20 per minute"
    #: A rate-limit storage that fails lets requests through instead of failing them.
    RATELIMIT_SWALLOW_ERRORS = True
    #: While the rate-limit storage is down, count in memory.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    #: Send ``X-RateLimit-*`` and ``Retry-After`` headers.
    RATELIMIT_HEADERS_ENABLED = True

    # -- Ticket intake
    #: Shared secret of ``POST /api/v1/ticket-events`` (HMAC-SHA256); ``None``: the webhook
    #: answers 503.
    WEBHOOK_SECRET: str | None = None
    #: Accepted clock difference for ``X-ClosedLoop-Timestamp``, seconds.
    WEBHOOK_TOLERANCE_SECONDS = 300
    #: Largest request body accepted, bytes.
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    #: Rows an import file may have; past them it is refused with a message (a tiny
    #: .xlsx can declare a million rows).
    IMPORT_MAX_ROWS = 500_000
    #: Header columns an import file may have.
    IMPORT_MAX_COLUMNS = 200

    # -- Outgoing mail and webhooks
    #: ``"smtp"`` (``MAIL_SERVER``, below) or ``"outbox"``: each message is written as an
    #: .eml file under ``<instance>/outbox/`` for admins to read at ``/admin/outbox``, and
    #: nothing connects to a mail server (``make run``; never in production). Anything
    #: else is refused at start.
    MAIL_BACKEND = "smtp"
    #: The SMTP server.
    MAIL_SERVER = "localhost"
    #: The SMTP server's port.
    MAIL_PORT = 25
    #: STARTTLS after connecting.
    MAIL_USE_TLS = False
    #: TLS from the start (SMTPS).
    MAIL_USE_SSL = False
    #: SMTP user name; signs in only with ``MAIL_PASSWORD`` too.
    MAIL_USERNAME: str | None = None
    #: SMTP password.
    MAIL_PASSWORD: str | None = None
    #: The From of every message.
    MAIL_DEFAULT_SENDER = "ClosedLoop <feedback@localhost>"
    #: Flask-Mail would silently drop mail in testing mode; the tests use a real server.
    MAIL_SUPPRESS_SEND = False
    #: Seconds to wait for the SMTP server at each step.
    MAIL_TIMEOUT = 30.0
    #: Seconds to wait for a webhook receiver (alerts, the SMS/WeChat gateway).
    WEBHOOK_TIMEOUT = 10.0
    #: Outbound webhooks to loopback, private, link-local (cloud metadata) or reserved
    #: addresses are refused; True allows them, for a gateway on the organisation's own
    #: network. Leave False where managers may enter webhook URLs.
    OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    #: Gateway for SMS / WeChat / in-app invitations (customers without e-mail).
    SURVEY_WEBHOOK_URL: str | None = None
    #: HMAC key of the bodies posted to ``SURVEY_WEBHOOK_URL``.
    SURVEY_WEBHOOK_SECRET: str | None = None

    # -- Background jobs
    #: Celery broker, e.g. ``"redis://127.0.0.1:6379/0"``. ``None``: tasks run in-process.
    CELERY_BROKER_URL: str | None = None
    #: Extra Celery settings (``celery_app.conf``).
    CELERY: dict = {}
    #: Seconds between dispatch runs (beat, or the thread of ``closedloop run``); 0 = off.
    DISPATCH_INTERVAL_SECONDS = 60
    #: How long a runner holds a periodic job before another may take it over (a runner
    #: that died frees its jobs after this); longer than any job's round.
    JOB_LEASE_SECONDS = 900
    #: SQLite: the ``analyse-database`` job refreshes the query planner's statistics
    #: (``ANALYZE``) once tickets, responses or invitations reach this many rows, and
    #: again whenever one of them has grown by a fifth (``survey_app.statistics``).
    SQLITE_ANALYSE_MIN_ROWS = 10_000

    # -- Sentiment
    #: Sentiment scores inside this band (low, high) are labelled neutral: too uncertain to
    #: call. Chosen on the service corpus's frozen dev split (confident verdicts wrong <= 3 %).
    SENTIMENT_NEUTRAL_BAND = (0.25, 0.75)
    #: Labels ``closedloop sentiment train --from-responses`` reads off the scores:
    #: positive when NPS >= positive_nps or overall CSAT >= positive_csat; negative
    #: when NPS <= negative_nps or overall CSAT <= negative_csat.
    SENTIMENT_TRAINING_LABELS = {
        "positive_nps": 9,
        "negative_nps": 4,
        "positive_csat": 5,
        "negative_csat": 2,
    }

    # -- Metrics
    #: Below this n a KPI is marked low-confidence (never graded, never alerted).
    METRICS_MIN_SAMPLE = 30
    #: Time zone of periods and day/week/month buckets; ``None``: ``BABEL_DEFAULT_TIMEZONE``.
    METRICS_TIMEZONE: str | None = None

    # -- SLA clocks
    #: ``"CN"``: the official Chinese calendar; ``"weekdays"``: Monday-Friday.
    SLA_CALENDAR = "CN"
    #: Daily working hours, local time.
    SLA_WORKING_HOURS = "09:00-18:00"
    #: Time zone of the working hours; ``None``: ``BABEL_DEFAULT_TIMEZONE``.
    SLA_TIMEZONE: str | None = None
    #: Extra days off (ISO dates), applied over the calendar.
    SLA_HOLIDAYS: tuple[str, ...] = ()
    #: Extra working days (ISO dates), applied over the calendar.
    SLA_EXTRA_WORKDAYS: tuple[str, ...] = ()

    # -- Targets and alerts
    #: Webhook for the alerts of targets without their own; ``None``: none.
    ALERT_WEBHOOK_URL: str | None = None
    #: HMAC key of the alert webhook's body.
    ALERT_WEBHOOK_SECRET: str | None = None
    #: A failed alert delivery is retried after this long, minutes.
    ALERT_RETRY_MINUTES = 10

    # -- Root-cause cases
    #: The low-feedback rule that opens a case; ``None``: ``{"nps_max": 6, "csat_max": 2,
    #: "negative_sentiment": true}``. A key left out keeps its default, ``null`` turns a
    #: criterion off. A bad value stops the app at start.
    ROOT_CAUSE_RULE: dict | None = None
    #: Days after the ticket's resolution to call the customer back (1-90).
    CALLBACK_DAYS = 7
    #: The categories a why can be tagged with, in display order (distinct, 1-40 characters).
    FISHBONE_CATEGORIES: tuple[str, ...] = (
        "people",
        "process",
        "technology",
        "management",
        "environment",
        "measurement",
    )

    # -- PDCA cycles
    #: Days before an action's deadline its owner gets the due-soon reminder.
    ACTION_DUE_SOON_DAYS = 3


#: Every declared setting and its default, read-only.
DECLARED: Mapping[str, Any] = MappingProxyType(
    {name: value for name, value in vars(DefaultConfig).items() if name.isupper()}
)


class _WithDefaults(Mapping[str, Any]):
    """A mapping's settings, falling back on the declared default of one it lacks."""

    __slots__ = ("_config",)

    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config

    def __getitem__(self, name: str) -> Any:
        if name in self._config:
            return self._config[name]
        return DECLARED[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._config
        yield from (name for name in DECLARED if name not in self._config)

    def __len__(self) -> int:
        return len(self._config) + sum(1 for name in DECLARED if name not in self._config)


def with_defaults(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``config`` over the declared defaults, for readers that accept any mapping (a test's
    partial one, or ``{}`` outside an app) and then read ``settings["KEY"]`` like the app's.
    A view, not a copy: cheap enough to take per ticket."""
    return _WithDefaults(config)

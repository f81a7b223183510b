# Copy to instance/config.py (or run `closedloop init`) and adjust.
# Every setting can also come from an environment variable: CLOSEDLOOP_<NAME>.

# Required outside debug mode: a long random string.
SECRET_KEY = "replace-with-a-long-random-string"

# Shared secret for POST /api/v1/ticket-events (HMAC-SHA256).
WEBHOOK_SECRET = "replace-with-another-long-random-string"

# Default: SQLite in this folder. For PostgreSQL:
# DATABASE_URL = "postgresql+psycopg://user:password@127.0.0.1:5432/closedloop"

# Language and time zone of staff pages.
# BABEL_DEFAULT_LOCALE = "zh_Hans"
# BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"

# Sign-in lock-out.
# LOGIN_MAX_FAILURES = 5
# LOGIN_LOCKOUT_MINUTES = 15

# Outgoing mail: "smtp" (default; MAIL_SERVER, MAIL_PORT, MAIL_USE_TLS, MAIL_USERNAME,
# MAIL_PASSWORD, MAIL_DEFAULT_SENDER) or "outbox" (development: kept in instance/outbox/).
# MAIL_BACKEND = "smtp"
# MAIL_SERVER = "smtp.example.com"

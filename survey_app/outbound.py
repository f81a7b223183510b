"""Every message ClosedLoop sends leaves through here: one mail sender, one webhook sender.

Survey invitations and reminders, alert e-mails and webhooks, PDCA action
reminders, close-the-loop messages and the SMS/WeChat gateway all call
:func:`send_mail` or :func:`post_webhook`, so each of them gets the same:

* a socket timeout (``MAIL_TIMEOUT``, ``WEBHOOK_TIMEOUT``): a server that
  accepts and then says nothing cannot hang a dispatcher;
* header safety: a header value with a line break is refused (no header
  injection), long ASCII headers are not RFC 2047-encoded on the wire (a mail
  client must read ``List-Unsubscribe: <https://...>`` as it is, RFC 8058), and
  an address that only an SMTPUTF8 server can take is refused unless the
  server offers it;
* outbound URLs checked against internal addresses: loopback, private,
  link-local (cloud metadata 169.254.169.254), unique-local, multicast and
  reserved destinations are refused on the address actually connected to (so a
  DNS name that resolves inside, or re-resolves there later, is caught), and
  redirects are never followed. ``OUTBOUND_ALLOW_PRIVATE_NETWORKS`` lifts this
  for an installation whose helpdesk or chat gateway lives on its own network;
* one error type, :class:`OutboundError`, whose message is safe to store on the
  message's row and show to admins (no secrets, no bodies). Retrying is the
  caller's: each feature counts attempts on its own rows and retries in a
  later round, with back-off, up to its limit;
* one warning per mail-server outage: the first failure to reach ``MAIL_SERVER``
  is logged as a warning, the failures after it (every message of every round
  while it stays down) raise :class:`MailServerUnreachable` quietly (callers log
  them with :func:`failure_log_level`), and the first message through logs that
  the server is back.

``MAIL_BACKEND = "outbox"`` (development) keeps every message, checked the same
way, as a file in the instance folder instead (:mod:`survey_app.outbox`): nothing
connects to an SMTP server.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import smtplib
import socket
import threading
import time
import urllib.error
import urllib.request
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from flask_mail import Message

from . import running_app
from .intake.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from .normalise import has_control_characters
from .outbox import outbox_enabled

log = logging.getLogger(__name__)

#: Headers are folded only past RFC 5322's hard limit, never RFC 2047-encoded when ASCII.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)


class OutboundError(RuntimeError):
    """A message was not sent. The text says why and is safe to store and show."""


class UnsafeDestination(OutboundError):
    """An outbound URL points at an internal address (or is not http/https)."""


class MailServerUnreachable(OutboundError):
    """``MAIL_SERVER`` could not be reached or hung up: an outage, warned about once."""


def failure_log_level(error: BaseException) -> int:
    """The level at which a caller logs a failed send: DEBUG when the mail server is
    down (:func:`send_mail` warned once for the whole outage), else WARNING."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, MailServerUnreachable):
            return logging.DEBUG
        cause = cause.__cause__
    return logging.WARNING


# --- mail --------------------------------------------------------------------------------------


def send_mail(message: Message) -> None:
    """Send ``message`` (Flask-Mail's ``Message``) through ``MAIL_SERVER``, or keep it in
    the outbox with ``MAIL_BACKEND = "outbox"``.

    Raises :class:`OutboundError` for a header with a line break, an address the
    server cannot take, and any SMTP or network failure (after ``MAIL_TIMEOUT``);
    :class:`MailServerUnreachable` when the server cannot be reached.
    """
    config = current_app.config
    email = _wire_message(message, config["MAIL_DEFAULT_SENDER"])
    recipients = [str(r) for r in message.send_to]
    needs_utf8 = any(not address.isascii() for address in [*recipients, email["From"]])
    if outbox_enabled(config):
        _keep_in_outbox(email.as_bytes(policy=WIRE_POLICY.clone(utf8=needs_utf8)), recipients)
        return
    timeout = float(config["MAIL_TIMEOUT"])
    smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
    try:
        with smtp_class(
            config["MAIL_SERVER"],
            int(config["MAIL_PORT"]),
            timeout=timeout,
        ) as host:
            if config["MAIL_USE_TLS"]:
                host.starttls()
            if config["MAIL_USERNAME"] and config["MAIL_PASSWORD"]:
                host.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            options: list[str] = []
            if needs_utf8:
                host.ehlo_or_helo_if_needed()
                if not host.has_extn("smtputf8"):
                    raise OutboundError(
                        "an address has non-ASCII characters and the mail server does not "
                        "offer SMTPUTF8"
                    )
                options = ["SMTPUTF8"]
            host.sendmail(
                str(email["From"]),
                recipients,
                email.as_bytes(policy=WIRE_POLICY.clone(utf8=needs_utf8)),
                mail_options=options,
            )
    except OutboundError:
        raise
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError) as exc:
        if _is_outage(exc):
            _server_down(running_app(), exc)
            raise MailServerUnreachable(f"SMTP: {_first_line(exc)}") from exc
        raise OutboundError(f"SMTP: {_first_line(exc)}") from exc
    _server_up(running_app())
    log.info("mail sent to %d recipient(s)", len(recipients))


def _keep_in_outbox(data: bytes, recipients: list[str]) -> None:
    from .outbox.store import store_message

    try:
        name = store_message(data)
    except OSError as exc:
        raise OutboundError(f"outbox: {_first_line(exc)}") from exc
    log.info("mail to %d recipient(s) kept in the outbox as %s", len(recipients), name)


# The outage state lives on the app (one per process in production; a fresh one per test app).
_OUTAGE = "closedloop.mail_outage"
_OUTAGE_LOCK = threading.Lock()


def _is_outage(error: BaseException) -> bool:
    """A failure to reach or keep talking to the server, as opposed to a refused message."""
    if isinstance(error, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    return isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)


def _server_down(app: Flask, error: BaseException) -> None:
    with _OUTAGE_LOCK:
        outage = app.extensions.get(_OUTAGE)
        if outage is not None:
            outage["failures"] += 1
            return
        app.extensions[_OUTAGE] = {"failures": 1}
    log.warning(
        "mail server %s:%s unreachable (%s): mail waits and is retried; not logged again "
        'until it answers (MAIL_SERVER, or MAIL_BACKEND = "outbox" in development)',
        app.config["MAIL_SERVER"],
        app.config["MAIL_PORT"],
        _first_line(error),
    )


def _server_up(app: Flask) -> None:
    if _OUTAGE not in app.extensions:
        return
    with _OUTAGE_LOCK:
        outage = app.extensions.pop(_OUTAGE, None)
    if outage is not None:
        log.info(
            "mail server reachable again (%d send(s) failed while it was down)",
            outage["failures"],
        )


def _wire_message(message: Message, default_sender: Any) -> EmailMessage:
    sender = message.sender or default_sender
    if isinstance(sender, tuple):
        sender = str(Address(display_name=sender[0], addr_spec=sender[1]))
    if not sender:
        raise OutboundError("no sender: set MAIL_DEFAULT_SENDER")
    headers: dict[str, str] = {
        "Subject": message.subject or "",
        "From": str(sender),
        "To": ", ".join(str(r) for r in message.recipients),
        "Date": formatdate(localtime=False),
        "Message-ID": make_msgid(),
    }
    if message.cc:
        headers["Cc"] = ", ".join(str(r) for r in message.cc)
    if message.reply_to:
        headers["Reply-To"] = str(message.reply_to)
    headers.update({str(k): str(v) for k, v in (message.extra_headers or {}).items()})
    email = EmailMessage(policy=WIRE_POLICY)
    for name, value in headers.items():
        if has_control_characters(name) or has_control_characters(value):
            raise OutboundError(f"the {name} header contains a line break or control character")
        email[name] = value
    email.set_content(message.body or "")
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


# --- webhooks ----------------------------------------------------------------------------------


def post_webhook(
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    timeout: float | None = None,
) -> int:
    """POST ``payload`` as JSON to ``url``, signed with ``secret`` when given; return the status.

    Raises :class:`UnsafeDestination` for an internal destination and
    :class:`OutboundError` for a redirect (never followed), a non-2xx answer or a
    network failure.
    """
    check_destination(url)
    body = (
        payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    )
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: stamp}
    if secret:
        headers[SIGNATURE_HEADER] = sign(str(secret), stamp, body)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    wait = float(timeout or current_app.config["WEBHOOK_TIMEOUT"])
    opener = _opener(bool(current_app.config["OUTBOUND_ALLOW_PRIVATE_NETWORKS"]))
    try:
        with opener.open(request, timeout=wait) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise OutboundError(f"webhook answered a redirect ({exc.code}); not followed") from exc
        raise OutboundError(f"webhook answered {exc.code}") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, UnsafeDestination):
            raise exc.reason from exc
        raise OutboundError(f"webhook: {_first_line(exc.reason)}") from exc
    except OSError as exc:
        raise OutboundError(f"webhook: {_first_line(exc)}") from exc
    if not 200 <= status < 300:
        raise OutboundError(f"webhook answered {status}")
    return status


def check_destination(url: str, *, resolve: bool = True) -> None:
    """Refuse ``url`` unless it is http(s) to a public address (see the module docstring).

    With ``resolve`` false only the URL itself is checked (scheme, and a literal
    address or ``localhost``), as a form does; sending checks the address it connects to.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("the URL must start with http:// or https:// and name a host")
    if current_app.config["OUTBOUND_ALLOW_PRIVATE_NETWORKS"]:
        return
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeDestination(f"{host} is this machine: refused")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        _check_address(literal, host)
    elif resolve:
        try:
            found = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise OutboundError(f"cannot resolve {host}: {_first_line(exc)}") from exc
        for *_rest, sockaddr in found:
            _check_address(ipaddress.ip_address(sockaddr[0]), host)


def _check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str) -> None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        raise UnsafeDestination(
            f"{host} is an internal address ({address}): refused "
            "(OUTBOUND_ALLOW_PRIVATE_NETWORKS allows it)"
        )


def _checked_connect(connection: http.client.HTTPConnection) -> None:
    """After connecting, refuse a peer that is internal (DNS may have changed since the check)."""
    if connection.sock is None:
        return
    peer = connection.sock.getpeername()[0]
    try:
        _check_address(ipaddress.ip_address(peer), connection.host)
    except UnsafeDestination:
        connection.close()
        raise


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _checked_connect(self)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _checked_connect(self)


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPConnection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPSConnection, req)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx becomes an HTTPError: a redirect is never followed


def _opener(allow_private: bool) -> urllib.request.OpenerDirector:
    if allow_private:
        return urllib.request.build_opener(_NoRedirect())
    return urllib.request.build_opener(
        _NoRedirect(), _CheckedHTTPHandler(), _CheckedHTTPSHandler()
    )


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:300] if lines else type(error).__name__

"""HMAC-SHA256 signatures for the ticket-event webhook.

The signed message is ``<timestamp>.<raw body>``; the header is
``X-ClosedLoop-Signature: sha256=<hex>`` with ``X-ClosedLoop-Timestamp`` in
Unix seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-ClosedLoop-Signature"
TIMESTAMP_HEADER = "X-ClosedLoop-Timestamp"


class SignatureError(ValueError):
    """The request is not signed by someone who knows the secret, or not now."""


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Return the ``sha256=<hex>`` header value for ``body`` sent at ``timestamp``."""
    message = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the signature and timestamp are valid.

    The comparison is constant-time; a timestamp more than ``tolerance``
    seconds away from now is refused, so captured requests cannot be replayed
    later.
    """
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    # isdigit() alone admits digits int() refuses (e.g. "²"); the length keeps
    # int() and the float arithmetic below from overflowing.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be Unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {tolerance} s from the server time")
    if not signature.startswith("sha256="):
        raise SignatureError(f"{SIGNATURE_HEADER} must look like sha256=<hex>")
    # Bytes, because compare_digest refuses str with non-ASCII characters.
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode()):
        raise SignatureError("signature does not match the body")

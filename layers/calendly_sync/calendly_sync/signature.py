"""Calendly webhook signatures: ``Calendly-Webhook-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is the lowercase hex HMAC-SHA256, keyed with the subscription's signing key, over
``"<t>." + raw body``. Verification works on the raw bytes and never raises anything but
``SignatureRejected``, whatever the header or body hold.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

from calendly_sync.errors import SignatureRejected

SIGNATURE_HEADER = "Calendly-Webhook-Signature"

# Genuine headers are about 80 characters; anything far longer is not worth parsing.
_MAX_HEADER_LENGTH = 512
_MAX_SIGNATURES = 4
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)


def sign(body: bytes, key: str, timestamp: int) -> str:
    """The header value Calendly would send for ``body`` signed with ``key`` at ``timestamp``."""
    return f"t={timestamp},v1={_digest(body, key, str(timestamp))}"


def verify(
    header: str | None,
    body: bytes,
    keys: Iterable[str],
    *,
    now: float,
    tolerance_seconds: int,
    future_skew_seconds: int,
) -> None:
    """Accept ``body`` only if ``header`` carries a fresh v1 signature made with one of ``keys``.

    Raises ``SignatureRejected`` with ``reason`` one of ``missing``, ``malformed``, ``stale``,
    ``future`` or ``mismatch``.
    """
    timestamp, candidates = _parse(header)
    age = now - int(timestamp)
    if age > tolerance_seconds:
        raise SignatureRejected("signature timestamp is too old", reason="stale")
    if -age > future_skew_seconds:
        raise SignatureRejected("signature timestamp is in the future", reason="future")
    for key in keys:
        if not key:
            continue
        expected = _digest(body, key, timestamp)
        # Compare every candidate, so the time taken does not tell which one came close.
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
        if matched:
            return
    raise SignatureRejected("signature does not match", reason="mismatch")


def _parse(header: str | None) -> tuple[str, list[str]]:
    if header is None or header.strip() == "":
        raise SignatureRejected("signature header is missing", reason="missing")
    if len(header) > _MAX_HEADER_LENGTH:
        raise SignatureRejected("signature header is too long", reason="malformed")
    timestamp: str | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureRejected("signature header is malformed", reason="malformed")
        value = value.strip()
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                raise SignatureRejected("signature timestamp is malformed", reason="malformed")
            timestamp = value
        elif name == "v1":
            if not _HEX_DIGEST.fullmatch(value):
                raise SignatureRejected("signature digest is malformed", reason="malformed")
            candidates.append(value.lower())
        # Other schemes (a future v2, say) are ignored, as Calendly's own verifier does.
    if timestamp is None or not candidates or len(candidates) > _MAX_SIGNATURES:
        raise SignatureRejected("signature header is malformed", reason="malformed")
    return timestamp, candidates


def _digest(body: bytes, key: str, timestamp: str) -> str:
    mac = hmac.new(key.encode("utf-8", "surrogatepass"), digestmod=hashlib.sha256)
    mac.update(timestamp.encode("ascii"))
    mac.update(b".")
    mac.update(body)
    return mac.hexdigest()

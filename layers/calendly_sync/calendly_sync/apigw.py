"""API Gateway request details the handlers need, kept out of the domain code."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from calendly_sync.errors import NotAnEnvelope, PayloadTooLarge


def raw_request_body(event: Mapping[str, Any], max_bytes: int) -> bytes:
    """The bytes Calendly sent, from an API Gateway event (base64-decoded when flagged)."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise NotAnEnvelope("request body is missing")
    if event.get("isBase64Encoded"):
        # Refuse before decoding: base64 is 4/3 of the bytes it carries.
        if len(body) > (max_bytes + 2) // 3 * 4 + 4:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise NotAnEnvelope("body is not valid base64") from None
    else:
        if len(body) > max_bytes:  # a character is at least one byte
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
    return raw

"""Calendly shapes as pydantic models, tolerant of the fields Calendly adds over time."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from calendly_sync.errors import NotAnEnvelope

__all__ = ["WebhookEnvelope", "decode_body", "parse_envelope"]


class WebhookEnvelope(BaseModel):
    """``{"created_at", "created_by"?, "event", "payload"}``: what every delivery carries."""

    model_config = ConfigDict(extra="allow", frozen=True)

    event: str = Field(min_length=1, max_length=128)
    created_at: AwareDatetime
    # Deliveries made before March 2022 have no creator.
    created_by: str | None = None
    payload: dict[str, Any]


def parse_envelope(body_text: str) -> WebhookEnvelope:
    """Parse the body; anything that is not a Calendly envelope raises ``NotAnEnvelope``."""
    try:
        return WebhookEnvelope.model_validate_json(body_text)
    except ValidationError as error:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in error.errors()})
        raise NotAnEnvelope(f"not a Calendly webhook envelope (check: {', '.join(fields)})") from None


def decode_body(raw_body: bytes) -> str:
    """Calendly sends UTF-8 JSON; other bytes are not an envelope."""
    try:
        return raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotAnEnvelope("body is not UTF-8 text") from None

"""Calendly shapes, validated with pydantic-core and tolerant of fields Calendly adds over time.

The schemas are pydantic-core's own (the engine under pydantic), not ``BaseModel`` classes:
the webhook receiver validates one envelope per cold start, and pydantic's model machinery
would add about 40 ms to that cold start for nothing this needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as schema

from calendly_sync import calendly_json
from calendly_sync.errors import NotAnEnvelope

__all__ = ["WebhookEnvelope", "decode_body", "parse_envelope"]

_ENVELOPE = SchemaValidator(
    schema.typed_dict_schema(
        {
            "event": schema.typed_dict_field(schema.str_schema(min_length=1, max_length=128)),
            "created_at": schema.typed_dict_field(schema.datetime_schema(tz_constraint="aware")),
            # Deliveries made before March 2022 have no creator.
            "created_by": schema.typed_dict_field(
                schema.nullable_schema(schema.str_schema()), required=False
            ),
            "payload": schema.typed_dict_field(schema.dict_schema(schema.str_schema(), schema.any_schema())),
        },
        extra_behavior="ignore",
    )
)


@dataclass(frozen=True, slots=True)
class WebhookEnvelope:
    """``{"created_at", "created_by"?, "event", "payload"}``: what every delivery carries."""

    event: str
    created_at: datetime
    payload: dict[str, Any]
    created_by: str | None = None


def decode_body(raw_body: bytes) -> str:
    """Calendly sends UTF-8 JSON; other bytes are not an envelope."""
    try:
        return raw_body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotAnEnvelope("body is not UTF-8 text") from None


def parse_envelope(body_text: str) -> WebhookEnvelope:
    """Parse the body; anything that is not a Calendly envelope raises ``NotAnEnvelope``.

    Read by ``calendly_json`` (a number JSON or PutEvents cannot carry stays its own text),
    then held to the envelope's shape.
    """
    try:
        document = calendly_json.loads(body_text)
    except ValueError:
        raise NotAnEnvelope("not a Calendly webhook envelope (check: body)") from None
    try:
        fields = _ENVELOPE.validate_python(document)
    except ValidationError as error:
        where = sorted({".".join(str(p) for p in e["loc"][:1]) or "body" for e in error.errors()})
        raise NotAnEnvelope(f"not a Calendly webhook envelope (check: {', '.join(where)})") from None
    try:
        # Held in UTC: a time at the edge of the calendar (9999-12-31T23:59:59-05:00) has no
        # UTC reading, and the dedupe key and the no-show order both need one.
        created_at = fields["created_at"].astimezone(UTC)
    except OverflowError:
        raise NotAnEnvelope("not a Calendly webhook envelope (check: created_at)") from None
    return WebhookEnvelope(
        event=fields["event"],
        created_at=created_at,
        payload=fields["payload"],
        created_by=fields.get("created_by"),
    )

"""Moments an operator types (``--since``, ``--until``): ISO-8601, UTC unless an offset is given."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_iso(text: str) -> datetime:
    """An ISO-8601 date or date-time, in UTC when it gives no offset (surrounding blanks ignored).

    Raises ValueError with a message for a person; the message never repeats ``text``.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            "must be an ISO-8601 date or date-time, e.g. 2025-01-01 or 2025-01-01T09:00:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

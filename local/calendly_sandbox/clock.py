"""Timestamps in Calendly's format and a clock whose readings never repeat."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

ONE_MICROSECOND = timedelta(microseconds=1)


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with microseconds, e.g. 2024-04-04T21:10:40.494211Z (Calendly's format)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse the ISO-8601 forms clients send (Z or offset, with or without fractions); naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class StrictClock:
    """Wall clock in UTC whose readings strictly increase.

    Calendly clients detect changes by comparing `updated_at`; two changes landing in the same
    microsecond would look like no change, so every reading is at least 1 µs after the previous one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self.after(self._last)

    def after(self, previous: datetime) -> datetime:
        """A reading later than `previous` (say, a seeded future timestamp) and than every earlier reading."""
        with self._lock:
            reading = max(datetime.now(UTC), previous + ONE_MICROSECOND, self._last + ONE_MICROSECOND)
            self._last = reading
            return reading

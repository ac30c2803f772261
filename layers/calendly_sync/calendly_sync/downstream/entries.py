"""Downstream changes as PutEvents entries: the detail JSON, the 256 KB limit, request chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from calendly_sync.downstream.changes import DownstreamChange

SOURCE = "calendly-sync"
DETAIL_VERSION = 1
#: EventBridge's limit on one PutEvents request, and so on one entry (256 KiB).
MAX_REQUEST_BYTES = 256 * 1024
MAX_ENTRIES_PER_REQUEST = 10


@dataclass(frozen=True, slots=True)
class Entry:
    """One event for the bus; the adapter adds the bus name."""

    change_id: str
    detail_type: str
    detail: str
    truncated: bool

    @property
    def size(self) -> int:
        """The entry's size as EventBridge counts it: source, detail-type and detail in UTF-8."""
        return len(SOURCE.encode()) + len(self.detail_type.encode()) + len(self.detail.encode())


def detail_of(
    change: DownstreamChange, organization: str | None, *, with_calendly: bool = True
) -> dict[str, Any]:
    """The event's ``detail`` (the contract in the README, one schema per detail-type in ``schemas/``)."""
    detail: dict[str, Any] = {
        "detail_version": DETAIL_VERSION,
        "change_id": change.change_id,
        "origin": change.origin,
        "occurred_at": change.occurred_at,
        "organization": organization,
        "subject": change.subject,
        "resource": change.resource,
    }
    if change.changed_fields is not None:
        detail["changed_fields"] = list(change.changed_fields)
    if with_calendly:
        detail["calendly"] = change.calendly
    detail["truncated"] = not with_calendly
    return detail


def entry_of(change: DownstreamChange, organization: str | None) -> Entry | None:
    """The change's entry; without Calendly's payload if it would pass the limit, None if still over."""
    for with_calendly in (True, False):
        detail = _json(detail_of(change, organization, with_calendly=with_calendly))
        entry = Entry(change.change_id, change.detail_type, detail, truncated=not with_calendly)
        if entry.size <= MAX_REQUEST_BYTES:
            return entry
    return None


def chunks(entries: Sequence[Entry]) -> Iterator[list[Entry]]:
    """PutEvents requests in order: at most 10 entries and 256 KiB each."""
    chunk: list[Entry] = []
    size = 0
    for entry in entries:
        if chunk and (len(chunk) == MAX_ENTRIES_PER_REQUEST or size + entry.size > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += entry.size
    if chunk:
        yield chunk


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

"""Downstream changes as PutEvents entries: the detail JSON, the 256 KB limit, request chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
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
        "sequence": change.sequence,
        "resource": change.resource,
    }
    if change.changed_fields is not None:
        detail["changed_fields"] = list(change.changed_fields)
    if with_calendly:
        detail["calendly"] = change.calendly
    detail["truncated"] = not with_calendly
    return detail


#: Past the limit even without Calendly's payload, the resource's strings are cut to this many
#: characters (its shape and types stay what the schema says) rather than the change going
#: unannounced: ``truncated`` tells the consumer to read the rest from Calendly by ``subject``.
CLIPPED_STRING_CHARS = 1024


def entry_of(change: DownstreamChange, organization: str | None) -> Entry | None:
    """The change's entry, cut down only as far as EventBridge's limit needs.

    Whole; else without Calendly's payload; else with the resource's long strings clipped too.
    None only if even that passes the limit (a resource with thousands of long values).
    """
    for with_calendly, clip in ((True, False), (False, False), (False, True)):
        shown = _clipped_resource(change) if clip else change
        detail = _json(detail_of(shown, organization, with_calendly=with_calendly))
        entry = Entry(change.change_id, change.detail_type, detail, truncated=not with_calendly)
        if entry.size <= MAX_REQUEST_BYTES:
            return entry
    return None


def _clipped_resource(change: DownstreamChange) -> DownstreamChange:
    return replace(change, resource=_clipped(change.resource))


def _clipped(value: Any) -> Any:
    if isinstance(value, str):
        return value[:CLIPPED_STRING_CHARS]
    if isinstance(value, dict):
        return {name: _clipped(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_clipped(item) for item in value]
    return value


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
    """The detail as JSON, or ``ValueError``: never ``NaN``/``Infinity``, which are not JSON.

    Values read by ``calendly_json`` never hold one; this is the last line of defence, since
    EventBridge refuses such a detail (``MalformedDetail``) and the publisher sets it aside.
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

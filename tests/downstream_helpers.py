"""Fakes and builders for the downstream publisher's tests (unit and integration).

``MemoryTable`` applies changes with the table's rules (newer-wins versions, links always,
``origin`` and ``publish`` on versioned items) and keeps the stream records a real table
would write, so the pure classifier is tested on the images the publisher really reads.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from calendly_sync.downstream.entries import SOURCE, Entry
from calendly_sync.downstream.publisher import StreamRecord
from calendly_sync.errors import PublishUnavailable
from calendly_sync.table_items import Change, Origin, VersionedItem

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@dataclass
class MemoryTable:
    """The one table's write rules, in memory, with its NEW_AND_OLD_IMAGES stream."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    stream: list[StreamRecord] = field(default_factory=list)
    _sequence: Iterator[int] = field(default_factory=lambda: itertools.count(100))

    def apply(self, changes: Iterable[Change], origin: Origin) -> int:
        """Apply as ``CalendlyTable.apply_changes`` does; returns how many writes landed."""
        landed = 0
        for change in changes:
            key = (change.key.pk, change.key.sk)
            old = self.items.get(key)
            if (
                isinstance(change, VersionedItem)
                and old is not None
                and old.get("version", "") >= change.version
            ):
                continue
            landed += 1
            new = dict(old or {"pk": key[0], "sk": key[1]})
            for name, value in change.attributes.items():
                if value is None:
                    new.pop(name, None)
                else:
                    new[name] = value
            if isinstance(change, VersionedItem):
                new.update(version=change.version, origin=origin.via, publish=origin.publish)
                new["sequence"] = int((old or {}).get("sequence", 0)) + 1
            if new == old:
                continue  # DynamoDB writes no stream record for a write that changes nothing
            self.items[key] = new
            self.stream.append(
                StreamRecord(str(next(self._sequence)), "MODIFY" if old else "INSERT", old, dict(new))
            )
        return landed

    def take_stream(self) -> list[StreamRecord]:
        records, self.stream = self.stream, []
        return records


@dataclass
class FakeLedger:
    ids: set[str] = field(default_factory=set)
    reads: int = 0
    writes: list[list[str]] = field(default_factory=list)

    def already_published(self, change_ids: Sequence[str]) -> set[str]:
        self.reads += 1
        return {change_id for change_id in change_ids if change_id in self.ids}

    def record_published(self, change_ids: Sequence[str]) -> None:
        self.writes.append(list(change_ids))
        self.ids.update(change_ids)


@dataclass
class FakeBus:
    """Accepts every entry unless told to refuse some (by change id) or a whole request."""

    published: list[Entry] = field(default_factory=list)
    requests: list[list[Entry]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    unavailable: bool = False

    def put_events(self, entries: Sequence[Entry]) -> list[str | None]:
        self.requests.append(list(entries))
        if self.unavailable:
            raise PublishUnavailable("EventBridge PutEvents failed (ThrottlingException)")
        results: list[str | None] = []
        for entry in entries:
            if entry.change_id in self.refuse:
                results.append("InternalFailure")
            else:
                self.published.append(entry)
                results.append(None)
        return results

    def detail_types(self) -> list[str]:
        return [entry.detail_type for entry in self.published]


def envelope(event: str, payload: dict[str, Any], created_at: str) -> str:
    """A webhook body as Calendly sends it."""
    return json.dumps(
        {
            "event": event,
            "created_at": created_at,
            "created_by": "https://api.calendly.com/users/OWNER",
            "payload": payload,
        }
    )


def schema_of(detail_type: str) -> dict[str, Any]:
    """The detail-type's whole-event schema in ``schemas/`` (JSON Schema draft 4, as registered)."""
    schema: dict[str, Any] = json.loads((SCHEMAS / f"{detail_type}.json").read_text(encoding="utf-8"))
    return schema


MOTO_ACCOUNT = "123456789012"


def event_around(detail_type: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """``detail`` as a rule's target receives it: in the envelope EventBridge puts around every detail."""
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": SOURCE,
        "account": MOTO_ACCOUNT,
        "time": "2026-12-01T15:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": dict(detail),
    }


def assert_valid_event(event: Mapping[str, Any] | str, detail: Mapping[str, Any] | None = None) -> None:
    """The whole event holds to its detail-type's schema in ``schemas/``, under draft 4.

    ``assert_valid_event(event)``: an event as a target received it (the integration tests' queue);
    ``assert_valid_event(detail_type, detail)``: a detail the publisher made, in ``event_around``.
    """
    if isinstance(event, str):
        assert detail is not None, "a detail-type needs its detail"
        event = event_around(event, detail)
    elif "account" not in event:
        # moto's bus leaves ``account`` out of what it hands a target (its default input template
        # has none); EventBridge always puts it there, and the schema requires it.
        event = {**event, "account": MOTO_ACCOUNT}
    validator = jsonschema.Draft4Validator
    validator(schema_of(event["detail-type"]), format_checker=validator.FORMAT_CHECKER).validate(event)

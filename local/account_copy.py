"""Copy a Calendly account's scheduled events and invitees into the table, once.

The nearest path to a sync until PollCalendlyFunction exists (issue 5): it reads through the
layer's Calendly client and writes through the same records and store code as the webhook
path, so what it writes obeys the same newer-wins rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from calendly_sync import records
from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.records import Change


@dataclass
class CopySummary:
    events: int = 0
    invitees: int = 0
    written: int = 0
    unchanged: int = 0


def copy_account(
    client: CalendlyClient,
    organization: str,
    table: CalendlyTable,
    *,
    min_start: datetime,
    max_start: datetime,
    on_event: Callable[[int], None] | None = None,
) -> CopySummary:
    summary = CopySummary()
    window = {
        "min_start_time": records.format_utc(min_start),
        "max_start_time": records.format_utc(max_start),
    }
    for event in client.scheduled_events(organization, **window):
        changes: list[Change] = []
        item = records.scheduled_event_item(event)
        if item is not None:
            changes.append(item)
        # Invitees always carry their own times; the event's is only a fallback for odd records.
        fallback = str(item.attributes["updated_at"]) if item else records.format_utc(min_start)
        for invitee in client.invitees(event["uri"]):
            changes.extend(records.invitee_changes(invitee, fallback_updated_at=fallback))
            summary.invitees += 1
        outcome = table.apply_changes(changes)
        summary.events += 1
        summary.written += len(outcome.applied)
        summary.unchanged += len(outcome.stale)
        if on_event:
            on_event(summary.events)
    return summary

"""What one webhook delivery is: its audit record, and the resources its payload carries.

Pure domain logic: no AWS, no HTTP. ``receiver`` stores the audit record; ``projector``
applies the resources once the record is stored (from the table's stream).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from calendly_sync import events, table_items
from calendly_sync.envelope import WebhookEnvelope
from calendly_sync.table_items import Change, DeliveryItem, format_utc, normalize_timestamp

# The event names are events.py's; sets here for lookups.
INVITEE_EVENTS = frozenset(events.INVITEE_EVENTS)
EVENT_TYPE_EVENTS = frozenset(events.EVENT_TYPE_EVENTS)
ROUTING_FORM_EVENTS = frozenset(events.ROUTING_FORM_EVENTS)
KNOWN_EVENTS = INVITEE_EVENTS | EVENT_TYPE_EVENTS | ROUTING_FORM_EVENTS


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    event: str
    dedupe_key: str
    delivery: DeliveryItem


def dedupe_key(envelope: WebhookEnvelope) -> str:
    """Deliveries carry no id, so one is derived from what Calendly gives.

    Event name and payload URI name the change; ``updated_at`` tells apart two changes of the
    same kind to one resource (an event type updated twice), which event name and URI alone
    would swallow as duplicates. No-show changes leave ``updated_at`` as it was, so they add
    what does change: a mark its no-show's URI (a re-mark is a new no-show), a removal its
    envelope's ``created_at`` (each removal is its own delivery). A retry repeats them all.
    """
    payload = envelope.payload
    uri = payload.get("uri")
    marker = normalize_timestamp(payload.get("updated_at")) or format_utc(envelope.created_at)
    parts = [envelope.event, uri if isinstance(uri, str) else "", marker]
    if envelope.event == "invitee_no_show.created":
        no_show = payload.get("no_show")
        no_show_uri = no_show.get("uri") if isinstance(no_show, dict) else None
        parts.append(no_show_uri if isinstance(no_show_uri, str) else format_utc(envelope.created_at))
    elif envelope.event == "invitee_no_show.deleted":
        parts.append(format_utc(envelope.created_at))
    if not isinstance(uri, str):
        # Without a URI only the content can tell two deliveries apart.
        parts.append(table_items.content_digest(payload))
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def resource_changes(envelope: WebhookEnvelope) -> tuple[Change, ...]:
    """The items a delivery's payload carries (empty for events we only keep raw)."""
    event, payload = envelope.event, envelope.payload
    changes: list[Change] = []
    if event in INVITEE_EVENTS:
        created_at = format_utc(envelope.created_at)
        changes.extend(
            table_items.invitee_changes(payload, fallback_updated_at=created_at, delivered_at=created_at)
        )
        if changes:
            scheduled_event = table_items.scheduled_event_item(
                payload.get("scheduled_event"), known_at=created_at
            )
            if scheduled_event is not None:
                changes.append(scheduled_event)
    elif event in EVENT_TYPE_EVENTS:
        item = table_items.event_type_item(payload, deleted=event == "event_type.deleted")
        changes.extend([item] if item else [])
    elif event in ROUTING_FORM_EVENTS:
        item = table_items.routing_form_submission_item(payload)
        changes.extend([item] if item else [])
    return tuple(changes)


def plan_delivery(
    envelope: WebhookEnvelope, body_text: str, *, received_at: datetime, retention_days: int
) -> DeliveryPlan:
    """The delivery's audit record, keyed so that a repeat of it is recognised."""
    key = dedupe_key(envelope)
    received = format_utc(received_at)
    # Only what a reader needs without parsing the body: everything else is in it.
    delivery = DeliveryItem(
        table_items.delivery_key(key),
        {
            "entity": "delivery",
            "event": envelope.event,
            "received_at": received,
            "body": body_text,
            "expires_at": int((received_at + timedelta(days=retention_days)).timestamp()),
            "gsi1pk": table_items.delivery_day_partition(received[:10]),
            "gsi1sk": f"{received}#{key}",
        },
    )
    return DeliveryPlan(event=envelope.event, dedupe_key=key, delivery=delivery)

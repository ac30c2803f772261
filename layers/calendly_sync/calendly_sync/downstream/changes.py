"""What a table write changed, as downstream events: a pure function of a stream record's images.

The table's newer-wins writes already absorb duplicates, replays and unchanged re-syncs, so
the stream's OLD and NEW images of a resource item say exactly what changed. Each change
gets an id from what it is (its detail-type, its subject and, for repeatable changes, the
new state), never from how it was seen: a change found by the poller and the same change
delivered later by a webhook have one id, and the ledger publishes it once.

Images are plain Python values (the stream's DynamoDB JSON deserialized), as the table's
items are described in ``table_items``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from calendly_sync import calendly_json
from calendly_sync.table_items import content_digest, normalize_timestamp

ORIGINS = ("webhook", "poll", "backfill")
ENTITIES = ("invitee", "scheduled_event", "event_type", "routing_form_submission")

#: The scheduled event's fields a ``scheduled_event.updated`` reports, in this order.
SCHEDULED_EVENT_FIELDS = ("start_time", "end_time", "status", "name", "location")

Image = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DownstreamChange:
    """One effective change of a Calendly resource, ready to become one event."""

    detail_type: str
    change_id: str
    origin: str
    occurred_at: str
    subject: str
    resource: dict[str, Any]
    #: Calendly's own object (the item's ``raw``), parsed; None when it is not readable JSON.
    calendly: Any
    #: ``scheduled_event.updated`` only: which of ``SCHEDULED_EVENT_FIELDS`` changed.
    changed_fields: tuple[str, ...] | None = None
    #: The item's ``sequence`` after the write: grows with every write that landed on it.
    sequence: int = 0


def change_id(detail_type: str, subject: str, marker: str = "") -> str:
    """32 hex characters naming a change by what it is, whoever saw it."""
    text = "\n".join((detail_type, subject, marker))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def record_changes(event_name: str, old: Image | None, new: Image | None) -> list[DownstreamChange]:
    """The changes one stream record announces (``event_name`` INSERT, MODIFY or REMOVE), in order.

    Nothing for a removal, an item without ``version`` (a reschedule link's stub), a write
    that left ``version`` as it was (a link added to a stored item), history a quiet backfill
    stores for the first time (``publish`` false on an item the table did not hold), or any
    item that is not one of the four published resources. A quiet backfill's change to what
    the table already held is an effective change like any other: the webhook or poll that
    brings the same state later finds nothing left to announce.
    """
    if event_name not in ("INSERT", "MODIFY") or not new or not _text(new.get("version")):
        return []
    if new.get("entity") not in ENTITIES:
        return []
    if old is not None and not _text(old.get("version")):
        old = None  # a stub: the resource itself is seen for the first time
    if old is None and new.get("publish") is False:
        return []
    if old is not None and old.get("version") == new.get("version"):
        return []
    classify = _CLASSIFIERS[str(new["entity"])]
    return [replace(change, sequence=_sequence(new)) for change in classify(old, new, _origin(new))]


# --- per resource ------------------------------------------------------------------------


def _invitee_changes(old: Image | None, new: Image, origin: str) -> list[DownstreamChange]:
    uri = _text(new.get("uri")) or ""
    resource, calendly = invitee_resource(new), _raw(new)
    no_show = resource["no_show"]
    found: list[DownstreamChange] = []

    def add(detail_type: str, subject: str, occurred_at: str) -> None:
        found.append(
            DownstreamChange(
                detail_type, change_id(detail_type, subject), origin, occurred_at, subject, resource, calendly
            )
        )

    updated_at = _updated_at(new)
    canceled_at = normalize_timestamp(new.get("canceled_at")) or updated_at
    new_no_show = _text(new.get("no_show"))
    if old is None:
        add("invitee.created", uri, normalize_timestamp(new.get("created_at")) or updated_at)
        if new.get("status") == "canceled":
            add("invitee.canceled", uri, canceled_at)
        if new_no_show:
            add("invitee_no_show.created", new_no_show, _no_show_created_at(no_show) or updated_at)
        return found
    if new.get("status") == "canceled" and old.get("status") != "canceled":
        add("invitee.canceled", uri, canceled_at)
    old_no_show = _text(old.get("no_show"))
    if old_no_show != new_no_show:
        if old_no_show:
            add("invitee_no_show.deleted", old_no_show, _as_of(new) or updated_at)
        if new_no_show:
            add("invitee_no_show.created", new_no_show, _no_show_created_at(no_show) or updated_at)
    return found


def _scheduled_event_changes(old: Image | None, new: Image, origin: str) -> list[DownstreamChange]:
    if old is None:
        return []  # its invitees' invitee.created carry it
    before, after = scheduled_event_resource(old), scheduled_event_resource(new)
    changed = tuple(name for name in SCHEDULED_EVENT_FIELDS if before[name] != after[name])
    if not changed:
        return []
    detail_type, subject, updated_at = "scheduled_event.updated", after["uri"] or "", _updated_at(new)
    marker = f"{updated_at}|{content_digest({name: after[name] for name in changed})[:16]}"
    return [
        DownstreamChange(
            detail_type,
            change_id(detail_type, subject, marker),
            origin,
            updated_at,
            subject,
            after,
            _raw(new),
            changed_fields=changed,
        )
    ]


def _event_type_changes(old: Image | None, new: Image, origin: str) -> list[DownstreamChange]:
    deleted = new.get("deleted") is True
    if old is None:
        detail_type = "event_type.deleted" if deleted else "event_type.created"
    elif deleted and old.get("deleted") is not True:
        detail_type = "event_type.deleted"
    elif not deleted and _updated_at(old) != _updated_at(new):
        detail_type = "event_type.updated"
    else:
        # The same state read again, or a deleted event type touched once more.
        return []
    subject, updated_at, calendly = _text(new.get("uri")) or "", _updated_at(new), _raw(new)
    occurred_at = updated_at
    if detail_type == "event_type.deleted" and isinstance(calendly, Mapping):
        occurred_at = normalize_timestamp(calendly.get("deleted_at")) or updated_at
    marker = updated_at if detail_type == "event_type.updated" else ""
    return [
        DownstreamChange(
            detail_type,
            change_id(detail_type, subject, marker),
            origin,
            occurred_at,
            subject,
            event_type_resource(new),
            calendly,
        )
    ]


def _submission_changes(old: Image | None, new: Image, origin: str) -> list[DownstreamChange]:
    if old is not None:
        return []
    detail_type, subject = "routing_form_submission.created", _text(new.get("uri")) or ""
    return [
        DownstreamChange(
            detail_type,
            change_id(detail_type, subject),
            origin,
            normalize_timestamp(new.get("created_at")) or _updated_at(new),
            subject,
            routing_form_submission_resource(new),
            _raw(new),
        )
    ]


_CLASSIFIERS = {
    "invitee": _invitee_changes,
    "scheduled_event": _scheduled_event_changes,
    "event_type": _event_type_changes,
    "routing_form_submission": _submission_changes,
}


# --- resource shapes (documented in the README and schemas/) --------------------------------


def invitee_resource(item: Image) -> dict[str, Any]:
    """The invitee as a flow acts on it: the item's fields, then what only Calendly's object has.

    Both halves are read off the stored item (its fields and its ``raw``), so a change the
    poller found carries the same resource as the webhook's.
    """
    raw = _raw(item)
    raw = raw if isinstance(raw, Mapping) else {}
    resource = {"type": "invitee", **_read(item, _INVITEE_FIELDS)}
    cancellation = None
    calendly_cancellation = raw.get("cancellation")
    if resource["status"] == "canceled" or isinstance(calendly_cancellation, Mapping):
        given = calendly_cancellation if isinstance(calendly_cancellation, Mapping) else {}
        cancellation = {
            "canceler_type": _text(item.get("canceler_type")),
            "canceled_at": normalize_timestamp(item.get("canceled_at")),
            "reason": _text(given.get("reason")),
            "canceled_by": _text(given.get("canceled_by")),
        }
    no_show = raw.get("no_show")
    return {
        **resource,
        "rescheduled": item.get("rescheduled") is True or raw.get("rescheduled") is True,
        "old_invitee": _text(item.get("old_invitee")) or _text(raw.get("old_invitee")),
        "new_invitee": _text(item.get("new_invitee")) or _text(raw.get("new_invitee")),
        "cancellation": cancellation,
        "no_show": (
            {"uri": _text(no_show.get("uri")), "created_at": normalize_timestamp(no_show.get("created_at"))}
            if isinstance(no_show, Mapping)
            else None
        ),
        "scheduled_event": _scheduled_event_summary(item.get("scheduled_event")),
        **_read(raw, _INVITEE_ANSWERS),
    }


def scheduled_event_resource(item: Image) -> dict[str, Any]:
    raw = _raw(item)
    raw = raw if isinstance(raw, Mapping) else {}
    # The item keeps no location, hosts, guests or seats of its own: Calendly's object has them.
    return {
        "type": "scheduled_event",
        **_read({**item, "location": raw.get("location")}, _SCHEDULED_EVENT_FIELDS),
        **_read(raw, _MEETING_FIELDS),
    }


def event_type_resource(item: Image) -> dict[str, Any]:
    return {"type": "event_type", **_read(item, _EVENT_TYPE_FIELDS)}


def routing_form_submission_resource(item: Image) -> dict[str, Any]:
    raw = _raw(item)
    raw = raw if isinstance(raw, Mapping) else {}
    return {
        "type": "routing_form_submission",
        **_read(item, _SUBMISSION_FIELDS),
        **_read(raw, _SUBMISSION_ANSWERS),
    }


def _scheduled_event_summary(text: object) -> dict[str, Any] | None:
    """The event essentials an invitee item keeps (``table_items.scheduled_event_summary``), in shape."""
    summary = _json(text)
    return _read(summary, _SUMMARY_FIELDS) if isinstance(summary, Mapping) else None


def _read(item: object, fields: Mapping[str, Callable[[object], Any]]) -> dict[str, Any]:
    """Each of ``fields`` (in its order) read from ``item`` by its reader (None off a non-object)."""
    values = item if isinstance(item, Mapping) else {}
    return {name: read(values.get(name)) for name, read in fields.items()}


def _flag(value: object) -> bool:
    return value is True


def _object(value: object) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _uri(value: object) -> str | None:
    """A URI Calendly gives as text, or embeds as an object with ``uri``."""
    return _text(value.get("uri")) if isinstance(value, Mapping) else _text(value)


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value: object) -> int | float | str | None:
    """An amount: a JSON number, or the text of one too large for JSON to carry (kept as text)."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    return None


def _optional_flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _shape(fields: Mapping[str, Callable[[object], Any]]) -> Callable[[object], dict[str, Any] | None]:
    """A reader of one nested object: ``fields`` read off it, or None when it is not an object."""

    def read(value: object) -> dict[str, Any] | None:
        return _read(value, fields) if isinstance(value, Mapping) else None

    return read


def _list_of(fields: Mapping[str, Callable[[object], Any]]) -> Callable[[object], list[dict[str, Any]]]:
    """A reader of a list of objects, each in shape; ``[]`` when Calendly gives none."""
    read_one = _shape(fields)

    def read(value: object) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            return []
        return [shaped for entry in value if (shaped := read_one(entry)) is not None]

    return read


def _answer(value: object) -> str | list[str] | None:
    """A form's answer: text, or the choices picked in a multiple-choice question."""
    if isinstance(value, list):
        return [entry for entry in value if isinstance(entry, str)]
    return _text(value)


def _any_json(value: object) -> Any:
    return value


# Each resource's fields in the order its detail lists them, each with how it is read off the item.
_TIMES = {"created_at": normalize_timestamp, "updated_at": normalize_timestamp}
_INVITEE_FIELDS = {"uri": _text, "email": _text, "name": _text, "status": _text, "timezone": _text, **_TIMES}
_SCHEDULED_EVENT_FIELDS = {
    "uri": _text,
    "name": _text,
    "status": _text,
    "start_time": normalize_timestamp,
    "end_time": normalize_timestamp,
    "event_type": _text,
    "location": _object,
    "canceler_type": _text,
    **_TIMES,
}
_EVENT_TYPE_FIELDS = {
    "uri": _text,
    "name": _text,
    "slug": _text,
    "active": _flag,
    "deleted": _flag,
    "owner": _text,
    **_TIMES,
}
_SUBMISSION_FIELDS = {
    "uri": _text,
    "routing_form": _text,
    "submitter": _text,
    "submitter_type": _text,
    "result_type": _text,
    **_TIMES,
}
#: A meeting's hosts, guests and seats (``invitees_counter``), as Calendly's scheduled event has them.
_MEETING_FIELDS = {
    "event_memberships": _list_of({"user": _uri, "user_email": _text, "user_name": _text}),
    "event_guests": _list_of({"email": _text, **_TIMES}),
    "invitees_counter": _shape(dict.fromkeys(("total", "active", "limit"), _integer)),
}
#: An invitee's event essentials: its times are kept as the writer normalized them.
_SUMMARY_FIELDS = {
    **dict.fromkeys(("uri", "name", "status", "start_time", "end_time", "event_type"), _text),
    "location": _object,
    "canceler_type": _text,
    **_MEETING_FIELDS,
    **_TIMES,
}
_TRACKING = _shape(
    dict.fromkeys(
        ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid"), _text
    )
)
#: What the invitee answered and how they booked: Calendly's own object is the only place it is.
_INVITEE_ANSWERS = {
    "first_name": _text,
    "last_name": _text,
    "questions_and_answers": _list_of({"question": _text, "answer": _text, "position": _integer}),
    "tracking": _TRACKING,
    "cancel_url": _text,
    "reschedule_url": _text,
    "text_reminder_number": _text,
    "payment": _shape(
        {
            "external_id": _text,
            "provider": _text,
            "amount": _number,
            "currency": _text,
            "terms": _text,
            "successful": _optional_flag,
        }
    ),
    "reconfirmation": _shape({"created_at": normalize_timestamp, "confirmed_at": normalize_timestamp}),
    "scheduling_method": _text,
    "invitee_scheduled_by": _uri,
    "routing_form_submission": _uri,
}
_SUBMISSION_ANSWERS = {
    "questions_and_answers": _list_of({"question_uuid": _text, "question": _text, "answer": _answer}),
    "tracking": _TRACKING,
    "result": _shape({"type": _text, "value": _any_json}),
}


# --- values ------------------------------------------------------------------------------


def _origin(item: Image) -> str:
    origin = item.get("origin")
    # Items written before writes recorded how they were seen: only a poll rewrites those.
    return origin if isinstance(origin, str) and origin in ORIGINS else "poll"


def _updated_at(item: Image) -> str:
    """The item's ``updated_at``; every versioned item has one (it starts the version)."""
    version = _text(item.get("version")) or ""
    return normalize_timestamp(item.get("updated_at")) or version.split("#", 1)[0]


def _as_of(item: Image) -> str | None:
    """The ``as of`` part of an invitee version (``<updated_at>#<final>#~<as of>#<digest>``)."""
    parts = (_text(item.get("version")) or "").split("#")
    if len(parts) == 4 and parts[2].startswith("~"):
        return normalize_timestamp(parts[2][1:])
    return None


def _sequence(item: Image) -> int:
    """The item's write count (``adapters.dynamodb``); 0 on an item written before it had one."""
    value = item.get("sequence")
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return int(value)
    return 0


def _no_show_created_at(no_show: object) -> str | None:
    return _text(no_show.get("created_at")) if isinstance(no_show, Mapping) else None


def _raw(item: Image) -> Any:
    return _json(item.get("raw"))


def _json(text: object) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return calendly_json.loads(text)
    except ValueError:
        return None

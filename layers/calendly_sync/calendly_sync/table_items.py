"""How Calendly resources become items of the one table.

Key design (the access patterns are in the README):

- scheduled event: ``EVENT#<event uuid>`` / ``EVENT``;
  index ByTime ``START#<UTC day>`` / ``<start time>#<event uuid>``
- invitee: ``EVENT#<event uuid>`` / ``INVITEE#<invitee uuid>`` (beside its event);
  index ByEmail ``EMAIL#<lower-case email>`` / ``<created at>#<invitee uuid>``
- event type: ``EVENT_TYPE#<uuid>`` / ``EVENT_TYPE``
- routing form submission: ``ROUTING_FORM_SUBMISSION#<uuid>`` / ``SUBMISSION``
- webhook delivery: ``DELIVERY#<dedupe key>`` / ``DELIVERY``;
  index ByTime ``DELIVERIES#<UTC day>`` / ``<received at>#<dedupe key>``; expires by TTL
- organization membership: ``MEMBERSHIP#<uuid>`` / ``MEMBERSHIP``
- sync state: ``SYNC`` / ``CONNECTION``, ``SUBSCRIPTION``, ``CHECKPOINT#…``, ``LEASE#…``

Every resource item carries ``version`` = ``<updated_at>#<final>#<content digest>``: a write
lands only when its version sorts after the stored one, so older never overwrites newer.
Between two bodies stamped with the same ``updated_at``, a final state (canceled, deleted)
wins, and otherwise the digest picks one winner whatever order they arrive in. The raw
Calendly object is kept in ``raw`` beside the normalized fields.

Invitee and scheduled event versions have one more part, ``<updated_at>#<final>#~<as of>#<digest>``,
because Calendly changes them without touching ``updated_at`` (an invitee's no-show marked or
removed; a group event's seats filling as invitees join): on a tie, ``as of`` (when the body's
state is known to hold) orders those changes. See ``state_version``.

Everything here is pure: the webhook receiver and the poller build the same items from the
same Calendly objects, and ``adapters.dynamodb`` writes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

AttributeValue = str | int | bool | None

_ID = r"([A-Za-z0-9_-]{1,64})"
_INVITEE_URI = re.compile(rf"/scheduled_events/{_ID}/invitees/{_ID}/?$")
_EVENT_URI = re.compile(rf"/scheduled_events/{_ID}/?$")
_EVENT_TYPE_URI = re.compile(rf"/event_types/{_ID}/?$")
_SUBMISSION_URI = re.compile(rf"/routing_form_submissions/{_ID}/?$")
_MEMBERSHIP_URI = re.compile(rf"/organization_memberships/{_ID}/?$")
#: Where a resource's ``updated_at`` comes from: its own, else its creation (never updated yet).
_STAMPS = ("updated_at", "created_at")


@dataclass(frozen=True, slots=True)
class ItemKey:
    pk: str
    sk: str


@dataclass(frozen=True, slots=True)
class VersionedItem:
    """A Calendly resource, written only if ``version`` is newer than what is stored.

    ``None`` values remove the attribute; attributes not listed are left as they are.
    """

    key: ItemKey
    version: str
    attributes: Mapping[str, AttributeValue]


@dataclass(frozen=True, slots=True)
class LinkUpdate:
    """Attributes set whatever the stored version: reschedule links, which never change once made.

    On an item not stored yet this leaves a stub that the resource's own write fills in.
    """

    key: ItemKey
    attributes: Mapping[str, AttributeValue]


Change = VersionedItem | LinkUpdate


@dataclass(frozen=True, slots=True)
class Origin:
    """How a change was seen, written on every versioned item it lands on.

    The publisher (``downstream``) reads it from the table's stream: ``via`` becomes the
    downstream event's ``origin``; ``publish`` false keeps a quiet backfill off the bus.
    """

    via: str
    publish: bool = True


WEBHOOK = Origin("webhook")
POLL = Origin("poll")


def backfill_origin(*, publish: bool) -> Origin:
    return Origin("backfill", publish=publish)


@dataclass(frozen=True, slots=True)
class DeliveryItem:
    """The audit record of one webhook delivery, written once per dedupe key."""

    key: ItemKey
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


# --- keys -------------------------------------------------------------------------------


def scheduled_event_key(event_uuid: str) -> ItemKey:
    return ItemKey(f"EVENT#{event_uuid}", "EVENT")


def invitee_key(event_uuid: str, invitee_uuid: str) -> ItemKey:
    return ItemKey(f"EVENT#{event_uuid}", f"INVITEE#{invitee_uuid}")


def event_type_key(event_type_uuid: str) -> ItemKey:
    return ItemKey(f"EVENT_TYPE#{event_type_uuid}", "EVENT_TYPE")


def routing_form_submission_key(submission_uuid: str) -> ItemKey:
    return ItemKey(f"ROUTING_FORM_SUBMISSION#{submission_uuid}", "SUBMISSION")


def membership_key(membership_uuid: str) -> ItemKey:
    return ItemKey(f"MEMBERSHIP#{membership_uuid}", "MEMBERSHIP")


def delivery_key(dedupe_key: str) -> ItemKey:
    return ItemKey(f"DELIVERY#{dedupe_key}", "DELIVERY")


def sync_state_key(name: str) -> ItemKey:
    """Pattern 5: ``SYNC`` / ``CONNECTION``, ``SUBSCRIPTION``, poll checkpoints."""
    return ItemKey("SYNC", name)


def start_day_partition(day: str) -> str:
    """``ByStartTime`` partition of the scheduled events starting on a UTC day (YYYY-MM-DD)."""
    return f"START#{day}"


def delivery_day_partition(day: str) -> str:
    """``ByStartTime`` partition of the deliveries received on a UTC day (YYYY-MM-DD)."""
    return f"DELIVERIES#{day}"


def email_partition(email: str) -> str:
    return f"EMAIL#{email.strip().lower()}"


def parse_invitee_uri(uri: object) -> tuple[str, str] | None:
    """``(event uuid, invitee uuid)`` of an invitee URI, or ``None`` if it is not one."""
    match = _INVITEE_URI.search(uri) if isinstance(uri, str) else None
    return (match.group(1), match.group(2)) if match else None


# --- values -----------------------------------------------------------------------------


def format_utc(value: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds, so timestamps compare as text.

    Raises ``OverflowError`` for a time whose UTC reading falls outside years 1 to 9999.
    """
    # isoformat, not strftime: strftime("%Y") writes year 1 as "1", which breaks text order.
    utc = value.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def normalize_timestamp(value: object) -> str | None:
    """Calendly's ISO-8601 time as fixed-width UTC with microseconds (sorts as text), else None.

    A time that cannot be represented in UTC (``9999-12-31T23:59:59-05:00``, year 10000) is
    ``None`` like any other unreadable time, never an exception.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return format_utc(parsed)
    except (ValueError, OverflowError):
        return None


def compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def content_digest(value: object) -> str:
    canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _version(resource: Mapping[str, Any], updated_at: str, *, final: bool = False) -> str:
    return f"{updated_at}#{1 if final else 0}#{content_digest(resource)[:16]}"


#: Starts the ``as of`` part of an invitee version. It sorts after every hex digit, so on a
#: tie of ``updated_at`` and final flag, a version with ``as of`` wins over one written
#: before invitee versions had it (``<updated_at>#<final>#<digest>``), whose digest would
#: otherwise sort against a timestamp by chance.
_AS_OF_MARK = "~"


def state_version(resource: Mapping[str, Any], updated_at: str, *, final: bool, as_of: str) -> str:
    """``<updated_at>#<final>#~<as of>#<digest>``: what orders two bodies of one invitee or event.

    ``updated_at`` first, then a final state (canceled) wins, then ``as of``, the moment the
    body's state is known to hold (``_as_of``): Calendly leaves ``updated_at`` as it was when a
    no-show is marked or removed, and when a group event's ``invitees_counter`` moves, so only
    ``as of`` tells those states apart. The digest settles the rest.
    """
    return f"{updated_at}#{1 if final else 0}#{_AS_OF_MARK}{as_of}#{content_digest(resource)[:16]}"


def _state_parts(version: str) -> tuple[str, str, str] | None:
    """``(updated_at, final, digest)`` of an invitee version that has ``as of``, else None."""
    parts = version.split("#")
    if len(parts) != 4 or not parts[2].startswith(_AS_OF_MARK):
        return None
    return parts[0], parts[1], parts[3]


def same_state(stored_version: str, new_version: str) -> bool:
    """True when two versions describe the same state, whatever their ``as of`` says.

    A reader that reads an unchanged invitee again (the poller) must not rewrite it: its
    ``as of`` is later, so the write would land and change nothing but the version. A stored
    version without ``as of`` (written before invitee versions had one) is never the same
    state: rewriting it once gives it an ``as of`` that later no-show changes can be ordered by.
    """
    if stored_version == new_version:
        return True
    stored, new = _state_parts(stored_version), _state_parts(new_version)
    return stored is not None and stored == new


def _as_of(no_show: object, *, read_at: str | None, delivered_at: str | None, updated_at: str) -> str:
    """A moment at which a body's state held, to order no-show changes (see ``state_version``).

    - Read by a poll at ``read_at``: then, or the no-show's own ``created_at`` if the reader's
      clock is behind it.
    - Delivered with a no-show: the no-show's ``created_at``, the moment of the mark. Not the
      envelope's ``created_at``: Calendly makes an envelope some time after the change (25 s
      in one public capture), by which time the mark may already be removed again.
    - Delivered without one: the envelope's ``created_at`` (``delivered_at``); a removal
      carries no time of its own, and its envelope is made after the mark it removes.
      A re-mark made before that envelope loses to it until a poll reads the invitee again.
    - Otherwise ``updated_at``, the earliest it can be.
    """
    marked_at = normalize_timestamp(no_show.get("created_at")) if isinstance(no_show, Mapping) else None
    read_at = normalize_timestamp(read_at)
    if read_at is not None:
        return max(read_at, marked_at) if marked_at is not None else read_at
    return marked_at or normalize_timestamp(delivered_at) or updated_at


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _uri_of(value: object) -> str | None:
    """Calendly sometimes embeds an object where older payloads had its URI."""
    if isinstance(value, Mapping):
        return _text(value.get("uri"))
    return _text(value)


# --- resources -> items -----------------------------------------------------------------


def scheduled_event_item(resource: object, *, known_at: str | None = None) -> VersionedItem | None:
    """The item of a scheduled event (``GET /scheduled_events/{uuid}`` or an embedded one).

    ``known_at`` (UTC text as ``format_utc`` writes it) is when the body's state held: when a
    poll read it, or the envelope's ``created_at`` of the delivery that embedded it. It orders
    two bodies with one ``updated_at`` (``state_version``), which group events have whenever
    an invitee joins or leaves: Calendly moves ``invitees_counter`` but not ``updated_at``.
    """
    return _resource_item(_SCHEDULED_EVENT, resource, _scheduled_event_fields, known_at=known_at)


def _scheduled_event_fields(resource: Mapping[str, Any], event_uuid: str) -> _Fields:
    start_time = normalize_timestamp(resource.get("start_time"))
    status = _text(resource.get("status"))
    cancellation = resource.get("cancellation")
    return _Fields(
        {
            "event_uuid": event_uuid,
            "name": _text(resource.get("name")),
            "status": status,
            "start_time": start_time,
            "end_time": normalize_timestamp(resource.get("end_time")),
            "event_type": _uri_of(resource.get("event_type")),
            "canceler_type": (
                _text(cancellation.get("canceler_type")) if isinstance(cancellation, Mapping) else None
            ),
        },
        final=status == "canceled",
        index={
            "gsi1pk": start_day_partition(start_time[:10]) if start_time else None,
            "gsi1sk": f"{start_time}#{event_uuid}" if start_time else None,
        },
    )


def scheduled_event_summary(resource: object) -> str | None:
    """The essentials of an invitee's scheduled event, kept on the invitee's item (JSON text).

    Downstream events describe an invitee together with its event as the writer saw it, so
    the publisher never reads the event's own item (which may be written after the invitee).
    """
    if not isinstance(resource, Mapping) or not isinstance(resource.get("uri"), str):
        return None
    cancellation = resource.get("cancellation")
    summary = {
        "uri": resource["uri"],
        "name": _text(resource.get("name")),
        "status": _text(resource.get("status")),
        "start_time": normalize_timestamp(resource.get("start_time")),
        "end_time": normalize_timestamp(resource.get("end_time")),
        "event_type": _uri_of(resource.get("event_type")),
        "location": resource.get("location") if isinstance(resource.get("location"), Mapping) else None,
        "canceler_type": (
            _text(cancellation.get("canceler_type")) if isinstance(cancellation, Mapping) else None
        ),
        # Hosts, guests and seats as Calendly gives them (``downstream`` puts them in shape).
        **{name: resource.get(name) for name in _MEETING_PARTS},
        "created_at": normalize_timestamp(resource.get("created_at")),
        "updated_at": normalize_timestamp(resource.get("updated_at")),
    }
    return compact_json(summary)


#: What a flow needs of a meeting besides its time and place: who hosts, who else comes, the seats.
_MEETING_PARTS = ("event_memberships", "event_guests", "invitees_counter")


def invitee_changes(
    resource: object,
    *,
    fallback_updated_at: str,
    as_of: str | None = None,
    delivered_at: str | None = None,
    scheduled_event: object = None,
) -> list[Change]:
    """The invitee's item plus the reschedule links it implies; empty if it is not an invitee.

    Two moments (UTC text as ``format_utc`` writes it) order no-show changes, which leave
    ``updated_at`` as it was (``state_version``, ``_as_of``): ``as_of``, when a poll read
    the body (its state held then), and ``delivered_at``, a webhook envelope's ``created_at``
    (made after the change the body shows).

    The embedded ``scheduled_event`` is left out of the invitee's ``raw``: it is stored as the
    event's own item. Its essentials (``scheduled_event_summary``) are kept on the invitee, from
    the embedded one or, for a poll, from ``scheduled_event`` (the listed event); they are not
    part of the invitee's version.
    """
    if not isinstance(resource, Mapping):
        return []
    ids = parse_invitee_uri(resource.get("uri"))
    if ids is None:
        return []
    event_uuid, invitee_uuid = ids
    own = {name: value for name, value in resource.items() if name != "scheduled_event"}
    updated_at = _first_time(own, _STAMPS) or fallback_updated_at
    created_at = normalize_timestamp(own.get("created_at")) or updated_at
    email = _text(own.get("email"))
    email = email.strip().lower() if email and email.strip() else None
    cancellation = own.get("cancellation")
    cancellation = cancellation if isinstance(cancellation, Mapping) else {}
    attributes: dict[str, AttributeValue] = {
        "entity": "invitee",
        "uri": own["uri"],
        "event_uuid": event_uuid,
        "invitee_uuid": invitee_uuid,
        "event_uri": _uri_of(own.get("event")),
        "status": _text(own.get("status")),
        "email": email,
        "name": _text(own.get("name")),
        "timezone": _text(own.get("timezone")),
        "no_show": _uri_of(own.get("no_show")),
        "canceler_type": _text(cancellation.get("canceler_type")),
        "canceled_at": normalize_timestamp(cancellation.get("created_at")),
        "created_at": created_at,
        "updated_at": updated_at,
        "raw": compact_json(own),
        "scheduled_event": scheduled_event_summary(
            resource.get("scheduled_event") if scheduled_event is None else scheduled_event
        ),
        "gsi2pk": email_partition(email) if email else None,
        "gsi2sk": f"{created_at}#{invitee_uuid}" if email else None,
    }
    changes: list[Change] = []
    # Reschedule facts are only ever added, so a payload that lacks them must not erase them.
    if own.get("rescheduled") is True:
        attributes["rescheduled"] = True
    old_invitee = _text(own.get("old_invitee"))
    new_invitee = _text(own.get("new_invitee"))
    old_ids = parse_invitee_uri(old_invitee)
    new_ids = parse_invitee_uri(new_invitee)
    # A link pointing back at the invitee itself is nonsense and would put two writes on one item.
    if old_ids and old_ids != ids:
        attributes["old_invitee"] = old_invitee
        changes.append(LinkUpdate(invitee_key(*old_ids), _link(old_invitee, old_ids, new_invitee=own["uri"])))
    if new_ids and new_ids != ids:
        attributes["new_invitee"] = new_invitee
        changes.append(LinkUpdate(invitee_key(*new_ids), _link(new_invitee, new_ids, old_invitee=own["uri"])))
    version = state_version(
        own,
        updated_at,
        final=attributes["status"] == "canceled",
        as_of=_as_of(own.get("no_show"), read_at=as_of, delivered_at=delivered_at, updated_at=updated_at),
    )
    changes.insert(0, VersionedItem(invitee_key(event_uuid, invitee_uuid), version, attributes))
    return changes


def _link(uri: str | None, ids: tuple[str, str], **links: str) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        "entity": "invitee",
        "uri": uri,
        "event_uuid": ids[0],
        "invitee_uuid": ids[1],
        **links,
    }
    if "new_invitee" in links:
        attributes["rescheduled"] = True
    return attributes


def event_type_item(resource: object, *, deleted: bool = False) -> VersionedItem | None:
    return _resource_item(_EVENT_TYPE, resource, partial(_event_type_fields, deleted=deleted))


def _event_type_fields(resource: Mapping[str, Any], _uuid: str, *, deleted: bool) -> _Fields:
    profile = resource.get("profile")
    return _Fields(
        {
            "name": _text(resource.get("name")),
            "slug": _text(resource.get("slug")),
            "active": resource.get("active") is True and not deleted,
            "deleted": deleted,
            "owner": _uri_of(profile.get("owner")) if isinstance(profile, Mapping) else None,
        },
        final=deleted,
    )


def routing_form_submission_item(resource: object) -> VersionedItem | None:
    return _resource_item(_SUBMISSION, resource, _submission_fields)


def _submission_fields(resource: Mapping[str, Any], _uuid: str) -> _Fields:
    result = resource.get("result")
    return _Fields(
        {
            "routing_form": _uri_of(resource.get("routing_form")),
            "submitter": _uri_of(resource.get("submitter")),
            "submitter_type": _text(resource.get("submitter_type")),
            "result_type": _text(result.get("type")) if isinstance(result, Mapping) else None,
        }
    )


def membership_item(resource: object) -> VersionedItem | None:
    """An organization member (``GET /organization_memberships``): who hosts, with which role."""
    return _resource_item(_MEMBERSHIP, resource, _membership_fields)


def _membership_fields(resource: Mapping[str, Any], _uuid: str) -> _Fields:
    return _Fields({"user": _uri_of(resource.get("user")), "role": _text(resource.get("role"))})


# --- the skeleton every resource item but the invitee's shares ---------------------------


@dataclass(frozen=True, slots=True)
class _Kind:
    """What tells one kind of resource item from another; ``_resource_item`` does the rest."""

    entity: str
    uri: re.Pattern[str]
    key: Callable[[str], ItemKey]
    #: The resource's times ``updated_at`` is read from, the first readable one.
    stamps: tuple[str, ...] = _STAMPS
    #: Its version has an ``as of`` part (``state_version``): Calendly changes it without ``updated_at``.
    ordered_by_known_at: bool = False


@dataclass(frozen=True, slots=True)
class _Fields:
    """A resource's own attributes, between ``uri`` and the shared times, and how final it is."""

    attributes: dict[str, AttributeValue]
    final: bool = False
    #: Index keys, written after ``raw``.
    index: dict[str, AttributeValue] = field(default_factory=dict)


_SCHEDULED_EVENT = _Kind("scheduled_event", _EVENT_URI, scheduled_event_key, ordered_by_known_at=True)
# A deleted event type may carry only ``deleted_at`` besides its creation.
_EVENT_TYPE = _Kind("event_type", _EVENT_TYPE_URI, event_type_key, ("updated_at", "deleted_at", "created_at"))
_SUBMISSION = _Kind("routing_form_submission", _SUBMISSION_URI, routing_form_submission_key)
_MEMBERSHIP = _Kind("membership", _MEMBERSHIP_URI, membership_key)


def _resource_item(
    kind: _Kind,
    resource: object,
    fields: Callable[[Mapping[str, Any], str], _Fields],
    *,
    known_at: str | None = None,
) -> VersionedItem | None:
    """The item of ``resource`` if it is one of ``kind`` (its URI) with a readable time, else None.

    Kinds ordered by when a state was known (``_Kind.ordered_by_known_at``) get a
    ``state_version`` with ``known_at`` as its ``as of`` (else their ``updated_at``).
    """
    if not isinstance(resource, Mapping):
        return None
    match = kind.uri.search(_text(resource.get("uri")) or "")
    updated_at = _first_time(resource, kind.stamps)
    if match is None or updated_at is None:
        return None
    uuid = match.group(1)
    own = fields(resource, uuid)
    attributes: dict[str, AttributeValue] = {
        "entity": kind.entity,
        "uri": resource["uri"],
        **own.attributes,
        "created_at": normalize_timestamp(resource.get("created_at")),
        "updated_at": updated_at,
        "raw": compact_json(resource),
        **own.index,
    }
    if kind.ordered_by_known_at:
        as_of = max(normalize_timestamp(known_at) or updated_at, updated_at)
        version = state_version(resource, updated_at, final=own.final, as_of=as_of)
    else:
        version = _version(resource, updated_at, final=own.final)
    return VersionedItem(kind.key(uuid), version, attributes)


def _first_time(resource: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        if (time := normalize_timestamp(resource.get(name))) is not None:
            return time
    return None

"""The downstream events' contract as data: one JSON Schema (draft 4) per detail-type, for the whole event.

The one source of ``schemas/<detail-type>.json`` and of the template's ``AWS::EventSchemas::Schema``
resources (``make schemas`` writes both; a test fails when either is stale). Draft 4 because it is
what EventBridge's Schema Registry takes (``JSONSchemaDraft4``, or OpenAPI 3) and turns into code
bindings; so only draft-4 keywords: ``enum`` for a fixed value, ``oneOf``/``not`` for a rule that
depends on another field, a ``type`` list with ``"null"`` for a value that may be missing.

The detail is strict at its top level (every key required, no others); each ``resource`` requires
every documented key and tolerates new ones, so a consumer keeps working when ``detail_version`` 1
gains a field. ``calendly`` is Calendly's own JSON and is not described. Pure data and functions.
"""

from __future__ import annotations

from typing import Any

from calendly_sync.downstream.changes import ORIGINS, SCHEDULED_EVENT_FIELDS
from calendly_sync.downstream.entries import DETAIL_VERSION, SOURCE
from calendly_sync.events import DOWNSTREAM_EVENTS

Schema = dict[str, Any]

DRAFT_4 = "http://json-schema.org/draft-04/schema#"
#: The fields EventBridge puts around every ``detail`` (its event structure), in its order.
ENVELOPE_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region", "resources")
#: How ``occurred_at`` and every time in a resource is written (``table_items.format_utc``).
UTC_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"


# --- builders ----------------------------------------------------------------------------------


def described(schema: Schema, description: str | None) -> Schema:
    return {**schema, "description": description} if description else schema


def text(description: str | None = None) -> Schema:
    return described({"type": "string"}, description)


def nullable(schema: Schema) -> Schema:
    """``schema``, or null (draft 4: ``"null"`` joins the type list; other keywords skip a null)."""
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return {**schema, "type": [*kinds, "null"]}


def text_or_null(description: str | None = None) -> Schema:
    return nullable(text(description))


def utc(description: str = "UTC, fixed width with microseconds (sorts as text)") -> Schema:
    return {"type": "string", "pattern": UTC_PATTERN, "description": description}


def utc_or_null() -> Schema:
    return nullable(utc())


def one_of(*values: Any) -> Schema:
    """Exactly these values (draft 4 has no ``const``: a one-value ``enum`` is one)."""
    return {"enum": list(values)}


def record(fields: dict[str, Schema], *, strict: bool = False, description: str | None = None) -> Schema:
    """An object with every one of ``fields`` required; other keys refused only when ``strict``."""
    schema: Schema = {"type": "object", "required": list(fields), "properties": fields}
    if strict:
        schema["additionalProperties"] = False
    return described(schema, description)


def list_of(item: Schema, description: str | None = None) -> Schema:
    return described({"type": "array", "items": item}, description)


def all_text_or_null(*names: str) -> dict[str, Schema]:
    return {name: text_or_null() for name in names}


# --- resources (README, "Downstream events": resource shapes) ---------------------------------

TIMES = {"created_at": utc_or_null(), "updated_at": utc_or_null()}
LOCATION = {"type": ["object", "null"], "description": "Calendly's location object as Calendly gives it"}
INTEGER_OR_NULL = {"type": ["integer", "null"]}

TRACKING = nullable(
    record(
        all_text_or_null(
            "utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid"
        )
    )
)
#: A meeting's hosts, guests and seats, on a scheduled event standalone and embedded in an invitee.
MEETING = {
    "event_memberships": list_of(
        record(all_text_or_null("user", "user_email", "user_name")), "the hosts ([] when none)"
    ),
    "event_guests": list_of(
        record({"email": text_or_null(), **TIMES}), "the guests the invitee added ([] when none)"
    ),
    "invitees_counter": nullable(record(dict.fromkeys(("total", "active", "limit"), INTEGER_OR_NULL))),
}
EVENT_ESSENTIALS = {
    "uri": text(),
    "name": text_or_null(),
    "status": text_or_null(),
    "start_time": utc_or_null(),
    "end_time": utc_or_null(),
    "event_type": text_or_null(),
    "location": LOCATION,
    "canceler_type": text_or_null(),
    **MEETING,
    **TIMES,
}


def resource(resource_type: str, fields: dict[str, Schema]) -> Schema:
    """A resource: ``type`` first, then ``fields``; every key required, new keys tolerated."""
    return record({"type": one_of(resource_type), **fields})


INVITEE = resource(
    "invitee",
    {
        "uri": text(),
        "email": text_or_null("lower-cased"),
        "name": text_or_null(),
        "status": one_of("active", "canceled", None),
        "timezone": text_or_null(),
        **TIMES,
        "rescheduled": {"type": "boolean"},
        "old_invitee": text_or_null(),
        "new_invitee": text_or_null(),
        "cancellation": nullable(
            record(
                {
                    "canceler_type": text_or_null(),
                    "canceled_at": utc_or_null(),
                    "reason": text_or_null(),
                    "canceled_by": text_or_null(),
                }
            )
        ),
        "no_show": nullable(record({"uri": text_or_null(), "created_at": utc_or_null()})),
        "scheduled_event": nullable(
            record(EVENT_ESSENTIALS, description="The scheduled event as the invitee's writer saw it")
        ),
        "first_name": text_or_null(),
        "last_name": text_or_null(),
        "questions_and_answers": list_of(
            record({"question": text_or_null(), "answer": text_or_null(), "position": INTEGER_OR_NULL}),
            "the booking form's answers ([] when none)",
        ),
        "tracking": TRACKING,
        **all_text_or_null("cancel_url", "reschedule_url", "text_reminder_number", "scheduling_method"),
        "invitee_scheduled_by": text_or_null("the URI of who scheduled it"),
        "routing_form_submission": text_or_null("the URI of the routing form submission that led here"),
        "payment": nullable(
            record(
                {
                    **all_text_or_null("external_id", "provider"),
                    "amount": {"type": ["number", "string", "null"]},
                    **all_text_or_null("currency", "terms"),
                    "successful": {"type": ["boolean", "null"]},
                }
            )
        ),
        "reconfirmation": nullable(record({"created_at": utc_or_null(), "confirmed_at": utc_or_null()})),
    },
)
SCHEDULED_EVENT = resource("scheduled_event", EVENT_ESSENTIALS)
EVENT_TYPE = resource(
    "event_type",
    {
        "uri": text(),
        **all_text_or_null("name", "slug"),
        "active": {"type": "boolean"},
        "deleted": {"type": "boolean"},
        "owner": text_or_null(),
        **TIMES,
    },
)
ROUTING_FORM_SUBMISSION = resource(
    "routing_form_submission",
    {
        "uri": text(),
        **all_text_or_null("routing_form", "submitter", "submitter_type", "result_type"),
        **TIMES,
        "questions_and_answers": list_of(
            record(
                {
                    **all_text_or_null("question_uuid", "question"),
                    "answer": {
                        "type": ["string", "array", "null"],
                        "items": {"type": "string"},
                        "description": "text, or the choices picked in a multiple-choice question",
                    },
                }
            ),
            "the form's answers ([] when none)",
        ),
        "tracking": TRACKING,
        "result": nullable(record({"type": text_or_null(), "value": {"description": "any JSON"}})),
    },
)


# --- each detail-type ---------------------------------------------------------------------------


def _kind(
    description: str, subject: str, resource_schema: Schema, extra: dict[str, Schema] | None = None
) -> dict[str, Any]:
    return {"description": description, "subject": subject, "resource": resource_schema, "extra": extra or {}}


_CHANGED_FIELDS = {
    "changed_fields": {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": one_of(*SCHEDULED_EVENT_FIELDS),
        "description": "which of the scheduled event's fields changed",
    }
}
#: What sets each detail-type apart: what it announces, its subject, its resource (and fields only it has).
KINDS: dict[str, dict[str, Any]] = {
    "invitee.created": _kind("A booking: the invitee seen for the first time.", "the invitee's URI", INVITEE),
    "invitee.canceled": _kind(
        "The invitee's booking was canceled (a reschedule cancels the old invitee, rescheduled true).",
        "the invitee's URI",
        INVITEE,
    ),
    "invitee_no_show.created": _kind(
        "The invitee was marked as a no-show.", "the no-show's URI (each mark is a new no-show)", INVITEE
    ),
    "invitee_no_show.deleted": _kind("A no-show mark was removed.", "the removed no-show's URI", INVITEE),
    "event_type.created": _kind("An event type was created.", "the event type's URI", EVENT_TYPE),
    "event_type.updated": _kind(
        "An event type changed (its updated_at moved).", "the event type's URI", EVENT_TYPE
    ),
    "event_type.deleted": _kind("An event type was deleted.", "the event type's URI", EVENT_TYPE),
    "routing_form_submission.created": _kind(
        "A routing form was submitted.", "the submission's URI", ROUTING_FORM_SUBMISSION
    ),
    "scheduled_event.updated": _kind(
        "calendly-sync's own: a stored scheduled event's start_time, end_time, status, name or location"
        " changed (Calendly sends no webhook for it; the poller usually finds it).",
        "the scheduled event's URI",
        SCHEDULED_EVENT,
        _CHANGED_FIELDS,
    ),
}


#: ``calendly`` is present exactly when ``truncated`` is false (draft 4 has no if/then/else).
CALENDLY_EXACTLY_WHEN_WHOLE = [
    {"properties": {"truncated": one_of(False)}, "required": ["calendly"]},
    {"properties": {"truncated": one_of(True)}, "not": {"required": ["calendly"]}},
]


def detail_schema(detail_type: str) -> Schema:
    """The ``detail`` of a ``detail_type`` event (the README's "Downstream events")."""
    kind = KINDS[detail_type]
    fields: dict[str, Schema] = {
        "detail_version": one_of(DETAIL_VERSION),
        "change_id": {
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
            "description": "The same for the same change however it was seen: dedupe on it",
        },
        "origin": one_of(*ORIGINS),
        "occurred_at": utc(),
        "organization": text_or_null("The connected organization's URI, null if none"),
        "subject": text(kind["subject"]),
        "sequence": {
            "type": "integer",
            "minimum": 0,
            "description": "grows with every change the table applies to the subject: drop an older one"
            " that arrives after a newer one (0 only on an item last written before sequences existed)",
        },
        "resource": kind["resource"],
        **kind["extra"],
        "truncated": {
            "type": "boolean",
            "description": "true: the event would pass 256 KB with calendly, which is left out (and if the"
            " resource alone would, its strings are cut to 1,024 characters)",
        },
    }
    schema = record(fields, strict=True)
    schema["properties"]["calendly"] = {
        "description": "Calendly's own object (any JSON), left out when truncated"
    }
    schema["oneOf"] = CALENDLY_EXACTLY_WHEN_WHOLE
    return schema


def title_of(detail_type: str) -> str:
    """``invitee_no_show.created`` -> ``InviteeNoShowCreated``: a name code bindings can use."""
    return "".join(word.capitalize() for word in detail_type.replace(".", "_").split("_"))


def event_schema(detail_type: str) -> Schema:
    """The whole event a ``detail_type`` consumer receives: EventBridge's envelope around the detail."""
    kind = KINDS[detail_type]
    envelope: dict[str, Schema] = {
        "version": text(),
        "id": text("EventBridge's id for this put (a repeat put has a new one; change_id names the change)"),
        "detail-type": one_of(detail_type),
        "source": one_of(SOURCE),
        "account": text(),
        "time": {"type": "string", "format": "date-time"},
        "region": text(),
        "resources": list_of(text()),
    }
    return {
        "$schema": DRAFT_4,
        "id": f"urn:calendly-sync:event:{detail_type}:{DETAIL_VERSION}",
        "title": title_of(detail_type),
        "description": f"{detail_type} (source {SOURCE}): {kind['description']}",
        "x-amazon-events-source": SOURCE,
        "x-amazon-events-detail-type": detail_type,
        **record({**envelope, "detail": detail_schema(detail_type)}),
    }


def event_schemas() -> dict[str, Schema]:
    """Every detail-type's whole-event schema, in ``DOWNSTREAM_EVENTS`` order."""
    return {detail_type: event_schema(detail_type) for detail_type in DOWNSTREAM_EVENTS}

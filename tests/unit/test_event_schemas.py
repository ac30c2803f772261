"""The event schemas: whole events, JSON Schema draft 4, from one source, registered by the template.

GIVEN each detail-type's schema in ``schemas/`` (what the Schema Registry gets, read as the draft it
declares), WHEN a sample event or one that breaks the contract is validated, THEN the sample passes
and each break is refused; and ``schemas/`` and the template's block are what ``make schemas``
makes from ``calendly_sync.downstream.contract``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest

from calendly_sync.downstream import contract
from calendly_sync.events import DOWNSTREAM_EVENTS, EVENT_TYPE_EVENTS, INVITEE_EVENTS, OWN_EVENTS
from local.stack import load_template
from tests.downstream_helpers import SCHEMAS, assert_valid_event, event_around, schema_of
from tools import schemas as generator

ORGANIZATION = "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA"
AT = "2026-12-01T15:00:00.000000Z"
EVENT = "https://api.calendly.com/scheduled_events/EV0001"
INVITEE = f"{EVENT}/invitees/IN0001"
TRACKING = dict.fromkeys(
    ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid"), None
) | {"utm_source": "newsletter"}
MEETING = {
    "event_memberships": [
        {"user": "https://api.calendly.com/users/OWNER", "user_email": "o@x.com", "user_name": "O"}
    ],
    "event_guests": [{"email": "guest@example.com", "created_at": AT, "updated_at": None}],
    "invitees_counter": {"total": 1, "active": 1, "limit": 1},
}
ESSENTIALS = {
    "uri": EVENT,
    "name": "Intro call",
    "status": "active",
    "start_time": AT,
    "end_time": AT,
    "event_type": "https://api.calendly.com/event_types/ET0001",
    "location": {"type": "zoom", "join_url": "https://zoom.us/j/1"},
    "canceler_type": None,
    **MEETING,
    "created_at": AT,
    "updated_at": AT,
}
RESOURCES: dict[str, dict[str, Any]] = {
    "invitee": {
        "type": "invitee",
        "uri": INVITEE,
        "email": "invitee@example.com",
        "name": "Ada Lovelace",
        "status": "canceled",
        "timezone": "Europe/London",
        "created_at": AT,
        "updated_at": AT,
        "rescheduled": False,
        "old_invitee": None,
        "new_invitee": None,
        "cancellation": {"canceler_type": "host", "canceled_at": AT, "reason": "ill", "canceled_by": "Host"},
        "no_show": {"uri": "https://api.calendly.com/invitee_no_shows/NS0001", "created_at": AT},
        "scheduled_event": ESSENTIALS,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "questions_and_answers": [{"question": "Why?", "answer": "Engines", "position": 0}],
        "tracking": TRACKING,
        "cancel_url": "https://calendly.com/cancellations/IN0001",
        "reschedule_url": "https://calendly.com/reschedulings/IN0001",
        "text_reminder_number": None,
        "scheduling_method": None,
        "invitee_scheduled_by": None,
        "routing_form_submission": None,
        "payment": {
            "external_id": "ch_1",
            "provider": "stripe",
            "amount": 12.5,
            "currency": "EUR",
            "terms": None,
            "successful": True,
        },
        "reconfirmation": {"created_at": AT, "confirmed_at": None},
    },
    "scheduled_event": {"type": "scheduled_event", **ESSENTIALS},
    "event_type": {
        "type": "event_type",
        "uri": "https://api.calendly.com/event_types/ET0001",
        "name": "Intro call",
        "slug": "intro",
        "active": True,
        "deleted": False,
        "owner": "https://api.calendly.com/users/OWNER",
        "created_at": AT,
        "updated_at": AT,
    },
    "routing_form_submission": {
        "type": "routing_form_submission",
        "uri": "https://api.calendly.com/routing_form_submissions/RS0001",
        "routing_form": "https://api.calendly.com/routing_forms/RF0001",
        "submitter": INVITEE,
        "submitter_type": "Invitee",
        "result_type": "event_type",
        "created_at": AT,
        "updated_at": AT,
        "questions_and_answers": [
            {"question_uuid": "q1", "question": "Team?", "answer": "Sales"},
            {"question_uuid": "q2", "question": "Topics?", "answer": ["a", "b"]},
        ],
        "tracking": TRACKING,
        "result": {"type": "event_type", "value": "https://api.calendly.com/event_types/ET0001"},
    },
}
#: Draft 4's keywords (validation and meta-data; ``id``/``$schema``/``$ref``), and nothing later drafts added.
DRAFT_4_KEYWORDS = {
    "$schema", "id", "$ref", "title", "description", "default", "type", "enum", "format",
    "properties", "patternProperties", "additionalProperties", "required", "minProperties",
    "maxProperties", "dependencies", "items", "additionalItems", "minItems", "maxItems", "uniqueItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "allOf", "anyOf", "oneOf", "not", "definitions",
}  # fmt: skip
LATER_KEYWORDS = {
    "const", "if", "then", "else", "$defs", "$id", "$anchor", "prefixItems", "dependentRequired",
    "dependentSchemas", "unevaluatedProperties", "unevaluatedItems", "contains", "propertyNames",
    "examples", "$comment", "minContains", "maxContains", "$dynamicRef", "$recursiveRef",
}  # fmt: skip


def resource_type_of(detail_type: str) -> str:
    return "invitee" if detail_type in INVITEE_EVENTS else detail_type.split(".")[0]


def sample(detail_type: str) -> dict[str, Any]:
    """A whole event of ``detail_type`` holding to the contract, with every resource field."""
    resource = copy.deepcopy(RESOURCES[resource_type_of(detail_type)])
    detail: dict[str, Any] = {
        "detail_version": 1,
        "change_id": "0123456789abcdef0123456789abcdef",
        "origin": "webhook",
        "occurred_at": AT,
        "organization": ORGANIZATION,
        "subject": resource["uri"],
        "sequence": 3,
        "resource": resource,
    }
    if detail_type in OWN_EVENTS:
        detail["changed_fields"] = ["start_time", "location"]
    detail |= {"calendly": {"uri": resource["uri"], "anything": [1, "two", None]}, "truncated": False}
    return event_around(detail_type, detail)


def refused(detail_type: str, event: dict[str, Any]) -> bool:
    validator = jsonschema.Draft4Validator(schema_of(detail_type))
    return not validator.is_valid(event)


@pytest.mark.parametrize("detail_type", DOWNSTREAM_EVENTS)
def test_a_whole_event_holding_to_the_contract_passes(detail_type: str) -> None:
    # GIVEN a sample event WHEN validated THEN it passes, and so does its truncated form
    assert_valid_event(sample(detail_type))
    truncated = sample(detail_type)
    del truncated["detail"]["calendly"]
    truncated["detail"]["truncated"] = True
    assert_valid_event(truncated)


@pytest.mark.parametrize("detail_type", DOWNSTREAM_EVENTS)
def test_nullable_pieces_may_be_null_and_lists_empty(detail_type: str) -> None:
    # GIVEN a sample whose optional objects are null and whose lists are empty
    event = sample(detail_type)
    resource = event["detail"]["resource"]
    event["detail"]["organization"] = None
    for name, value in resource.items():
        if isinstance(value, dict) and name not in ("location",):
            resource[name] = None
        elif isinstance(value, list):
            resource[name] = []
    # WHEN validated THEN it passes; an extra resource key is tolerated too
    resource["a_field_added_later"] = {"anything": True}
    assert_valid_event(event)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for name in parents:
            target = target[name]
        target[last] = value

    return apply


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def apply(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for name in parents:
            target = target[name]
        del target[last]

    return apply


BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "detail_version 2": _set("detail.detail_version", 2),
    "detail_version '1'": _set("detail.detail_version", "1"),
    "a wrong resource.type": _set("detail.resource.type", "something_else"),
    "a missing detail field (sequence)": _delete("detail.sequence"),
    "a missing detail field (organization)": _delete("detail.organization"),
    "a missing resource field (uri)": _delete("detail.resource.uri"),
    "a missing resource field (created_at)": _delete("detail.resource.created_at"),
    "truncated true with calendly present": _set("detail.truncated", True),
    "truncated false without calendly": _delete("detail.calendly"),
    "a negative sequence": _set("detail.sequence", -1),
    "a sequence that is not an integer": _set("detail.sequence", 1.5),
    "a change_id that is not 32 lower-case hex": _set("detail.change_id", "0123456789ABCDEF0123456789ABCDEF"),
    "an unknown origin": _set("detail.origin", "replay"),
    "an occurred_at that is not fixed-width UTC": _set("detail.occurred_at", "2026-12-01T15:00:00Z"),
    "an unknown detail key": _set("detail.surprise", 1),
    "a resource that is not an object": _set("detail.resource", None),
    "a wrong source": _set("source", "calendly"),
    "a wrong detail-type": _set("detail-type", "invitee.rescheduled"),
    "a missing envelope field (account)": _delete("account"),
    "no detail": _delete("detail"),
}


@pytest.mark.parametrize("detail_type", DOWNSTREAM_EVENTS)
@pytest.mark.parametrize("name", BREAKS)
def test_each_break_of_the_contract_is_refused(detail_type: str, name: str) -> None:
    # GIVEN a sample event broken one way
    event = sample(detail_type)
    BREAKS[name](event)
    # WHEN validated under draft 4 THEN it is refused
    assert refused(detail_type, event), name


def test_events_of_other_detail_types_are_refused() -> None:
    # GIVEN each schema WHEN given another detail-type's sample THEN it refuses it
    for detail_type in DOWNSTREAM_EVENTS:
        for other in DOWNSTREAM_EVENTS:
            if other != detail_type:
                assert refused(detail_type, sample(other)), (detail_type, other)


def test_changed_fields_belong_to_scheduled_event_updated_alone() -> None:
    # GIVEN scheduled_event.updated without changed_fields, with an empty or unknown one
    for breaking in ([], ["start_time", "start_time"], ["duration"]):
        event = sample("scheduled_event.updated")
        event["detail"]["changed_fields"] = breaking
        assert refused("scheduled_event.updated", event), breaking
    event = sample("scheduled_event.updated")
    del event["detail"]["changed_fields"]
    assert refused("scheduled_event.updated", event)
    # AND an event type's event carrying changed_fields THEN each is refused
    event = sample(EVENT_TYPE_EVENTS[0])
    event["detail"]["changed_fields"] = ["name"]
    assert refused(EVENT_TYPE_EVENTS[0], event)


def _keywords(schema: Any) -> Iterator[str]:
    """Every keyword used in ``schema``, not the property names under ``properties``."""
    if not isinstance(schema, dict):
        return
    for keyword, value in schema.items():
        yield keyword
        if keyword in ("properties", "patternProperties", "definitions"):
            for child in value.values():
                yield from _keywords(child)
        elif keyword in ("items", "additionalProperties", "additionalItems", "not"):
            yield from _keywords(value)
        elif keyword in ("allOf", "anyOf", "oneOf"):
            for child in value:
                yield from _keywords(child)


@pytest.mark.parametrize("detail_type", DOWNSTREAM_EVENTS)
def test_each_schema_declares_draft_4_and_uses_only_its_keywords(detail_type: str) -> None:
    schema = schema_of(detail_type)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    jsonschema.Draft4Validator.check_schema(schema)
    used = set(_keywords(schema))
    assert used & LATER_KEYWORDS == set()
    assert {k for k in used if not k.startswith("x-amazon-events-")} <= DRAFT_4_KEYWORDS
    # draft 4's exclusiveMinimum/Maximum are booleans beside minimum/maximum, never numbers
    for keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        assert all(isinstance(v, bool) for v in _values_of(schema, keyword))
    # AND the whole event: the envelope's fields are required, source and detail-type fixed
    assert schema["required"] == [*contract.ENVELOPE_FIELDS, "detail"]
    assert schema["properties"]["source"] == {"enum": ["calendly-sync"]}
    assert schema["properties"]["detail-type"] == {"enum": [detail_type]}
    assert schema["properties"]["detail"]["additionalProperties"] is False


def _values_of(schema: Any, keyword: str) -> Iterator[Any]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == keyword:
                yield value
            yield from _values_of(value, keyword)
    elif isinstance(schema, list):
        for value in schema:
            yield from _values_of(value, keyword)


def test_the_contract_describes_every_detail_type_the_publisher_puts() -> None:
    assert tuple(contract.KINDS) == DOWNSTREAM_EVENTS
    assert sorted(path.stem for path in SCHEMAS.glob("*.json")) == sorted(DOWNSTREAM_EVENTS)


def test_schemas_and_the_template_are_what_make_schemas_makes() -> None:
    # GIVEN the contract WHEN the generator renders it THEN schemas/ and template.yaml hold it already
    assert generator.stale() == [], "run make schemas"
    for name, text in generator.schema_files().items():
        assert (SCHEMAS / name).read_text(encoding="utf-8") == text


def test_the_template_registers_each_schema_in_the_stack_s_registry() -> None:
    # GIVEN the template WHEN its schema resources are read
    resources = load_template()["Resources"]
    registry = resources[generator.REGISTRY_ID]
    assert registry["Type"] == "AWS::EventSchemas::Registry"
    assert registry["Properties"]["RegistryName"] == {"Fn::Sub": "${AWS::StackName}-calendly-sync"}
    registered = {
        spec["Properties"]["SchemaName"]: spec["Properties"]
        for spec in resources.values()
        if spec["Type"] == "AWS::EventSchemas::Schema"
    }
    # THEN one per detail-type, draft 4, in that registry, its content the schema in schemas/
    assert len(registered) == len(DOWNSTREAM_EVENTS)
    for detail_type in DOWNSTREAM_EVENTS:
        properties = registered[f"calendly-sync@{contract.title_of(detail_type)}"]
        assert properties["Type"] == "JSONSchemaDraft4"
        assert properties["RegistryName"] == {"Fn::GetAtt": [generator.REGISTRY_ID, "RegistryName"]}
        assert json.loads(properties["Content"]) == schema_of(detail_type)
        assert len(properties["Content"]) <= 100_000 and len(properties["Description"]) <= 256
    assert load_template()["Outputs"]["EventSchemaRegistryName"]["Value"] == {
        "Fn::GetAtt": [generator.REGISTRY_ID, "RegistryName"]
    }


def test_the_generator_rewrites_only_its_own_block() -> None:
    # GIVEN a template with text around the markers and a stale block
    template = f"before\n{generator.BEGIN}\n  Stale: true\n{generator.END}\nafter\n"
    # WHEN rendered THEN only the block changed
    rendered = generator.with_block(template)
    assert rendered.startswith(f"before\n{generator.BEGIN}\n") and rendered.endswith(
        f"{generator.END}\nafter\n"
    )
    assert "Stale" not in rendered and generator.with_block(rendered) == rendered
    with pytest.raises(SystemExit):
        generator.with_block("no markers\n")

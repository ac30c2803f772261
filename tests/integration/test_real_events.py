"""Every real Calendly body, through receiver, projector and publisher: what a flow receives.

The bodies are this project's corpus (``tests/fixtures/calendly_real/``) and the real
deliveries in ``../shared/calendly/realworld/webhooks/`` (provenance in its ``SOURCES.md``;
read in place, never copied; their tests skip when ``../shared`` is absent). Each is posted
signed to ReceiveWebhookFunction, projected from the table's stream and published by
PublishChangesFunction to a consumer's queue in moto, and each event must carry, in
``resource``, every field a flow acts on that its body has: hosts, guests, seats, answers,
tracking, links, who scheduled and who canceled. ``Consumer.received`` validates each event
against its registry schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from calendly_sync.table_items import normalize_timestamp
from tests.integration import test_publish
from tests.integration.test_publish import Consumer
from tests.integration.test_real_bodies import BODIES, KeptRawOnly, body_text

#: The publisher on the table's stream with a consumer's queue behind the bus (test_publish's fixture).
consumer = test_publish.consumer

SHARED_WEBHOOKS = Path(__file__).resolve().parents[3] / "shared" / "calendly" / "realworld" / "webhooks"
ORGANIZATION = "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA"


def shared_bodies() -> list[Any]:
    if not SHARED_WEBHOOKS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="../shared/calendly/realworld is absent"))]
    return [pytest.param(path, id=path.stem) for path in sorted(SHARED_WEBHOOKS.glob("*.json"))]


PROJECT_BODIES = [body for body in BODIES if not isinstance(body.facts, KeptRawOnly)]


def published_for(consumer: Consumer, text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The body's payload and the events its delivery published (after a connection is stored)."""
    consumer.aws.table.put_sync_state("CONNECTION", {"organization": ORGANIZATION, "user": "u"})
    consumer.deliver(text)
    consumer.publish()
    events = consumer.received()
    payload: dict[str, Any] = json.loads(text)["payload"]
    return payload, events


@pytest.mark.parametrize("path", shared_bodies())
def test_a_shared_real_delivery_publishes_events_carrying_what_its_body_has(
    consumer: Consumer, path: Path
) -> None:
    # GIVEN a real delivery Calendly made (anonymised only), signed with the subscription's key
    text = path.read_text(encoding="utf-8")

    # WHEN it is received, projected and published
    payload, events = published_for(consumer, text)

    # THEN its invitee.created or invitee.canceled carries every field a flow acts on
    event_name = json.loads(text)["event"]
    (event,) = [e for e in events if e["detail-type"] == event_name]
    assert_invitee_carries(event["detail"], payload)
    assert event["detail"]["sequence"] >= 1


@pytest.mark.parametrize("body", PROJECT_BODIES, ids=[b.file.removesuffix(".json") for b in PROJECT_BODIES])
def test_a_corpus_body_publishes_events_carrying_what_its_body_has(consumer: Consumer, body: Any) -> None:
    # GIVEN a real body of the project's corpus WHEN it is received, projected and published
    payload, events = published_for(consumer, body_text(body))

    # THEN the event of its kind carries what the body has (a removed no-show's first sight is a
    # booking: there was no mark to remove)
    kind = "invitee.created" if body.event == "invitee_no_show.deleted" else body.event
    (event,) = [e for e in events if e["detail-type"] == kind]
    if body.event == "routing_form_submission.created":
        assert_submission_carries(event["detail"], payload)
    else:
        assert_invitee_carries(event["detail"], payload)


def assert_invitee_carries(detail: dict[str, Any], payload: dict[str, Any]) -> None:
    resource = detail["resource"]
    for name in ("first_name", "last_name", "cancel_url", "reschedule_url", "text_reminder_number"):
        assert resource[name] == text_or_none(payload.get(name)), name
    for name in ("scheduling_method", "invitee_scheduled_by", "routing_form_submission"):
        assert resource[name] == uri_or_none(payload.get(name)), name
    assert resource["questions_and_answers"] == [
        {"question": qa.get("question"), "answer": qa.get("answer"), "position": qa.get("position")}
        for qa in payload.get("questions_and_answers") or []
    ]
    assert resource["tracking"] == (
        {name: payload["tracking"].get(name) for name in TRACKING} if payload.get("tracking") else None
    )
    for name in ("payment", "reconfirmation"):
        assert (resource[name] is None) == (not payload.get(name)), name
    cancellation = payload.get("cancellation")
    if cancellation:
        assert resource["cancellation"]["reason"] == cancellation.get("reason")
        assert resource["cancellation"]["canceled_by"] == cancellation.get("canceled_by")
        assert resource["cancellation"]["canceler_type"] == cancellation.get("canceler_type")
    embedded = payload.get("scheduled_event")
    if isinstance(embedded, dict):
        assert_meeting_carries(resource["scheduled_event"], embedded)
    else:
        assert resource["scheduled_event"] is None


def assert_meeting_carries(resource: dict[str, Any], event: dict[str, Any]) -> None:
    """Hosts, guests and seats, as the invitee's writer saw its event."""
    assert [(m["user"], m["user_email"], m["user_name"]) for m in resource["event_memberships"]] == [
        (m.get("user"), m.get("user_email"), m.get("user_name")) for m in event.get("event_memberships") or []
    ]
    assert [(g["email"], g["created_at"]) for g in resource["event_guests"]] == [
        (g.get("email"), normalize_timestamp(g.get("created_at"))) for g in event.get("event_guests") or []
    ]
    assert resource["invitees_counter"] == event.get("invitees_counter")
    assert resource["created_at"] == normalize_timestamp(event.get("created_at"))
    assert resource["updated_at"] == normalize_timestamp(event.get("updated_at"))


def assert_submission_carries(detail: dict[str, Any], payload: dict[str, Any]) -> None:
    resource = detail["resource"]
    assert resource["questions_and_answers"] == [
        {"question_uuid": qa.get("question_uuid"), "question": qa.get("question"), "answer": qa.get("answer")}
        for qa in payload.get("questions_and_answers") or []
    ]
    assert resource["tracking"] == (
        {name: payload["tracking"].get(name) for name in TRACKING} if payload.get("tracking") else None
    )
    result = payload.get("result")
    assert resource["result"] == (
        {"type": result.get("type"), "value": result.get("value")} if result else None
    )


TRACKING = ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid")


def text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def uri_or_none(value: object) -> str | None:
    if isinstance(value, dict):
        return text_or_none(value.get("uri"))
    return text_or_none(value)

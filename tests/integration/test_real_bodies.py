"""Real Calendly webhook bodies from public sources, through the receiver and the projector.

The corpus is ``tests/fixtures/calendly_real/``; where each body comes from, and what was
anonymised in it, is in ``PROVENANCE.md`` beside it. Every body is signed the way Calendly
signs (``t=<unix>,v1=<hex>`` over ``"<t>." + raw body``), posted to ReceiveWebhookFunction's
real entry point, and the table's stream is then handed to ProjectDeliveriesFunction.

What each body must become is written out by hand below (``BODIES``), read off the body by
a person, not computed by the code under test: keys, status, lower-cased email, no-show,
reschedule link, the embedded event's start time. ``raw`` must hold the body's own object.

Some sources publish only the payload a connector forwarded, not Calendly's envelope. Those
files are stored as published and wrapped here, at post time, in the envelope every
delivery has: the event name the source names (its trigger-to-event map) and
``created_at`` = the moment of posting, as Calendly stamps a delivery when it makes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from calendly_sync.table_items import (
    invitee_key,
    routing_form_submission_key,
    scheduled_event_key,
)
from local.lambda_runtime import signed_delivery_event
from tests.conftest import SIGNING_KEY, LocalAws

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "calendly_real"
#: Calendly's own API v1 sample body: retired in August 2025, never sent to a v2 subscription.
V1_BODY = CORPUS / "v1_retired" / "calendly_v1_sample_invitee_created_2018.json"


@dataclass(frozen=True)
class InviteeFacts:
    """What an invitee delivery must leave in the table."""

    event_uuid: str
    invitee_uuid: str
    status: str
    email: str
    no_show: str | None
    #: ``(uuid, start_time)`` of the embedded ``scheduled_event``; None for bodies without one.
    scheduled_event: tuple[str, str] | None
    canceler_type: str | None = None


@dataclass(frozen=True)
class SubmissionFacts:
    uuid: str
    result_type: str
    submitter: str | None


@dataclass(frozen=True)
class KeptRawOnly:
    """A known event whose payload cannot be mapped: kept as the delivery record, nothing else."""

    why: str


@dataclass(frozen=True)
class RealBody:
    file: str
    event: str
    #: The source published only ``payload``: the envelope is added when posting.
    bare_payload: bool
    facts: InviteeFacts | SubmissionFacts | KeptRawOnly

    def load(self) -> Any:
        return json.loads((CORPUS / self.file).read_text(encoding="utf-8"))


FLOWRUNNER_EVENT = "a9fba920-xxxx-xxxx-xxxx-86eb33bed129"
FLOWRUNNER_INVITEE = "68731199-xxxx-xxxx-xxxx-06d82873cbd8"

BODIES = [
    RealBody(
        "docs_openapi_invitee_created.json",
        "invitee.created",
        False,
        InviteeFacts("AAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAA", "active", "test@example.com", None, None),
    ),
    RealBody(
        "docs_openapi_invitee_canceled.json",
        "invitee.canceled",
        False,
        InviteeFacts("AAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAA", "canceled", "test@example.com", None, None),
    ),
    RealBody(
        "docs_openapi_routing_form_submission_created.json",
        "routing_form_submission.created",
        False,
        SubmissionFacts(
            "AAAAAAAAAAAAAAAA",
            "event_type",
            "https://calendly.com/scheduled_events/AAAAAAAAAAAAAAAA/invitees/AAAAAAAAAAAAAAAA",
        ),
    ),
    RealBody(
        "hull_invitee_created_2020.json",
        "invitee.created",
        False,
        InviteeFacts("DDVRNUTABYGF4LO2", "AHT4VZ5PQYFOSTFB", "active", "invitee@example.com", None, None),
    ),
    RealBody(
        "hull_invitee_canceled_2020.json",
        "invitee.canceled",
        False,
        InviteeFacts("DDVRNUTABYGF4LO2", "AHT4VZ5PQYFOSTFB", "canceled", "invitee@example.com", None, None),
    ),
    RealBody(
        "castor_invitee_created_2023_zoom.json",
        "invitee.created",
        False,
        InviteeFacts(
            "e3b3306c-64f8-4519-b7f1-c26332384860",
            "b11d9641-9974-4853-9ed4-6a3d4195df55",
            "active",
            "invitee-a@example.com",
            None,
            ("e3b3306c-64f8-4519-b7f1-c26332384860", "2023-07-25T16:30:00.000000Z"),
        ),
    ),
    RealBody(
        "castor_invitee_created_2024_group_event.json",
        "invitee.created",
        False,
        InviteeFacts(
            "1d3df052-bc94-4eda-8876-a0d9cf05169a",
            "2de33693-f9ee-49bc-918a-5cddbc21a425",
            "active",
            "invitee-b@example.com",
            None,
            ("1d3df052-bc94-4eda-8876-a0d9cf05169a", "2024-06-20T19:00:00.000000Z"),
        ),
    ),
    RealBody(
        "castor_invitee_canceled_2023_rescheduled_truncated_uri.json",
        "invitee.canceled",
        False,
        KeptRawOnly(
            "its publisher cut payload.uri to '/scheduled_events/7949d0df': not an invitee URI, "
            "so neither the invitee, its new_invitee link nor the embedded event can be keyed"
        ),
    ),
    RealBody(
        "flowrunner_payload_invitee_canceled_2025_by_host.json",
        "invitee.canceled",
        True,
        InviteeFacts(
            "7e13a0ae-xxxx-xxxx-xxxx-d867751f5bee",
            "daebde77-xxxx-xxxx-xxxx-5930d81d922a",
            "canceled",
            "foo@foo.com",
            None,
            ("7e13a0ae-xxxx-xxxx-xxxx-d867751f5bee", "2025-04-18T08:30:00.000000Z"),
            canceler_type="host",
        ),
    ),
    RealBody(
        "flowrunner_payload_invitee_no_show_marked_2025.json",
        "invitee_no_show.created",
        True,
        InviteeFacts(
            FLOWRUNNER_EVENT,
            FLOWRUNNER_INVITEE,
            "active",
            "foo@foo.com",
            "https://api.calendly.com/invitee_no_shows/e75af044-375e-486d-8568-01a11657e534",
            (FLOWRUNNER_EVENT, "2025-04-17T09:00:00.000000Z"),
        ),
    ),
    RealBody(
        "flowrunner_payload_invitee_no_show_unmarked_2025.json",
        "invitee_no_show.deleted",
        True,
        InviteeFacts(
            FLOWRUNNER_EVENT,
            FLOWRUNNER_INVITEE,
            "active",
            "foo@foo.com",
            None,
            (FLOWRUNNER_EVENT, "2025-04-17T09:00:00.000000Z"),
        ),
    ),
    RealBody(
        "flowrunner_payload_routing_form_submission_2025_no_submitter.json",
        "routing_form_submission.created",
        True,
        SubmissionFacts("91a8e7c7-b157-41b9-9400-6cf30c826d03", "custom_message", None),
    ),
]

BY_FILE = {body.file: body for body in BODIES}


def invoke(handler: Any, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def calendly_now() -> str:
    """A delivery's ``created_at`` as Calendly writes it (whole seconds, six decimals)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def body_text(body: RealBody) -> str:
    """The exact text Calendly would post: the stored envelope, or the payload wrapped once."""
    if not body.bare_payload:
        return (CORPUS / body.file).read_text(encoding="utf-8")
    envelope = {"created_at": calendly_now(), "event": body.event, "payload": body.load()}
    return json.dumps(envelope, ensure_ascii=False)


def post(receive_webhook: Any, text: str, context: Any) -> tuple[int, dict[str, Any]]:
    """Calendly signs the raw bytes with the subscription's key and posts them."""
    return invoke(receive_webhook, signed_delivery_event(text.encode("utf-8"), SIGNING_KEY), context)


def resource_items(aws: LocalAws) -> list[dict[str, Any]]:
    return [item for item in aws.all_items() if item["entity"]["S"] != "delivery"]


def metric_total(stdout: str, name: str) -> float:
    """Sum of one metric over the EMF lines the functions printed."""
    total = 0.0
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "_aws" in record and name in record:
            value = record[name]
            total += sum(value) if isinstance(value, list) else value
    return total


# --- the corpus itself ----------------------------------------------------------------


def test_every_corpus_file_is_listed_with_what_it_must_become() -> None:
    # A body added to the directory without expectations would never be checked.
    on_disk = {path.name for path in CORPUS.glob("*.json")}
    assert on_disk == set(BY_FILE)
    provenance = (CORPUS / "PROVENANCE.md").read_text(encoding="utf-8")
    assert all(name in provenance for name in on_disk), "every body needs its provenance"


@pytest.mark.parametrize("body", BODIES, ids=[b.file.removesuffix(".json") for b in BODIES])
def test_corpus_files_are_calendly_api_v2_shapes(body: RealBody) -> None:
    # v2 bodies only: an envelope {created_at, event, payload} (created_by optional), or the
    # bare payload of one; never API v1's top-level "time" with payload.event / payload.invitee.
    document = body.load()
    payload = document if body.bare_payload else document["payload"]
    if not body.bare_payload:
        assert {"created_at", "event", "payload"} <= set(document) and "time" not in document
        assert document["event"] == body.event
    assert "uri" in payload and "invitee" not in payload


# --- every body through the receiver and the projector -------------------------------


@pytest.mark.parametrize("body", BODIES, ids=[b.file.removesuffix(".json") for b in BODIES])
def test_a_real_body_is_stored_once_and_projected_into_its_items(
    aws: LocalAws,
    receive_webhook: Any,
    lambda_context: Any,
    capsys: pytest.CaptureFixture[str],
    body: RealBody,
) -> None:
    # Given a real Calendly body, signed with the subscription's key
    text = body_text(body)
    payload = json.loads(text)["payload"]

    # When Calendly posts it and the stream applies it
    status, reply = post(receive_webhook, text, lambda_context)
    assert (status, reply["status"], reply["event"]) == (200, "stored", body.event)
    assert aws.project() == 1

    # Then the delivery record holds the exact body
    (delivery,) = [item for item in aws.all_items() if item["entity"]["S"] == "delivery"]
    assert delivery["body"]["S"] == text and delivery["event"]["S"] == body.event

    # and the resources it carries are stored with the fields read from the body
    facts = body.facts
    if isinstance(facts, InviteeFacts):
        assert_invitee_written(aws, facts, payload)
    elif isinstance(facts, SubmissionFacts):
        assert_submission_written(aws, facts, payload)
    else:
        # A known event we cannot map is kept raw and counted, never dropped or failed.
        assert resource_items(aws) == [], facts.why
        assert metric_total(capsys.readouterr().out, "UnrecognizedPayloads") == 1

    # And the same delivery posted again (a Calendly retry) is a duplicate with no effect
    items_before = sorted(map(json.dumps, aws.all_items()))
    status, reply = post(receive_webhook, text, lambda_context)
    assert (status, reply["status"]) == (200, "duplicate")
    assert aws.project() == 0
    assert sorted(map(json.dumps, aws.all_items())) == items_before


def assert_invitee_written(aws: LocalAws, facts: InviteeFacts, payload: dict[str, Any]) -> None:
    invitee = aws.table.get(invitee_key(facts.event_uuid, facts.invitee_uuid))
    assert invitee is not None, "the invitee item is missing"
    assert invitee["status"] == facts.status
    assert invitee["email"] == facts.email
    assert invitee.get("no_show") == facts.no_show
    assert invitee.get("canceler_type") == facts.canceler_type
    assert invitee["uri"] == payload["uri"]
    assert invitee.get("new_invitee") is None and invitee.get("old_invitee") is None
    # raw is the invitee object as sent, minus the embedded event (stored as its own item)
    assert json.loads(invitee["raw"]) == {k: v for k, v in payload.items() if k != "scheduled_event"}

    scheduled_events = [i for i in resource_items(aws) if i["entity"]["S"] == "scheduled_event"]
    if facts.scheduled_event is None:
        assert scheduled_events == []
        return
    event_uuid, start_time = facts.scheduled_event
    scheduled = aws.table.get(scheduled_event_key(event_uuid))
    assert scheduled is not None, "the embedded scheduled event was not stored"
    assert scheduled["start_time"] == start_time
    assert scheduled["status"] == payload["scheduled_event"]["status"]
    assert json.loads(scheduled["raw"]) == payload["scheduled_event"]
    assert len(scheduled_events) == 1


def assert_submission_written(aws: LocalAws, facts: SubmissionFacts, payload: dict[str, Any]) -> None:
    submission = aws.table.get(routing_form_submission_key(facts.uuid))
    assert submission is not None, "the routing form submission item is missing"
    assert submission["result_type"] == facts.result_type
    assert submission.get("submitter") == facts.submitter
    assert submission["routing_form"] == payload["routing_form"]
    assert json.loads(submission["raw"]) == payload


# --- real pairs of one invitee, in either order ---------------------------------------


def deliver_in_order(aws: LocalAws, receive_webhook: Any, context: Any, texts: list[str]) -> None:
    for text in texts:
        status, reply = post(receive_webhook, text, context)
        assert (status, reply["status"]) == (200, "stored")
        aws.project()


@pytest.mark.parametrize("order", ["in order", "reversed"])
def test_a_real_booking_and_its_cancellation_end_canceled_in_either_order(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, order: str
) -> None:
    # Given the real invitee.created and invitee.canceled of one invitee (hull, 2020)
    created = body_text(BY_FILE["hull_invitee_created_2020.json"])
    canceled = body_text(BY_FILE["hull_invitee_canceled_2020.json"])
    texts = [created, canceled] if order == "in order" else [canceled, created]

    # When they arrive in either order
    deliver_in_order(aws, receive_webhook, lambda_context, texts)

    # Then the invitee ends as Calendly holds it: canceled, with the cancellation's body
    invitee = aws.table.get(invitee_key("DDVRNUTABYGF4LO2", "AHT4VZ5PQYFOSTFB"))
    assert invitee is not None and invitee["status"] == "canceled"
    assert json.loads(invitee["raw"]) == json.loads(canceled)["payload"]


@pytest.mark.parametrize("order", ["mark first", "removal first"])
def test_a_real_no_show_mark_and_its_removal_end_unmarked_in_either_order(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, order: str
) -> None:
    # Given a real mark and its removal (FlowRunner's captures, a day after the booking):
    # both carry the booking's updated_at, only no_show tells them apart
    mark_body = BY_FILE["flowrunner_payload_invitee_no_show_marked_2025.json"]
    removal_body = BY_FILE["flowrunner_payload_invitee_no_show_unmarked_2025.json"]
    assert mark_body.load()["updated_at"] == removal_body.load()["updated_at"]
    # The removal happened after the mark it removes: its delivery is stamped after the mark
    # (posted now, while the mark's no_show.created_at is in April 2025).
    mark, removal = body_text(mark_body), body_text(removal_body)
    texts = [mark, removal] if order == "mark first" else [removal, mark]

    # When they arrive in either order
    deliver_in_order(aws, receive_webhook, lambda_context, texts)

    # Then the invitee ends in Calendly's final state: no longer a no-show
    invitee = aws.table.get(invitee_key(FLOWRUNNER_EVENT, FLOWRUNNER_INVITEE))
    assert invitee is not None and invitee["status"] == "active"
    assert invitee.get("no_show") is None, "a removal is later than the mark it removes"
    assert json.loads(invitee["raw"])["no_show"] is None


# --- what a v2 subscription never sends ------------------------------------------------


def test_a_retired_api_v1_body_is_refused_as_not_an_envelope_and_nothing_is_stored(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given Calendly's own API v1 sample (top-level "time", payload.event / payload.invitee,
    # no created_at), correctly signed
    text = V1_BODY.read_text(encoding="utf-8")
    assert "time" in json.loads(text) and "created_at" not in json.loads(text)

    # When it is posted
    status, reply = post(receive_webhook, text, lambda_context)

    # Then it gets the contract's answer for a body that is not a v2 envelope: a clear 400
    # (no crash, no 5xx that Calendly would retry for a day), and nothing half-stored
    assert status == 400 and reply["reason"] == "not_an_envelope"
    assert "created_at" in reply["message"]
    assert aws.all_items() == []

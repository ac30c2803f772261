"""PublishChangesFunction over the table's stream, in moto: what a consumer of the bus receives.

Webhook deliveries go through the real receiver and projector, polls through the real poller
against the Calendly sandbox; then the table's stream is handed to PublishChangesFunction
(trigger, filter and batch size from template.yaml), and a rule on the moto bus feeds an SQS
queue: the consumer. Every event received is validated against its schema in ``schemas/``.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from calendly_sync.adapters.aws_clients import eventbridge_client
from calendly_sync.settings import get_settings
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.runner import wait_until
from local.samples import Booking, envelope
from local.stream_pump import StreamPump
from tests.conftest import SIGNING_KEY, LocalAws
from tests.downstream_helpers import assert_valid_event
from tests.integration.test_poll import connect, poll

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "calendly_real"
ORGANIZATION = "https://api.calendly.com/organizations/AAAAAAAAAAAAAAAA"
START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@dataclass
class Consumer:
    """The publisher on the table's stream, and a queue behind a rule for every calendly-sync event."""

    aws: LocalAws
    receive_webhook: Any
    sqs: Any
    queue_url: str
    publisher: StreamPump

    def deliver(self, *bodies: dict[str, Any] | str) -> None:
        """Post each body, signed, to ReceiveWebhookFunction; then project the stored deliveries."""
        self.aws.deliver_signed(self.receive_webhook, *bodies)

    def publish(self) -> None:
        """Hand the stream's new records to PublishChangesFunction, as Lambda would."""
        self.publisher.drain()

    def received(self) -> list[dict[str, Any]]:
        """The events the queue got since the last call, each checked against its schema."""
        events: list[dict[str, Any]] = []
        while True:
            page = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            if not messages:
                break
            for message in messages:
                event = json.loads(message["Body"])
                assert event["source"] == "calendly-sync"
                assert_valid_event(event)
                events.append(event)
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return events


@pytest.fixture
def consumer(aws: LocalAws, receive_webhook: Any) -> Consumer:
    """Given the bus PublishChangesFunction publishes to, with a rule feeding a consumer's queue."""
    bus = os.environ["EVENT_BUS_NAME"]
    events = boto3.client("events")
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="consumer", EventBusName=bus, EventPattern=json.dumps({"source": ["calendly-sync"]}))
    events.put_targets(Rule="consumer", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    stream_arn = aws.dynamodb.describe_table(TableName=aws.table_name)["Table"]["LatestStreamArn"]
    publisher = StreamPump(
        boto3.client("dynamodbstreams"), stream_arn, "PublishChangesFunction", resume_at_failure=True
    )
    return Consumer(aws, receive_webhook, sqs, queue_url, publisher)


def kinds(events: list[dict[str, Any]]) -> Counter[str]:
    return Counter(event["detail-type"] for event in events)


def event_type_body(name: str, updated_at: str, *, uri: str, event: str, **more: Any) -> dict[str, Any]:
    payload = {
        "uri": uri,
        "name": name,
        "slug": "intro",
        "active": event != "event_type.deleted",
        "kind": "solo",
        "duration": 30,
        "profile": {
            "type": "User",
            "name": "Host",
            "owner": "https://api.calendly.com/users/BBBBBBBBBBBBBBBB",
        },
        "created_at": "2026-11-01T08:00:00.000000Z",
        "updated_at": updated_at,
        **more,
    }
    return envelope(event, payload, datetime.fromisoformat(updated_at))


def real_body(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    return body


# --- webhooks ---------------------------------------------------------------------------------


def test_every_detail_type_is_published_once_for_its_change_and_duplicates_publish_nothing(
    consumer: Consumer,
) -> None:
    # GIVEN a connected organization and a booking's life, an event type's, and a real submission
    consumer.aws.table.put_sync_state("CONNECTION", {"organization": ORGANIZATION, "user": "u"})
    booking = Booking(start=START)
    life = [booking.book(), booking.mark_no_show(), booking.unmark_no_show(), booking.cancel(by="host")]
    uri = "https://api.calendly.com/event_types/EEEEEEEEEEEEEEEE"
    types = [
        event_type_body("Intro", "2026-11-01T08:00:00.000000Z", uri=uri, event="event_type.created"),
        event_type_body("Intro call", "2026-11-02T08:00:00.000000Z", uri=uri, event="event_type.updated"),
        event_type_body(
            "Intro call",
            "2026-11-03T08:00:00.000000Z",
            uri=uri,
            event="event_type.deleted",
            deleted_at="2026-11-03T08:00:00.000000Z",
        ),
    ]
    submission = real_body("docs_openapi_routing_form_submission_created.json")
    real_booking = real_body("castor_invitee_created_2023_zoom.json")

    # WHEN every body is delivered and the stream published
    consumer.deliver(*life, *types, submission, real_booking)
    consumer.publish()
    first = consumer.received()

    # THEN each detail-type arrives once for its change (the cancellation also moves the event's status)
    assert kinds(first) == {
        "invitee.created": 2,
        "invitee_no_show.created": 1,
        "invitee_no_show.deleted": 1,
        "invitee.canceled": 1,
        "scheduled_event.updated": 1,
        "event_type.created": 1,
        "event_type.updated": 1,
        "event_type.deleted": 1,
        "routing_form_submission.created": 1,
    }
    assert {event["detail"]["origin"] for event in first} == {"webhook"}
    assert {event["detail"]["organization"] for event in first} == {ORGANIZATION}
    assert len({event["detail"]["change_id"] for event in first}) == len(first)
    canceled = next(e for e in first if e["detail-type"] == "invitee.canceled")["detail"]
    assert canceled["subject"] == booking.invitee_uri
    assert canceled["resource"]["cancellation"]["canceler_type"] == "host"
    updated = next(e for e in first if e["detail-type"] == "scheduled_event.updated")["detail"]
    assert updated["changed_fields"] == ["status"] and updated["resource"]["status"] == "canceled"
    real = next(e for e in first if e["detail"]["subject"] == real_booking["payload"]["uri"])["detail"]
    assert real["resource"]["scheduled_event"]["location"]["type"] == "zoom"
    assert real["calendly"]["tracking"] == real_booking["payload"]["tracking"]

    # WHEN the same deliveries are retried, an old state is replayed, and the stream handed again
    consumer.deliver(*life, *types, submission, real_booking)
    consumer.deliver(*(dict(body, created_at="2026-11-05T00:00:00.000000Z") for body in life[:1] + types[:1]))
    consumer.publish()
    consumer.publisher.rewind()
    consumer.publish()

    # THEN the consumer receives nothing more
    assert consumer.received() == []


def test_a_putevents_failure_is_retried_without_loss_or_double(consumer: Consumer) -> None:
    # GIVEN 12 bookings stored, and a bus that refuses the 4th and 5th entries of the first request
    bookings = [Booking(start=START + timedelta(hours=n)) for n in range(12)]
    consumer.deliver(*(booking.book() for booking in bookings))
    client = eventbridge_client()
    calls: list[int] = []

    def refuse_some(params: dict[str, Any], **_: Any) -> None:
        calls.append(len(params["Entries"]))
        if len(calls) == 1:
            for entry in params["Entries"][3:5]:
                entry["Detail"] = "{"  # EventBridge refuses the entry (MalformedDetail), the rest go

    client.meta.events.register("before-parameter-build.events.PutEvents", refuse_some)

    # WHEN the stream is published: the function reports the 4th booking's record
    consumer.publish()
    first = consumer.received()
    assert len(first) == 8 and consumer.publisher.held > 0

    # AND Lambda hands the batch again from that record
    consumer.publish()
    second = consumer.received()

    # THEN the two refused changes arrive then, with the two the first invocation did not reach
    # (it stops at a failed request), and nothing arrives twice
    assert len(second) == 4 and consumer.publisher.held == 0
    subjects = [event["detail"]["subject"] for event in first + second]
    assert sorted(subjects) == sorted(booking.invitee_uri for booking in bookings)


def test_an_oversized_payload_is_published_without_it(
    consumer: Consumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a stack taking bodies up to 384 KiB, and a booking whose answers are 300 KB
    monkeypatch.setenv("MAX_WEBHOOK_BODY_BYTES", str(384 * 1024))
    get_settings.cache_clear()
    booking = Booking(start=START)
    body = booking.book()
    body["payload"]["questions_and_answers"] = [{"question": "Notes", "answer": "x" * 300_000, "position": 0}]

    # WHEN delivered and published
    consumer.deliver(body)
    consumer.publish()

    # THEN the event arrives without Calendly's payload, saying so, with the resource whole
    (event,) = consumer.received()
    assert event["detail"]["truncated"] is True and "calendly" not in event["detail"]
    assert event["detail"]["resource"]["uri"] == booking.invitee_uri
    assert len(json.dumps(event["detail"])) < 256 * 1024


# --- polls ------------------------------------------------------------------------------------


class Capture(http.server.BaseHTTPRequestHandler):
    """A webhook endpoint that keeps what it is sent (the deliveries a test then drops or passes on)."""

    bodies: list[bytes]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def captured(calendly: CalendlySandbox) -> Iterator[tuple[str, list[bytes]]]:
    """Given a loopback endpoint for the sandbox's webhook deliveries: ``(url, bodies received)``."""
    bodies: list[bytes] = []
    handler = type("Handler", (Capture,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", bodies
    server.shutdown()
    server.server_close()


def subscribe(
    calendly: CalendlySandbox,
    token: str,
    url: str,
    events: tuple[str, ...] = ("invitee.created", "invitee.canceled"),
) -> None:
    response = requests.post(
        f"{calendly.base_url}/webhook_subscriptions",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "url": url,
            "events": list(events),
            "organization": calendly.organization_uri,
            "scope": "organization",
            "signing_key": SIGNING_KEY,
        },
        timeout=10,
    )
    response.raise_for_status()


def test_a_dropped_deliverys_change_is_published_once_by_the_poll_and_the_late_webhook_adds_nothing(
    consumer: Consumer, calendly: CalendlySandbox, captured: tuple[str, list[bytes]]
) -> None:
    # GIVEN an organization synced by a first poll (its bookings published once, origin poll)
    calendly.seed(users=1, event_types_per_user=1, scheduled_events=3, start=datetime.now(UTC), days=5)
    token = connect(calendly)
    assert poll()["ok"] is True
    consumer.publish()
    synced = consumer.received()
    assert synced and {event["detail"]["origin"] for event in synced} == {"poll"}
    assert kinds(synced)["invitee.created"] == len(consumer.aws.invitee_statuses())
    assert {event["detail"]["organization"] for event in synced} == {calendly.organization_uri}

    # AND an unchanged re-sync publishes nothing
    assert poll()["ok"] is True
    consumer.publish()
    assert consumer.received() == []

    # WHEN a booking is made and delivered, then canceled with the delivery lost on the way
    url, bodies = captured
    subscribe(calendly, token, url)
    invitee = calendly.book(start_time=datetime.now(UTC) + timedelta(days=2))
    assert wait_until(lambda: len(bodies) == 1, timeout=10)
    consumer.deliver(bodies.pop(0).decode())
    consumer.publish()
    booked = consumer.received()
    calendly.cancel(invitee)
    assert wait_until(lambda: len(bodies) == 1, timeout=10)
    (lost,) = bodies

    # AND the next poll finds the cancellation
    assert poll()["ok"] is True
    consumer.publish()
    found = consumer.received()

    # THEN the booking came by webhook, the cancellation by the poll, once
    assert [(e["detail-type"], e["detail"]["origin"]) for e in booked] == [("invitee.created", "webhook")]
    cancellations = [e for e in found if e["detail-type"] == "invitee.canceled"]
    assert [(e["detail"]["subject"], e["detail"]["origin"]) for e in cancellations] == [(invitee, "poll")]

    # WHEN the lost delivery arrives late after all
    consumer.deliver(lost.decode())
    consumer.publish()

    # THEN nothing more is published
    assert consumer.received() == []


def connected_with_history(calendly: CalendlySandbox) -> str:
    """Four bookings 10 to 15 days old and a connected stack; a backfill's ``since`` before them."""
    calendly.seed(
        users=1,
        event_types_per_user=1,
        scheduled_events=4,
        start=datetime.now(UTC) - timedelta(days=15),
        days=5,
    )
    connect(calendly)
    return (datetime.now(UTC) - timedelta(days=20)).date().isoformat()


def test_a_backfill_is_quiet_unless_asked(consumer: Consumer, calendly: CalendlySandbox) -> None:
    # GIVEN history in Calendly and a connected stack
    since = connected_with_history(calendly)

    # WHEN a default backfill runs THEN the table fills and nothing is published
    assert poll({"mode": "backfill", "since": since})["ok"] is True
    consumer.publish()
    assert consumer.aws.invitee_statuses() and consumer.received() == []


def test_a_backfill_asked_to_publish_publishes_its_changes_with_origin_backfill(
    consumer: Consumer, calendly: CalendlySandbox
) -> None:
    # GIVEN history in Calendly and a connected stack
    since = connected_with_history(calendly)

    # WHEN a backfill runs with "publish": true
    assert poll({"mode": "backfill", "since": since, "publish": True})["ok"] is True
    consumer.publish()

    # THEN each stored booking is published once, marked backfill
    received = consumer.received()
    bookings = [e for e in received if e["detail-type"] == "invitee.created"]
    assert len(bookings) == len(consumer.aws.invitee_statuses())
    assert {e["detail"]["origin"] for e in bookings} == {"backfill"}


def test_a_quiet_backfill_publishes_the_changes_it_makes_to_what_the_table_held(
    consumer: Consumer, calendly: CalendlySandbox, captured: tuple[str, list[bytes]]
) -> None:
    # GIVEN two past bookings delivered and published (a connected stack, a subscription)
    since = connected_with_history(calendly)
    token = calendly.add_token(TokenSpec(role="owner"))
    url, bodies = captured
    subscribe(calendly, token, url, ("invitee.created", "invitee.canceled", "invitee_no_show.created"))
    marked = calendly.book(start_time=datetime.now(UTC) - timedelta(days=3))
    canceled = calendly.book(start_time=datetime.now(UTC) - timedelta(days=2))
    assert wait_until(lambda: len(bodies) == 2, timeout=10)
    consumer.deliver(*(body.decode() for body in bodies))
    bodies.clear()
    consumer.publish()
    assert kinds(consumer.received())["invitee.created"] == 2

    # AND a no-show marked and an invitee canceled while their webhooks are held (Calendly retrying)
    calendly.mark_no_show(marked)
    calendly.cancel(canceled, by="host")
    assert wait_until(lambda: len(bodies) == 2, timeout=10)
    held = [body.decode() for body in bodies]

    # WHEN a quiet backfill runs, then the held webhooks arrive, then a poll
    assert poll({"mode": "backfill", "since": since})["ok"] is True
    consumer.publish()
    by_backfill = consumer.received()
    consumer.deliver(*held)
    assert poll()["ok"] is True
    consumer.publish()
    later = consumer.received()

    # THEN both changes to stored bookings were published once, by whichever saw them first
    changes = [(e["detail-type"], e["detail"]["resource"]["uri"]) for e in by_backfill + later]
    assert changes.count(("invitee_no_show.created", marked)) == 1
    assert changes.count(("invitee.canceled", canceled)) == 1
    # AND the history the backfill stored for the first time stayed quiet
    assert kinds(by_backfill + later)["invitee.created"] == 0
    # AND each subject's events carry a growing sequence
    canceled_event = next(e for e in by_backfill + later if e["detail-type"] == "invitee.canceled")
    assert canceled_event["detail"]["sequence"] >= 2


def test_each_subjects_events_carry_a_sequence_that_orders_them_where_updated_at_ties(
    consumer: Consumer,
) -> None:
    # GIVEN a booking whose no-show is marked, removed and marked again (Calendly leaves updated_at
    # as it was for each), then canceled; delivered in order, each published as it lands
    booking = Booking(start=START)
    bodies = [booking.book(), booking.mark_no_show(), booking.unmark_no_show(), booking.mark_no_show()]
    bodies.append(booking.cancel(by="host"))
    published: list[dict[str, Any]] = []
    for body in bodies:
        consumer.deliver(body)
        consumer.publish()
        published.extend(e for e in consumer.received() if e["detail"]["resource"]["type"] == "invitee")

    # THEN events that share the invitee's updated_at still order by sequence, which grows by change
    assert [e["detail-type"] for e in published] == [
        "invitee.created",
        "invitee_no_show.created",
        "invitee_no_show.deleted",
        "invitee_no_show.created",
        "invitee.canceled",
    ]
    assert len({e["detail"]["resource"]["updated_at"] for e in published[:4]}) == 1
    sequences = [e["detail"]["sequence"] for e in published]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences) and sequences[0] == 1

    # WHEN the same deliveries arrive again (Calendly's retries) THEN nothing is published
    consumer.deliver(*bodies)
    consumer.publish()
    assert consumer.received() == []

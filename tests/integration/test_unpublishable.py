"""Nothing stored stalls the shard: odd numbers publish as JSON, a refused event is set aside.

Through the real receiver, projector and PublishChangesFunction in moto (trigger, filter and
batch size from template.yaml), a rule on the bus feeding a consumer's queue, and
PublishFailureQueue given to the publisher as its wiring:

- a signed body holding ``1e400`` and an integer past int64 (legal JSON) is stored as sent,
  its item holds those numbers as their text, and its event reaches the consumer as JSON;
- an event EventBridge refuses for what it is (``MalformedDetail``, as AWS documents it) is
  set aside to the failure queue at once and counted, and the records behind it are published.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from moto.events.models import EventsBackend

from calendly_sync.settings import get_settings
from local.samples import Booking
from local.stream_pump import StreamPump
from tests.conftest import LocalAws

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
HUGE_FLOAT = "1e400"  # legal JSON; a Python float reads it as inf, which json.dumps writes Infinity
BIG_INTEGER = str(2**64)  # legal JSON; past int64


def strict_json(text: str) -> Any:
    """``text`` read as JSON as its RFC defines it: ``NaN``/``Infinity`` refused."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


@dataclass
class Stack:
    aws: LocalAws
    receive_webhook: Any
    sqs: Any
    consumer_url: str
    failure_queue_url: str
    publisher: StreamPump

    def deliver(self, *bodies: dict[str, Any] | str) -> None:
        self.aws.deliver_signed(self.receive_webhook, *bodies)

    def drained(self, url: str) -> list[dict[str, Any]]:
        """Every message body on the queue, read as strict JSON (a consumer's parser)."""
        bodies: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(strict_json(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def item(self, entity: str, **attributes: str) -> dict[str, Any]:
        (found,) = [
            item
            for item in self.aws.all_items()
            if item.get("entity", {}).get("S") == entity
            and all(item.get(name, {}).get("S") == value for name, value in attributes.items())
        ]
        return found


@pytest.fixture
def stack(aws: LocalAws, receive_webhook: Any, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Given the bus with a consumer's rule, and PublishFailureQueue wired into the publisher."""
    bus = os.environ["EVENT_BUS_NAME"]
    events, sqs = boto3.client("events"), boto3.client("sqs")
    if bus not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus)
    consumer_url = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    consumer_arn = sqs.get_queue_attributes(QueueUrl=consumer_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="consumer", EventBusName=bus, EventPattern=json.dumps({"source": ["calendly-sync"]}))
    events.put_targets(Rule="consumer", EventBusName=bus, Targets=[{"Id": "queue", "Arn": consumer_arn}])
    failure_queue_url = sqs.create_queue(QueueName="calendly-test-publish-failures")["QueueUrl"]
    monkeypatch.setenv("PUBLISH_FAILURE_QUEUE_URL", failure_queue_url)
    get_settings.cache_clear()
    stream_arn = aws.dynamodb.describe_table(TableName=aws.table_name)["Table"]["LatestStreamArn"]
    publisher = StreamPump(
        boto3.client("dynamodbstreams"), stream_arn, "PublishChangesFunction", resume_at_failure=True
    )
    return Stack(aws, receive_webhook, sqs, consumer_url, failure_queue_url, publisher)


def test_a_body_with_1e400_and_an_integer_past_int64_is_stored_as_sent_and_published_as_json(
    stack: Stack,
) -> None:
    # GIVEN a signed booking whose body holds 1e400 and 2**64 (legal JSON), beside ordinary numbers
    booking = Booking(start=START)
    body = booking.book()
    body["payload"]["scores"] = {"huge": "@HUGE@", "big": "@BIG@", "list": ["@HUGE@", 3], "fine": 7}
    text = json.dumps(body).replace('"@HUGE@"', HUGE_FLOAT).replace('"@BIG@"', BIG_INTEGER)

    # WHEN it is received, projected and published
    stack.deliver(text)
    stack.publisher.drain()

    # THEN the delivery is stored exactly as sent
    assert stack.item("delivery", event="invitee.created")["body"]["S"] == text
    # AND the invitee item holds those numbers as their text (the ordinary ones as numbers)
    expected = {"huge": HUGE_FLOAT, "big": BIG_INTEGER, "list": [HUGE_FLOAT, 3], "fine": 7}
    raw = stack.item("invitee", uri=booking.invitee_uri)["raw"]["S"]
    assert strict_json(raw)["scores"] == expected
    # AND its event was accepted and reached the consumer as JSON, nothing waits, nothing set aside
    assert stack.publisher.failures == [] and stack.publisher.held == 0
    (event,) = stack.drained(stack.consumer_url)
    assert event["detail-type"] == "invitee.created" and event["detail"]["subject"] == booking.invitee_uri
    assert event["detail"]["calendly"]["scores"] == expected
    assert stack.drained(stack.failure_queue_url) == []


def emitted(capsys: pytest.CaptureFixture[str], metric: str) -> float:
    """The sum of ``metric`` over the EMF documents the handlers printed since the last call."""
    total = 0.0
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            document = json.loads(line)
            names = {m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
            if metric in names:
                values = document[metric]
                total += sum(values) if isinstance(values, list) else values
    return total


@pytest.fixture
def eventbridge_refusing() -> Iterator[set[str]]:
    """PutEvents refusing, as AWS documents (MalformedDetail), each entry naming a chosen subject."""
    refused_subjects: set[str] = set()
    put_events = EventsBackend.put_events

    def refuse_some(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for entry in entries:
            if json.loads(entry["Detail"]).get("subject") in refused_subjects:
                results.append({"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."})
            else:
                results.extend(put_events(self, [entry]))
        return results

    with mock.patch.object(EventsBackend, "put_events", refuse_some):
        yield refused_subjects


def test_a_record_refused_as_malformed_is_set_aside_at_once_and_the_records_behind_it_are_published(
    stack: Stack, eventbridge_refusing: set[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN three bookings received and projected, and EventBridge refusing the second's event
    bookings = [Booking(start=START + timedelta(hours=n)) for n in range(3)]
    stack.deliver(*(booking.book() for booking in bookings))
    eventbridge_refusing.add(bookings[1].invitee_uri)
    capsys.readouterr()

    # WHEN Lambda hands the stream to the publisher
    stack.publisher.drain()

    # THEN nothing waits on the stream: the first and third bookings are on the bus
    assert stack.publisher.failures == [] and stack.publisher.held == 0
    published = stack.drained(stack.consumer_url)
    assert sorted(e["detail"]["subject"] for e in published) == sorted(
        [bookings[0].invitee_uri, bookings[2].invitee_uri]
    )
    # AND the second is in the failure queue at once, with what finds it again, and counted
    (message,) = stack.drained(stack.failure_queue_url)
    invitee = stack.item("invitee", uri=bookings[1].invitee_uri)
    assert message["set_aside"] == "MalformedDetail" and message["detail_type"] == "invitee.created"
    assert message["subject"] == bookings[1].invitee_uri
    assert message["item"] == {"pk": invitee["pk"]["S"], "sk": invitee["sk"]["S"]}
    assert emitted(capsys, "EventsSetAside") == 1

    # AND the stream handed again (as Lambda re-sends a batch) neither puts nor sets anything aside again
    stack.publisher.rewind()
    stack.publisher.drain()
    assert stack.drained(stack.consumer_url) == [] and stack.drained(stack.failure_queue_url) == []
    assert emitted(capsys, "EventsSetAside") == 0

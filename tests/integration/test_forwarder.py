"""The local forwarder: what ForwardRule's API destination does, played on one machine.

A rule on the bus feeds a queue (moto's EventBridge delivers to SQS); the forwarder POSTs each
event to a loopback flow URL with the connection's header, retries what EventBridge retries,
and dead-letters what it gives up on. The secret in the header never reaches any output.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from local.forwarder import LocalForwarder, LoopbackEndpoint
from local.lambda_runtime import signed_delivery_event
from local.runner import LocalStackRunner, wait_until
from local.samples import Booking

HEADER = "x-calendly-sync-token"
SECRET = "forward-secret-3f9c2a7d1e"  # a test value, to prove it is never shown


@dataclass
class Forwarding:
    events: Any
    sqs: Any
    queue_url: str

    def put(self, detail_type: str, change_id: str) -> None:
        detail = {"change_id": change_id, "origin": "webhook", "resource": {"type": "invitee"}}
        answer = self.events.put_events(
            Entries=[
                {
                    "Source": "calendly-sync",
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail),
                    "EventBusName": "calendly",
                }
            ]
        )
        assert answer["FailedEntryCount"] == 0

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def forwarding() -> Iterator[Forwarding]:
    """Given a bus with a forwarding rule (cancellations only) whose target is a queue."""
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="calendly")
        queue_url = sqs.create_queue(QueueName="forward")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        pattern = {"source": ["calendly-sync"], "detail-type": ["invitee.canceled"]}
        events.put_rule(Name="forward", EventBusName="calendly", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="forward", EventBusName="calendly", Targets=[{"Id": "q", "Arn": queue_arn}])
        yield Forwarding(events, sqs, queue_url)


@pytest.fixture
def endpoint() -> Iterator[LoopbackEndpoint]:
    """Given a flow URL on loopback that accepts only requests carrying the right header."""
    with LoopbackEndpoint(required_header=(HEADER, SECRET)) as running:
        yield running


def forwarder(forwarding: Forwarding, url: str, waits: list[float], retries: int = 3) -> LocalForwarder:
    return LocalForwarder(
        forwarding.sqs, forwarding.queue_url, url, HEADER, SECRET, max_retries=retries, sleep=waits.append
    )


def test_each_matching_event_is_posted_once_with_the_header(
    forwarding: Forwarding, endpoint: LoopbackEndpoint
) -> None:
    # GIVEN two cancellations and a booking on the bus (the rule forwards cancellations only)
    forwarding.put("invitee.canceled", "a" * 32)
    forwarding.put("invitee.created", "b" * 32)
    forwarding.put("invitee.canceled", "c" * 32)
    waits: list[float] = []

    # WHEN the forwarder runs
    sender = forwarder(forwarding, endpoint.url, waits)
    settled = sender.forward_pending()

    # THEN the endpoint accepted each cancellation once, as EventBridge's JSON with the header
    accepted = endpoint.accepted()
    assert settled == 2 and sender.delivered == 2 and sender.dead_letters == []
    assert [r.body["detail"]["change_id"] for r in accepted] == ["a" * 32, "c" * 32]
    assert {r.body["detail-type"] for r in accepted} == {"invitee.canceled"}
    assert all(r.method == "POST" and r.headers[HEADER] == "***" for r in accepted)  # present, and right
    assert all(r.headers["content-type"].startswith("application/json") for r in accepted)
    # AND nothing waits on the queue, and nothing was retried
    assert forwarding.queued() == 0 and waits == []
    assert sender.forward_pending() == 0 and len(endpoint.received) == 2


def test_a_failing_endpoint_is_retried_then_the_event_succeeds_once(
    forwarding: Forwarding, endpoint: LoopbackEndpoint
) -> None:
    # GIVEN an endpoint that answers 503 and then 429 before it recovers
    endpoint.fail_next([503, 429])
    forwarding.put("invitee.canceled", "d" * 32)
    waits: list[float] = []

    # WHEN the forwarder runs
    sender = forwarder(forwarding, endpoint.url, waits)
    sender.forward_pending()

    # THEN it tried three times, backing off between tries, and the event arrived once
    assert [r.status for r in endpoint.received] == [503, 429, 200]
    assert waits == [0.1, 0.2]
    assert sender.delivered == 1 and sender.dead_letters == [] and len(endpoint.accepted()) == 1


def test_an_endpoint_failing_every_try_gets_the_event_dead_lettered(
    forwarding: Forwarding, endpoint: LoopbackEndpoint
) -> None:
    # GIVEN an endpoint that fails every try with 500
    endpoint.fail_next([500] * 10)
    forwarding.put("invitee.canceled", "e" * 32)
    waits: list[float] = []

    # WHEN the forwarder runs with 3 retries
    sender = forwarder(forwarding, endpoint.url, waits, retries=3)
    settled = sender.forward_pending()

    # THEN after 4 tries the event is in the dead-letter list, by id, and off the queue
    assert settled == 1 and sender.delivered == 0 and len(endpoint.received) == 4
    (letter,) = sender.dead_letters
    assert (letter.detail_type, letter.change_id, letter.attempts, letter.last_status) == (
        "invitee.canceled",
        "e" * 32,
        4,
        500,
    )
    assert forwarding.queued() == 0 and waits == [0.1, 0.2, 0.4]


def test_an_answer_eventbridge_does_not_retry_dead_letters_at_once(
    forwarding: Forwarding, endpoint: LoopbackEndpoint
) -> None:
    # GIVEN an endpoint that refuses the event with 400 (a final answer for EventBridge)
    endpoint.fail_next([400])
    forwarding.put("invitee.canceled", "f" * 32)

    # WHEN the forwarder runs
    sender = forwarder(forwarding, endpoint.url, [])
    sender.forward_pending()

    # THEN one try only, and the event is dead-lettered
    assert len(endpoint.received) == 1
    assert [(d.attempts, d.last_status) for d in sender.dead_letters] == [(1, 400)]


def test_a_wrong_secret_is_refused_and_the_secret_is_never_shown(
    forwarding: Forwarding, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN an endpoint expecting another secret, and no endpoint at all for a second forwarder
    caplog.set_level(logging.DEBUG)
    forwarding.put("invitee.canceled", "1" * 32)
    with LoopbackEndpoint(required_header=(HEADER, "another-secret")) as strict:
        # WHEN the forwarder runs against it (401 is retried, then dead-lettered)
        sender = forwarder(forwarding, strict.url, [], retries=1)
        sender.forward_pending()
        statuses = [r.status for r in strict.received]
    forwarding.put("invitee.canceled", "2" * 32)
    unreachable = forwarder(forwarding, "http://127.0.0.1:9/flows", [], retries=0)
    unreachable.forward_pending()

    # THEN both events are dead-lettered, one refused twice with 401, one with no answer
    assert statuses == [401, 401]
    assert [(d.last_status, d.attempts) for d in sender.dead_letters + unreachable.dead_letters] == [
        (401, 2),
        (None, 1),
    ]
    # AND the secret appears in no output, log, repr or dead letter
    shown = capsys.readouterr()
    everything = [shown.out, shown.err, caplog.text, repr(sender), repr(unreachable)]
    everything += [repr(d) for d in sender.dead_letters + unreachable.dead_letters]
    assert "forward gave up" in caplog.text
    assert all(SECRET not in text for text in everything)


@pytest.mark.parametrize("redirect", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_the_other_origin_gets_nothing(
    forwarding: Forwarding, redirect: int
) -> None:
    # GIVEN a flow URL that answers with a redirect to another origin (a second loopback server)
    forwarding.put("invitee.canceled", "3" * 32)
    with LoopbackEndpoint() as elsewhere, LoopbackEndpoint(answers=[redirect]) as moved:
        moved.location = elsewhere.url

        # WHEN the forwarder runs
        sender = forwarder(forwarding, moved.url, [])
        settled = sender.forward_pending()

        # THEN the other origin received nothing at all (so not the header's secret)
        assert elsewhere.received == []
        assert [r.status for r in moved.received] == [redirect]
    # AND the redirect is the failed invocation EventBridge documents: not retried, dead-lettered
    assert settled == 1 and sender.delivered == 0 and sender.attempts == 1
    assert [(d.attempts, d.last_status, d.reason) for d in sender.dead_letters] == [
        (1, redirect, f"HTTP {redirect}")
    ]
    assert forwarding.queued() == 0


def test_the_forwarder_times_out_at_5_seconds_by_default(forwarding: Forwarding) -> None:
    # GIVEN a forwarder built with no timeout of its own
    sender = LocalForwarder(forwarding.sqs, forwarding.queue_url, "http://127.0.0.1:9/flows", HEADER, SECRET)

    # THEN it gives each request the 5 s an API destination gives an endpoint
    assert sender.timeout == 5.0


@pytest.mark.parametrize("trickle", [False, True], ids=["no-answer-in-time", "body-trickles-past-it"])
def test_an_answer_slower_than_the_timeout_is_retried_not_counted_delivered(
    forwarding: Forwarding, endpoint: LoopbackEndpoint, trickle: bool
) -> None:
    # GIVEN an endpoint whose first answer (a 200) takes longer than the timeout, headers at once or not
    endpoint.trickle = trickle
    endpoint.delay_next([1.2])
    forwarding.put("invitee.canceled", "4" * 32)
    waits: list[float] = []

    # WHEN the forwarder runs with a 0.5 s timeout (the 5 s default, scaled down)
    sender = LocalForwarder(
        forwarding.sqs, forwarding.queue_url, endpoint.url, HEADER, SECRET, timeout=0.5, sleep=waits.append
    )
    sender.forward_pending()

    # THEN the slow 200 counted as a failure that is retried, and only the prompt one as delivered
    assert sender.attempts == 2 and waits == [0.1]
    assert sender.delivered == 1 and sender.dead_letters == []
    assert wait_until(lambda: len(endpoint.received) == 2, timeout=5)


def test_an_endpoint_always_slower_than_the_timeout_gets_the_event_dead_lettered(
    forwarding: Forwarding, endpoint: LoopbackEndpoint
) -> None:
    # GIVEN an endpoint that answers 200 every time, but always too late
    endpoint.delay_next([0.6] * 3)
    forwarding.put("invitee.canceled", "5" * 32)
    waits: list[float] = []

    # WHEN the forwarder runs with a 0.2 s timeout and 2 retries
    sender = LocalForwarder(
        forwarding.sqs,
        forwarding.queue_url,
        endpoint.url,
        HEADER,
        SECRET,
        timeout=0.2,
        max_retries=2,
        sleep=waits.append,
    )
    sender.forward_pending()

    # THEN nothing is counted delivered: after 3 timed-out tries the event is dead-lettered, no status
    assert sender.delivered == 0 and waits == [0.1, 0.2]
    assert [(d.attempts, d.last_status, d.reason) for d in sender.dead_letters] == [(3, None, "ReadTimeout")]


def test_the_local_runner_forwards_what_forward_rule_matches(tmp_path: Path) -> None:
    # GIVEN the local stack with ForwardUrl pointing at a loopback endpoint that checks the header
    with (
        LoopbackEndpoint() as flow,
        LocalStackRunner(log_path=tmp_path / "functions.log", forward_url=flow.url) as stack,
    ):
        flow.required_header = stack.forward_header()
        booking = Booking(start=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
        created, canceled = booking.book(), booking.cancel()

        # WHEN Calendly delivers a booking and its cancellation (the second one twice)
        for envelope in (created, canceled, canceled):
            event = signed_delivery_event(envelope, stack.signing_key())
            answer = requests.post(
                stack.webhook_url, data=event["body"], headers=event["headers"], timeout=10
            )
            assert answer.status_code == 200
        assert wait_until(lambda: stack.project() == 0, timeout=30)
        stack.forward()

        # THEN the flow URL accepted one request per change, each with the header's right value
        accepted = flow.accepted()
        assert len(accepted) == len(flow.received)
        assert sorted(r.body["detail-type"] for r in accepted) == [
            "invitee.canceled",
            "invitee.created",
            "scheduled_event.updated",
        ]
        assert all(r.body["source"] == "calendly-sync" for r in accepted)
        assert stack.forwarder is not None and stack.forwarder.dead_letters == []

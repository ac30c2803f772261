"""Faults injected into AWS itself: DynamoDB failing for a while, inside botocore's retry loop.

A ``before-send`` hook makes the first N requests of chosen operations fail as a dropped
connection would, before they reach moto; botocore's own retries (standard mode: the first
attempt and three retries) then see the failures, exactly as they would see DynamoDB throttling.
(A hook cannot *answer* 400 ThrottlingException instead: every ``before-send`` handler runs,
so moto would still apply the write behind the fake answer.)
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from calendly_sync.adapters.aws_clients import dynamodb_client
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.copy_check import compare, sandbox_facts, table_facts
from local.lambda_runtime import FakeLambdaContext, load_handler, resign_event
from tests.conftest import SIGNING_KEY, LocalAws, calendly_invitee_statuses, sample_event


class Throttle:
    """Fails the next ``count`` DynamoDB requests of the given operations, then lets them through."""

    def __init__(self, count: int, operations: tuple[str, ...]) -> None:
        self.remaining, self.operations, self.failed = count, operations, 0

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        if event_name.rsplit(".", 1)[-1] not in self.operations or self.remaining <= 0:
            return
        self.remaining -= 1
        self.failed += 1
        raise EndpointConnectionError(endpoint_url=request.url)


@pytest.fixture
def throttle() -> Iterator[Any]:
    hooks: list[Throttle] = []

    def install(count: int, *operations: str) -> Throttle:
        hook = Throttle(count, operations)
        dynamodb_client().meta.events.register_first("before-send.dynamodb", hook)
        hooks.append(hook)
        return hook

    yield install
    for hook in hooks:
        dynamodb_client().meta.events.unregister("before-send.dynamodb", hook)


def receive(event: dict[str, Any]) -> int:
    status: int = load_handler("ReceiveWebhookFunction")(event, FakeLambdaContext())["statusCode"]
    return status


def connected_sync(calendly: CalendlySandbox, *, days: int, **seed: int) -> Callable[[], dict[str, Any]]:
    """Seed the sandbox, connect an owner's token, and return one scheduled sync run of the poller."""
    calendly.seed(start=datetime.now(UTC) - timedelta(days=2), days=days, **seed)
    token = calendly.add_token(TokenSpec(role="owner"))
    assert load_handler("ValidateCredentialsFunction")({"token": token}, FakeLambdaContext())["valid"]
    poll = load_handler("PollCalendlyFunction")

    def run() -> dict[str, Any]:
        answer: dict[str, Any] = poll({"mode": "sync"}, FakeLambdaContext(timeout_seconds=300))
        return answer

    return run


def test_a_throttled_delivery_write_lands_once_within_the_retry_bound(aws: LocalAws, throttle: Any) -> None:
    # Given DynamoDB fails the next three writes (botocore makes four attempts)
    hook = throttle(3, "PutItem")

    # When a delivery arrives
    status = receive(resign_event(sample_event("invitee_created"), SIGNING_KEY))

    # Then it is stored, once
    assert status == 200 and hook.failed == 3
    assert [i["entity"]["S"] for i in aws.all_items()] == ["delivery"]


def test_beyond_the_retry_bound_the_receiver_answers_5xx_and_writes_nothing(
    aws: LocalAws, throttle: Any
) -> None:
    throttle(10, "PutItem")
    assert receive(resign_event(sample_event("invitee_created"), SIGNING_KEY)) == 503
    assert aws.all_items() == []


def test_a_throttled_projection_is_retried_by_the_stream_and_lands_once(aws: LocalAws, throttle: Any) -> None:
    # Given a stored delivery, and DynamoDB throttling the projector's writes past botocore's retries
    assert receive(resign_event(sample_event("invitee_created"), SIGNING_KEY)) == 200
    hook = throttle(4, "UpdateItem")

    # When the stream hands it to the projector, the record is reported failed for Lambda to retry
    aws.stream.drain()
    assert hook.failed == 4
    assert len(aws.stream.failures) == 1

    # Then the retry (Lambda re-sends the same record) applies it once and completely
    aws.stream.rewind()  # Lambda re-sends the failed batch (and every write is idempotent)
    aws.project()
    kinds = sorted(i["entity"]["S"] for i in aws.all_items())
    assert kinds == ["delivery", "invitee", "scheduled_event"]


def test_a_poll_survives_throttling_and_beyond_the_bound_fails_then_resumes(
    aws: LocalAws, calendly: CalendlySandbox, throttle: Any
) -> None:
    run = connected_sync(calendly, users=2, event_types_per_user=1, scheduled_events=120, days=10)

    # Within botocore's bound: three failed writes are retried and the sync completes
    throttle(3, "UpdateItem")
    first = run()
    assert first["ok"] is True and first["done"] is True

    # Beyond it: the run fails cleanly, and the next run completes the table
    calendly.cancel(
        next(uri for uri, status in calendly_invitee_statuses(calendly).items() if status == "active")
    )
    outage = throttle(50, "UpdateItem")
    failed = run()
    assert failed["ok"] is False and "DynamoDB" in failed["message"]
    outage.remaining = 0  # DynamoDB is back
    recovered = run()
    assert recovered["ok"] is True and recovered["done"] is True
    copy = compare(sandbox_facts(calendly.state), table_facts(aws.all_items()))
    assert copy.matches, copy.summary()


class RandomFailures:
    """Fails each DynamoDB write attempt with probability ``share`` (seeded), as a flaky network would."""

    WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")

    def __init__(self, share: float, seed: int) -> None:
        self.share, self.random, self.failed = share, random.Random(seed), 0

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        if event_name.rsplit(".", 1)[-1] in self.WRITES and self.random.random() < self.share:
            self.failed += 1
            raise EndpointConnectionError(endpoint_url=request.url)


def test_a_first_sync_with_30_percent_of_writes_failing_is_completed_by_later_runs(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    run = connected_sync(calendly, users=3, event_types_per_user=2, scheduled_events=300, days=20)

    # Given 30 % of DynamoDB write attempts fail at random during the first run (botocore retries
    # each write a few times, so some writes fail for good and the run stops part way)
    flaky = RandomFailures(0.3, seed=9)
    dynamodb_client().meta.events.register_first("before-send.dynamodb", flaky)
    try:
        first = run()
    finally:
        dynamodb_client().meta.events.unregister("before-send.dynamodb", flaky)
    assert flaky.failed > 0

    # When later runs go on without faults
    later = [run()]
    while not later[-1]["done"] and len(later) < 5:
        later.append(run())

    # Then the table is complete, and no event was ever stored without its invitees
    assert later[-1]["ok"] is True and later[-1]["done"] is True, (first["message"], later[-1]["message"])
    copy = compare(sandbox_facts(calendly.state), table_facts(aws.all_items()))
    assert copy.matches, copy.summary()

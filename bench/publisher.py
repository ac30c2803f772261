"""Figures for PublishChangesFunction (``make bench-publish``), in-process against moto.

    make bench-publish
    make bench-publish BENCH_ARGS="--deliveries 5000 --poll-events 1000"

1. Webhook deliveries (default 2,000, a fifth of them exact duplicates) through
   ReceiveWebhookFunction, the projector and the publisher on the table's stream, drained
   every 100 deliveries. Events a consumer's queue received (a rule on the bus, source
   calendly-sync) per change made (target 1.00), per duplicate delivery (target 0), and per
   stream record when the publisher is handed the whole stream again (a replay: target 0).
2. A poll run: PollCalendlyFunction's first sync of an organization in the Calendly sandbox,
   an unchanged re-sync, and a re-sync after cancellations no webhook announced.
3. The publisher's cost per change: AWS calls by operation (BatchGetItem, PutEvents,
   BatchWriteItem, GetItem; counted at botocore's ``before-send`` while its handler runs, so
   retries count), and its handler time per change next to the projection's (the projector's
   per delivery applied, the poller's per change found), with its share of that time.

A change is what the story did to Calendly, counted by the contract's rules: a booking is
``invitee.created``; a cancellation ``invitee.canceled`` and ``scheduled_event.updated`` (the
stored event's status changed); a reschedule both of those and the new ``invitee.created``;
a no-show mark ``invitee_no_show.created``; an event type first found ``event_type.created``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore import handlers
from moto import mock_aws

from bench import command_line, machine
from local import stack
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.lambda_runtime import FakeLambdaContext, Handler, load_handler, signed_delivery_event
from local.samples import Booking
from local.stream_pump import StreamPump

KEY = "bench-signing-key"
TABLE = "bench-table"
PUBLISHER_CALLS = ("BatchGetItem", "PutEvents", "BatchWriteItem", "GetItem")


@dataclass
class CallCount:
    """AWS requests by operation, counted only while ``active`` (the publisher's handler runs)."""

    active: bool = False
    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, event_name: str, **_: Any) -> None:
        if self.active:  # event_name is "before-send.<service>.<Operation>"
            self.calls[event_name.rsplit(".", 1)[-1]] += 1

    def wrap(self, handler: Handler) -> Handler:
        def counted(event: dict[str, Any], context: Any) -> Any:
            self.active = True
            try:
                return handler(event, context)
            finally:
                self.active = False

        return counted


publisher_calls = CallCount()
# Every client made from here on reports each HTTP request it sends, retries included.
handlers.BUILTIN_HANDLERS.append(("before-send", publisher_calls))


@dataclass
class Bench:
    projector: StreamPump
    publisher: StreamPump
    sqs: Any
    queue_url: str
    received: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            while self.projector.drain() + self.publisher.drain():
                pass
        assert not self.projector.failures and not self.publisher.failures, "a stream record failed"

    def consume(self) -> list[dict[str, Any]]:
        """What the consumer's queue holds now (taken off it)."""
        new: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                new.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.received += new
        return new


def _forget_process_state() -> None:
    from calendly_sync.adapters.aws_clients import clear_client_caches
    from calendly_sync.adapters.secrets import clear_secret_caches
    from calendly_sync.settings import get_settings

    clear_client_caches()
    clear_secret_caches()
    get_settings.cache_clear()


def _stack(calendly_url: str = "http://127.0.0.1:9") -> Bench:
    """Table, secrets and bus from template.yaml in a fresh moto account, a consumer on the bus."""
    _forget_process_state()
    dynamodb, secretsmanager = boto3.client("dynamodb"), boto3.client("secretsmanager")
    events, sqs = boto3.client("events"), boto3.client("sqs")
    stack.create_table(dynamodb, TABLE)
    signing = stack.create_secret(secretsmanager, "WebhookSigningKeySecret", "bench/keys")
    secretsmanager.put_secret_value(SecretId=signing, SecretString=json.dumps({"current": KEY}))
    refs = {
        **stack.parameter_defaults(),
        "AWS::StackName": "bench",
        "CalendlyTable": TABLE,
        "WebhookSigningKeySecret": signing,
        "CalendlyTokenSecret": stack.create_secret(secretsmanager, "CalendlyTokenSecret", "bench/token"),
        "WebhookApi": "bench",
    }
    local = stack.LocalStack(refs)
    bus, _ = stack.create_event_bus(events, local)
    refs["CalendlyEventBus"] = bus
    for logical_id in stack.function_ids():
        os.environ.update(stack.function_environment(logical_id, local))
    os.environ.update({"CALENDLY_API_BASE_URL": calendly_url, "POWERTOOLS_LOG_LEVEL": "WARNING"})
    _forget_process_state()

    queue_url = sqs.create_queue(QueueName="consumer")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="consumer", EventBusName=bus, EventPattern=json.dumps({"source": ["calendly-sync"]}))
    events.put_targets(Rule="consumer", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    stream_arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams")
    return Bench(
        projector=StreamPump(streams, stream_arn, "ProjectDeliveriesFunction"),
        publisher=StreamPump(
            streams, stream_arn, "PublishChangesFunction", resume_at_failure=True, wrap=publisher_calls.wrap
        ),
        sqs=sqs,
        queue_url=queue_url,
    )


def story(deliveries: int, duplicates: float, seed: int) -> tuple[list[dict[str, Any]], int, int]:
    """Calendly's deliveries for bookings with cancellations, reschedules and no-shows, some sent
    twice; returns them with the number of changes they make and of exact duplicates."""
    rng = random.Random(seed)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    sent: list[dict[str, Any]] = []
    changes = repeated = 0

    def send(envelope: dict[str, Any], effect: int) -> None:
        nonlocal changes, repeated
        sent.append(envelope)
        changes += effect
        if rng.random() < duplicates and len(sent) < deliveries:
            sent.append(envelope)
            repeated += 1

    index = 0
    while len(sent) < deliveries:
        booking = Booking(start=start + timedelta(minutes=30 * index), email=f"guest{index}@example.com")
        index += 1
        send(booking.book(), 1)
        roll = rng.random()
        if roll < 0.15 and len(sent) < deliveries:
            send(booking.cancel(), 2)  # invitee.canceled, scheduled_event.updated
        elif roll < 0.25 and len(sent) < deliveries - 1:
            _, (canceled, created) = booking.reschedule(start + timedelta(days=40, minutes=30 * index))
            send(canceled, 2)
            send(created, 1)
        elif roll < 0.35 and len(sent) < deliveries:
            send(booking.mark_no_show(), 1)
    return sent[:deliveries], changes, repeated


@dataclass
class Cost:
    changes: int
    events: int
    calls: Counter[str]
    publisher_seconds: float
    projection_seconds: float
    projection_label: str

    def lines(self) -> Iterator[str]:
        per = max(self.changes, 1)
        calls = ", ".join(f"{op} {self.calls[op] / per:.3f}" for op in PUBLISHER_CALLS)
        other = sum(n for op, n in self.calls.items() if op not in PUBLISHER_CALLS)
        yield f"      AWS calls per change   {calls}" + (f", other {other / per:.3f}" if other else "")
        publisher_ms = 1000 * self.publisher_seconds / per
        projection_ms = 1000 * self.projection_seconds / per
        yield (
            f"      time per change        publisher {publisher_ms:.2f} ms, {self.projection_label} "
            f"{projection_ms:.2f} ms: the publisher adds "
            f"{self.publisher_seconds / self.projection_seconds:.0%}"
        )


def _change_ids_once(events: list[dict[str, Any]]) -> str:
    ids = Counter(e["detail"]["change_id"] for e in events)
    return f"{len(ids):,} distinct change ids, {sum(n - 1 for n in ids.values() if n > 1)} repeated"


def webhook_figures(deliveries: int, duplicates: float, drain_every: int) -> None:
    with mock_aws():
        bench = _stack()
        sent, changes, repeated = story(deliveries, duplicates, seed=11)
        receiver = load_handler("ReceiveWebhookFunction")
        context = FakeLambdaContext(function_name="ReceiveWebhookFunction")
        answers: Counter[str] = Counter()
        receive_seconds = 0.0
        publisher_calls.calls.clear()
        for index, envelope in enumerate(sent, 1):
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                answer = receiver(signed_delivery_event(envelope, KEY), context)
            receive_seconds += time.perf_counter() - started
            answers[json.loads(answer["body"]).get("status", str(answer["statusCode"]))] += 1
            if index % drain_every == 0:
                bench.drain()
        bench.drain()
        events = bench.consume()
        calls = Counter(publisher_calls.calls)
        distinct = deliveries - repeated
        print(f"   {deliveries:,} deliveries: {distinct:,} distinct, {repeated:,} exact duplicates")
        print(f"      receiver answers       {dict(sorted(answers.items()))}")
        print(f"      changes made           {changes:,}")
        print(f"      events received        {len(events):,} ({_change_ids_once(events)})")
        print(f"      events per change      {len(events) / changes:.2f}  (target 1.00)")
        extra = max(0, len(events) - changes)
        print(f"      events per duplicate   {extra / max(repeated, 1):.2f}  (target 0)")
        cost = Cost(
            changes,
            len(events),
            calls,
            bench.publisher.handler_seconds,
            bench.projector.handler_seconds,
            "projector",
        )
        for line in cost.lines():
            print(line)
        print(
            f"      (the projector's {bench.projector.handler_seconds / max(distinct, 1) * 1000:.2f} ms per "
            f"delivery applied; the receiver's {receive_seconds / deliveries * 1000:.2f} ms per delivery)"
        )

        # Lambda hands the publisher the whole stream again (a retried shard, a replay).
        publisher_calls.calls.clear()
        before = bench.publisher.handler_seconds
        bench.publisher.rewind()
        with contextlib.redirect_stdout(io.StringIO()):
            replayed = bench.publisher.drain()  # the records its filter passes, as Lambda hands them
        again = bench.consume()
        print(f"   the whole stream handed to the publisher again ({replayed:,} resource records)")
        print(f"      events received        {len(again)}  (target 0)")
        per = max(replayed, 1)
        calls_text = ", ".join(f"{op} {publisher_calls.calls[op] / per:.3f}" for op in PUBLISHER_CALLS)
        print(f"      AWS calls per record   {calls_text}")
        print(
            f"      time per record        {(bench.publisher.handler_seconds - before) / per * 1000:.2f} ms"
        )


def _expected_first_sync(calendly: CalendlySandbox) -> int:
    with calendly.state.lock:
        invitees = list(calendly.state.invitees.values())
        event_types = len(calendly.state.event_types)
    return event_types + sum(1 + (i.status == "canceled") + (i.no_show is not None) for i in invitees)


def _poll(bench: Bench) -> tuple[dict[str, Any], float]:
    handler = load_handler("PollCalendlyFunction")
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        report: dict[str, Any] = handler(
            {"mode": "sync"}, FakeLambdaContext(function_name="PollCalendlyFunction", timeout_seconds=900)
        )
    seconds = time.perf_counter() - started
    assert report["ok"] and report["done"], report
    return report, seconds


def poll_figures(scheduled_events: int, cancellations: int) -> None:
    config = SandboxConfig(seed=31, rate_window_seconds=60, rate_limit=100_000)
    with CalendlySandbox(config) as calendly, mock_aws():
        now = datetime.now(UTC)
        calendly.seed(
            users=4,
            event_types_per_user=2,
            scheduled_events=scheduled_events,
            start=now - timedelta(days=3),
            days=30,
        )
        bench = _stack(calendly.base_url)
        token = calendly.add_token(TokenSpec(role="owner"))
        with contextlib.redirect_stdout(io.StringIO()):
            verdict = load_handler("ValidateCredentialsFunction")(
                {"token": token}, FakeLambdaContext(function_name="ValidateCredentialsFunction")
            )
        assert verdict["valid"], verdict

        def run(label: str, changes: int, act: Callable[[], None] = lambda: None) -> None:
            act()
            publisher_calls.calls.clear()
            published_before = bench.publisher.handler_seconds
            report, seconds = _poll(bench)
            bench.drain()
            events = bench.consume()
            origins = Counter(e["detail"]["origin"] for e in events)
            read, written = report["events_seen"], report["items_written"]
            print(f"   {label}: {read:,} events read, {written:,} items written")
            print(f"      changes made           {changes:,}")
            once = _change_ids_once(events)
            print(f"      events received        {len(events):,} ({once}; origin {dict(origins)})")
            if changes:
                print(f"      events per change      {len(events) / changes:.2f}  (target 1.00)")
                cost = Cost(
                    changes,
                    len(events),
                    Counter(publisher_calls.calls),
                    bench.publisher.handler_seconds - published_before,
                    seconds,
                    "poller",
                )
                for line in cost.lines():
                    print(line)

        run("first sync", _expected_first_sync(calendly))
        run("unchanged re-sync", 0)

        def cancel() -> None:
            with calendly.state.lock:
                active = sorted(
                    calendly.state.uris.invitee(i.event_uuid, i.uuid)
                    for i in calendly.state.invitees.values()
                    if i.status == "active"
                )
            # No subscription exists here, so Calendly announces none of these: only the poller sees them.
            for uri in random.Random(5).sample(active, min(cancellations, len(active))):
                calendly.cancel(uri, reason="bench")

        run(f"re-sync after {cancellations} cancellations no webhook announced", 2 * cancellations, cancel)


def main() -> int:
    arguments = command_line(
        __doc__,
        [
            ("--deliveries", 2000, "webhook deliveries, duplicates included"),
            ("--duplicates", 0.25, "chance a delivery is sent twice"),
            ("--drain-every", 100, "deliveries between stream drains"),
            ("--poll-events", 500, "scheduled events for the poll run"),
            ("--cancellations", 50, "cancellations only the poller finds"),
        ],
    ).parse_args()
    print("PublishChangesFunction benchmark (moto in-process; the Calendly sandbox on loopback)")
    print(f"{machine()}\n")
    print("1. webhook deliveries through the receiver, the projector and the publisher")
    webhook_figures(arguments.deliveries, arguments.duplicates, arguments.drain_every)
    print(f"\n2. a poll run over {arguments.poll_events:,} scheduled events")
    poll_figures(arguments.poll_events, arguments.cancellations)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

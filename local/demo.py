"""``make demo``: the pipeline on one machine, no accounts needed.

Starts moto's server (AWS), the Calendly sandbox and the local HTTP front for the
template's routes; connects a token, subscribes the stack's webhook URL, makes bookings
(with cancellations, reschedules, no-shows, duplicated and reordered deliveries and a few
forgeries), lets the signed deliveries arrive, and prints what the table now holds next to
what Calendly holds. Then what a consumer received: a rule on the bus (source calendly-sync)
feeding a queue, with counts per detail-type next to the changes made in Calendly (one event
each, none for duplicates or forgeries; what the poller found marked ``poll``), and the
requests the forwarder POSTed to a flow URL on loopback (``ForwardUrl``).

    make demo                                   # about 20 bookings, exits 0 when the copy matches
    make demo DEMO_ARGS="--bookings 200 --keep-running"
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.events import DOWNSTREAM_EVENTS, OWN_EVENTS
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.copy_check import CopyCheck, api_facts, compare, table_facts
from local.forwarder import LoopbackEndpoint
from local.lambda_runtime import WEBHOOK_PATH
from local.runner import EventConsumer, LocalStackRunner, wait_until
from ops.render import render_subscription, render_validation

REPO = Path(__file__).resolve().parent.parent


class Steps:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        print(f"▸ {title}", flush=True)
        started = time.perf_counter()
        yield
        self.timings[title] = time.perf_counter() - started


def progress(label: str, done: int, total: int) -> None:
    """A bar redrawn in place on a terminal; in a log, a line at each quarter."""
    width = 30
    filled = int(width * done / max(total, 1))
    line = f"    {label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
    if sys.stdout.isatty():
        print("\r" + line, end="\n" if done == total else "", flush=True)
    elif done == total or done % max(total // 4, 1) == 0:
        print(line, flush=True)


def copy_real_account(arguments: argparse.Namespace, steps: Steps, log_path: Path) -> int:
    """--calendly-url: the same runner against a real Calendly account (token from the environment).

    The local stack has no public URL for Calendly to deliver to, so it polls instead: the
    subscription check is switched off and PollCalendlyFunction copies the window.
    """
    token = os.environ.get("CALENDLY_TOKEN", "").strip()
    if not token:
        print("set CALENDLY_TOKEN to a Personal Access Token to use --calendly-url", file=sys.stderr)
        return 2
    window = {"POLL_LOOKBACK_DAYS": str(arguments.days_back), "POLL_HORIZON_DAYS": str(arguments.days_ahead)}
    with LocalStackRunner(
        log_path=log_path, calendly_url=arguments.calendly_url, webhooks=False, environment=window
    ) as stack:
        consumer = stack.subscribe("demo-consumer", CONSUMER_PATTERN)
        with steps.step(
            f"connect: ValidateCredentialsFunction checks the token against {arguments.calendly_url}"
        ):
            verdict = stack.invoke_function("ValidateCredentialsFunction", {"token": token})
            print(_indent(render_validation(verdict)))
            if not verdict.get("valid"):
                return 1
        span = f"{arguments.days_back} days back to {arguments.days_ahead} days ahead"
        with steps.step(f"sync: PollCalendlyFunction copies scheduled events from {span}"):
            for run in range(1, 21):
                report = stack.invoke_function("PollCalendlyFunction", {"mode": "sync"})
                print(
                    f"    run {run}: {report['events_seen']} events in {report['pages']} pages, "
                    f"{report['items_written']} items written, {report['calendly_requests']} requests"
                )
                if not report.get("ok"):
                    print(f"    {report.get('message')}")
                    return 1
                if report.get("done"):
                    break
        print("    webhooks need a public URL: a deployed stack receives them (sam deploy)")
        _table_summary(_all(stack, "scheduled_event"), {i["uri"]: i for i in _all(stack, "invitee")})
        wait_until(lambda: stack.project() == 0, timeout=60)
        received = ConsumerView(consumer.receive())
        kinds = Counter(e.get("detail-type") for e in received.events)
        origins = Counter(e["detail"].get("origin") for e in received.events)
        print(f"\na consumer received {len(received.events)} events (origin: {dict(origins)})")
        print("    " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))
        _timings(steps, log_path)
    return 0


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=20, help="bookings to make (default 20)")
    parser.add_argument(
        "--duplicates", type=float, default=0.2, help="share of deliveries sent twice (default 0.2)"
    )
    parser.add_argument(
        "--drop", type=float, default=0.25, help="share of deliveries Calendly never sends (default 0.25)"
    )
    parser.add_argument("--forged", type=int, default=3, help="forged deliveries to attempt (default 3)")
    parser.add_argument("--seed", type=int, default=7, help="random seed for the sandbox and the story")
    parser.add_argument("--keep-running", action="store_true", help="keep everything up until Ctrl-C")
    parser.add_argument(
        "--calendly-url",
        help="a real Calendly API (https://api.calendly.com) instead of the sandbox; token: CALENDLY_TOKEN",
    )
    parser.add_argument(
        "--days-back", type=int, default=30, help="with --calendly-url: history to copy (days)"
    )
    parser.add_argument(
        "--days-ahead", type=int, default=90, help="with --calendly-url: future to copy (days)"
    )
    arguments = parser.parse_args(argv)
    if arguments.bookings < 1 or not 0 <= arguments.duplicates <= 1 or arguments.forged < 0:
        parser.error("--bookings must be at least 1, --duplicates within 0..1, --forged not negative")
    if not 0 <= arguments.drop < 1:
        parser.error("--drop must be within 0..1 (below 1: some deliveries must arrive)")
    return arguments


@dataclass
class Demo:
    """What the steps of the sandbox demo share."""

    arguments: argparse.Namespace
    steps: Steps
    sandbox: CalendlySandbox
    stack: LocalStackRunner
    flow: LoopbackEndpoint
    consumer: EventConsumer
    story: random.Random
    token: str = ""
    organization: str = ""
    #: What the demo did in Calendly, as the detail-types a consumer should get for it.
    made: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    attempts: int = 0
    check: CopyCheck | None = None
    poll_report: dict[str, Any] = field(default_factory=dict)
    received: ConsumerView | None = None


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    steps = Steps()
    started = time.perf_counter()
    log_path = REPO / ".demo" / "functions.log"
    if arguments.calendly_url:
        print(f"calendly-sync: embedded AWS (moto) + the Calendly API at {arguments.calendly_url}\n")
        return copy_real_account(arguments, steps, log_path)
    print("calendly-sync demo: embedded AWS (moto) + the Calendly sandbox, nothing leaves this machine\n")
    with ExitStack() as running:
        with steps.step(
            "stack up: moto's server, table, secrets and event bus from template.yaml, HTTP front, "
            "sandbox, a consumer and a flow URL"
        ):
            demo = start(arguments, steps, running, log_path)
        if not (connect(demo) and subscribe(demo)):
            return 1
        make_bookings(demo)
        try_forgeries(demo)
        deliveries_arrive(demo)
        compare_webhooks_only(demo)
        schedules_tick(demo)
        consumer_receives(demo)

        _summary(demo.stack, demo.sandbox, demo.arguments.forged + 2)
        show_table(demo)
        show_consumer(demo)
        show_forwarded(demo)
        _timings(steps, log_path, started)
        ok = verdict(demo)
        if arguments.keep_running:
            keep_running(demo)
        return 0 if ok else 1


def start(arguments: argparse.Namespace, steps: Steps, running: ExitStack, log_path: Path) -> Demo:
    """The sandbox, a flow URL on loopback, the stack forwarding to it, and a consumer's rule and queue."""
    config = SandboxConfig(
        seed=arguments.seed, delivery_initial_backoff_seconds=0.2, delivery_retry_window_seconds=20.0
    )
    sandbox = running.enter_context(CalendlySandbox(config))
    flow = running.enter_context(LoopbackEndpoint())
    stack = running.enter_context(
        LocalStackRunner(log_path=log_path, calendly_url=sandbox.base_url, forward_url=flow.url)
    )
    # The flow URL checks the header as a real one would; what it keeps is whether it was right.
    flow.required_header = stack.forward_header()
    # What a consumer does to get every change: a rule on the bus feeding its own queue.
    consumer = stack.subscribe("demo-consumer", CONSUMER_PATTERN)
    print(f"    AWS (moto)      {stack.aws_endpoint}")
    print(f"    Calendly        {sandbox.base_url}")
    print(f"    webhook URL     {stack.webhook_url}")
    print(f"    event bus       {stack.event_bus_name}")
    print(f"    consumer        rule {consumer.rule}: {json.dumps(CONSUMER_PATTERN)} -> its queue")
    print(f"    ForwardUrl      {flow.url} (header {stack.forward_header()[0]})")
    return Demo(arguments, steps, sandbox, stack, flow, consumer, random.Random(arguments.seed))


def connect(demo: Demo) -> bool:
    with demo.steps.step("connect: ValidateCredentialsFunction checks the token, then saves it"):
        demo.token = demo.sandbox.add_token(TokenSpec(role="owner"))
        verdict = demo.stack.invoke_function("ValidateCredentialsFunction", {"token": demo.token})
        print(_indent(render_validation(verdict)))
        demo.organization = verdict.get("organization") or ""
        return bool(verdict.get("valid"))


def subscribe(demo: Demo) -> bool:
    with demo.steps.step("subscribe: WebhookSubscriptionFunction ensures the organization subscription"):
        answer = demo.stack.invoke_function("WebhookSubscriptionFunction", {"action": "ensure"})
        print(_indent(render_subscription(answer)))
        return bool(answer.get("ok"))


def make_bookings(demo: Demo) -> None:
    bookings, sandbox, story = demo.arguments.bookings, demo.sandbox, demo.story
    with demo.steps.step(f"make {bookings} bookings, then cancel, reschedule and mark no-shows"):
        sandbox.seed(users=3, event_types_per_user=2, scheduled_events=0)
        with sandbox.state.lock:
            demo.made["event_type.created"] += len(sandbox.state.event_types)
        sandbox.faults.duplicate_deliveries = demo.arguments.duplicates
        sandbox.faults.drop_deliveries = demo.arguments.drop
        sandbox.faults.reorder_deliveries = True
        first_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        invitees = []
        for index in range(bookings):
            # No-shows are marked after a meeting: those bookings happened a few hours ago.
            start = (
                datetime.now(UTC) - timedelta(hours=3)
                if index % 7 == 5
                else first_start + timedelta(hours=story.randrange(0, 24 * 14))
            )
            invitees.append(sandbox.book(start_time=start, email=f"guest{index}@example.com"))
            demo.made["invitee.created"] += 1
            progress("booked", index + 1, bookings)
        changes = Counter[str]()
        for index, invitee in enumerate(invitees):
            if index % 7 == 1:
                sandbox.cancel(invitee, reason="Plans changed")
                changes["canceled"] += 1
                demo.made["invitee.canceled"] += 1
            elif index % 7 == 3:
                sandbox.reschedule(invitee, first_start + timedelta(days=15, hours=story.randrange(0, 48)))
                changes["rescheduled"] += 1
                # A reschedule cancels the old invitee and books a new one (Calendly's two deliveries).
                demo.made["invitee.canceled"] += 1
                demo.made["invitee.created"] += 1
            elif index % 7 == 5:
                sandbox.mark_no_show(invitee)
                changes["marked no-show"] += 1
                demo.made["invitee_no_show.created"] += 1
        print("    then " + ", ".join(f"{n} {what}" for what, n in sorted(changes.items())))


def try_forgeries(demo: Demo) -> None:
    with demo.steps.step(f"forged and stale deliveries ({demo.arguments.forged + 2}) try to get in"):
        body = json.dumps({"created_at": "2026-11-02T09:00:00Z", "event": "invitee.created", "payload": {}})
        attempts = [f"t={int(time.time())},v1={'0' * 64}"] * demo.arguments.forged
        attempts += [f"t={int(time.time()) - 3600},v1={'a' * 64}", ""]
        demo.attempts = len(attempts)
        demo.refused = sum(
            requests.post(
                f"{demo.stack.api_url}{WEBHOOK_PATH}",
                data=body,
                headers={"Content-Type": "application/json", "Calendly-Webhook-Signature": header},
                timeout=10,
            ).status_code
            == 401
            for header in attempts
        )
        print(f"    {demo.refused} of {len(attempts)} refused with 401")


def deliveries_arrive(demo: Demo) -> None:
    with demo.steps.step(
        "deliveries arrive (signed, retried, duplicated, out of order), are applied and published"
    ):
        delivered = demo.sandbox.deliver_pending(timeout=60)
        settled = wait_until(lambda: demo.stack.project() == 0, timeout=30)
        print(f"    sandbox queue drained: {delivered}; stream applied and published: {settled}")


def compare_webhooks_only(demo: Demo) -> None:
    with demo.steps.step("compare the table with Calendly (webhooks only)"):
        demo.check = _copy_check(demo)
        dropped = len(demo.sandbox.dropped_deliveries)
        differing = len(demo.check.invitees.lost) + len(demo.check.invitees.extra)
        print(f"    deliveries Calendly dropped: {dropped}; invitees differing from Calendly: {differing}")


def schedules_tick(demo: Demo) -> None:
    with demo.steps.step(
        "the schedules tick: the subscription is checked, PollCalendlyFunction re-reads Calendly"
    ):
        ticked = demo.stack.tick_schedules()
        subscription_check = ticked["WebhookSubscriptionFunction"]
        print(f"    subscription check: {subscription_check['action']} ({subscription_check['message']})")
        report = demo.poll_report = ticked["PollCalendlyFunction"]
        print(
            f"    {report['events_seen']} events read in {report['pages']} pages, "
            f"{report['invitee_lists']} invitee lists, {report['calendly_requests']} Calendly requests; "
            f"{report['items_written']} items written"
        )
        demo.check = check = _copy_check(demo)
        differing = sum(len(kind.lost) + len(kind.extra) for kind in (check.invitees, check.scheduled_events))
        print(
            f"    Calendly holds {check.invitees.calendly_count} invitees and "
            f"{check.scheduled_events.calendly_count} scheduled events; the table "
            f"{check.invitees.table_count} and {check.scheduled_events.table_count}; {differing} differ"
        )
        if not check.matches:
            print(_indent(check.summary()))


def consumer_receives(demo: Demo) -> None:
    with demo.steps.step("the publisher's events reach the consumer's queue and the flow URL"):
        settled = wait_until(lambda: demo.stack.project() == 0, timeout=30)
        demo.stack.forward()  # what the runner's background loop has not forwarded yet
        demo.consumer.receive()
        demo.received = ConsumerView(demo.consumer.received)
        print(
            f"    stream published: {settled}; {len(demo.consumer.received)} events on the consumer's queue; "
            f"{len(demo.flow.received)} requests at the flow URL"
        )


def show_table(demo: Demo) -> None:
    _table_summary(_all(demo.stack, "scheduled_event"), {i["uri"]: i for i in _all(demo.stack, "invitee")})


def keep_running(demo: Demo) -> None:
    print(f"\nstill running; post deliveries to {demo.stack.webhook_url}; Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def verdict(demo: Demo) -> bool:
    copy_ok = (
        demo.check is not None
        and demo.check.matches
        and not demo.stack.projection_failures
        and demo.refused == demo.attempts
        and bool(demo.poll_report.get("ok"))
    )
    events_ok = demo.received is not None and not _event_problems(demo)
    print("\nRESULT: " + ("the copy in DynamoDB matches Calendly" if copy_ok else "MISMATCH: see above"))
    print(
        "RESULT: "
        + (
            "one event per change reached the consumer and the flow URL"
            if events_ok
            else "EVENTS DIFFER: " + "; ".join(_event_problems(demo))
        )
    )
    return copy_ok and events_ok


def _copy_check(demo: Demo) -> CopyCheck:
    """The table against Calendly as read through its API, as any client would read it."""
    client = CalendlyClient(demo.sandbox.base_url, demo.token)
    events = list(client.scheduled_events(demo.organization))
    invitees = [invitee for event in events for invitee in client.invitees(event["uri"])]
    return compare(
        api_facts(events, invitees),
        table_facts(_all(demo.stack, "invitee") + _all(demo.stack, "scheduled_event")),
    )


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _timings(steps: Steps, log_path: Path, started: float | None = None) -> None:
    print("\ntimings")
    for title, seconds in steps.timings.items():
        print(f"    {seconds:6.2f} s  {title}")
    total = sum(steps.timings.values()) if started is None else time.perf_counter() - started
    print(f"    {total:6.2f} s  in all (function logs in {log_path.relative_to(REPO)})")


def _all(stack: LocalStackRunner, entity: str) -> list[dict[str, Any]]:
    from calendly_sync.adapters.dynamodb import _plain  # the adapter's own item decoding

    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {
        "TableName": stack.table_name,
        "FilterExpression": "entity = :e",
        "ExpressionAttributeValues": {":e": {"S": entity}},
    }
    while True:
        page = stack.dynamodb.scan(**arguments)
        items.extend(_plain(item) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _summary(stack: LocalStackRunner, sandbox: CalendlySandbox, forged: int) -> None:
    attempts = sandbox.deliveries
    print("\ndeliveries")
    print(f"    sent by Calendly      {len(attempts):5d}  (retries and duplicates included)")
    print(f"    stored                {stack.statuses['stored']:5d}")
    print(f"    duplicate, absorbed   {stack.statuses['duplicate']:5d}")
    print(f"    refused (401)         {stack.responses[401]:5d}  ({forged} forged or stale)")
    print(f"    other answers         {sum(n for s, n in stack.responses.items() if s not in (200, 401)):5d}")
    print(f"    in the audit log      {len(_all(stack, 'delivery')):5d}  (one per distinct delivery)")


CONSUMER_PATTERN: dict[str, Any] = {"source": ["calendly-sync"]}


@dataclass
class ConsumerView:
    """What reached a consumer's queue: counts by detail-type and origin, and change ids."""

    events: list[dict[str, Any]]

    def origins(self, detail_type: str) -> Counter[str]:
        return Counter(e["detail"].get("origin") for e in self.events if e.get("detail-type") == detail_type)

    def count(self, detail_type: str) -> int:
        return sum(self.origins(detail_type).values())

    @property
    def change_ids(self) -> Counter[str]:
        return Counter(e["detail"].get("change_id") for e in self.events)


def show_consumer(demo: Demo) -> None:
    """Counts per detail-type next to what the demo did in Calendly."""
    view = demo.received or ConsumerView([])
    print(f"\nwhat a consumer received (rule {demo.consumer.rule}: every calendly-sync event, to its queue)")
    print(f"    {'detail-type':<26} {'made in Calendly':>16} {'received':>9} {'webhook':>8} {'poll':>5}")
    for detail_type in DOWNSTREAM_EVENTS:
        origins = view.origins(detail_type)
        made = demo.made.get(detail_type, 0)
        if not (made or origins):
            continue
        expected = "ours" if detail_type in OWN_EVENTS else str(made)
        print(
            f"    {detail_type:<26} {expected:>16} {sum(origins.values()):>9} "
            f"{origins['webhook']:>8} {origins['poll']:>5}"
        )
    repeated = sum(n - 1 for n in view.change_ids.values() if n > 1)
    print(
        f"    {len(view.events)} events, {len(view.change_ids)} distinct change ids ({repeated} repeated); "
        f"for {demo.stack.statuses['duplicate']} duplicate deliveries and {demo.refused} forged or stale: "
        f"{_extra_events(demo)} events"
    )
    print(
        "    scheduled_event.updated is ours (Calendly sends no webhook for it): a stored event's "
        "status, time, place or name changed"
    )


def show_forwarded(demo: Demo) -> None:
    forwarder = demo.stack.forwarder
    accepted = demo.flow.accepted()
    header = demo.stack.forward_header()[0]
    print(f"\nforwarded to the flow URL (ForwardUrl {demo.flow.url})")
    print(f"    requests received   {len(demo.flow.received):5d}")
    print(
        f"    accepted (2xx)      {len(accepted):5d}  each carried {header} with the right value (not shown)"
    )
    print(f"    dead-lettered       {len(forwarder.dead_letters) if forwarder else 0:5d}")
    kinds = Counter(r.body.get("detail-type") for r in accepted)
    print("    by detail-type      " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())))


def _extra_events(demo: Demo) -> int:
    """Events beyond one per change Calendly made (its own detail-types) plus repeated change ids."""
    view = demo.received or ConsumerView([])
    beyond = sum(
        max(0, view.count(kind) - demo.made.get(kind, 0))
        for kind in DOWNSTREAM_EVENTS
        if kind not in OWN_EVENTS
    )
    return beyond + sum(n - 1 for n in view.change_ids.values() if n > 1)


def _event_problems(demo: Demo) -> list[str]:
    view = demo.received or ConsumerView([])
    problems = [
        f"{kind}: {view.count(kind)} received for {demo.made.get(kind, 0)} made"
        for kind in DOWNSTREAM_EVENTS
        if kind not in OWN_EVENTS and view.count(kind) != demo.made.get(kind, 0)
    ]
    repeated = [change for change, n in view.change_ids.items() if n > 1]
    if repeated:
        problems.append(f"{len(repeated)} change ids received more than once")
    if demo.stack.publish_failures:
        problems.append(f"{len(demo.stack.publish_failures)} stream records failed to publish")
    forwarder = demo.stack.forwarder
    if forwarder is None or forwarder.dead_letters or len(demo.flow.accepted()) != len(view.events):
        problems.append(f"{len(demo.flow.accepted())} forwarded of {len(view.events)} events")
    return problems


def _table_summary(events: list[dict[str, Any]], invitees: dict[str, dict[str, Any]]) -> None:
    by_status = Counter(item.get("status") for item in invitees.values())
    print(
        f"\nthe table: {len(events)} scheduled events, {len(invitees)} invitees "
        f"({', '.join(f'{n} {s}' for s, n in sorted(by_status.items()))})"
    )
    per_event: dict[str, list[dict[str, Any]]] = {}
    for invitee in invitees.values():
        per_event.setdefault(invitee["event_uuid"], []).append(invitee)
    print(f"    {'start (UTC)':<17} {'event':<24} {'status':<9} invitees")
    for event in sorted(events, key=lambda e: e.get("start_time", ""))[:12]:
        guests = per_event.get(event["event_uuid"], [])
        notes = []
        for guest in guests:
            note = guest.get("status", "?")
            if guest.get("no_show"):
                note += ", no-show"
            if guest.get("new_invitee"):
                note += ", rescheduled →"
            if guest.get("old_invitee"):
                note += ", ← rescheduled"
            notes.append(note)
        start = event.get("start_time", "")[:16].replace("T", " ")
        print(
            f"    {start:<17} {str(event.get('name'))[:24]:<24} {event.get('status', ''):<9} "
            + "; ".join(notes)
        )
    if len(events) > 12:
        print(f"    … and {len(events) - 12} more")


if __name__ == "__main__":
    sys.exit(main())

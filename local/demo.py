"""``make demo``: the pipeline on one machine, no accounts needed.

Starts moto's server (AWS), the Calendly sandbox and the local HTTP front for the
template's routes; connects a token, subscribes the stack's webhook URL, makes bookings
(with cancellations, reschedules, no-shows, duplicated and reordered deliveries and a few
forgeries), lets the signed deliveries arrive, and prints what the table now holds next to
what Calendly holds.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from calendly_sync.adapters.calendly import CalendlyClient
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.lambda_runtime import WEBHOOK_PATH
from local.runner import LocalStackRunner, wait_until
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


def calendly_truth(client: CalendlyClient, organization: str) -> dict[str, dict[str, Any]]:
    """Every invitee Calendly holds, read through its API as any client would."""
    return {
        invitee["uri"]: invitee
        for event in client.scheduled_events(organization)
        for invitee in client.invitees(event["uri"])
    }


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
        _timings(steps, log_path)
    return 0


def main(argv: list[str] | None = None) -> int:
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

    steps = Steps()
    story = random.Random(arguments.seed)
    started = time.perf_counter()
    log_path = REPO / ".demo" / "functions.log"
    if arguments.calendly_url:
        print(f"calendly-sync: embedded AWS (moto) + the Calendly API at {arguments.calendly_url}\n")
        return copy_real_account(arguments, steps, log_path)
    print("calendly-sync demo: embedded AWS (moto) + the Calendly sandbox, nothing leaves this machine\n")
    config = SandboxConfig(
        seed=arguments.seed, delivery_initial_backoff_seconds=0.2, delivery_retry_window_seconds=20.0
    )
    with ExitStack() as running:
        with steps.step("stack up: moto's server, table and secrets from template.yaml, HTTP front, sandbox"):
            sandbox = running.enter_context(CalendlySandbox(config))
            stack = running.enter_context(LocalStackRunner(log_path=log_path, calendly_url=sandbox.base_url))
            print(f"    AWS (moto)      {stack.aws_endpoint}")
            print(f"    Calendly        {sandbox.base_url}")
            print(f"    webhook URL     {stack.webhook_url}")

        with steps.step("connect: ValidateCredentialsFunction checks the token, then saves it"):
            token = sandbox.add_token(TokenSpec(role="owner"))
            verdict = stack.invoke_function("ValidateCredentialsFunction", {"token": token})
            print(_indent(render_validation(verdict)))
            if not verdict.get("valid"):
                return 1
            organization = verdict["organization"]

        with steps.step("subscribe: WebhookSubscriptionFunction ensures the organization subscription"):
            answer = stack.invoke_function("WebhookSubscriptionFunction", {"action": "ensure"})
            print(_indent(render_subscription(answer)))
            if not answer.get("ok"):
                return 1

        with steps.step(f"make {arguments.bookings} bookings, then cancel, reschedule and mark no-shows"):
            sandbox.seed(users=3, event_types_per_user=2, scheduled_events=0)
            sandbox.faults.duplicate_deliveries = arguments.duplicates
            sandbox.faults.drop_deliveries = arguments.drop
            sandbox.faults.reorder_deliveries = True
            first_start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
            invitees = []
            for index in range(arguments.bookings):
                # No-shows are marked after a meeting: those bookings happened a few hours ago.
                start = (
                    datetime.now(UTC) - timedelta(hours=3)
                    if index % 7 == 5
                    else first_start + timedelta(hours=story.randrange(0, 24 * 14))
                )
                invitees.append(sandbox.book(start_time=start, email=f"guest{index}@example.com"))
                progress("booked", index + 1, arguments.bookings)
            changes = Counter[str]()
            for index, invitee in enumerate(invitees):
                if index % 7 == 1:
                    sandbox.cancel(invitee, reason="Plans changed")
                    changes["canceled"] += 1
                elif index % 7 == 3:
                    sandbox.reschedule(
                        invitee, first_start + timedelta(days=15, hours=story.randrange(0, 48))
                    )
                    changes["rescheduled"] += 1
                elif index % 7 == 5:
                    sandbox.mark_no_show(invitee)
                    changes["marked no-show"] += 1
            print("    then " + ", ".join(f"{n} {what}" for what, n in sorted(changes.items())))

        with steps.step(f"forged and stale deliveries ({arguments.forged + 2}) try to get in"):
            body = json.dumps(
                {"created_at": "2026-11-02T09:00:00Z", "event": "invitee.created", "payload": {}}
            )
            attempts = [f"t={int(time.time())},v1={'0' * 64}"] * arguments.forged
            attempts += [f"t={int(time.time()) - 3600},v1={'a' * 64}", ""]
            refused = sum(
                requests.post(
                    f"{stack.api_url}{WEBHOOK_PATH}",
                    data=body,
                    headers={"Content-Type": "application/json", "Calendly-Webhook-Signature": header},
                    timeout=10,
                ).status_code
                == 401
                for header in attempts
            )
            print(f"    {refused} of {len(attempts)} refused with 401")

        with steps.step("deliveries arrive (signed, retried, duplicated, out of order) and are applied"):
            delivered = sandbox.deliver_pending(timeout=60)
            settled = wait_until(lambda: stack.project() == 0, timeout=30)
            print(f"    sandbox queue drained: {delivered}; stream applied: {settled}")

        with steps.step("compare the table with Calendly (webhooks only)"):
            client = CalendlyClient(sandbox.base_url, token)
            truth = calendly_truth(client, organization)
            differ = _differences(truth, {item["uri"]: item for item in _all(stack, "invitee")})
            dropped = len(sandbox.dropped_deliveries)
            print(
                f"    deliveries Calendly dropped: {dropped}; invitees differing from Calendly: {len(differ)}"
            )

        with steps.step(
            "the schedules tick: the subscription is checked, PollCalendlyFunction re-reads Calendly"
        ):
            ticked = stack.tick_schedules()
            subscription_check = ticked["WebhookSubscriptionFunction"]
            print(f"    subscription check: {subscription_check['action']} ({subscription_check['message']})")
            report = ticked["PollCalendlyFunction"]
            print(
                f"    {report['events_seen']} events read in {report['pages']} pages, "
                f"{report['invitee_lists']} invitee lists, {report['calendly_requests']} Calendly requests; "
                f"{report['items_written']} items written"
            )
            stored = {item["uri"]: item for item in _all(stack, "invitee")}
            events = {item["uri"]: item for item in _all(stack, "scheduled_event")}
            differ = _differences(truth, stored)
            print(f"    Calendly holds {len(truth)} invitees; the table {len(stored)}; {len(differ)} differ")

        _summary(stack, sandbox, events, stored, arguments.forged + 2)
        _timings(steps, log_path, started)

        ok = (
            not differ
            and not stack.projection_failures
            and refused == arguments.forged + 2
            and bool(report.get("ok"))
        )
        print("\nRESULT: " + ("the copy in DynamoDB matches Calendly" if ok else "MISMATCH: see above"))
        if arguments.keep_running:
            print(f"\nstill running; post deliveries to {stack.webhook_url}; Ctrl-C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0 if ok else 1


def _differences(truth: dict[str, dict[str, Any]], stored: dict[str, dict[str, Any]]) -> list[str]:
    return [
        uri
        for uri, invitee in truth.items()
        if uri not in stored
        or stored[uri].get("status") != invitee["status"]
        or bool(stored[uri].get("no_show")) != bool(invitee.get("no_show"))
    ]


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


def _summary(
    stack: LocalStackRunner,
    sandbox: CalendlySandbox,
    events: dict[str, dict[str, Any]],
    invitees: dict[str, dict[str, Any]],
    forged: int,
) -> None:
    attempts = sandbox.deliveries
    print("\ndeliveries")
    print(f"    sent by Calendly      {len(attempts):5d}  (retries and duplicates included)")
    print(f"    stored                {stack.statuses['stored']:5d}")
    print(f"    duplicate, absorbed   {stack.statuses['duplicate']:5d}")
    print(f"    refused (401)         {stack.responses[401]:5d}  ({forged} forged or stale)")
    print(f"    other answers         {sum(n for s, n in stack.responses.items() if s not in (200, 401)):5d}")
    print(f"    in the audit log      {len(_all(stack, 'delivery')):5d}  (one per distinct delivery)")

    _table_summary(list(events.values()), invitees)


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

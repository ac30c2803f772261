"""Figures for PollCalendlyFunction against the Calendly sandbox (``make bench-poll``).

Calendly's page tokens go stale; the sandbox here expires them after 1 s (``--token-ttl``).

1. A first sync and an unchanged re-sync of an organization with 10,000 scheduled events:
   Calendly requests next to the least possible (every list page at count=100, one invitee
   list per new or changed event, the subscription it must create), DynamoDB writes of
   resource items and of bookkeeping (lease, checkpoint, subscription check), wall time.
   Targets: first sync within 1.1x of the minimum, re-sync within 1.05x, 0 resource writes.
2. The same first sync with 30 % of DynamoDB write attempts failing at random during the
   first run: the runs it takes to complete the table, and that the table then equals Calendly.
3. A backfill against a scaled-down rate limit (50 requests per 6 s): the request rate it
   sustains as a share of the allowed rate (target >= 90 %) and the 429s it met (target 0).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore import handlers
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from bench import command_line, machine
from local import stack
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.lambda_runtime import FakeLambdaContext, load_handler

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
dynamodb_writes: Counter[str] = Counter()


def _count_write(event_name: str, params: dict[str, Any], **_: Any) -> None:
    operation = event_name.rsplit(".", 1)[-1]
    if operation in WRITES:
        key = params.get("Key") or params.get("Item") or {}
        kind = "bookkeeping" if key.get("pk", {}).get("S") == "SYNC" else "resource"
        dynamodb_writes[kind] += 1


handlers.BUILTIN_HANDLERS.append(("provide-client-params.dynamodb", _count_write))


def _stack(calendly_url: str) -> None:
    from calendly_sync.adapters.aws_clients import clear_client_caches
    from calendly_sync.adapters.secrets import clear_secret_caches
    from calendly_sync.settings import get_settings

    # Each figure gets a fresh moto account: forget clients, secrets and settings cached before.
    clear_client_caches()
    clear_secret_caches()
    dynamodb, secretsmanager = boto3.client("dynamodb"), boto3.client("secretsmanager")
    stack.create_table(dynamodb, "bench-table")
    refs = {
        **stack.parameter_defaults(),
        "CalendlyTable": "bench-table",
        "WebhookSigningKeySecret": stack.create_secret(
            secretsmanager, "WebhookSigningKeySecret", "bench/keys"
        ),
        "CalendlyTokenSecret": stack.create_secret(secretsmanager, "CalendlyTokenSecret", "bench/token"),
        "WebhookApi": "bench",
        # Named for the functions' environment only: nothing here publishes (make bench-publish does).
        "CalendlyEventBus": "bench-bus",
    }
    for logical_id in stack.function_ids():
        os.environ.update(stack.function_environment(logical_id, stack.LocalStack(refs)))
    os.environ["CALENDLY_API_BASE_URL"] = calendly_url
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    get_settings.cache_clear()


def _invoke(logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    with contextlib.redirect_stdout(io.StringIO()):
        answer: dict[str, Any] = load_handler(logical_id)(
            payload, FakeLambdaContext(function_name=logical_id, timeout_seconds=900)
        )
    return answer


def _connected_stack(
    calendly: CalendlySandbox,
    events: int,
    *,
    users: int,
    event_types_per_user: int,
    days_back: int,
    days: int,
) -> datetime:
    """Seed the sandbox, build the stack in moto and connect it through ValidateCredentialsFunction."""
    now = datetime.now(UTC)
    calendly.seed(
        users=users,
        event_types_per_user=event_types_per_user,
        scheduled_events=events,
        start=now - timedelta(days=days_back),
        days=days,
    )
    _stack(calendly.base_url)
    token = calendly.add_token(TokenSpec(role="owner"))
    assert _invoke("ValidateCredentialsFunction", {"token": token})["valid"]
    return now


def _minimum(counts: dict[str, int], changed_events: int, creates: int) -> int:
    pages = sum(max(1, math.ceil(n / 100)) for n in counts.values())
    return pages + changed_events + creates


def sync_figures(events: int, token_ttl: float) -> None:
    config = SandboxConfig(
        seed=21, rate_window_seconds=60, rate_limit=100_000, page_token_ttl_seconds=token_ttl
    )
    with CalendlySandbox(config) as calendly, mock_aws():
        print(f"   seeding {events:,} scheduled events in the sandbox …", flush=True)
        _connected_stack(calendly, events, users=10, event_types_per_user=3, days_back=20, days=180)
        sizes = {
            "scheduled events": events,
            "memberships": len(calendly.state.memberships),
            "event types": len(calendly.state.event_types),
            "webhook subscriptions": 1,
        }
        for label, creates in (("first sync", 1), ("unchanged re-sync", 0)):
            calendly.reset_counts()
            dynamodb_writes.clear()
            started = time.perf_counter()
            # A slow machine may need more than one 900 s run: each resumes from the position.
            answers = [_invoke("PollCalendlyFunction", {"mode": "sync"})]
            while answers[-1]["ok"] and not answers[-1]["done"] and len(answers) < 10:
                answers.append(_invoke("PollCalendlyFunction", {"mode": "sync"}))
            seconds = time.perf_counter() - started
            report = answers[-1]
            assert report["ok"] and report["done"], report
            made = calendly.requests_count()
            least = _minimum(sizes, sum(a["events_changed"] for a in answers), creates)
            writes = f"{dynamodb_writes['resource']:,} resource, {dynamodb_writes['bookkeeping']} bookkeeping"
            runs = "1 run" if len(answers) == 1 else f"{len(answers)} runs"
            print(f"   {label}: {seconds:.1f} s, {runs}")
            print(f"      Calendly requests {made:,}, least possible {least:,}: {made / least:.2f}x")
            print(f"      DynamoDB writes   {writes}")
            print(
                f"      page tokens refused as stale, listings begun again: {report['page_token_restarts']}"
            )


class _FlakyWrites:
    """Fails each DynamoDB write attempt with probability ``share`` (botocore retries it)."""

    def __init__(self, share: float) -> None:
        self.share, self.random, self.failed = share, random.Random(30), 0

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        if event_name.rsplit(".", 1)[-1] in WRITES and self.random.random() < self.share:
            self.failed += 1
            raise EndpointConnectionError(endpoint_url=request.url)


def flaky_figures(events: int, token_ttl: float, share: float) -> None:
    from calendly_sync.adapters.aws_clients import dynamodb_client

    config = SandboxConfig(
        seed=23, rate_window_seconds=60, rate_limit=100_000, page_token_ttl_seconds=token_ttl
    )
    with CalendlySandbox(config) as calendly, mock_aws():
        print(f"   seeding {events:,} scheduled events in the sandbox …", flush=True)
        _connected_stack(calendly, events, users=10, event_types_per_user=3, days_back=20, days=180)
        calendly.reset_counts()
        flaky = _FlakyWrites(share)
        dynamodb_client().meta.events.register_first("before-send.dynamodb", flaky)
        started = time.perf_counter()
        try:
            first = _invoke("PollCalendlyFunction", {"mode": "sync"})
        finally:
            dynamodb_client().meta.events.unregister("before-send.dynamodb", flaky)
        answers = [first]
        while not (answers[-1]["ok"] and answers[-1]["done"]) and len(answers) < 10:
            answers.append(_invoke("PollCalendlyFunction", {"mode": "sync"}))
        seconds = time.perf_counter() - started
        assert answers[-1]["ok"] and answers[-1]["done"], answers[-1]
        with calendly.state.lock:
            truth = {
                calendly.state.uris.invitee(i.event_uuid, i.uuid): i.status
                for i in calendly.state.invitees.values()
            }
        stored = _stored_invitee_statuses()
        first_outcome = "completed" if first["ok"] and first["done"] else f"failed ({first['message'][:60]})"
        print(f"   write attempts failed in the first run: {flaky.failed:,}; first run {first_outcome}")
        print(f"      after {first['events_changed']:,} events applied")
        made = calendly.requests_count()
        print(f"   runs until done: {len(answers)}; Calendly requests {made:,}; {seconds:.1f} s")
        print(f"   table equals Calendly: {stored == truth} ({len(stored):,} of {len(truth):,} invitees)")


def _stored_invitee_statuses() -> dict[str, str]:
    dynamodb = boto3.client("dynamodb")
    found: dict[str, str] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName="bench-table"):
        for item in page["Items"]:
            if item.get("entity", {}).get("S") == "invitee" and "status" in item:
                found[item["uri"]["S"]] = item["status"]["S"]
    return found


def backfill_figures(events: int, limit: int, window: float, token_ttl: float) -> None:
    config = SandboxConfig(
        seed=22, rate_limit=limit, rate_window_seconds=window, page_token_ttl_seconds=token_ttl
    )
    with CalendlySandbox(config) as calendly, mock_aws():
        now = _connected_stack(calendly, events, users=3, event_types_per_user=2, days_back=400, days=300)
        time.sleep(window)  # start the backfill on a fresh window
        calendly.reset_counts()
        started = time.perf_counter()
        report = _invoke(
            "PollCalendlyFunction", {"mode": "backfill", "since": (now - timedelta(days=410)).isoformat()}
        )
        seconds = time.perf_counter() - started
        assert report["ok"] and report["done"], report
        made = calendly.requests_count()
        throttled = sum(1 for r in calendly.request_log if r.status == 429)
        allowed = limit / window
        rate = made / seconds
        print(f"   {made:,} requests in {seconds:.1f} s = {rate:.2f}/s")
        print(f"   allowed {allowed:.2f}/s: {rate / allowed:.0%} of it")
        print(f"   429 answers met: {throttled}")


def main() -> int:
    arguments = command_line(
        __doc__,
        [
            ("--events", 10_000, "scheduled events for the sync figures"),
            ("--backfill-events", 800, "scheduled events for the backfill"),
            ("--limit", 50, "backfill rate limit: requests per window"),
            ("--window", 6.0, "backfill rate-limit window, seconds"),
            ("--token-ttl", 1.0, "page-token lifetime in the sandbox, seconds"),
            ("--failing-writes", 0.3, "share of write attempts failing"),
        ],
    ).parse_args()
    print("PollCalendlyFunction benchmark (Calendly sandbox on loopback, moto in-process)")
    print(f"{machine()}\n")
    print(f"page tokens expire after {arguments.token_ttl:g} s\n")
    print(f"1. sync of {arguments.events:,} scheduled events")
    print("   (targets: first sync 1.1x, re-sync 1.05x of the least possible requests, 0 resource writes)")
    sync_figures(arguments.events, arguments.token_ttl)
    failing = f"{arguments.failing_writes:.0%} of DynamoDB write attempts failing in run 1"
    print(f"\n2. first sync of {arguments.events:,} events, {failing}")
    flaky_figures(arguments.events, arguments.token_ttl, arguments.failing_writes)
    rate_limit = f"{arguments.limit} requests per {arguments.window:g} s"
    print(f"\n3. backfill of {arguments.backfill_events:,} events, {rate_limit}")
    print("   (targets: >= 90 % of the allowed rate, 0 429s)")
    backfill_figures(arguments.backfill_events, arguments.limit, arguments.window, arguments.token_ttl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

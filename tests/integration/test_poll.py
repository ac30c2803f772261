"""PollCalendlyFunction against the Calendly sandbox: the table converges to Calendly's truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calendly_sync.records import invitee_key, parse_invitee_uri, scheduled_event_key
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, load_handler
from tests.conftest import LocalAws, calendly_invitee_statuses

NOW = datetime.now(UTC)


def connect(calendly: CalendlySandbox, **spec: Any) -> str:
    token = calendly.add_token(TokenSpec(role="owner", **spec))
    answer = load_handler("ValidateCredentialsFunction")({"token": token}, FakeLambdaContext())
    assert answer["valid"] is True
    return token


class Budget(FakeLambdaContext):
    """A Lambda context whose time runs out after ``pages`` list pages have been read."""

    def __init__(self, calendly: CalendlySandbox, pages: int) -> None:
        super().__init__(function_name="PollCalendlyFunction", timeout_seconds=300)
        self._calendly = calendly
        self._limit = self._pages_read() + pages

    def _pages_read(self) -> int:
        return sum(1 for r in self._calendly.request_log if r.path == "/scheduled_events")

    def get_remaining_time_in_millis(self) -> int:
        return 300_000 if self._pages_read() < self._limit else 1_000


def poll(event: dict[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
    answer: dict[str, Any] = load_handler("PollCalendlyFunction")(
        event if event is not None else {"mode": "sync"},
        context or FakeLambdaContext(function_name="PollCalendlyFunction", timeout_seconds=300),
    )
    return answer


def entity_items(aws: LocalAws) -> dict[str, str]:
    return {
        f"{i['pk']['S']}/{i['sk']['S']}": i.get("version", {}).get("S", "")
        for i in aws.all_items()
        if i["entity"]["S"] not in ("sync_state", "delivery")
    }


def seed(calendly: CalendlySandbox, events: int, *, start: datetime | None = None, days: int = 20) -> None:
    calendly.seed(
        users=3,
        event_types_per_user=2,
        scheduled_events=events,
        start=start or NOW - timedelta(days=5),
        days=days,
    )


def test_a_first_sync_fills_the_table(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given an organization with 250 scheduled events (three pages) and no webhook ever received
    seed(calendly, 250)
    connect(calendly)

    # When the poller runs
    report = poll()

    # Then every event and invitee is in the table, matching Calendly
    assert report["ok"] is True and report["done"] is True
    assert report["events_seen"] == 250 and report["events_changed"] == 250 and report["pages"] == 3
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)
    assert report["event_types_seen"] == 6 and report["members_seen"] >= 3


def test_an_unchanged_resync_reads_pages_only_and_writes_nothing(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    seed(calendly, 250)
    connect(calendly)
    poll()
    before = entity_items(aws)
    calendly.reset_counts()

    report = poll()

    # Then no invitee list is fetched and no resource item is written
    assert report["events_changed"] == 0 and report["items_written"] == 0 and report["invitee_lists"] == 0
    assert calendly.requests_count(path_prefix="/scheduled_events/") == 0
    assert entity_items(aws) == before


def test_a_cancellation_made_while_webhooks_failed_is_picked_up(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a synced table, and then changes Calendly never delivered (no working webhook)
    seed(calendly, 40)
    connect(calendly)
    poll()
    invitee = calendly.book(start_time=NOW + timedelta(days=3))
    victim = next(
        uri
        for uri, status in calendly_invitee_statuses(calendly).items()
        if status == "active" and uri != invitee
    )
    calendly.cancel(victim)

    # When the poller runs again
    report = poll()

    # Then the cancellation and the new booking are in the table, counted as recovered
    assert aws.invitee_statuses()[victim] == "canceled" and aws.invitee_statuses()[invitee] == "active"
    assert report["missed_deliveries_recovered"] >= 3  # the canceled invitee and its event, the new booking
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)


def test_a_run_cut_off_after_page_two_resumes_and_ends_as_one_run_would(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given 350 events (four pages) and a run whose time runs out after two pages
    seed(calendly, 350)
    connect(calendly)
    first = poll(context=Budget(calendly, pages=2))
    assert first["done"] is False and first["pages"] == 2

    # When the next run starts
    second = poll()

    # Then it resumed from the checkpoint, read only the rest, and the table matches Calendly
    assert second["resumed"] is True and second["done"] is True and second["pages"] == 2
    assert first["events_changed"] + second["events_changed"] == 350
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)


def test_429_bursts_and_5xx_are_survived_within_the_retry_cap(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    seed(calendly, 120)
    connect(calendly)
    # Given Calendly answers the next two requests 429 and the two after that 500
    calendly.faults.rate_limit_burst_429 = 2
    calendly.faults.server_errors = 2

    report = poll()

    # Then the run waits and retries within its cap (5 attempts) and completes
    assert report["ok"] is True and report["done"] is True
    assert report["throttled"] == 2 and report["retries"] == 4
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)


def test_an_outage_beyond_the_retry_cap_fails_the_run_cleanly(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    seed(calendly, 120)
    connect(calendly)
    calendly.faults.server_errors = 50

    report = poll()

    assert report["ok"] is False and "500" in report["message"]
    assert report["calendly_requests"] == 5  # one call, five attempts, then the run gives up
    calendly.faults.server_errors = 0
    assert poll()["done"] is True and aws.invitee_statuses() == calendly_invitee_statuses(calendly)


def test_pacing_keeps_a_tight_rate_limit_free_of_429s(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    from calendly_sync.settings import get_settings
    from local.calendly_sandbox import SandboxConfig

    # Given a Calendly that allows only 20 requests per 2 s
    with CalendlySandbox(SandboxConfig(seed=9, rate_limit=20, rate_window_seconds=2)) as tight:
        monkeypatch.setenv("CALENDLY_API_BASE_URL", tight.base_url)
        get_settings.cache_clear()
        seed(tight, 60)
        connect(tight)

        # When a first sync needs about 70 requests
        report = poll()

    # Then it waits for the window instead of meeting 429s
    assert report["ok"] is True and report["done"] is True and report["throttled"] == 0
    assert report["calendly_requests"] > 20


def test_a_disabled_subscription_is_recreated_and_its_gap_re_read(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a synced stack whose subscription Calendly disabled after failing deliveries
    seed(calendly, 30)
    connect(calendly)
    load_handler("WebhookSubscriptionFunction")({"action": "ensure"}, FakeLambdaContext())
    poll()
    (subscription,) = calendly.subscriptions()
    victim = next(uri for uri, status in calendly_invitee_statuses(calendly).items() if status == "active")
    calendly.cancel(victim)
    calendly.disable_subscription(subscription["uri"])

    # When the poller runs
    report = poll()

    # Then the subscription was replaced, and the change made during the gap is in the table
    assert report["subscription"] == "replaced"
    assert any("re-reading since" in note for note in report["notes"])
    (current,) = calendly.subscriptions()
    assert current["state"] == "active" and current["uri"] != subscription["uri"]
    assert aws.invitee_statuses()[victim] == "canceled"


def test_a_backfill_reads_history_in_chunks_and_resumes(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given 150 events a year ago, outside the sync window
    seed(calendly, 150, start=NOW - timedelta(days=400), days=60)
    connect(calendly)
    assert poll()["events_seen"] == 0

    # When a backfill since then is cut off after one page, then run again
    since = (NOW - timedelta(days=410)).strftime("%Y-%m-%d")
    first = poll({"mode": "backfill", "since": since}, Budget(calendly, pages=1))
    rest = poll({"mode": "backfill", "since": since})
    again = poll({"mode": "backfill", "since": since})

    # Then the history is complete, the second run resumed, and a third has nothing to do
    assert first["done"] is False and rest["resumed"] is True and rest["done"] is True
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)
    assert again["done"] is True and "already complete" in again["message"]


def test_a_backfill_without_a_date_is_refused_clearly(aws: LocalAws, calendly: CalendlySandbox) -> None:
    answer = poll({"mode": "backfill", "since": "last tuesday"})
    assert answer["ok"] is False and "since" in answer["message"]


def test_two_runs_at_once_one_works_one_exits(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given another run holds the lease
    seed(calendly, 10)
    connect(calendly)
    assert aws.table.claim_lease("poll", "someone-else", int(datetime.now(UTC).timestamp()), 300)

    # When a run starts, then it stops at once without touching Calendly's events
    calendly.reset_counts()
    report = poll()
    assert "another poll run is in progress" in report["message"] and report["pages"] == 0
    assert calendly.requests_count(path_prefix="/scheduled_events") == 0


def test_a_401_re_reads_the_token_once_then_fails_clearly(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given the stored token was revoked, and a new one put in place by another process
    seed(calendly, 10)
    old = connect(calendly)
    poll()  # warm: the old token is cached
    new = calendly.add_token(TokenSpec(role="owner"))
    aws.secretsmanager.put_secret_value(
        SecretId=aws.token_secret_arn, SecretString=json.dumps({"token": new})
    )
    calendly.set_token_state(old, "revoked")

    # Then the run re-reads the secret and succeeds with the new token
    assert poll()["ok"] is True

    # And when the new one is revoked too, the run fails with a message saying what to do
    calendly.set_token_state(new, "revoked")
    report = poll()
    assert report["ok"] is False and "connect again" in report["message"]


def test_without_a_token_the_poller_says_to_connect(aws: LocalAws, calendly: CalendlySandbox) -> None:
    report = poll()
    assert report["ok"] is False and "connect first" in report["message"]


def test_the_poll_writes_what_webhooks_write(aws: LocalAws, calendly: CalendlySandbox) -> None:
    # Given one booking, polled
    connect(calendly)
    uri = calendly.book(start_time=NOW + timedelta(days=1))
    poll()
    event_uuid, invitee_uuid = parse_invitee_uri(uri)  # type: ignore[misc]

    # Then its items have the same shape as the webhook path's (same records code)
    invitee = aws.table.get(invitee_key(event_uuid, invitee_uuid))
    event = aws.table.get(scheduled_event_key(event_uuid))
    assert invitee is not None and event is not None
    assert {"entity", "status", "version", "raw", "gsi2pk"} <= set(invitee)
    assert {"entity", "start_time", "version", "raw", "gsi1pk"} <= set(event)


def test_slow_responses_time_out_and_are_retried(
    aws: LocalAws, calendly: CalendlySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from calendly_sync.adapters import calendly as calendly_adapter

    # Given Calendly answers slower than the client waits, for a while
    seed(calendly, 30)
    connect(calendly)
    monkeypatch.setattr(calendly_adapter, "TIMEOUT_SECONDS", (1.0, 0.3))
    calendly.faults.latency_seconds = 0.6
    recovery = threading.Timer(1.0, lambda: setattr(calendly.faults, "latency_seconds", 0.0))
    recovery.start()

    # When the poller runs, then the timed-out calls are retried with back-off and the run completes
    try:
        report = poll()
    finally:
        recovery.cancel()
    assert report["ok"] is True and report["done"] is True and report["retries"] >= 1
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)


def test_a_backfill_puts_right_a_no_show_that_no_event_change_revealed(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given a synced past booking whose no-show mark was never delivered, outside the re-check times
    connect(calendly)
    uri = calendly.book(start_time=NOW - timedelta(days=10))
    poll()
    calendly.mark_no_show(uri)
    assert poll()["invitee_lists"] == 0  # a sync cannot see it: the event did not change

    # When a backfill re-reads that period
    report = poll({"mode": "backfill", "since": (NOW - timedelta(days=11)).isoformat()})

    # Then the no-show is in the table
    event_uuid, invitee_uuid = parse_invitee_uri(uri)  # type: ignore[misc]
    stored_invitee = aws.table.get(invitee_key(event_uuid, invitee_uuid))
    assert report["done"] is True and stored_invitee is not None and stored_invitee.get("no_show")

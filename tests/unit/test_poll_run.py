"""A whole poll run against fakes: the request, the token, the subscription check, the report, metrics.

``poll`` with an in-memory table, a scripted Calendly, a fake token secret and a fake clock:
what ``tests/integration/test_poll.py`` shows against moto and the sandbox, in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from calendly_sync import subscriptions
from calendly_sync.errors import CalendlyUnavailable, ConfigurationError, TimeBudgetExhausted
from calendly_sync.observability import metrics
from calendly_sync.poller import unstarted
from calendly_sync.table_items import format_utc, invitee_key, scheduled_event_key
from tests.unit.poll_fakes import NOW, ORGANIZATION, USER, FakeCalendly, Poller, settings


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def emitted(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


def seeded(events: int, *, days_back: int = 5) -> Poller:
    poller = Poller()
    for n in range(events):
        poller.calendly.add(f"E{n:04d}", NOW - timedelta(days=days_back) + n * timedelta(hours=1))
    return poller


# --- a sync -------------------------------------------------------------------------------------


def test_a_first_sync_fills_the_table_with_events_invitees_event_types_and_members() -> None:
    # GIVEN 250 events at Calendly and an empty table
    poller = seeded(250)
    # WHEN a sync runs
    report = poller.run()
    # THEN everything is stored, the run is done, and the report counts it
    assert report["ok"] is True and report["done"] is True and report["resumed"] is False
    assert report["events_seen"] == 250 and report["events_changed"] == 250 and report["pages"] == 3
    assert report["event_types_seen"] == 1 and report["members_seen"] == 1
    assert len(poller.table.entity("scheduled_event")) == 250 and len(poller.table.entity("invitee")) == 250
    assert report["window_start"] == format_utc(NOW - timedelta(days=30))
    assert report["window_end"] == format_utc(NOW + timedelta(days=180))
    # AND the checkpoint says complete, with when this sync started, and never a page token
    saved = poller.table.checkpoints["sync"]
    assert saved["completed_at"] and saved["last_started_at"] == format_utc(NOW) and saved["ever_completed"]
    assert "page_token" not in saved
    # AND the metrics say so; the lease is given back
    assert emitted("PollRunsFailed") == [0.0] and emitted("PollEventsSeen") == [250.0]
    assert metrics.dimension_set.get("Mode") == "sync"
    assert poller.table.leases["poll"][1] == 0


def test_an_unchanged_resync_lists_pages_only_and_writes_nothing() -> None:
    poller = seeded(120)
    poller.run()
    writes = len(poller.table.writes)
    poller.calendly.calls.clear()
    poller.clock.advance(timedelta(minutes=5))
    report = poller.run()
    assert (
        report["invitee_lists"] == 0 and report["items_written"] == 0 and len(poller.table.writes) == writes
    )
    assert report["calendly_requests"] == len(poller.calendly.calls)


def test_what_a_later_sync_writes_counts_as_missed_deliveries_recovered() -> None:
    # GIVEN a completed sync, then a booking no webhook delivered
    poller = seeded(10)
    first = poller.run()
    poller.calendly.add("NEW", NOW + timedelta(days=2))
    poller.clock.advance(timedelta(minutes=5))
    # WHEN the next sync runs THEN the booking is recovered, counted
    report = poller.run()
    assert first["missed_deliveries_recovered"] == 0 and report["missed_deliveries_recovered"] == 2
    assert scheduled_event_key("NEW") in poller.table.items


def test_event_types_and_members_are_written_only_when_changed() -> None:
    poller = seeded(1)
    poller.run()
    poller.clock.advance(timedelta(minutes=5))
    poller.calendly.event_types[0]["updated_at"] = format_utc(NOW)
    before = len(poller.table.writes)
    report = poller.run()
    assert report["items_written"] == 1 and len(poller.table.writes) == before + 1


def test_a_run_cut_off_resumes_from_its_position_and_together_they_read_everything_once() -> None:
    # GIVEN 350 events and a first run whose time runs short after 150 invitee lists
    poller = seeded(350)
    poller.remaining_ms = lambda: 1_000 if len(poller.calendly.invitee_lists()) >= 150 else 300_000
    first = poller.run()
    # WHEN the next run has time
    poller.remaining_ms = lambda: 300_000
    poller.clock.advance(timedelta(minutes=5))
    second = poller.run()
    # THEN the first stopped early, the second resumed from the position, and each event was read once
    assert first["ok"] is True and first["done"] is False and "next run resumes" in first["message"]
    assert second["resumed"] is True and second["done"] is True
    assert first["events_changed"] + second["events_changed"] == 350
    assert sorted(poller.calendly.invitee_lists()) == sorted(poller.calendly.events)
    # AND the resumed window is the first run's, not one slid by the clock
    assert second["window_start"] == first["window_start"]


def test_a_member_token_names_the_organization_and_the_user_on_every_list() -> None:
    # GIVEN a connection made with a member's (user scope) token
    poller = seeded(5)
    poller.table.states["CONNECTION"] = {"user": USER, "organization": ORGANIZATION, "scope": "user"}
    # WHEN a sync runs
    report = poller.run()
    # THEN every list names both; members are not listed (an organization's, not a user's)
    lists = [
        params for path, params in poller.calendly.calls if path in ("/scheduled_events", "/event_types")
    ]
    assert lists and all(p["organization"] == ORGANIZATION and p["user"] == USER for p in lists)
    assert poller.calendly.listed("/organization_memberships") == [] and report["members_seen"] == 0


def test_events_whose_no_show_time_came_have_their_invitees_read_again() -> None:
    # GIVEN a completed sync, and an event that ends 30 minutes later
    poller = Poller()
    poller.calendly.add("SOON", NOW - timedelta(minutes=5))
    poller.run()
    poller.calendly.calls.clear()
    # WHEN the next sync runs 1 h 30 min later (the event ended 1 h and a few minutes before)
    poller.clock.advance(timedelta(hours=1, minutes=30))
    report = poller.run()
    # THEN its invitees are read again, though the event did not change; nothing is rewritten
    assert poller.calendly.invitee_lists() == ["SOON"] and report["items_written"] == 0


# --- the token ------------------------------------------------------------------------------------


def test_without_a_token_the_run_says_to_connect_and_calls_no_one() -> None:
    poller = seeded(3)
    poller.tokens.current = None
    report = poller.run()
    assert report["ok"] is False and "connect first" in report["message"] and poller.calendly.calls == []
    assert emitted("PollRunsFailed") == [1.0]


def test_a_401_reads_the_token_again_once_and_goes_on_with_a_replaced_one() -> None:
    # GIVEN the cached token was revoked and another one stored meanwhile
    poller = seeded(3)
    poller.calendly.valid_tokens = {"replacement"}
    poller.tokens.refreshed = "replacement"
    # WHEN a sync runs
    report = poller.run()
    # THEN it read the secret afresh once, and synced with the new token; both clients' calls count
    assert report["ok"] is True and report["done"] is True and poller.tokens.forced_reads == 1
    assert [c.token for c in poller.calendly.clients][-1] == "replacement"
    assert report["calendly_requests"] == len(poller.calendly.calls)


def test_a_401_with_no_other_token_fails_clearly_and_counts_an_auth_failure() -> None:
    poller = seeded(3)
    poller.calendly.valid_tokens = set()
    report = poller.run()
    assert report["ok"] is False and "connect again" in report["message"]
    assert emitted("AuthFailures") == [1.0] and emitted("PollRunsFailed") == [1.0]
    assert poller.tokens.forced_reads == 1


def test_the_client_gets_a_deadline_short_of_the_lambdas_by_the_safety_margin() -> None:
    poller = seeded(1)
    poller.remaining_ms = lambda: 120_000
    poller.run()
    (client,) = poller.calendly.clients
    assert client.deadline == pytest.approx(poller.clock.monotonic() + 100.0)


# --- the subscription check ----------------------------------------------------------------------------


def outcome(**fields: Any) -> subscriptions.Outcome:
    return subscriptions.Outcome(**{"ok": True, "action": "unchanged", "message": "fine", **fields})


def test_a_healthy_subscription_is_checked_and_the_window_is_the_usual_one() -> None:
    poller = seeded(2)
    checked: list[object] = []
    poller.check_subscription = lambda client: checked.append(client) or outcome()
    report = poller.run()
    assert len(checked) == 1 and report["subscription"] == "unchanged"
    assert emitted("SubscriptionCheckFailures") == [0.0]
    assert report["window_start"] == format_utc(NOW - timedelta(days=30))


def test_a_replaced_subscription_stretches_the_window_back_to_when_deliveries_failed() -> None:
    # GIVEN a subscription Calendly disabled, whose deliveries started failing 45 days ago
    poller = seeded(2)
    gap = NOW - timedelta(days=45)
    poller.calendly.add("IN-GAP", gap + timedelta(days=1))
    poller.check_subscription = lambda _: outcome(
        action="replaced", unhealthy=True, gap_since=format_utc(gap)
    )
    # WHEN a sync runs THEN the window starts at the gap and the event made in it is read
    report = poller.run()
    assert report["window_start"] == format_utc(gap) and scheduled_event_key("IN-GAP") in poller.table.items
    assert any("re-reading since" in note for note in report["notes"])


def test_without_a_gap_time_a_replaced_subscription_re_reads_since_it_was_last_checked() -> None:
    poller = seeded(1)
    checked_at = NOW - timedelta(days=50)
    poller.table.states["SUBSCRIPTION"] = {"checked_at": format_utc(checked_at)}
    poller.check_subscription = lambda _: outcome(action="created", unhealthy=True)
    assert poller.run()["window_start"] == format_utc(checked_at)


def test_a_failing_subscription_check_is_counted_noted_and_the_sync_goes_on() -> None:
    # GIVEN a check Calendly refuses (e.g. a token without the webhook scope)
    poller = seeded(4)

    def refused(_: object) -> subscriptions.Outcome:
        raise CalendlyUnavailable("Calendly answered 500 to GET /webhook_subscriptions")

    poller.check_subscription = refused
    # WHEN a sync runs THEN the sync completes, the failure is reported and alarmed
    report = poller.run()
    assert report["ok"] is True and report["done"] is True and report["subscription"] == "check-failed"
    assert any("subscription check failed" in note for note in report["notes"])
    assert emitted("SubscriptionCheckFailures") == [1.0] and len(poller.table.entity("scheduled_event")) == 4


def test_a_check_that_answers_not_ok_is_counted_as_failed_and_the_sync_goes_on() -> None:
    poller = seeded(1)
    poller.check_subscription = lambda _: outcome(ok=False, action="failed", message="plan too small")
    report = poller.run()
    assert report["ok"] is True and report["done"] is True and emitted("SubscriptionCheckFailures") == [1.0]


def test_a_backfill_never_checks_the_subscription() -> None:
    poller = seeded(1)
    poller.check_subscription = lambda _: pytest.fail("a backfill checked the subscription")
    assert poller.run({"mode": "backfill", "since": "2025-05-01"})["ok"] is True


# --- backfill -------------------------------------------------------------------------------------


def test_a_backfill_reads_history_in_chunks_listing_every_events_invitees() -> None:
    # GIVEN history a year back, and a table that already holds some of it
    poller = seeded(40, days_back=400)
    poller.run({"mode": "backfill", "since": "2024-04-01"})
    poller.calendly.calls.clear()
    # WHEN the same history is backfilled again since another date
    report = poller.run({"mode": "backfill", "since": "2024-03-01"})
    # THEN every event's invitees were listed again (a backfill is the full re-read), in 30-day chunks
    assert report["done"] is True and len(poller.calendly.invitee_lists()) == 40
    windows = [
        (p["min_start_time"], p["max_start_time"]) for p in poller.calendly.listed("/scheduled_events")
    ]
    assert len(windows) == len(set(windows)) >= 15


def test_a_quiet_backfill_writes_unpublished_and_a_published_one_published() -> None:
    quiet, loud = seeded(2, days_back=60), seeded(2, days_back=60)
    quiet.run({"mode": "backfill", "since": "2025-03-01"})
    loud.run({"mode": "backfill", "since": "2025-03-01", "publish": True})
    assert {(w.origin.via, w.origin.publish) for w in quiet.table.writes} == {("backfill", False)}
    assert {(w.origin.via, w.origin.publish) for w in loud.table.writes} == {("backfill", True)}


def test_a_backfill_cut_off_resumes_and_a_third_finds_it_complete() -> None:
    poller = seeded(150, days_back=400)
    poller.remaining_ms = lambda: 1_000 if len(poller.calendly.invitee_lists()) >= 60 else 300_000
    first = poller.run({"mode": "backfill", "since": "2024-04-01"})
    poller.remaining_ms = lambda: 300_000
    rest = poller.run({"mode": "backfill", "since": "2024-04-01"})
    again = poller.run({"mode": "backfill", "since": "2024-04-01"})
    assert first["done"] is False and rest["resumed"] is True and rest["done"] is True
    assert len(poller.table.entity("invitee")) == 150 and sorted(poller.calendly.invitee_lists()) == sorted(
        poller.calendly.events
    )
    assert again["done"] is True and "already complete" in again["message"]
    # AND the backfill's report says how far it got, not where a chunk ends
    assert first["window_end"] < rest["window_end"] == format_utc(NOW)


def test_a_backfill_keeps_the_syncs_steady_mark_and_counts_recoveries_once_steady() -> None:
    # GIVEN a completed sync (the table is steady from then on), then a booking older than its window
    poller = seeded(3, days_back=20)
    poller.run()
    poller.calendly.add("OLD", NOW - timedelta(days=50))
    poller.clock.advance(timedelta(minutes=5))
    # WHEN a backfill re-reads the last two months
    report = poller.run({"mode": "backfill", "since": "2025-04-01"})
    # THEN only the old booking's two items are written, counted as recovered; the steady mark stays
    assert report["missed_deliveries_recovered"] == 2
    assert poller.table.checkpoints["backfill"]["ever_completed"] is True


def test_a_backfill_without_a_readable_since_is_refused_before_anything_is_touched() -> None:
    poller = seeded(1)
    report = poller.run({"mode": "backfill", "since": "last tuesday"})
    assert report["ok"] is False and "since" in report["message"]
    assert poller.table.leases == {} and poller.calendly.calls == [] and emitted("PollRunsFailed") == []


# --- failures -------------------------------------------------------------------------------------


def test_a_storage_failure_is_a_failed_run_that_still_answers_and_gives_the_lease_back() -> None:
    poller = seeded(10)
    poller.table.refuse = lambda change: change.key == invitee_key("E0003", "E0003-i0")
    report = poller.run()
    assert report["ok"] is False and "DynamoDB" in report["message"] and emitted("PollRunsFailed") == [1.0]
    assert poller.table.leases["poll"][1] == 0
    assert scheduled_event_key("E0003") not in poller.table.items
    # AND the next run completes the table
    poller.table.refuse = lambda _: False
    assert poller.run()["done"] is True and len(poller.table.entity("scheduled_event")) == 10


def test_an_unexpected_error_is_a_failed_run_naming_its_type_not_its_message() -> None:
    # GIVEN a failure nobody planned for, whose message quotes data
    poller = seeded(1)
    poller.calendly.failing["/event_types"] = ValueError("a guest named Zed")
    # WHEN a sync runs THEN it is a failed run; the answer names the type, never the message
    report = poller.run()
    assert report["ok"] is False and "ValueError" in report["message"] and "Zed" not in report["message"]
    assert emitted("PollRunsFailed") == [1.0] and poller.table.leases["poll"][1] == 0


def test_unreadable_listed_events_fail_the_run_after_the_rest_is_applied() -> None:
    poller = seeded(3)
    poller.calendly.events["E0001"]["uri"] = "https://api.calendly.com/elsewhere"
    report = poller.run()
    assert report["ok"] is False and "could not be read" in report["message"]
    assert report["unreadable_events"] == 1 and len(poller.table.entity("scheduled_event")) == 2


def test_a_run_whose_dependencies_cannot_be_built_is_a_failed_run() -> None:
    # GIVEN the handler could not wire the run (TABLE_NAME unset)
    answer = unstarted({"mode": "sync"}, ConfigurationError("TABLE_NAME is not set"))
    # THEN it answers a failed run, alarmed like any other
    assert answer["ok"] is False and answer["message"] == "TABLE_NAME is not set"
    assert emitted("PollRunsFailed") == [1.0]


def test_settings_decide_the_window_and_the_chunks() -> None:
    poller = Poller(calendly=FakeCalendly(), settings=settings(poll_lookback_days=7, poll_horizon_days=14))
    report = poller.run()
    assert report["window_start"] == format_utc(NOW - timedelta(days=7))
    assert report["window_end"] == format_utc(NOW + timedelta(days=14))


def test_time_running_out_in_the_subscription_check_stops_the_run_early_not_failed() -> None:
    # GIVEN a check whose Calendly wait would pass the run's deadline
    poller = seeded(3)

    def out_of_time(_: object) -> subscriptions.Outcome:
        raise TimeBudgetExhausted("a wait would pass the deadline")

    poller.check_subscription = out_of_time
    # WHEN a sync runs THEN it stops early (the next run resumes), not failed, and nothing was listed
    report = poller.run()
    assert report["ok"] is True and report["done"] is False and "next run resumes" in report["message"]
    assert poller.calendly.listed("/scheduled_events") == [] and emitted("PollRunsFailed") == [0.0]
    assert poller.table.leases["poll"][1] == 0


def test_time_running_out_in_a_calendly_wait_while_reading_stops_the_run_early() -> None:
    poller = seeded(3)
    poller.calendly.failing["/event_types"] = TimeBudgetExhausted("a wait would pass the deadline")
    report = poller.run()
    assert report["ok"] is True and report["done"] is False and emitted("PollRunsFailed") == [0.0]

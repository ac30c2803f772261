"""Window planning: which start times a sync or a backfill reads, and from where.

Pure functions over a saved checkpoint and the time: no table, no Calendly.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from calendly_sync.poll_plan import (
    Window,
    backfill_chunks,
    ended_into_a_recheck,
    parse_time,
    plan_backfill,
    plan_sync,
)
from calendly_sync.poller import PollRequest
from calendly_sync.table_items import format_utc, scheduled_event_item
from tests.unit.poll_fakes import NOW, scheduled_event

LOOKBACK, HORIZON = timedelta(days=30), timedelta(days=180)


def sync_plan(saved: dict[str, object], gap_since: object = None) -> object:
    return plan_sync(saved, NOW, lookback=LOOKBACK, horizon=HORIZON, gap_since=gap_since)  # type: ignore[arg-type]


def test_a_first_sync_reads_lookback_days_back_to_horizon_days_ahead_from_the_start() -> None:
    # GIVEN no checkpoint WHEN a sync is planned
    plan = plan_sync({}, NOW, lookback=LOOKBACK, horizon=HORIZON)
    # THEN it reads now - 30 days .. now + 180 days from its start, not resumed, nothing re-checked yet
    assert plan.window == Window(NOW - LOOKBACK, NOW + HORIZON)
    assert plan.position == plan.window.start and plan.resumed is False and plan.previous_start is None


def test_a_subscription_gap_older_than_the_lookback_stretches_the_window_back_to_it() -> None:
    # GIVEN deliveries failing since 45 days ago WHEN a sync is planned
    gap = NOW - timedelta(days=45)
    plan = plan_sync({}, NOW, lookback=LOOKBACK, horizon=HORIZON, gap_since=gap)
    # THEN the window starts at the gap and still ends at the horizon
    assert plan.window == Window(gap, NOW + HORIZON) and plan.position == gap


def test_a_gap_inside_the_lookback_changes_nothing() -> None:
    # GIVEN deliveries failing since 2 days ago (the lookback covers it) WHEN planned
    plan = plan_sync({}, NOW, lookback=LOOKBACK, horizon=HORIZON, gap_since=NOW - timedelta(days=2))
    # THEN the window is the usual one
    assert plan.window == Window(NOW - LOOKBACK, NOW + HORIZON)


def test_a_sync_cut_off_mid_window_resumes_that_window_from_its_position() -> None:
    # GIVEN a checkpoint of yesterday's run, cut off at a position, not completed
    start, end = NOW - LOOKBACK - timedelta(days=1), NOW + HORIZON - timedelta(days=1)
    position = NOW - timedelta(days=3)
    saved = {
        "window_start": format_utc(start),
        "window_end": format_utc(end),
        "resume_from": format_utc(position),
        "completed_at": None,
        "last_started_at": format_utc(NOW - timedelta(days=2)),
    }
    # WHEN a sync is planned
    plan = plan_sync(saved, NOW, lookback=LOOKBACK, horizon=HORIZON)
    # THEN it reads the saved window from the saved position: nothing before it is skipped
    assert plan.window == Window(start, end) and plan.position == position and plan.resumed is True
    assert plan.previous_start == NOW - timedelta(days=2)


def test_a_completed_sync_is_not_resumed_the_next_one_reads_a_fresh_window() -> None:
    # GIVEN the last sync completed (its resume_from is where it ended)
    saved = {
        "window_start": format_utc(NOW - LOOKBACK - timedelta(days=1)),
        "window_end": format_utc(NOW + HORIZON),
        "resume_from": None,
        "completed_at": format_utc(NOW - timedelta(hours=1)),
        "last_started_at": format_utc(NOW - timedelta(hours=1, minutes=5)),
    }
    # WHEN planned THEN the window is today's, read from its start
    plan = plan_sync(saved, NOW, lookback=LOOKBACK, horizon=HORIZON)
    assert plan.window == Window(NOW - LOOKBACK, NOW + HORIZON) and plan.resumed is False
    assert plan.previous_start == NOW - timedelta(hours=1, minutes=5)


def test_a_saved_window_starting_after_todays_is_not_resumed_so_no_stretch_is_skipped() -> None:
    # GIVEN a cut-off run whose window starts later than the one planned now (a gap stretches it back)
    saved = {
        "window_start": format_utc(NOW - LOOKBACK),
        "window_end": format_utc(NOW + HORIZON),
        "resume_from": format_utc(NOW - timedelta(days=1)),
    }
    gap = NOW - timedelta(days=60)
    # WHEN planned THEN the stretched window is read from its start
    plan = plan_sync(saved, NOW, lookback=LOOKBACK, horizon=HORIZON, gap_since=gap)
    assert plan.window.start == gap and plan.position == gap and plan.resumed is False


def test_a_checkpoint_with_unreadable_times_is_read_as_no_checkpoint() -> None:
    # GIVEN a damaged checkpoint WHEN planned THEN the fresh window is read from its start
    plan = plan_sync(
        {"resume_from": "not a time", "window_start": 7}, NOW, lookback=LOOKBACK, horizon=HORIZON
    )
    assert plan.position == NOW - LOOKBACK and plan.resumed is False


# --- backfill -----------------------------------------------------------------------------


SINCE = NOW - timedelta(days=400)


def test_a_new_backfill_starts_at_since() -> None:
    # GIVEN a checkpoint of an earlier backfill since another date, cut off part way
    saved = {
        "since": format_utc(NOW - timedelta(days=90)),
        "resume_from": format_utc(NOW - timedelta(days=50)),
    }
    # WHEN a backfill since SINCE is planned THEN it starts at SINCE: another backfill's place is not its own
    plan = plan_backfill(saved, SINCE)
    assert plan.position == SINCE and plan.resumed is False and plan.already_complete is False


def test_the_same_backfill_cut_off_resumes_from_its_position() -> None:
    saved = {"since": format_utc(SINCE), "resume_from": format_utc(SINCE + timedelta(days=40))}
    plan = plan_backfill(saved, SINCE)
    assert plan.position == SINCE + timedelta(days=40) and plan.resumed is True


def test_a_checkpoint_from_before_positions_resumes_from_its_chunk_start() -> None:
    # GIVEN a checkpoint written before positions existed (chunk_start only)
    saved = {"since": format_utc(SINCE), "chunk_start": format_utc(SINCE + timedelta(days=30))}
    # THEN that chunk is read again from its start
    assert plan_backfill(saved, SINCE).position == SINCE + timedelta(days=30)


def test_a_saved_position_before_since_never_reads_before_since() -> None:
    saved = {"since": format_utc(SINCE), "resume_from": format_utc(SINCE - timedelta(days=3))}
    assert plan_backfill(saved, SINCE).position == SINCE


def test_a_completed_backfill_since_the_same_date_has_nothing_to_do() -> None:
    saved = {"since": format_utc(SINCE), "completed_at": format_utc(NOW - timedelta(hours=2))}
    assert plan_backfill(saved, SINCE).already_complete is True


def test_a_completed_backfill_since_another_date_does_not_stop_a_new_one() -> None:
    saved = {"since": format_utc(SINCE + timedelta(days=1)), "completed_at": format_utc(NOW)}
    plan = plan_backfill(saved, SINCE)
    assert plan.already_complete is False and plan.position == SINCE


def test_backfill_chunks_cover_since_to_now_without_gap_or_overlap() -> None:
    # GIVEN 65 days to read in 30-day chunks WHEN chunked
    start = NOW - timedelta(days=65)
    chunks = list(backfill_chunks(start, NOW, timedelta(days=30)))
    # THEN three windows, each starting where the last ended, the last one ending now
    assert [c.start for c in chunks] == [start, start + timedelta(days=30), start + timedelta(days=60)]
    assert [c.end for c in chunks] == [start + timedelta(days=30), start + timedelta(days=60), NOW]


def test_nothing_to_chunk_from_now_on() -> None:
    assert list(backfill_chunks(NOW, NOW, timedelta(days=30))) == []


# --- no-show re-checks ----------------------------------------------------------------------


def ended(ago: timedelta) -> object:
    item = scheduled_event_item(scheduled_event("E1", NOW - ago - timedelta(minutes=30)))
    assert item is not None
    return item


@pytest.mark.parametrize("delay", [timedelta(hours=1), timedelta(days=1), timedelta(days=3)])
def test_an_event_that_ended_a_recheck_delay_ago_since_the_last_sync_is_rechecked(delay: timedelta) -> None:
    # GIVEN the last sync started 15 minutes ago, and an event that ended `delay` + 10 minutes ago
    previous = NOW - timedelta(minutes=15)
    # WHEN asked THEN its invitees are re-read (a no-show may have been marked since)
    assert ended_into_a_recheck(ended(delay + timedelta(minutes=10)), previous, NOW) is True  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ago", [timedelta(minutes=20), timedelta(hours=5), timedelta(days=2), timedelta(days=5)]
)
def test_an_event_between_recheck_times_is_not_rechecked(ago: timedelta) -> None:
    previous = NOW - timedelta(minutes=15)
    assert ended_into_a_recheck(ended(ago), previous, NOW) is False  # type: ignore[arg-type]


def test_without_a_previous_sync_marks_in_the_last_three_days_and_an_hour_count() -> None:
    # GIVEN no sync ever completed
    # WHEN an event's 3-day mark fell 30 minutes ago, or another's 2 days ago
    # THEN both are re-checked; an event whose last mark fell 4 days ago is not
    assert ended_into_a_recheck(ended(timedelta(days=3, minutes=30)), None, NOW) is True  # type: ignore[arg-type]
    assert ended_into_a_recheck(ended(timedelta(days=5)), None, NOW) is True  # type: ignore[arg-type]
    assert ended_into_a_recheck(ended(timedelta(days=7)), None, NOW) is False  # type: ignore[arg-type]


def test_times_that_cannot_be_read_are_no_time() -> None:
    assert parse_time("9999-12-31T23:59:59-05:00") is None
    assert parse_time("yesterday") is None and parse_time(None) is None
    assert parse_time("2025-01-01") == parse_time("2025-01-01T00:00:00Z")


# --- the request ------------------------------------------------------------------------------


def test_anything_but_a_backfill_is_a_sync() -> None:
    assert PollRequest.of({"source": "aws.scheduler"}).mode == "sync"
    assert PollRequest.of(None).mode == "sync" and PollRequest.of({"mode": "sync"}).refusal is None


def test_a_backfill_needs_a_readable_since_and_publishes_only_when_asked() -> None:
    assert PollRequest.of({"mode": "backfill", "since": "last tuesday"}).refusal is not None
    quiet = PollRequest.of({"mode": "backfill", "since": "2025-01-01"})
    loud = PollRequest.of({"mode": "backfill", "since": "2025-01-01", "publish": True})
    truthy = PollRequest.of({"mode": "backfill", "since": "2025-01-01", "publish": "yes"})
    assert (
        quiet.refusal is None and quiet.publish is False and loud.publish is True and truthy.publish is False
    )

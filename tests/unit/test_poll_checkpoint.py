"""Checkpoints: saved over the ``seq`` the run expects, holding a position and never a page token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from calendly_sync.errors import StorageUnavailable
from calendly_sync.poll_checkpoint import BackfillProgress, Checkpoint, SyncProgress, ever_completed
from calendly_sync.poll_plan import Window
from calendly_sync.poll_report import PollReport
from calendly_sync.table_items import format_utc
from tests.unit.poll_fakes import NOW, FakeClock, FakeTable, Poller

WINDOW = Window(NOW - timedelta(days=30), NOW + timedelta(days=180))


def test_a_first_save_creates_the_checkpoint_and_each_next_save_expects_the_last_seq() -> None:
    # GIVEN no checkpoint
    table = FakeTable()
    checkpoint = Checkpoint(table, "sync")
    # WHEN saved three times THEN each save went over the one before it
    for _ in range(3):
        checkpoint.save({"mode": "sync"})
    assert checkpoint.seq == 3 and table.checkpoints["sync"]["seq"] == 3


def test_a_run_overtaken_by_another_cannot_move_the_checkpoint_back() -> None:
    # GIVEN a run that read the checkpoint, then another run that saved over it
    table = FakeTable()
    Checkpoint(table, "sync").save({"resume_from": "early"})
    slow = Checkpoint(table, "sync")
    fast = Checkpoint(table, "sync")
    fast.save({"resume_from": "later"})
    # WHEN the slow run saves THEN it is refused, and the newer place stands
    with pytest.raises(StorageUnavailable):
        slow.save({"resume_from": "early again"})
    assert table.checkpoints["sync"]["resume_from"] == "later"


def test_a_sync_cut_off_saves_its_position_and_keeps_the_older_start_mark() -> None:
    # GIVEN a checkpoint of a completed sync that started yesterday
    table, clock = FakeTable(), FakeClock()
    yesterday = format_utc(NOW - timedelta(days=1))
    table.checkpoints["sync"] = {"seq": 4, "last_started_at": yesterday, "ever_completed": True}
    report = PollReport(mode="sync", pages=7)
    progress = SyncProgress(Checkpoint(table, "sync"), WINDOW, report, clock, started=NOW)
    # WHEN it saves a position part way
    progress(NOW - timedelta(days=2), False)
    saved = table.checkpoints["sync"]
    # THEN the window, position, pages are saved; not completed; the older start mark is kept
    assert saved["resume_from"] == format_utc(NOW - timedelta(days=2)) and saved["completed_at"] is None
    assert saved["window_start"] == format_utc(WINDOW.start) and saved["pages_done"] == 7
    assert saved["last_started_at"] == yesterday and saved["ever_completed"] is True and saved["seq"] == 5


def test_a_finished_sync_saves_completed_its_start_and_the_steady_mark() -> None:
    table, clock = FakeTable(), FakeClock()
    progress = SyncProgress(Checkpoint(table, "sync"), WINDOW, PollReport(mode="sync"), clock, started=NOW)
    assert progress.steady is False
    clock.advance(timedelta(minutes=8))
    progress(None, True)
    saved = table.checkpoints["sync"]
    assert saved["completed_at"] == format_utc(NOW + timedelta(minutes=8)) and saved["resume_from"] is None
    assert saved["last_started_at"] == format_utc(NOW) and ever_completed(saved) is True


def test_a_backfill_chunk_saves_how_far_it_got_and_completes_only_with_the_last_chunk() -> None:
    table, clock = FakeTable(), FakeClock()
    since = NOW - timedelta(days=90)
    report = PollReport(mode="backfill")
    progress = BackfillProgress(Checkpoint(table, "backfill"), since, report, clock, steady=False)
    first, last = Window(since, since + timedelta(days=30)), Window(NOW - timedelta(days=30), NOW)
    # WHEN the first chunk is read to its end
    progress.of(first, last=False)(None, True)
    # THEN its end is the position, and the backfill is not complete
    saved = table.checkpoints["backfill"]
    assert saved["resume_from"] == format_utc(first.end) and saved["completed_at"] is None
    assert saved["since"] == format_utc(since) and report.window_end == format_utc(first.end)
    # WHEN the last chunk is cut off part way, then finished
    progress.of(last, last=True)(NOW - timedelta(days=10), False)
    assert table.checkpoints["backfill"]["completed_at"] is None
    assert report.window_end == format_utc(NOW - timedelta(days=10))
    progress.of(last, last=True)(None, True)
    assert table.checkpoints["backfill"]["completed_at"] is not None


# --- through whole runs ----------------------------------------------------------------------


def test_no_checkpoint_a_run_saves_ever_holds_a_page_token() -> None:
    # GIVEN page tokens refused now and then, and runs cut off part way
    poller = Poller()
    for n in range(260):
        poller.calendly.add(f"E{n:04d}", NOW - timedelta(days=2) + n * timedelta(minutes=30))
    poller.calendly.stale = lambda token: token == "200"
    poller.remaining_ms = lambda: (
        1_000 if len(poller.calendly.invitee_lists()) in range(100, 120) else 300_000
    )
    # WHEN runs go on until done
    answers = [poller.run()]
    while not answers[-1]["done"] and len(answers) < 5:
        poller.remaining_ms = lambda: 300_000
        answers.append(poller.run())
    # THEN no save held a token, and the table is complete
    assert answers[-1]["done"] is True and len(poller.table.entity("scheduled_event")) == 260
    assert all("page_token" not in attributes for _, attributes in poller.table.saves)


def test_a_new_backfill_since_another_date_starts_over_and_the_old_ones_place_is_replaced() -> None:
    poller = Poller()
    poller.calendly.add("OLD", NOW - timedelta(days=100))
    poller.run({"mode": "backfill", "since": "2025-02-01"})
    assert poller.table.checkpoints["backfill"]["since"] == format_utc(NOW.replace(month=2, day=1, hour=0))
    report = poller.run({"mode": "backfill", "since": "2025-01-15"})
    assert report["resumed"] is False and report["done"] is True
    assert poller.table.checkpoints["backfill"]["since"] == format_utc(NOW.replace(month=1, day=15, hour=0))

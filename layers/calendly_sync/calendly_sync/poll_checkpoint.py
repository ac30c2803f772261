"""Where a run got to, saved as it goes: the sync and backfill checkpoints.

A checkpoint holds a position (a start time before which everything is applied), never a
page token: Calendly's go stale. Each save is conditional on the ``seq`` this run last read
or wrote, so a run that overran its lease and was overtaken cannot move a newer run's place
back; it fails instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from calendly_sync import table_items
from calendly_sync.poll_dependencies import Clock, PollTable
from calendly_sync.poll_plan import Window
from calendly_sync.poll_report import PollReport
from calendly_sync.poll_window import SaveProgress

SYNC = "sync"
BACKFILL = "backfill"


class Checkpoint:
    """One checkpoint item, written only over the version this run read or wrote last."""

    def __init__(self, table: PollTable, name: str) -> None:
        self.table, self.name = table, name
        self.saved: dict[str, Any] = table.checkpoint(name) or {}
        self.seq: int | None = self.saved.get("seq")

    def save(self, attributes: Mapping[str, Any]) -> None:
        self.seq = self.table.save_checkpoint(self.name, attributes, expected_seq=self.seq)


def ever_completed(saved: Mapping[str, Any]) -> bool:
    """Has one sync completed? From then on, what a run writes is what webhooks missed."""
    return bool(saved.get("ever_completed"))


class SyncProgress:
    """Saves a sync window's position as the reader reaches it (a ``SaveProgress``)."""

    def __init__(
        self, checkpoint: Checkpoint, window: Window, report: PollReport, clock: Clock, started: datetime
    ) -> None:
        self.checkpoint, self.window, self.report, self.clock = checkpoint, window, report, clock
        self.started = started
        self.steady = ever_completed(checkpoint.saved)

    def __call__(self, reached: datetime | None, finished: bool) -> None:
        stamp = table_items.format_utc(self.clock.now())
        self.checkpoint.save(
            {
                "mode": SYNC,
                "window_start": table_items.format_utc(self.window.start),
                "window_end": table_items.format_utc(self.window.end),
                "resume_from": None if reached is None else table_items.format_utc(reached),
                "pages_done": self.report.pages,
                "updated_at": stamp,
                "completed_at": stamp if finished else None,
                # The next sync re-checks invitees of events that ended since this one started;
                # a run cut off keeps the older mark, so no stretch of time is skipped.
                "last_started_at": (
                    table_items.format_utc(self.started)
                    if finished
                    else self.checkpoint.saved.get("last_started_at")
                ),
                # Once one sync has completed, what later runs write is what webhooks missed.
                "ever_completed": self.steady or finished,
            }
        )


class BackfillProgress:
    """Saves a backfill's position, chunk by chunk; ``window_end`` in the report is how far it got."""

    def __init__(
        self, checkpoint: Checkpoint, since: datetime, report: PollReport, clock: Clock, *, steady: bool
    ) -> None:
        self.checkpoint, self.since, self.report, self.clock = checkpoint, since, report, clock
        self.steady = steady

    def of(self, window: Window, *, last: bool) -> SaveProgress:
        """The ``SaveProgress`` of one chunk; finishing the ``last`` one completes the backfill."""

        def save(reached: datetime | None, finished: bool) -> None:
            stamp = table_items.format_utc(self.clock.now())
            got_to = table_items.format_utc(window.end if reached is None else reached)
            # How far the backfill got (what ``ops backfill`` shows), not the chunk's end.
            self.report.window_end = got_to
            self.checkpoint.save(
                {
                    "mode": BACKFILL,
                    "since": table_items.format_utc(self.since),
                    "window_start": table_items.format_utc(window.start),
                    "window_end": table_items.format_utc(window.end),
                    "resume_from": got_to,
                    "pages_done": self.report.pages,
                    "updated_at": stamp,
                    "completed_at": stamp if finished and last else None,
                    "ever_completed": self.steady,
                }
            )

        return save

"""Which start times a run reads, and from where: the sync window, backfill chunks, no-show re-checks.

Calendly has no updated-since filter, so a sync re-reads a sliding start-time window
(``lookback`` back to ``horizon`` ahead), stretched back to when webhook deliveries started
failing if the subscription had to be recreated. A sync cut off mid-window resumes that very
window from its saved position; a backfill reads ``since`` up to now in chunks and resumes
from its position too. Nothing here does I/O: the saved checkpoint and the clock are given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from calendly_sync import table_items
from calendly_sync.table_items import VersionedItem

#: A no-show changes the invitee but not its event, so the event's version cannot reveal it:
#: each event's invitees are re-read when it ended this long ago (no-shows are marked after).
NO_SHOW_RECHECKS = (timedelta(hours=1), timedelta(days=1), timedelta(days=3))


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SyncPlan:
    window: Window
    #: Every event of the window starting before this has been applied.
    position: datetime
    #: A run cut off mid-window left a position: this run goes on from it.
    resumed: bool
    #: When the last completed sync started (events that ended since get their invitees re-read).
    previous_start: datetime | None


def plan_sync(
    saved: Mapping[str, Any],
    now: datetime,
    *,
    lookback: timedelta,
    horizon: timedelta,
    gap_since: datetime | None = None,
) -> SyncPlan:
    """The window a sync reads, given the sync checkpoint as saved (``{}`` when none is)."""
    window = Window(now - lookback, now + horizon)
    if gap_since is not None and gap_since < window.start:
        window = Window(gap_since, window.end)
    position = window.start
    resume_from = parse_time(saved.get("resume_from"))
    saved_window = Window(
        parse_time(saved.get("window_start")) or window.start,
        parse_time(saved.get("window_end")) or window.end,
    )
    resumed = False
    if not saved.get("completed_at") and resume_from is not None and saved_window.start <= window.start:
        # A sync cut off mid-window resumes that very window from its position: nothing skipped.
        window, position, resumed = saved_window, resume_from, True
    return SyncPlan(window, position, resumed, parse_time(saved.get("last_started_at")))


@dataclass(frozen=True)
class BackfillPlan:
    since: datetime
    position: datetime
    resumed: bool
    #: This very backfill (same ``since``) was completed before: nothing to read.
    already_complete: bool


def plan_backfill(saved: Mapping[str, Any], since: datetime) -> BackfillPlan:
    """Where a backfill since ``since`` starts, given the backfill checkpoint as saved."""
    same_backfill = saved.get("since") == table_items.format_utc(since)
    if same_backfill and saved.get("completed_at"):
        return BackfillPlan(since, since, resumed=False, already_complete=True)
    # ``chunk_start``: where checkpoints written before positions existed resume.
    saved_position = parse_time(saved.get("resume_from")) or parse_time(saved.get("chunk_start"))
    if same_backfill and saved_position is not None:
        return BackfillPlan(since, max(since, saved_position), resumed=True, already_complete=False)
    return BackfillPlan(since, since, resumed=False, already_complete=False)


def backfill_chunks(position: datetime, now: datetime, chunk: timedelta) -> Iterator[Window]:
    """Start-time windows of ``chunk`` from ``position`` up to ``now``; the last one ends at ``now``."""
    while position < now:
        window = Window(position, min(position + chunk, now))
        yield window
        position = window.end


def ended_into_a_recheck(item: VersionedItem, previous_start: datetime | None, now: datetime) -> bool:
    """Did the event end, since the last sync, 1 h, 1 day or 3 days ago (when no-shows get marked)?"""
    end = parse_time(item.attributes.get("end_time"))
    if end is None:
        return False
    since = previous_start or now - max(NO_SHOW_RECHECKS) - timedelta(hours=1)
    return any(since <= end + delay < now for delay in NO_SHOW_RECHECKS)


def parse_time(value: object) -> datetime | None:
    """A stored or received time as an aware datetime; None for anything unreadable."""
    try:
        text = table_items.normalize_timestamp(value)
        return datetime.fromisoformat(text) if text else None
    except (ValueError, OverflowError):  # a time outside what datetime holds is no time
        return None

"""PollCalendlyFunction's work: make the table converge to what Calendly holds.

Calendly has no updated-since filter, so each run re-reads a sliding start-time window
(``poll_plan``) and compares each event's version with the stored one: only new or changed
events cost an invitee list, and only changed items are written (through the same records and
store code as webhooks, so the same newer-wins rules hold). The window is read by position
(``poll_window``): the checkpoint (``poll_checkpoint``) holds the start time before which
everything is applied, never a page token (Calendly's go stale), so a run that stops early,
fails or crashes leaves a place from which the next run completes. A backfill reads history
the same way in start-time chunks.

Each normal run also checks the webhook subscription (``poll_subscription``); if it had to be
recreated, the window is stretched back to when deliveries started failing. A failing check
is reported and alarmed, and the sync goes on: polling is the safety net.

Runs never overlap (``poll_lease``). Every exception in a run makes it a failed run
(``PollRunsFailed`` 1, logged with its reason, ``poll_report``), and the function still
answers its report. Everything the run works with comes in ``PollDependencies``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync import table_items
from calendly_sync.credentials import load_connection
from calendly_sync.errors import CalendlyRejected, TimeBudgetExhausted
from calendly_sync.observability import metrics
from calendly_sync.poll_checkpoint import (
    BACKFILL,
    SYNC,
    BackfillProgress,
    Checkpoint,
    SyncProgress,
    ever_completed,
)
from calendly_sync.poll_dependencies import PollDependencies, PollRun, PollTable
from calendly_sync.poll_lease import PollLease
from calendly_sync.poll_plan import (
    Window,
    backfill_chunks,
    ended_into_a_recheck,
    parse_time,
    plan_backfill,
    plan_sync,
)
from calendly_sync.poll_report import STOPPED_EARLY, PollReport, observe
from calendly_sync.poll_subscription import check_subscription
from calendly_sync.poll_window import SAFETY_MARGIN_MS, ReadRules, WindowReader
from calendly_sync.table_items import VersionedItem

__all__ = ["SAFETY_MARGIN_MS", "PollDependencies", "PollReport", "Window", "poll", "unstarted"]


@dataclass(frozen=True)
class PollRequest:
    """What the event asks: ``{"mode": "backfill", "since": ISO[, "publish": true]}``, else a sync."""

    mode: str
    since: datetime | None = None
    publish: bool = False

    @classmethod
    def of(cls, event: Any) -> PollRequest:
        if not (isinstance(event, dict) and event.get("mode") == "backfill"):
            return cls("sync")
        return cls("backfill", parse_time(event.get("since")), event.get("publish") is True)

    @property
    def refusal(self) -> str | None:
        if self.mode == "backfill" and self.since is None:
            return 'backfill needs "since": an ISO-8601 date or time, e.g. "2025-01-01"'
        return None


def poll(event: Any, remaining_ms: Callable[[], int], dependencies: PollDependencies) -> dict[str, Any]:
    """One run of what ``event`` asks, with ``dependencies``; answers its report.

    Always answers: whatever goes wrong is a failed run (``ok`` false), never a crash.
    """
    clock = dependencies.clock
    started = clock.monotonic()
    request = PollRequest.of(event)
    report = PollReport(mode=request.mode)
    if request.refusal:
        report.ok, report.message = False, request.refusal
        return report.as_response()

    lease = PollLease(dependencies.table, clock)
    try:
        if not lease.claim(remaining_ms()):
            # The run is not counted: another one is doing the work.
            report.message = "another poll run is in progress: this one stopped at once"
            metrics.add_metric(name="PollRunsSkipped", unit=MetricUnit.Count, value=1)
            return report.as_response()
        _run(report, request, dependencies, remaining_ms)
        if report.unreadable_events:
            report.ok = False
            report.message = (
                f"{report.unreadable_events} listed scheduled event(s) could not be read and were"
                " skipped; the rest was applied"
            )
    except TimeBudgetExhausted:
        report.message = report.message or STOPPED_EARLY
    except Exception as error:  # any failure is a failed run: reported and alarmed
        report.fail(error)
    finally:
        lease.release()
    report.duration_ms = int((clock.monotonic() - started) * 1000)
    observe(report)
    return report.as_response()


def unstarted(event: Any, error: Exception) -> dict[str, Any]:
    """The answer when the run's dependencies could not be built (a misconfigured stack).

    A failed run like any other (reported, logged, ``PollRunsFailed`` 1), never a crash.
    """
    request = PollRequest.of(event)
    report = PollReport(mode=request.mode)
    if request.refusal:
        report.ok, report.message = False, request.refusal
        return report.as_response()
    report.fail(error)
    observe(report)
    return report.as_response()


def _run(
    report: PollReport, request: PollRequest, dependencies: PollDependencies, remaining_ms: Callable[[], int]
) -> None:
    """With the stored token; a 401 reads the token again, once, in case it was replaced."""
    stored = dependencies.stored_token()
    if stored is None:
        report.ok, report.message = False, 'no Calendly token is stored: connect first ({"token": ...})'
        return
    clock = dependencies.clock
    deadline = clock.monotonic() + max(0, remaining_ms() - SAFETY_MARGIN_MS) / 1000
    run = PollRun(
        dependencies.table, dependencies.calendly(stored["token"], deadline), report, remaining_ms, clock
    )
    now = clock.now()
    try:
        _sync(run, request, dependencies, now)
    except CalendlyRejected as rejected:
        if rejected.status != 401:
            raise
        fresh = dependencies.stored_token(force_fetch=True)
        if fresh is None or fresh["token"] == stored["token"]:
            metrics.add_metric(name="AuthFailures", unit=MetricUnit.Count, value=1)
            raise CalendlyRejected(
                "Calendly refused the stored token (401): connect again with a valid token",
                status=401,
                title=rejected.title,
                detail=rejected.detail,
            ) from None
        report.absorb(run.client)
        run = replace(run, client=dependencies.calendly(fresh["token"], deadline))
        _sync(run, request, dependencies, now)
    finally:
        report.absorb(run.client)


def _sync(run: PollRun, request: PollRequest, dependencies: PollDependencies, now: datetime) -> None:
    settings = dependencies.settings
    connection = load_connection(run.table, run.client)
    # A member's token names its user, and the organization too: ``user`` alone lists that
    # user's events from every organization they belong or belonged to.
    owner_filter = {"organization": connection.organization}
    if connection.scope != "organization":
        owner_filter["user"] = connection.user
    checkpoint = Checkpoint(run.table, SYNC)
    steady = ever_completed(checkpoint.saved)

    if request.since is not None:
        chunk = timedelta(days=settings.backfill_chunk_days)
        _backfill(run, owner_filter, request.since, request.publish, now, chunk, steady=steady)
        return

    check = dependencies.check_subscription
    gap_since = check_subscription(run, check) if check is not None else None

    if connection.scope == "organization":
        run.report.members_seen = _write_changed(
            run, run.client.collection("/organization_memberships", owner_filter), table_items.membership_item
        )
    run.report.event_types_seen = _write_changed(
        run, run.client.collection("/event_types", owner_filter), table_items.event_type_item
    )

    plan = plan_sync(
        checkpoint.saved,
        now,
        lookback=timedelta(days=settings.poll_lookback_days),
        horizon=timedelta(days=settings.poll_horizon_days),
        gap_since=gap_since,
    )
    run.report.resumed = plan.resumed
    run.report.window_start = table_items.format_utc(plan.window.start)
    run.report.window_end = table_items.format_utc(plan.window.end)
    progress = SyncProgress(checkpoint, plan.window, run.report, run.clock, started=now)

    def recheck(item: VersionedItem) -> bool:
        return ended_into_a_recheck(item, plan.previous_start, now)

    reader = WindowReader(run, ReadRules(owner_filter, steady=steady, recheck=recheck))
    run.report.done = reader.read(plan.window, plan.position, progress)
    if not run.report.done:
        run.report.message = STOPPED_EARLY


def _backfill(
    run: PollRun,
    owner_filter: dict[str, str],
    since: datetime,
    publish: bool,
    now: datetime,
    chunk: timedelta,
    *,
    steady: bool,
) -> None:
    """History from ``since`` up to now, one start-time chunk at a time, by position.

    Unlike a sync it lists every event's invitees, changed or not: it is the full re-read, so
    even no-show flags that no event change revealed are put right. What it changes reaches
    the event bus only when asked (``publish``): history must not flood consumers.
    """
    report = run.report
    checkpoint = Checkpoint(run.table, BACKFILL)
    plan = plan_backfill(checkpoint.saved, since)
    if plan.already_complete:
        report.done, report.message = True, f"backfill since {plan.since:%Y-%m-%d} was already complete"
        return
    report.resumed = plan.resumed
    rules = ReadRules(
        owner_filter,
        steady=steady,
        recheck=lambda _: True,
        origin=table_items.backfill_origin(publish=publish),
    )
    reader = WindowReader(run, rules)
    progress = BackfillProgress(checkpoint, plan.since, report, run.clock, steady=steady)
    report.window_start = table_items.format_utc(plan.position)
    for window in backfill_chunks(plan.position, now, chunk):
        if not reader.read(window, window.start, progress.of(window, last=window.end >= now)):
            report.done, report.message = False, STOPPED_EARLY
            return
    report.done = True


def _write_changed(
    run: PollRun, resources: Iterator[dict[str, Any]], to_item: Callable[[object], VersionedItem | None]
) -> int:
    """Write the items newer than the table's (memberships, event types); how many were listed."""
    items = [item for item in map(to_item, resources) if item is not None]
    changed = _newer_than_stored(run.table, items)
    run.report.items_written += len(run.table.apply_changes(changed, origin=table_items.POLL).applied)
    return len(items)


def _newer_than_stored(table: PollTable, items: list[VersionedItem]) -> list[VersionedItem]:
    """The items whose version is newer than the table's (one BatchGetItem per 100 keys)."""
    stored = table.stored_versions([item.key for item in items])
    return [item for item in items if stored.get(item.key, "") < item.version]

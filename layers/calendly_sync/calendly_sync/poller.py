"""PollCalendlyFunction's work: make the table converge to what Calendly holds.

Calendly has no updated-since filter, so each run re-reads a sliding start-time window
(``lookback`` days back to ``horizon`` days ahead, both statuses, 100 a page) and compares
each event's version with the stored one: only new or changed events cost an invitee list,
and only changed items are written (through the same records and store code as webhooks,
so the same newer-wins rules hold). The window is read by position (``poll_window``): the
checkpoint holds the start time before which everything is applied, never a page token
(Calendly's go stale), so a run that stops early, fails or crashes leaves a place from which
the next run completes. A backfill reads history the same way in start-time chunks.

Each normal run also checks the webhook subscription (the same code as ``ensure``); if it
had to be recreated, the window is stretched back to when deliveries started failing. A
failing check is reported and alarmed, and the sync goes on: polling is the safety net.

Every exception in a run makes it a failed run (``PollRunsFailed`` 1, logged with its
reason), and the function still answers its report.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync import records
from calendly_sync.adapters import secrets
from calendly_sync.adapters.calendly import POLLING_RETRIES, CalendlyClient
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.connection import identify, scope_for
from calendly_sync.errors import CalendlyRejected, CalendlySyncError, TimeBudgetExhausted
from calendly_sync.observability import logger, metrics
from calendly_sync.operations import observe_subscription, run_subscription_action
from calendly_sync.poll_window import SAFETY_MARGIN_MS, Window, WindowReader
from calendly_sync.records import VersionedItem
from calendly_sync.settings import get_settings

__all__ = ["SAFETY_MARGIN_MS", "PollReport", "Window", "poll"]

#: A no-show changes the invitee but not its event, so the event's version cannot reveal it:
#: each event's invitees are re-read when it ended this long ago (no-shows are marked after).
NO_SHOW_RECHECKS = (timedelta(hours=1), timedelta(days=1), timedelta(days=3))
LEASE_NAME = "poll"
STOPPED_EARLY = "stopped before the deadline; the next run resumes from the checkpoint"


@dataclass
class PollReport:
    mode: str
    ok: bool = True
    message: str = ""
    done: bool = False
    resumed: bool = False
    window_start: str | None = None
    window_end: str | None = None
    pages: int = 0
    events_seen: int = 0
    events_changed: int = 0
    invitee_lists: int = 0
    items_written: int = 0
    missed_deliveries_recovered: int = 0
    event_types_seen: int = 0
    members_seen: int = 0
    calendly_requests: int = 0
    throttled: int = 0
    retries: int = 0
    subscription: str | None = None
    #: Listings begun again from the position after Calendly refused a page token as stale.
    page_token_restarts: int = 0
    #: Listed events without a readable uri, updated_at or start_time: skipped, and the run fails.
    unreadable_events: int = 0
    duration_ms: int = 0
    notes: list[str] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        return asdict(self)


def poll(event: Any, remaining_ms: Callable[[], int], *, now: datetime | None = None) -> dict[str, Any]:
    """One run: ``{"mode": "backfill", "since": ISO[, "publish": true]}`` reads history; anything else syncs.

    Always answers a report: whatever goes wrong is a failed run (``ok`` false), never a crash.
    """
    started = time.monotonic()
    now = now or datetime.now(UTC)
    mode = "backfill" if isinstance(event, dict) and event.get("mode") == "backfill" else "sync"
    report = PollReport(mode=mode)
    since = _parse_time(event.get("since")) if mode == "backfill" else None
    publish = mode == "backfill" and event.get("publish") is True
    if mode == "backfill" and since is None:
        report.ok, report.message = (
            False,
            'backfill needs "since": an ISO-8601 date or time, e.g. "2025-01-01"',
        )
        return report.as_response()

    owner = str(uuid.uuid4())
    table: CalendlyTable | None = None
    skipped = False
    try:
        table = CalendlyTable(get_settings().table_name)
        lease_seconds = max(60, remaining_ms() // 1000 + 60)
        if not table.claim_lease(LEASE_NAME, owner, int(time.time()), lease_seconds):
            table, skipped = None, True  # the lease is not ours to release; the run is not counted
            report.message = "another poll run is in progress: this one stopped at once"
            metrics.add_metric(name="PollRunsSkipped", unit=MetricUnit.Count, value=1)
            return report.as_response()
        _run(report, table, remaining_ms, now, since, publish)
        if report.unreadable_events:
            report.ok = False
            report.message = (
                f"{report.unreadable_events} listed scheduled event(s) could not be read and were"
                " skipped; the rest was applied"
            )
    except TimeBudgetExhausted:
        report.message = report.message or STOPPED_EARLY
    except Exception as error:  # any failure is a failed run: reported and alarmed
        _failed(report, error)
    finally:
        if table is not None:
            try:
                table.release_lease(LEASE_NAME, owner)
            except CalendlySyncError as error:  # it expires on its own; the next run takes it then
                logger.warning("poll lease not released", reason=error.reason)
        if not skipped:
            report.duration_ms = int((time.monotonic() - started) * 1000)
            _observe(report)
    return report.as_response()


def _failed(report: PollReport, error: Exception) -> None:
    report.ok = False
    if isinstance(error, CalendlySyncError):
        report.message = str(error)
        logger.error("poll run failed", reason=error.reason, detail=str(error))
        return
    report.message = f"poll run failed on an unexpected {type(error).__name__}; the next run resumes"
    # The type and the line, not the message: it might quote data Calendly sent.
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else None
    logger.error("poll run failed", reason="unexpected", error_type=type(error).__name__, where=where)


def _run(
    report: PollReport,
    table: CalendlyTable,
    remaining_ms: Callable[[], int],
    now: datetime,
    since: datetime | None,
    publish: bool = False,
) -> None:
    stored = secrets.stored_token()
    if stored is None:
        report.ok, report.message = False, 'no Calendly token is stored: connect first ({"token": ...})'
        return
    deadline = time.monotonic() + max(0, remaining_ms() - SAFETY_MARGIN_MS) / 1000
    client = _client(stored["token"], deadline)
    try:
        _sync(report, table, client, remaining_ms, now, since, publish)
    except CalendlyRejected as rejected:
        if rejected.status != 401:
            raise
        # The token may have been replaced since it was cached: read it again, once.
        fresh = secrets.stored_token(force_fetch=True)
        if fresh is None or fresh["token"] == stored["token"]:
            metrics.add_metric(name="AuthFailures", unit=MetricUnit.Count, value=1)
            raise CalendlyRejected(
                "Calendly refused the stored token (401): connect again with a valid token",
                status=401,
                title=rejected.title,
                detail=rejected.detail,
            ) from None
        _absorb(report, client)
        client = _client(fresh["token"], deadline)
        _sync(report, table, client, remaining_ms, now, since, publish)
    finally:
        _absorb(report, client)


def _client(token: str, deadline: float) -> CalendlyClient:
    return CalendlyClient(
        get_settings().calendly_api_base_url, token, retry=POLLING_RETRIES, deadline=deadline
    )


def _absorb(report: PollReport, client: CalendlyClient) -> None:
    report.calendly_requests += client.stats.requests
    report.throttled += client.stats.throttled
    report.retries += client.stats.retries
    client.stats.requests = client.stats.throttled = client.stats.retries = 0


def _sync(
    report: PollReport,
    table: CalendlyTable,
    client: CalendlyClient,
    remaining_ms: Callable[[], int],
    now: datetime,
    since: datetime | None,
    publish: bool = False,
) -> None:
    settings = get_settings()
    user, organization, scope = _connection(table, client)
    # A member's token names its user, and the organization too: ``user`` alone lists that
    # user's events from every organization they belong or belonged to.
    owner_filter = {"organization": organization}
    if scope != "organization":
        owner_filter["user"] = user
    steady = bool((table.checkpoint("sync") or {}).get("ever_completed"))

    if since is not None:
        _backfill(report, table, client, owner_filter, since, now, remaining_ms, steady, publish)
        return

    gap_since = (
        _check_subscription(report, table, client, settings.webhook_url) if settings.webhook_url else None
    )

    if scope == "organization":
        report.members_seen = _write_changed(
            report,
            table,
            client.collection("/organization_memberships", owner_filter),
            records.membership_item,
        )
    report.event_types_seen = _write_changed(
        report, table, client.collection("/event_types", owner_filter), records.event_type_item
    )

    saved = table.checkpoint("sync") or {}
    checkpoint = _Checkpoint(table, "sync", saved)
    lookback = timedelta(days=settings.poll_lookback_days)
    window = Window(now - lookback, now + timedelta(days=settings.poll_horizon_days))
    if gap_since is not None and gap_since < window.start:
        window = Window(gap_since, window.end)
    position = window.start
    resume_from = _parse_time(saved.get("resume_from"))
    saved_window = Window(
        _parse_time(saved.get("window_start")) or window.start,
        _parse_time(saved.get("window_end")) or window.end,
    )
    if not saved.get("completed_at") and resume_from is not None and saved_window.start <= window.start:
        # A sync cut off mid-window resumes that very window from its position: nothing skipped.
        window, position = saved_window, resume_from
        report.resumed = True
    report.window_start = records.format_utc(window.start)
    report.window_end = records.format_utc(window.end)
    previous_start = _parse_time(saved.get("last_started_at"))

    def save(reached: datetime | None, finished: bool) -> None:
        stamp = records.format_utc(datetime.now(UTC))
        checkpoint.save(
            {
                "mode": "sync",
                "window_start": records.format_utc(window.start),
                "window_end": records.format_utc(window.end),
                "resume_from": None if reached is None else records.format_utc(reached),
                "pages_done": report.pages,
                "updated_at": stamp,
                "completed_at": stamp if finished else None,
                # The next sync re-checks invitees of events that ended since this one started;
                # a run cut off keeps the older mark, so no stretch of time is skipped.
                "last_started_at": records.format_utc(now) if finished else saved.get("last_started_at"),
                # Once one sync has completed, what later runs write is what webhooks missed.
                "ever_completed": steady or finished,
            }
        )

    reader = _reader(report, table, client, owner_filter, remaining_ms, steady)
    reader.recheck = lambda item: _ended_into_a_recheck(item, previous_start, now)
    report.done = reader.read(window, position, save)
    if not report.done:
        report.message = STOPPED_EARLY


def _check_subscription(
    report: PollReport, table: CalendlyTable, client: CalendlyClient, webhook_url: str
) -> datetime | None:
    """The webhook check each sync makes; when it fails, it is reported and the sync goes on.

    Polling is the safety net for a broken webhook, so it must never depend on the webhook's
    subscription: a failure here (e.g. a token without the webhook scope) is logged, counted in
    ``SubscriptionCheckFailures`` (alarmed) and noted, and the window is read all the same.
    Returns the moment to re-read from when the subscription had to be recreated.
    """
    try:
        outcome = run_subscription_action("ensure", client, table, webhook_url)
    except TimeBudgetExhausted:
        raise
    except CalendlySyncError as error:
        report.subscription = "check-failed"
        report.notes.append(f"webhook subscription check failed ({error.reason}); polling went on")
        logger.warning("subscription check failed; polling goes on", reason=error.reason, detail=str(error))
        metrics.add_metric(name="SubscriptionCheckFailures", unit=MetricUnit.Count, value=1)
        return None
    observe_subscription(outcome)
    report.subscription = outcome.action
    metrics.add_metric(name="SubscriptionCheckFailures", unit=MetricUnit.Count, value=0 if outcome.ok else 1)
    if not outcome.ok:
        report.notes.append(f"webhook subscription check failed: {outcome.message}; polling went on")
        logger.warning("subscription check failed; polling goes on", reason=outcome.action)
    if not outcome.unhealthy:
        return None
    gap_since = _parse_time(outcome.gap_since) or _parse_time(
        (table.sync_state("SUBSCRIPTION") or {}).get("checked_at")
    )
    report.notes.append(f"webhook subscription was {outcome.action}; re-reading since {gap_since}")
    return gap_since


def _backfill(
    report: PollReport,
    table: CalendlyTable,
    client: CalendlyClient,
    owner_filter: dict[str, str],
    since: datetime,
    now: datetime,
    remaining_ms: Callable[[], int],
    steady: bool,
    publish: bool,
) -> None:
    """History from ``since`` up to now, one start-time chunk at a time, by position.

    Unlike a sync it lists every event's invitees, changed or not: it is the full re-read, so
    even no-show flags that no event change revealed are put right. What it changes reaches
    the event bus only when asked (``publish``): history must not flood consumers.
    """
    chunk = timedelta(days=get_settings().backfill_chunk_days)
    saved = table.checkpoint("backfill") or {}
    checkpoint = _Checkpoint(table, "backfill", saved)
    same_backfill = saved.get("since") == records.format_utc(since)
    if same_backfill and saved.get("completed_at"):
        report.done, report.message = True, f"backfill since {since:%Y-%m-%d} was already complete"
        return
    position = since
    # ``chunk_start``: where checkpoints written before positions existed resume.
    saved_position = _parse_time(saved.get("resume_from")) or _parse_time(saved.get("chunk_start"))
    if same_backfill and saved_position is not None:
        position = max(since, saved_position)
        report.resumed = True
    reader = _reader(report, table, client, owner_filter, remaining_ms, steady)
    reader.recheck = lambda _: True
    reader.origin = records.backfill_origin(publish=publish)
    report.window_start = records.format_utc(position)
    while position < now:
        window = Window(position, min(position + chunk, now))
        last_chunk = window.end >= now

        def save(
            reached: datetime | None, finished: bool, window: Window = window, last: bool = last_chunk
        ) -> None:
            stamp = records.format_utc(datetime.now(UTC))
            # How far the backfill got (what ``ops backfill`` shows), not the chunk's end.
            report.window_end = records.format_utc(window.end if reached is None else reached)
            checkpoint.save(
                {
                    "mode": "backfill",
                    "since": records.format_utc(since),
                    "window_start": records.format_utc(window.start),
                    "window_end": records.format_utc(window.end),
                    "resume_from": records.format_utc(window.end if reached is None else reached),
                    "pages_done": report.pages,
                    "updated_at": stamp,
                    "completed_at": stamp if finished and last else None,
                    "ever_completed": steady,
                }
            )

        if not reader.read(window, position, save):
            report.done, report.message = False, STOPPED_EARLY
            return
        position = window.end
    report.done = True


def _reader(
    report: PollReport,
    table: CalendlyTable,
    client: CalendlyClient,
    owner_filter: dict[str, str],
    remaining_ms: Callable[[], int],
    steady: bool,
) -> WindowReader:
    return WindowReader(
        table=table,
        client=client,
        report=report,
        owner_filter=owner_filter,
        remaining_ms=remaining_ms,
        steady=steady,
        recheck=lambda _: False,
    )


class _Checkpoint:
    """One checkpoint item, written only over the version this run read or wrote last."""

    def __init__(self, table: CalendlyTable, name: str, saved: dict[str, Any]) -> None:
        self.table, self.name = table, name
        self.seq: int | None = saved.get("seq")

    def save(self, attributes: dict[str, Any]) -> None:
        self.seq = self.table.save_checkpoint(self.name, attributes, expected_seq=self.seq)


def _ended_into_a_recheck(item: VersionedItem, previous_start: datetime | None, now: datetime) -> bool:
    """Did the event end, since the last sync, 1 h, 1 day or 3 days ago (when no-shows get marked)?"""
    end = _parse_time(item.attributes.get("end_time"))
    if end is None:
        return False
    since = previous_start or now - max(NO_SHOW_RECHECKS) - timedelta(hours=1)
    return any(since <= end + delay < now for delay in NO_SHOW_RECHECKS)


def _write_changed(
    report: PollReport,
    table: CalendlyTable,
    resources: Iterator[dict[str, Any]],
    to_item: Callable[[object], VersionedItem | None],
) -> int:
    items = [item for item in map(to_item, resources) if item is not None]
    changed = _newer_than_stored(table, items)
    report.items_written += len(table.apply_changes(changed, origin=records.POLL).applied)
    return len(items)


def _connection(table: CalendlyTable, client: CalendlyClient) -> tuple[str, str, str]:
    connection = table.sync_state("CONNECTION") or {}
    if connection.get("organization") and connection.get("user"):
        return connection["user"], connection["organization"], connection.get("scope") or "organization"
    user, organization, role = identify(client)
    return user, organization, scope_for(role)


def _newer_than_stored(table: CalendlyTable, items: list[VersionedItem]) -> list[VersionedItem]:
    """The items whose version is newer than the table's (one BatchGetItem per 100 keys)."""
    stored = table.stored_versions([item.key for item in items])
    return [item for item in items if stored.get(item.key, "") < item.version]


def _parse_time(value: object) -> datetime | None:
    try:
        text = records.normalize_timestamp(value)
        return datetime.fromisoformat(text) if text else None
    except (ValueError, OverflowError):  # a time outside what datetime holds is no time
        return None


def _observe(report: PollReport) -> None:
    metrics.add_dimension(name="Mode", value=report.mode)
    for name, value in (
        ("PollEventsSeen", report.events_seen),
        ("PollEventsChanged", report.events_changed),
        ("PollItemsWritten", report.items_written),
        ("MissedDeliveriesRecovered", report.missed_deliveries_recovered),
        ("CalendlyRequests", report.calendly_requests),
        ("CalendlyThrottled", report.throttled),
        ("PollResumed", int(report.resumed)),
        ("PollPageTokenRestarts", report.page_token_restarts),
        ("PollUnreadableEvents", report.unreadable_events),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="PollDuration", unit=MetricUnit.Milliseconds, value=report.duration_ms)
    metrics.add_metric(name="PollRunsFailed", unit=MetricUnit.Count, value=0 if report.ok else 1)
    fields = {k: v for k, v in report.as_response().items() if k not in ("notes", "message")}
    logger.info("poll run finished", outcome=report.message, **fields)

"""PollCalendlyFunction's work: make the table converge to what Calendly holds.

Calendly has no updated-since filter, so each run re-reads a sliding start-time window
(``lookback`` days back to ``horizon`` days ahead, both statuses, 100 a page) and compares
each event's version with the stored one: only new or changed events cost an invitee list,
and only changed items are written (through the same records and store code as webhooks,
so the same newer-wins rules hold). The page token is checkpointed after every page with a
conditional write, so a run that nears its deadline stops cleanly and the next resumes
where it stopped. A backfill reads history the same way in start-time chunks.

Each normal run also checks the webhook subscription (the same code as ``ensure``); if it
had to be recreated, the window is stretched back to when deliveries started failing.
"""

from __future__ import annotations

import time
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
from calendly_sync.records import Change, VersionedItem
from calendly_sync.settings import get_settings

#: Stop taking new pages when less than this is left of the Lambda's time.
SAFETY_MARGIN_MS = 20_000
CHECKPOINT_EVERY_PAGES = 25
#: A no-show changes the invitee but not its event, so the event's version cannot reveal it:
#: each event's invitees are re-read when it ended this long ago (no-shows are marked after).
NO_SHOW_RECHECKS = (timedelta(hours=1), timedelta(days=1), timedelta(days=3))
LEASE_NAME = "poll"


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
    duration_ms: int = 0
    notes: list[str] = field(default_factory=list)

    def as_response(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def params(self) -> dict[str, str]:
        return {
            "min_start_time": records.format_utc(self.start),
            "max_start_time": records.format_utc(self.end),
        }


def poll(event: Any, remaining_ms: Callable[[], int], *, now: datetime | None = None) -> dict[str, Any]:
    """One run: ``{"mode": "backfill", "since": ISO}`` reads history; anything else syncs."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    mode = "backfill" if isinstance(event, dict) and event.get("mode") == "backfill" else "sync"
    report = PollReport(mode=mode)
    since = _parse_time(event.get("since")) if mode == "backfill" else None
    if mode == "backfill" and since is None:
        report.ok, report.message = (
            False,
            'backfill needs "since": an ISO-8601 date or time, e.g. "2025-01-01"',
        )
        return report.as_response()

    table = CalendlyTable(get_settings().table_name)
    owner = str(uuid.uuid4())
    lease_seconds = max(60, remaining_ms() // 1000 + 60)
    try:
        claimed = table.claim_lease(LEASE_NAME, owner, int(time.time()), lease_seconds)
    except CalendlySyncError as error:
        report.ok, report.message = False, str(error)
        _observe(report)
        return report.as_response()
    if not claimed:
        report.ok, report.message = True, "another poll run is in progress: this one stopped at once"
        metrics.add_metric(name="PollRunsSkipped", unit=MetricUnit.Count, value=1)
        return report.as_response()
    try:
        _run(report, table, remaining_ms, now, since)
    except TimeBudgetExhausted:
        report.message = (
            report.message or "stopped before the deadline; the next run resumes from the checkpoint"
        )
    except CalendlySyncError as error:
        report.ok, report.message = False, str(error)
        logger.error("poll run failed", reason=error.reason, detail=str(error))
    finally:
        try:
            table.release_lease(LEASE_NAME, owner)
        except CalendlySyncError as error:  # it expires on its own; the next run takes it then
            logger.warning("poll lease not released", reason=error.reason)
        report.duration_ms = int((time.monotonic() - started) * 1000)
        _observe(report)
    return report.as_response()


def _run(
    report: PollReport,
    table: CalendlyTable,
    remaining_ms: Callable[[], int],
    now: datetime,
    since: datetime | None,
) -> None:
    stored = secrets.stored_token()
    if stored is None:
        report.ok, report.message = False, 'no Calendly token is stored: connect first ({"token": ...})'
        return
    deadline = time.monotonic() + max(0, remaining_ms() - SAFETY_MARGIN_MS) / 1000
    client = _client(stored["token"], deadline)
    try:
        _sync(report, table, client, remaining_ms, now, since)
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
        _sync(report, table, client, remaining_ms, now, since)
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
) -> None:
    settings = get_settings()
    user, organization, scope = _connection(table, client)
    owner_filter = {"organization": organization} if scope == "organization" else {"user": user}
    steady = bool((table.checkpoint("sync") or {}).get("ever_completed"))

    if since is not None:
        _backfill(report, table, client, owner_filter, since, now, remaining_ms, steady)
        return

    gap_since: datetime | None = None
    if settings.webhook_url:
        outcome = run_subscription_action("ensure", client, table, settings.webhook_url)
        observe_subscription(outcome)
        report.subscription = outcome.action
        if outcome.unhealthy:
            gap_since = _parse_time(outcome.gap_since) or _parse_time(
                (table.sync_state("SUBSCRIPTION") or {}).get("checked_at")
            )
            report.notes.append(f"webhook subscription was {outcome.action}; re-reading since {gap_since}")

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

    lookback = timedelta(days=settings.poll_lookback_days)
    window = Window(now - lookback, now + timedelta(days=settings.poll_horizon_days))
    if gap_since is not None and gap_since < window.start:
        window = Window(gap_since, window.end)
    previous_start = _parse_time((table.checkpoint("sync") or {}).get("last_started_at"))
    report.done = _read_window(
        report,
        table,
        client,
        "sync",
        owner_filter,
        window,
        remaining_ms,
        steady,
        recheck=lambda item: _ended_into_a_recheck(item, previous_start, now),
        started_at=now,
    )


def _backfill(
    report: PollReport,
    table: CalendlyTable,
    client: CalendlyClient,
    owner_filter: dict[str, str],
    since: datetime,
    now: datetime,
    remaining_ms: Callable[[], int],
    steady: bool,
) -> None:
    """History from ``since`` up to now, one start-time chunk at a time, each checkpointed.

    Unlike a sync it lists every event's invitees, changed or not: it is the full re-read.
    """
    chunk = timedelta(days=get_settings().backfill_chunk_days)
    saved = table.checkpoint("backfill") or {}
    if saved.get("since") == records.format_utc(since) and saved.get("completed_at"):
        report.done, report.message = True, f"backfill since {since:%Y-%m-%d} was already complete"
        return
    start = since
    if saved.get("since") == records.format_utc(since) and saved.get("chunk_start"):
        start = _parse_time(saved["chunk_start"]) or since  # resume where the last run stopped
        report.resumed = True
    until = now
    while start < until:
        window = Window(start, min(start + chunk, until))
        finished = _read_window(
            report,
            table,
            client,
            "backfill",
            owner_filter,
            window,
            remaining_ms,
            steady,
            since=since,
            last_chunk=window.end >= until,
            # History is read whole: every event's invitees, so even no-show flags that no
            # event change revealed are put right.
            recheck=lambda _: True,
        )
        if not finished:
            report.done = False
            return
        start = window.end
    report.done = True


def _read_window(
    report: PollReport,
    table: CalendlyTable,
    client: CalendlyClient,
    name: str,
    owner_filter: dict[str, str],
    window: Window,
    remaining_ms: Callable[[], int],
    steady: bool,
    *,
    since: datetime | None = None,
    last_chunk: bool = False,
    recheck: Callable[[VersionedItem], bool] = lambda _: False,
    started_at: datetime | None = None,
) -> bool:
    """Every page of one window; True when it was read to the end, False when time ran out."""
    saved = table.checkpoint(name) or {}
    seq = saved.get("seq")
    page_token: str | None = None
    if not saved.get("completed_at") and saved.get("page_token"):
        if name == "sync":
            # A sync cut off mid-window resumes that very window, so no page is skipped or read twice.
            window = Window(
                _parse_time(saved["window_start"]) or window.start,
                _parse_time(saved["window_end"]) or window.end,
            )
        if saved.get("window_start") == records.format_utc(window.start):
            page_token = saved["page_token"]
            report.resumed = True
    report.window_start = report.window_start or records.format_utc(window.start)
    report.window_end = records.format_utc(window.end)

    params = {**owner_filter, **window.params(), "sort": "start_time:asc", "count": "100"}
    unsaved_pages = 0

    def save(*, finished: bool) -> None:
        nonlocal seq, unsaved_pages
        now_text = records.format_utc(datetime.now(UTC))
        checkpoint: dict[str, Any] = {
            "mode": name,
            "window_start": records.format_utc(window.start),
            "window_end": records.format_utc(window.end),
            "page_token": None if finished else page_token,
            "pages_done": report.pages,
            "updated_at": now_text,
        }
        if since is not None:
            checkpoint["since"] = records.format_utc(since)
            checkpoint["chunk_start"] = records.format_utc(window.end if finished else window.start)
        if finished and (since is None or last_chunk):
            checkpoint["completed_at"] = now_text
        if started_at is not None:
            # The next sync re-checks invitees of events that ended since this one started; a
            # run cut off keeps the older mark, so no stretch of time is skipped.
            checkpoint["last_started_at"] = (
                records.format_utc(started_at) if finished else saved.get("last_started_at")
            )
        # Once one sync has completed, what later runs write is what webhooks missed.
        checkpoint["ever_completed"] = steady or "completed_at" in checkpoint
        seq = table.save_checkpoint(name, checkpoint, expected_seq=seq)
        unsaved_pages = 0

    try:
        while True:
            if remaining_ms() < SAFETY_MARGIN_MS:
                save(finished=False)
                report.message = "stopped before the deadline; the next run resumes from the checkpoint"
                return False
            page = client.get(
                "/scheduled_events", {**params, **({"page_token": page_token} if page_token else {})}
            )
            report.pages += 1
            _apply_page(report, table, client, page.get("collection", []), steady, recheck)
            page_token = (page.get("pagination") or {}).get("next_page_token")
            unsaved_pages += 1
            if not page_token:
                save(finished=True)
                return True
            # Checkpoints cost writes; between them a crash only means re-reading a few pages.
            if unsaved_pages >= CHECKPOINT_EVERY_PAGES:
                save(finished=False)
    except CalendlySyncError:
        if unsaved_pages:
            save(finished=False)  # the next run resumes here rather than from the window's start
        raise


def _apply_page(
    report: PollReport,
    table: CalendlyTable,
    client: CalendlyClient,
    events: list[dict[str, Any]],
    steady: bool,
    recheck: Callable[[VersionedItem], bool],
) -> None:
    """Write what changed on one page: one version lookup for the events, one for their invitees.

    Invitees are listed for new or changed events, and for events ``recheck`` picks (recently
    ended: a no-show changes the invitee but not the event).
    """
    items = [item for item in map(records.scheduled_event_item, events) if item is not None]
    report.events_seen += len(events)
    changed = _newer_than_stored(table, items)
    report.events_changed += len(changed)
    to_list = changed + [item for item in items if item not in changed and recheck(item)]
    per_invitee: list[list[Change]] = []
    for item in to_list:
        report.invitee_lists += 1
        fallback = str(item.attributes["updated_at"])
        for invitee in client.invitees(str(item.attributes["uri"])):
            found = records.invitee_changes(invitee, fallback_updated_at=fallback)
            if found:
                per_invitee.append(found)
    known = table.stored_versions([changes[0].key for changes in per_invitee])
    fresh: list[Change] = list(changed)
    for invitee_changes in per_invitee:
        own = invitee_changes[0]
        if isinstance(own, VersionedItem) and known.get(own.key, "") < own.version:
            fresh.extend(invitee_changes)  # the invitee and the links it carries
    outcome = table.apply_changes(fresh)
    written = sum(1 for c in outcome.applied if isinstance(c, VersionedItem))
    report.items_written += written
    if steady:
        report.missed_deliveries_recovered += written


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
    report.items_written += len(table.apply_changes(changed).applied)
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
    text = records.normalize_timestamp(value)
    return datetime.fromisoformat(text) if text else None


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
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="PollDuration", unit=MetricUnit.Milliseconds, value=report.duration_ms)
    metrics.add_metric(name="PollRunsFailed", unit=MetricUnit.Count, value=0 if report.ok else 1)
    fields = {k: v for k, v in report.as_response().items() if k not in ("notes", "message")}
    logger.info("poll run finished", outcome=report.message, **fields)

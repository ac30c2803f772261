"""A poll run's report: the function's answer, its metrics and its closing log line."""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.errors import CalendlySyncError
from calendly_sync.observability import logger, metrics

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

    def fail(self, error: Exception) -> None:
        """Any exception makes the run a failed one: reported, logged with its reason, alarmed."""
        self.ok = False
        if isinstance(error, CalendlySyncError):
            self.message = str(error)
            logger.error("poll run failed", reason=error.reason, detail=str(error))
            return
        self.message = f"poll run failed on an unexpected {type(error).__name__}; the next run resumes"
        # The type and the line, not the message: it might quote data Calendly sent.
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else None
        logger.error("poll run failed", reason="unexpected", error_type=type(error).__name__, where=where)

    def absorb(self, client: CalendlyClient) -> None:
        """Add what ``client`` did since it was last absorbed."""
        self.calendly_requests += client.stats.requests
        self.throttled += client.stats.throttled
        self.retries += client.stats.retries
        client.stats.requests = client.stats.throttled = client.stats.retries = 0


def observe(report: PollReport) -> None:
    """The run's metrics (``PollRunsFailed`` is alarmed) and its closing log line."""
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

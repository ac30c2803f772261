"""The webhook subscription check each sync makes, which never stops the sync.

Polling is the safety net for a broken webhook, so it must never depend on the webhook's
subscription: a failing check (e.g. a token without the webhook scope) is logged, counted in
``SubscriptionCheckFailures`` (alarmed) and noted, and the window is read all the same. When
the subscription had to be recreated, the sync re-reads from when deliveries started failing.
"""

from __future__ import annotations

from datetime import datetime

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync.connect_and_subscribe import observe_subscription
from calendly_sync.errors import CalendlySyncError, TimeBudgetExhausted
from calendly_sync.observability import logger, metrics
from calendly_sync.poll_dependencies import PollRun, SubscriptionCheck
from calendly_sync.poll_plan import parse_time


def check_subscription(run: PollRun, check: SubscriptionCheck) -> datetime | None:
    """Run ``check`` (the subscription's ``ensure``, wired by the handler) with the run's client.

    Returns the moment to re-read from when the subscription had to be recreated.
    """
    report = run.report
    try:
        outcome = check(run.client)
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
    gap_since = parse_time(outcome.gap_since) or parse_time(
        (run.table.sync_state("SUBSCRIPTION") or {}).get("checked_at")
    )
    report.notes.append(f"webhook subscription was {outcome.action}; re-reading since {gap_since}")
    return gap_since

"""PollCalendlyFunction: keeps the table complete when webhooks miss something.

Any schedule event runs a sync; ``{"mode": "backfill", "since": "2025-01-01"}`` reads history.
Reserved concurrency 1 and a lease in the table make overlapping runs impossible. This builds
what a run works with, once per container; ``calendly_sync.poller`` does the work.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.secrets import SigningKeySecret, TokenSecret
from calendly_sync.connect_and_subscribe import SubscriptionDependencies, run_subscription_action
from calendly_sync.observability import logger, metrics
from calendly_sync.poll_dependencies import (
    CalendlyClients,
    PollDependencies,
    SubscriptionCheck,
    SystemClock,
)
from calendly_sync.poller import poll, unstarted
from calendly_sync.settings import Settings, built_per_settings
from calendly_sync.tracing import tracer


def _wire(settings: Settings) -> PollDependencies:
    clock = SystemClock()
    table = CalendlyTable(settings.table_name)
    return PollDependencies(
        settings=settings,
        table=table,
        calendly=CalendlyClients(settings.calendly_api_base_url, clock=clock.monotonic),
        stored_token=TokenSecret(settings.token_secret_id, settings.secret_max_age_seconds).stored_token,
        check_subscription=_subscription_check(settings, table),
        clock=clock,
    )


def _subscription_check(settings: Settings, table: CalendlyTable) -> SubscriptionCheck | None:
    """WebhookSubscriptionFunction's ``ensure``, run with the poll's client; None without a webhook URL."""
    if not settings.webhook_url:
        return None
    subscription = SubscriptionDependencies(
        table=table,
        webhook_url=settings.webhook_url,
        signing_keys=SigningKeySecret(settings.signing_key_secret_id, settings.secret_max_age_seconds),
    )
    return partial(run_subscription_action, "ensure", deps=subscription)


#: What a run works with, built on the first invocation and kept for the container's life.
dependencies = built_per_settings(_wire)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        wired = dependencies()
    except Exception as error:  # a misconfigured stack is a failed run, alarmed like any other
        return unstarted(event, error)
    return poll(event, context.get_remaining_time_in_millis, wired)

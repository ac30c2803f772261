"""PollCalendlyFunction: keeps the table complete when webhooks miss something.

Any schedule event runs a sync; ``{"mode": "backfill", "since": "2025-01-01"}`` reads history.
Reserved concurrency 1 and a lease in the table make overlapping runs impossible.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.observability import logger, metrics
from calendly_sync.poller import poll
from calendly_sync.tracing import tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return poll(event, context.get_remaining_time_in_millis)

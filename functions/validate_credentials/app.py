"""ValidateCredentialsFunction: ``{"token": "<PAT>"}`` checks and saves it; ``{}`` re-checks.

    sam remote invoke ValidateCredentialsFunction --stack-name calendly-sync-dev --event '{}'

Connecting with a token is best done with ``python -m ops connect``, which reads it from
standard input rather than the command line.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.connect_and_subscribe import validate_credentials
from calendly_sync.observability import logger, metrics
from calendly_sync.settings import built_per_settings
from calendly_sync.tracing import tracer
from calendly_sync.wiring import operations_dependencies

#: The collaborators ``connect_and_subscribe`` works with, built on the first invocation.
dependencies = built_per_settings(operations_dependencies)


# log_event stays off: the event carries the token.
@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return validate_credentials(event, dependencies())

"""ValidateCredentialsFunction: ``{"token": "<PAT>"}`` checks and saves it; ``{}`` re-checks.

    sam remote invoke ValidateCredentialsFunction --stack-name calendly-sync-dev --event '{}'

Connecting with a token is best done with ``python -m ops connect``, which reads it from
standard input rather than the command line.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.secrets import SigningKeySecret, TokenSecret
from calendly_sync.observability import logger, metrics
from calendly_sync.operations import OperationsDependencies, validate_credentials
from calendly_sync.settings import get_settings
from calendly_sync.tracing import tracer

_wired: OperationsDependencies | None = None


def dependencies() -> OperationsDependencies:
    """Built on the first invocation and kept for the container's life (again if the settings change)."""
    global _wired
    settings = get_settings()
    if _wired is None or _wired.settings is not settings:
        age = settings.secret_max_age_seconds
        _wired = OperationsDependencies(
            settings=settings,
            table=CalendlyTable(settings.table_name),
            token=TokenSecret(settings.token_secret_id, age),
            signing_keys=SigningKeySecret(settings.signing_key_secret_id, age),
            calendly=partial(CalendlyClient, settings.calendly_api_base_url),
        )
    return _wired


# log_event stays off: the event carries the token.
@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return validate_credentials(event, dependencies())

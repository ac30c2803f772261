"""ReceiveWebhookFunction: Calendly's signed deliveries on ``POST /webhooks/calendly``.

Thin on purpose: the checks and the write live in ``calendly_sync.receiver``; this builds
what they work with, once per container.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    Response,
    content_types,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.secrets import SigningKeySecret
from calendly_sync.apigw import raw_request_body
from calendly_sync.errors import CalendlySyncError, SignatureRejected, http_status_for
from calendly_sync.observability import logger, metrics
from calendly_sync.receiver import ReceiverDependencies, accept_delivery
from calendly_sync.settings import Settings, built_per_settings
from calendly_sync.signature import SIGNATURE_HEADER

WEBHOOK_PATH = "/webhooks/calendly"


def _wire(settings: Settings) -> ReceiverDependencies:
    return ReceiverDependencies(
        settings=settings,
        table=CalendlyTable(settings.table_name),
        keys=SigningKeySecret(settings.signing_key_secret_id, settings.secret_max_age_seconds),
    )


#: What ``accept_delivery`` works with, built on the first delivery.
dependencies = built_per_settings(_wire)


def _route(resolver: APIGatewayHttpResolver | APIGatewayRestResolver) -> None:
    @resolver.post(WEBHOOK_PATH)
    def receive_calendly_delivery() -> Response[str]:
        request = resolver.current_event
        wired = dependencies()
        raw_body = raw_request_body(request.raw_event, wired.settings.max_webhook_body_bytes)
        receipt = accept_delivery(raw_body, request.headers.get(SIGNATURE_HEADER), wired)
        return _json(200, receipt.as_response())

    resolver.exception_handler(CalendlySyncError)(refuse)


def refuse(error: CalendlySyncError) -> Response[str]:
    status = http_status_for(error)
    metrics.add_dimension(name="Reason", value=error.reason)
    if status < 500:
        metrics.add_metric(name="RejectedDeliveries", unit=MetricUnit.Count, value=1)
        logger.warning("delivery refused", reason=error.reason, status=status, detail=str(error))
    else:
        metrics.add_metric(name="FailedDeliveries", unit=MetricUnit.Count, value=1)
        logger.error(
            "delivery not stored; Calendly will retry", reason=error.reason, status=status, detail=str(error)
        )
    # 4xx bodies say what was wrong; 5xx bodies say nothing about our insides.
    if isinstance(error, SignatureRejected):
        metrics.add_metric(name="SignatureFailures", unit=MetricUnit.Count, value=1)
        # Which check failed is logged, not told to whoever sent the forgery.
        return _json(status, {"message": "signature verification failed", "reason": "signature"})
    message = str(error) if status < 500 else "temporarily unable to store the delivery"
    return _json(status, {"message": message, "reason": error.reason})


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


# The stack's HTTP API sends payload format 2.0; format 1.0 (a REST API in front, or an HTTP
# API set to 1.0) is served the same way.
http_api = APIGatewayHttpResolver()
rest_api = APIGatewayRestResolver()
_route(http_api)
_route(rest_api)


# No Powertools Tracer here: the X-Ray SDK would add about 85 ms to every cold start of the
# hot path; Lambda's active tracing still records each invocation (README, "Figures").
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    resolver = http_api if event.get("version") == "2.0" else rest_api
    return resolver.resolve(event, context)

"""WebhookSubscriptionFunction: ``{"action": "ensure" | "status" | "delete" | "rotate-key"}``.

Also the handler of the opt-in ``Custom::CalendlyWebhookSubscription`` resource, so that
``sam deploy`` ensures the subscription and ``sam delete`` removes it. A custom resource
always reports success: a Calendly outage must not fail or roll back the stack; the
outcome is in the resource's data, the logs and the SubscriptionFailures metric.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import requests
from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.secrets import SigningKeySecret, TokenSecret
from calendly_sync.observability import logger, metrics
from calendly_sync.operations import OperationsDependencies, manage_subscription
from calendly_sync.settings import get_settings
from calendly_sync.tracing import tracer

CUSTOM_RESOURCE_ID = "calendly-webhook-subscription"

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


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "RequestType" in event and "ResponseURL" in event:
        return answer_cloudformation(event)
    return manage_subscription(str(event.get("action", "ensure")), dependencies())


def answer_cloudformation(event: dict[str, Any]) -> dict[str, Any]:
    action = "delete" if event["RequestType"] == "Delete" else "ensure"
    try:
        outcome = manage_subscription(action, dependencies())
    except Exception as error:  # the stack must hear back whatever happened
        logger.exception("custom resource could not manage the subscription")
        outcome = {
            "ok": False,
            "action": action,
            "message": f"{type(error).__name__}: see the function's logs",
        }
    reason = outcome.get("message", "")
    body = {
        "Status": "SUCCESS",
        "Reason": str(reason)[:512],
        "PhysicalResourceId": CUSTOM_RESOURCE_ID,
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Ok": str(outcome.get("ok")), "Action": str(outcome.get("action"))},
    }
    try:
        requests.put(event["ResponseURL"], data=json.dumps(body), headers={"Content-Type": ""}, timeout=10)
    except requests.RequestException as error:
        logger.error("could not answer CloudFormation", error=type(error).__name__)
    return outcome

"""WebhookSubscriptionFunction: ``{"action": "ensure" | "status" | "delete" | "rotate-key"}``.

Also the handler of the opt-in ``Custom::CalendlyWebhookSubscription`` resource, so that
``sam deploy`` ensures the subscription and ``sam delete`` removes it. A custom resource
always reports success: a Calendly outage must not fail or roll back the stack; the
outcome is in the resource's data, the logs and the SubscriptionFailures metric.
"""

from __future__ import annotations

import json
from typing import Any

import requests
from aws_lambda_powertools.utilities.typing import LambdaContext

from calendly_sync.connect_and_subscribe import manage_subscription
from calendly_sync.observability import logger, metrics
from calendly_sync.settings import built_per_settings
from calendly_sync.tracing import tracer
from calendly_sync.wiring import operations_dependencies

CUSTOM_RESOURCE_ID = "calendly-webhook-subscription"

#: The collaborators ``connect_and_subscribe`` works with, built on the first invocation.
dependencies = built_per_settings(operations_dependencies)


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

"""A delivery is one DynamoDB item: the body limit stays under what an item holds.

DynamoDB refuses an item over 400 KB with a ValidationException; before this limit a body
between that and the old 5 MiB ceiling was answered 503 for ever, so Calendly retried it for a
day and then disabled the subscription. moto enforces the item size, so these tests would fail
if the ceiling were set above it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from calendly_sync.adapters.aws_clients import dynamodb_client
from calendly_sync.errors import ConfigurationError, StorageRefusedItem, StorageUnavailable, http_status_for
from calendly_sync.settings import MAX_STORABLE_WEBHOOK_BODY_BYTES, Settings, get_settings
from local.lambda_runtime import signed_delivery_event
from local.stack import load_template
from tests.conftest import SIGNING_KEY, LocalAws, sample_event

# The longest event name an envelope may carry (models: 128 characters), stored beside the body.
LONGEST_EVENT = "routing_form_submission." + "x" * (128 - len("routing_form_submission."))


def invoke(handler: Any, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def body_of_exactly(size: int, event: str = LONGEST_EVENT) -> bytes:
    """A genuine-looking envelope of ``size`` bytes, padded with two-byte characters where it can."""
    envelope = json.loads(sample_event("invitee_created")["body"])
    envelope["event"] = event
    envelope["payload"]["padding"] = ""
    room = size - len(json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    envelope["payload"]["padding"] = "é" * (room // 2) + "x" * (room % 2)
    raw = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert len(raw) == size
    return raw


@pytest.fixture
def at_the_ceiling(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> int:
    """Given the receiver configured with the largest limit the template allows."""
    monkeypatch.setenv("MAX_WEBHOOK_BODY_BYTES", str(MAX_STORABLE_WEBHOOK_BODY_BYTES))
    get_settings.cache_clear()
    return MAX_STORABLE_WEBHOOK_BODY_BYTES


def test_the_template_allows_no_more_than_the_settings_accept() -> None:
    parameter = load_template()["Parameters"]["WebhookMaxBodyBytes"]
    assert parameter["MaxValue"] == MAX_STORABLE_WEBHOOK_BODY_BYTES
    assert parameter["MinValue"] <= parameter["Default"] <= parameter["MaxValue"]


def test_settings_refuse_a_limit_one_item_cannot_hold() -> None:
    environment = {"TABLE_NAME": "t", "MAX_WEBHOOK_BODY_BYTES": str(MAX_STORABLE_WEBHOOK_BODY_BYTES + 1)}
    with pytest.raises(ConfigurationError, match="MAX_WEBHOOK_BODY_BYTES must be at most"):
        Settings.from_environment(environment)
    environment["MAX_WEBHOOK_BODY_BYTES"] = str(MAX_STORABLE_WEBHOOK_BODY_BYTES)
    assert Settings.from_environment(environment).max_webhook_body_bytes == MAX_STORABLE_WEBHOOK_BODY_BYTES


def test_a_body_at_the_ceiling_is_stored_whole(
    aws: LocalAws, at_the_ceiling: int, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given a signed body of exactly the largest size allowed, with the longest event name
    raw = body_of_exactly(at_the_ceiling)

    # When it arrives, then it is stored (moto refuses items DynamoDB would), body intact
    status, reply = invoke(receive_webhook, signed_delivery_event(raw, SIGNING_KEY), lambda_context)
    assert status == 200 and reply["status"] == "stored"
    (stored,) = [i for i in aws.all_items() if i["entity"]["S"] == "delivery"]
    assert stored["body"]["S"].encode("utf-8") == raw and stored["event"]["S"] == LONGEST_EVENT


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_a_body_over_the_ceiling_gets_413_and_the_log_says_why(
    aws: LocalAws,
    at_the_ceiling: int,
    receive_webhook: Any,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
    base64_encoded: bool,
) -> None:
    # Given a correctly signed body one byte over the ceiling
    raw = body_of_exactly(at_the_ceiling + 1)

    # When it arrives
    event = signed_delivery_event(raw, SIGNING_KEY, base64_encoded=base64_encoded)
    status, reply = invoke(receive_webhook, event, lambda_context)

    # Then it is refused for good (4xx: Calendly stops retrying), nothing is stored, and the
    # log says what happened and what the limit is
    assert status == 413 and reply["reason"] == "too_large"
    assert aws.all_items() == []
    (refused,) = [r for r in caplog.records if r.getMessage() == "delivery refused"]
    logged = json.dumps(refused.__dict__, default=str)
    assert "too_large" in logged and str(at_the_ceiling) in logged and "413" in logged


def test_dynamodb_refusing_the_item_is_answered_4xx_not_503(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given DynamoDB refuses the item itself (what it answers for one over 400 KB)
    def refused(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Code": "ValidationException", "Message": "Item size has exceeded the maximum allowed size"}
        return AWSResponse("https://dynamodb", 400, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    dynamodb_client().meta.events.register("before-call.dynamodb.PutItem", refused)
    try:
        # When a genuine delivery arrives
        event = signed_delivery_event(sample_event("invitee_created")["body"], SIGNING_KEY)
        status, reply = invoke(receive_webhook, event, lambda_context)
    finally:
        dynamodb_client().meta.events.unregister("before-call.dynamodb.PutItem", refused)

    # Then the answer is a 4xx (a retry of the same bytes cannot succeed), saying why; before,
    # this was a 503 that Calendly retried for a day
    assert status == 422 and reply["reason"] == "item_refused"
    assert "maximum allowed size" in reply["message"]
    assert aws.all_items() == []
    assert any("maximum allowed size" in json.dumps(r.__dict__, default=str) for r in caplog.records)


def test_an_item_refusal_still_stops_the_projector_and_poller_like_an_outage() -> None:
    # Their retry and dead-letter paths catch StorageUnavailable; an item refusal is one kind of it
    refusal = StorageRefusedItem("DynamoDB refused the item: Item size has exceeded the maximum allowed size")
    assert isinstance(refusal, StorageUnavailable)
    assert http_status_for(refusal) == 422 and http_status_for(StorageUnavailable("down")) == 503

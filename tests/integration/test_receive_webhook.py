"""ReceiveWebhookFunction through its real entry point: every documented status code.

Contract (architecture.md): 2xx once stored or already stored; 401 for any signature
problem; 400 for a body that is not a Calendly envelope; 413 when too large; 5xx only when
storage or the signing keys could not be reached (Calendly then retries).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from calendly_sync.adapters.aws_clients import dynamodb_client
from calendly_sync.table_items import DeliveryItem, delivery_key, invitee_key, scheduled_event_key
from local.lambda_runtime import http_api_event, resign_event, signed_delivery_event
from tests.conftest import PREVIOUS_SIGNING_KEY, SIGNING_KEY, LocalAws, sample_event

EVENT_UUID = "5b0e7f44-6bd8-4f3a-9a55-2c2d6a6f0d11"
INVITEE_UUID = "9d1c3c8e-1f7e-4a34-8e2a-6b1b9a5e2c77"


def invoke(handler: Any, event: dict[str, Any], context: Any) -> tuple[int, dict[str, Any]]:
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def fresh(name: str, key: str = SIGNING_KEY) -> dict[str, Any]:
    return resign_event(sample_event(name), key)


# --- 200: stored, or stored already ---------------------------------------------------


def test_signed_invitee_created_is_stored_with_its_event(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given a correctly signed invitee.created delivery
    event = fresh("invitee_created")

    # When Calendly posts it
    status, body = invoke(receive_webhook, event, lambda_context)

    # Then it is acknowledged, and once the stream applies it the invitee and its event are stored
    assert status == 200
    assert body["status"] == "stored" and body["event"] == "invitee.created"
    assert aws.project() == 1
    invitee = aws.table.get(invitee_key(EVENT_UUID, INVITEE_UUID))
    scheduled = aws.table.get(scheduled_event_key(EVENT_UUID))
    assert invitee is not None and scheduled is not None
    assert invitee["status"] == "active" and invitee["email"] == "ada@example.com"
    assert scheduled["start_time"] == "2026-11-20T15:00:00.000000Z"
    # the raw payload is kept beside the normalized fields, minus the embedded event
    raw = json.loads(invitee["raw"])
    assert raw["questions_and_answers"][0]["answer"] == "No" and "scheduled_event" not in raw
    delivery = aws.table.deliveries_received(time.strftime("%Y-%m-%d", time.gmtime()))
    assert [d["pk"] for d in delivery] == [f"DELIVERY#{body['delivery']}"]
    assert json.loads(delivery[0]["body"])["event"] == "invitee.created"


def test_base64_encoded_body_is_verified_on_the_decoded_bytes(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given API Gateway handed over the body base64-encoded
    event = fresh("invitee_created_base64")
    assert event["isBase64Encoded"] is True

    # When it arrives, then the signature over the raw bytes checks out and it is stored
    status, body = invoke(receive_webhook, event, lambda_context)
    assert status == 200 and body["status"] == "stored"
    aws.project()
    assert aws.table.get(invitee_key(EVENT_UUID, INVITEE_UUID)) is not None


def test_a_delivery_replayed_five_times_has_one_effect(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given one delivery, stored once
    event = fresh("invitee_created")
    first_status, first = invoke(receive_webhook, event, lambda_context)
    aws.project()
    items_after_first = sorted(map(json.dumps, aws.all_items()))

    # When Calendly sends it again four more times
    replies = [invoke(receive_webhook, fresh("invitee_created"), lambda_context) for _ in range(4)]

    # Then each is acknowledged as a duplicate, nothing more reaches the stream, nothing changed
    assert first_status == 200 and first["status"] == "stored"
    assert [(status, body["status"]) for status, body in replies] == [(200, "duplicate")] * 4
    assert aws.project() == 0
    assert sorted(map(json.dumps, aws.all_items())) == items_after_first


@pytest.mark.parametrize(
    ("sample", "pk_prefix"),
    [
        ("event_type_updated", "EVENT_TYPE#"),
        ("routing_form_submission_created", "ROUTING_FORM_SUBMISSION#"),
        ("invitee_no_show_created", "EVENT#"),
        ("invitee_canceled", "EVENT#"),
    ],
)
def test_every_handled_event_is_stored_as_its_resource(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, sample: str, pk_prefix: str
) -> None:
    # Given a signed delivery of each handled kind
    status, body = invoke(receive_webhook, fresh(sample), lambda_context)

    # Then it is stored and, once applied, its resource item exists beside the delivery record
    assert status == 200 and body["status"] == "stored"
    aws.project()
    entities = {
        item["pk"]["S"].split("#")[0] + "#" for item in aws.all_items() if item["entity"]["S"] != "delivery"
    }
    assert pk_prefix in entities


def test_an_unknown_event_is_stored_raw_and_acknowledged(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given a signed delivery of an event this version does not know
    status, body = invoke(receive_webhook, fresh("unknown_event"), lambda_context)

    # Then Calendly gets 200 (no retries, no disabled subscription) and the delivery is kept raw
    assert status == 200 and body["status"] == "stored" and body["event"] == "meeting_recap.created"
    assert aws.project() == 1
    (item,) = aws.all_items()
    assert item["entity"]["S"] == "delivery" and "meeting_recap.created" in item["body"]["S"]


# --- 401: signature problems of every kind ----------------------------------------------


def _signature_cases() -> dict[str, Any]:
    def with_header(value: str | None) -> Any:
        def build() -> dict[str, Any]:
            event = fresh("invitee_created")
            if value is None:
                del event["headers"]["calendly-webhook-signature"]
            else:
                event["headers"]["calendly-webhook-signature"] = value
            return event

        return build

    now = int(time.time())
    return {
        "missing header": with_header(None),
        "empty header": with_header(""),
        "no timestamp": with_header("v1=" + "a" * 64),
        "no v1": with_header(f"t={now}"),
        "garbage": with_header("t=yesterday,v1=zzz"),
        "truncated digest": with_header(f"t={now},v1=abc123"),
        "wrong key": lambda: fresh("invitee_created", key="someone-elses-key"),
        "stale (committed sample, signed long ago)": lambda: sample_event("invitee_created"),
        "from the future": lambda: resign_event(
            sample_event("invitee_created"), SIGNING_KEY, timestamp=now + 3600
        ),
        "body changed after signing": lambda: {
            **fresh("invitee_created"),
            "body": fresh("invitee_created")["body"].replace("Ada", "Eve"),
        },
    }


@pytest.mark.parametrize("case", list(_signature_cases()))
def test_signature_problems_are_refused_with_401_and_store_nothing(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, case: str
) -> None:
    # Given a delivery whose signature is wrong in one way
    event = _signature_cases()[case]()

    # When it arrives
    status, body = invoke(receive_webhook, event, lambda_context)

    # Then it is refused without saying which check failed, and nothing is written
    assert status == 401
    assert body == {"message": "signature verification failed", "reason": "signature"}
    assert aws.all_items() == []


def test_the_previous_key_is_accepted_during_a_rotation(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given a rotation under way: a new current key, the old one kept as previous
    aws.set_signing_keys("brand-new-key", previous=PREVIOUS_SIGNING_KEY)

    # When a delivery signed with the previous key arrives (an old subscription)
    status, _ = invoke(receive_webhook, fresh("invitee_created", key=PREVIOUS_SIGNING_KEY), lambda_context)
    # and one signed with the new key (the new subscription)
    status_new, _ = invoke(receive_webhook, fresh("invitee_canceled", key="brand-new-key"), lambda_context)

    # Then both are accepted
    assert (status, status_new) == (200, 200)


def test_a_warm_receiver_sees_a_key_rotated_after_it_cached_the_old_one(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given a warm receiver that cached the current key
    assert invoke(receive_webhook, fresh("invitee_created"), lambda_context)[0] == 200
    # and then the key is rotated in Secrets Manager without a previous key
    aws.set_signing_keys("rotated-key")

    # When a delivery signed with the new key arrives within the cache's max age
    status, _ = invoke(receive_webhook, fresh("invitee_canceled", key="rotated-key"), lambda_context)

    # Then the receiver re-reads the secret once and accepts it
    assert status == 200


# --- 400: not a Calendly envelope ------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"hello": "not a calendly envelope"}',
        b"not json at all",
        b"[1, 2, 3]",
        b'{"event": "invitee.created", "created_at": "2026-11-02T09:00:00Z"}',
        b'{"event": "invitee.created", "created_at": "yesterday", "payload": {}}',
        b'{"event": "", "created_at": "2026-11-02T09:00:00Z", "payload": {}}',
        b'{"event": "invitee.created", "created_at": "2026-11-02T09:00:00Z", "payload": []}',
        b"\xff\xfe not utf-8",
        b"",
    ],
)
def test_a_signed_body_that_is_not_an_envelope_gets_400(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, body: bytes
) -> None:
    # Given a correctly signed body that is not a Calendly envelope
    event = signed_delivery_event(body, SIGNING_KEY, base64_encoded=True)

    # When it arrives, then it is refused as a bad request and nothing is stored
    status, reply = invoke(receive_webhook, event, lambda_context)
    assert status == 400 and reply["reason"] == "not_an_envelope"
    assert aws.all_items() == []


def test_invalid_base64_gets_400(aws: LocalAws, receive_webhook: Any, lambda_context: Any) -> None:
    event = fresh("invitee_created_base64")
    event["body"] = "%%% not base64 %%%"
    assert invoke(receive_webhook, event, lambda_context)[0] == 400


# --- times at the edge of the calendar: 400 for the envelope, read as absent in a payload ---

#: Valid ISO-8601 that Python cannot hold in UTC (the first two) or at all (the third).
EDGE_TIMES = ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "10000-01-01T00:00:00Z"]


@pytest.mark.parametrize("created_at", EDGE_TIMES)
def test_an_envelope_created_at_out_of_range_gets_400_not_500(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, created_at: str
) -> None:
    # Given a correctly signed delivery whose envelope time has no UTC reading
    envelope = json.loads(sample_event("invitee_no_show_deleted")["body"])
    envelope["created_at"] = created_at

    # When it arrives
    status, reply = invoke(receive_webhook, signed_delivery_event(envelope, SIGNING_KEY), lambda_context)

    # Then it is refused as not an envelope, and nothing is stored
    assert status == 400 and reply["reason"] == "not_an_envelope"
    assert aws.all_items() == []


@pytest.mark.parametrize("edge", EDGE_TIMES)
def test_payload_times_out_of_range_are_stored_and_applied_as_unreadable(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, edge: str
) -> None:
    # Given a signed no-show delivery whose payload times are all out of range
    envelope = json.loads(sample_event("invitee_no_show_created")["body"])
    payload = envelope["payload"]
    payload["updated_at"] = payload["no_show"]["created_at"] = edge
    payload["scheduled_event"]["start_time"] = edge

    # When it arrives and the stream applies it
    status, reply = invoke(receive_webhook, signed_delivery_event(envelope, SIGNING_KEY), lambda_context)
    assert aws.project() == 1

    # Then it is stored and applied: an unreadable time is left out, the rest is kept
    assert status == 200 and reply["status"] == "stored"
    invitee = aws.table.get(invitee_key(EVENT_UUID, INVITEE_UUID))
    assert invitee is not None and invitee["no_show"] == payload["no_show"]["uri"]
    assert invitee["updated_at"] == invitee["created_at"]
    scheduled = aws.table.get(scheduled_event_key(EVENT_UUID))
    assert scheduled is not None and "start_time" not in scheduled


def test_a_stored_delivery_that_cannot_be_projected_is_skipped_and_counted(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a delivery an earlier release stored with an envelope time out of range,
    # and a good delivery after it in the same stream batch
    envelope = json.loads(sample_event("invitee_created")["body"])
    envelope["created_at"] = EDGE_TIMES[0]
    aws.table.record_delivery(
        DeliveryItem(
            delivery_key("stored-by-an-earlier-release"),
            {"entity": "delivery", "event": "invitee.created", "body": json.dumps(envelope)},
        )
    )
    assert invoke(receive_webhook, fresh("event_type_updated"), lambda_context)[0] == 200
    capsys.readouterr()

    # When the stream hands both to ProjectDeliveriesFunction
    handed = aws.project()  # fails if the function reported a record as failed

    # Then the bad one is skipped and counted, the good one applied, the stored record kept
    assert handed == 2
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(m.get("UnprojectableDeliveries", [0])[0] for m in metrics) == 1
    entities = sorted(item["entity"]["S"] for item in aws.all_items())
    assert entities == ["delivery", "delivery", "event_type"]


# --- 413: too large --------------------------------------------------------------------


@pytest.mark.parametrize("base64_encoded", [False, True])
def test_an_oversized_body_gets_413_before_any_work(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, base64_encoded: bool
) -> None:
    # Given a body one byte over the limit, even correctly signed
    envelope = json.loads(sample_event("invitee_created")["body"])
    envelope["payload"]["padding"] = ""
    size = len(json.dumps(envelope, separators=(",", ":")))
    envelope["payload"]["padding"] = "x" * (256 * 1024 - size + 1)
    event = signed_delivery_event(envelope, SIGNING_KEY, base64_encoded=base64_encoded)

    # When it arrives, then it is refused as too large and nothing is stored
    status, reply = invoke(receive_webhook, event, lambda_context)
    assert status == 413 and reply["reason"] == "too_large"
    assert aws.all_items() == []


# --- 5xx: only when storage or the keys cannot be reached --------------------------------


def test_storage_failure_answers_503_so_calendly_retries(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given DynamoDB throttles every write
    def throttled(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return AWSResponse("https://dynamodb", 400, {}, None), {
            **error,
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }

    dynamodb_client().meta.events.register("before-call.dynamodb.PutItem", throttled)

    # When a genuine delivery arrives
    status, reply = invoke(receive_webhook, fresh("invitee_created"), lambda_context)

    # Then the answer is 5xx without internals, and nothing was half-written
    assert status == 503 and reply == {
        "message": "temporarily unable to store the delivery",
        "reason": "storage_unavailable",
    }
    assert aws.all_items() == []

    # And when DynamoDB recovers, Calendly's retry is stored
    dynamodb_client().meta.events.unregister("before-call.dynamodb.PutItem", throttled)
    assert invoke(receive_webhook, fresh("invitee_created"), lambda_context)[0] == 200


def test_a_cold_receiver_without_its_keys_fails_closed_with_503(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the signing key secret cannot be read
    aws.secretsmanager.delete_secret(SecretId=aws.signing_key_secret_arn, ForceDeleteWithoutRecovery=True)

    # When a delivery arrives, then it is neither accepted nor refused for good: 503
    status, reply = invoke(receive_webhook, fresh("invitee_created"), lambda_context)
    assert status == 503 and reply["reason"] == "secret_unavailable"
    assert aws.all_items() == []


def test_other_routes_are_not_found(aws: LocalAws, receive_webhook: Any, lambda_context: Any) -> None:
    event = http_api_event("GET", "/webhooks/calendly", None)
    assert receive_webhook(event, lambda_context)["statusCode"] == 404


def test_logs_carry_no_email_name_or_key(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a stored delivery and a forged one
    invoke(receive_webhook, fresh("invitee_created"), lambda_context)
    invoke(receive_webhook, fresh("invitee_created", key="forged-key"), lambda_context)

    aws.project()

    # Then the logs name ids and outcomes (every field of every record), never personal data or keys
    output = "\n".join(json.dumps(record.__dict__, default=str) for record in caplog.records)
    assert "delivery stored" in output and "delivery refused" in output and EVENT_UUID in output
    for secret_or_personal in ("ada@example.com", "Ada Lovelace", SIGNING_KEY, "forged-key"):
        assert secret_or_personal not in output


def test_a_body_of_raw_bytes_round_trips_base64(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    # Given a genuine envelope with non-ASCII text, sent base64-encoded
    envelope = json.loads(sample_event("invitee_created")["body"])
    envelope["payload"]["name"] = "Zoë Ünal 中村"
    raw = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
    event = signed_delivery_event(raw, SIGNING_KEY, base64_encoded=True)
    assert base64.b64decode(event["body"]) == raw

    # Then it is stored and the name survives unchanged
    assert invoke(receive_webhook, event, lambda_context)[0] == 200
    aws.project()
    assert aws.table.get(invitee_key(EVENT_UUID, INVITEE_UUID))["name"] == "Zoë Ünal 中村"  # type: ignore[index]


def test_a_warm_receiver_keeps_verifying_from_its_cache_while_secrets_manager_is_down(
    aws: LocalAws, receive_webhook: Any, lambda_context: Any
) -> None:
    from calendly_sync.adapters import secrets

    # Given a warm receiver (the keys are cached)
    assert invoke(receive_webhook, fresh("invitee_created"), lambda_context)[0] == 200

    # When Secrets Manager becomes unreachable
    def outage(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": "ServiceUnavailable", "Message": "down"}}
        return AWSResponse("https://secretsmanager", 503, {}, None), {
            **error,
            "ResponseMetadata": {"HTTPStatusCode": 503},
        }

    client = secrets._provider().client
    client.meta.events.register("before-call.secrets-manager.GetSecretValue", outage)

    # Then genuine deliveries are still verified and stored, and forged ones still refused
    assert invoke(receive_webhook, fresh("invitee_canceled"), lambda_context)[0] == 200
    assert invoke(receive_webhook, fresh("invitee_canceled", key="forged"), lambda_context)[0] == 401

    # And once it is back, a cold start reads the keys again
    client.meta.events.unregister("before-call.secrets-manager.GetSecretValue", outage)
    secrets.clear_secret_caches()
    assert invoke(receive_webhook, fresh("invitee_no_show_created"), lambda_context)[0] == 200

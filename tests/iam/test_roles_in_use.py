"""Every function does its whole normal work with nothing but its own role's permissions.

Connect, subscribe, status, deliveries (new and repeated), projection from the stream, two
polls in a row, a backfill, a key rotation and its end, and delete: each function runs as
its role from the translated template with moto's IAM enforcement on, so a permission the
code needs and the role lacks is an AccessDenied here, as it would be in AWS.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.events.models import EventsBackend
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from calendly_sync.table_items import sync_state_key
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, http_api_event, load_handler, signed_delivery_event
from local.stream_pump import StreamPump
from tests.conftest import SIGNING_KEY, LocalAws, calendly_invitee_statuses, sample_event
from tests.iam.conftest import FunctionRoles

NOW = datetime.now(UTC).replace(microsecond=0)
TIMEOUTS = {"PollCalendlyFunction": 300, "ReceiveWebhookFunction": 8}


def invoke(roles: FunctionRoles, function_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The function's handler, as Lambda runs it: under its role, with IAM enforced."""
    context = FakeLambdaContext(function_name=function_id, timeout_seconds=TIMEOUTS.get(function_id, 60))
    answer: dict[str, Any] = roles.run_as(function_id, lambda: load_handler(function_id)(payload, context))
    assert roles.denials == [], f"{function_id} was refused: {roles.denials}"
    return answer


class ReceiverFront:
    """API Gateway for the sandbox's deliveries: each POST becomes a ReceiveWebhookFunction event.

    The handler runs in the server's thread while the test waits in ``deliver()`` under the
    receiver's role, so every AWS call it makes is checked as the receiver's.
    """

    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/webhooks/calendly"

    def __enter__(self) -> ReceiverFront:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        event = http_api_event("POST", request.path, request.get_data(), dict(request.headers.items()))
        result = load_handler("ReceiveWebhookFunction")(
            event, FakeLambdaContext(function_name="ReceiveWebhookFunction", timeout_seconds=8)
        )
        body = result.get("body") or "{}"
        self.statuses[json.loads(body).get("status", str(result["statusCode"]))] += 1
        return Response(body, result["statusCode"], content_type="application/json")(environ, start_response)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[ReceiverFront]:
    """Given the stack's webhook URL served on loopback by the real receiver."""
    with ReceiverFront() as front:
        monkeypatch.setenv("WEBHOOK_URL", front.url)
        yield front


@pytest.mark.slow
def test_every_function_works_with_only_its_own_role(
    aws: LocalAws, calendly: CalendlySandbox, function_roles: FunctionRoles, receiver: ReceiverFront
) -> None:
    roles = function_roles
    calendly.seed(
        users=2, event_types_per_user=1, scheduled_events=30, start=NOW - timedelta(days=5), days=20
    )
    token = calendly.add_token(TokenSpec(role="owner"))

    # Connect: the token is checked and saved, then re-checked from the secret
    connected = invoke(roles, "ValidateCredentialsFunction", {"token": token})
    assert connected["valid"] is True and connected["saved"] is True
    assert invoke(roles, "ValidateCredentialsFunction", {})["valid"] is True

    # Subscribe, then status
    ensured = invoke(roles, "WebhookSubscriptionFunction", {"action": "ensure"})
    assert ensured["ok"] is True and ensured["action"] == "created"
    assert invoke(roles, "WebhookSubscriptionFunction", {"action": "status"})["ok"] is True

    # Deliveries: a booking and its cancellation, each sent twice (the second a duplicate)
    calendly.faults.duplicate_deliveries = 1.0
    invitee = calendly.book(start_time=NOW + timedelta(days=2))
    calendly.cancel(invitee)
    assert roles.run_as("ReceiveWebhookFunction", lambda: calendly.deliver_pending(timeout=20))
    assert roles.denials == [], f"ReceiveWebhookFunction was refused: {roles.denials}"
    # (a delivery the sandbox retried, on a slow machine, is one more duplicate)
    assert receiver.statuses["stored"] == 2 and receiver.statuses["duplicate"] >= 2
    assert set(receiver.statuses) == {"stored", "duplicate"}
    calendly.faults.duplicate_deliveries = 0.0

    # Projection: Lambda reads the table's stream with the projector's role and hands it the records
    pump = StreamPump(
        roles.client_as("ProjectDeliveriesFunction", "dynamodbstreams"),
        roles.stream_arn,
        "ProjectDeliveriesFunction",
    )
    assert roles.run_as("ProjectDeliveriesFunction", pump.drain) == 2
    assert roles.denials == [] and pump.failures == [], roles.denials
    assert aws.invitee_statuses()[invitee] == "canceled"
    # ...and parks a batch it gave up on in the failure queue, also with the function's role
    sqs = roles.client_as("ProjectDeliveriesFunction", "sqs")
    roles.run_as(
        "ProjectDeliveriesFunction",
        lambda: sqs.send_message(QueueUrl=roles.failure_queue_url, MessageBody='{"requestContext": {}}'),
    )
    assert roles.denials == [], roles.denials

    # Two polls in a row: the second is not refused by a lease the first could not release
    first = invoke(roles, "PollCalendlyFunction", {"mode": "sync"})
    assert first["ok"] is True and first["done"] is True and first["events_seen"] > 0
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)
    lease = aws.table.get(sync_state_key("LEASE#poll"))
    assert lease is not None and lease["until"] == 0
    second = invoke(roles, "PollCalendlyFunction", {"mode": "sync"})
    assert second["ok"] is True and second["done"] is True and second["events_seen"] == first["events_seen"]

    # A backfill
    backfill = invoke(
        roles, "PollCalendlyFunction", {"mode": "backfill", "since": (NOW - timedelta(days=10)).isoformat()}
    )
    assert backfill["ok"] is True and backfill["done"] is True
    assert aws.invitee_statuses() == calendly_invitee_statuses(calendly)

    # Key rotation; then a poll ends a rotation whose previous key no subscription uses any more
    assert invoke(roles, "WebhookSubscriptionFunction", {"action": "rotate-key"})["action"] == "rotated"
    keys = json.loads(
        aws.secretsmanager.get_secret_value(SecretId=aws.signing_key_secret_arn)["SecretString"]
    )
    aws.set_signing_keys(keys["current"], "a-key-no-subscription-uses")
    invoke(roles, "PollCalendlyFunction", {"mode": "sync"})
    keys = json.loads(
        aws.secretsmanager.get_secret_value(SecretId=aws.signing_key_secret_arn)["SecretString"]
    )
    assert "previous" not in keys

    # Delete
    deleted = invoke(roles, "WebhookSubscriptionFunction", {"action": "delete"})
    assert deleted["ok"] is True and calendly.subscriptions() == []


def test_a_call_outside_the_role_is_refused_by_action_and_by_resource(
    aws: LocalAws, function_roles: FunctionRoles
) -> None:
    # Given the receiver's role: GetSecretValue on the signing keys, PutItem on the table
    roles = function_roles
    secrets = roles.client_as("ReceiveWebhookFunction", "secretsmanager")
    dynamodb = roles.client_as("ReceiveWebhookFunction", "dynamodb")
    aws.dynamodb.create_table(
        TableName="someone-elses",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = {"pk": {"S": "x"}, "sk": {"S": "y"}}

    def attempt(call: Any) -> str:
        try:
            roles.run_as("ReceiveWebhookFunction", call)
        except ClientError as error:
            return "refused" if error.response["ResponseMetadata"]["HTTPStatusCode"] == 403 else "failed"
        return "allowed"

    # When it reads and writes what it may, and then what it may not
    outcomes = [
        attempt(lambda: secrets.get_secret_value(SecretId=aws.signing_key_secret_arn)),
        attempt(lambda: dynamodb.put_item(TableName=aws.table_name, Item=item)),
        attempt(lambda: secrets.get_secret_value(SecretId=aws.token_secret_arn)),
        attempt(lambda: dynamodb.put_item(TableName="someone-elses", Item={"pk": {"S": "x"}})),
        attempt(lambda: dynamodb.get_item(TableName=aws.table_name, Key=item)),
    ]

    # Then the same action on another resource is refused, as is another action on its own table
    assert outcomes == ["allowed", "allowed", "refused", "refused", "refused"]
    assert len(roles.denials) == 3
    assert roles.denials[0].startswith(f"GetSecretValue on {aws.token_secret_arn}: AccessDenied")
    tables = "arn:aws:dynamodb:us-east-1:123456789012:table"
    assert roles.denials[1].startswith(f"PutItem on {tables}/someone-elses: AccessDenied")
    assert roles.denials[2].startswith(f"GetItem on {tables}/calendly-test: AccessDenied")
    assert all("ReceiveWebhookFunctionRole" in denial for denial in roles.denials)


def consumer_queue(roles: FunctionRoles) -> tuple[Any, str]:
    """A consumer's rule on the bus feeding a queue (every calendly-sync event)."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    url = sqs.create_queue(QueueName="calendly-test-consumer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="consumer", EventBusName=roles.event_bus_name, EventPattern='{"source": ["calendly-sync"]}'
    )
    events.put_targets(Rule="consumer", EventBusName=roles.event_bus_name, Targets=[{"Id": "q", "Arn": arn}])
    return sqs, url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return messages


@pytest.mark.slow
def test_the_publisher_publishes_and_keeps_its_ledger_with_only_its_own_role(
    aws: LocalAws, calendly: CalendlySandbox, function_roles: FunctionRoles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a connected stack to which Calendly delivered a booking, its cancellation, an event
    # type's change and a routing form submission (received and projected), and a consumer's
    # rule on the bus
    roles = function_roles
    monkeypatch.setenv("EVENT_BUS_NAME", roles.event_bus_name)
    token = calendly.add_token(TokenSpec(role="owner"))
    assert invoke(roles, "ValidateCredentialsFunction", {"token": token})["valid"] is True
    for name in (
        "invitee_created",
        "invitee_canceled",
        "event_type_updated",
        "routing_form_submission_created",
    ):
        body = json.loads(sample_event(name)["body"])
        answer = load_handler("ReceiveWebhookFunction")(
            signed_delivery_event(body, SIGNING_KEY),
            FakeLambdaContext(function_name="ReceiveWebhookFunction"),
        )
        assert answer["statusCode"] == 200, name
    assert aws.project() == 4
    sqs, url = consumer_queue(roles)

    # When Lambda reads the stream with the publisher's role and hands it the records
    def pump() -> StreamPump:
        return StreamPump(
            roles.client_as("PublishChangesFunction", "dynamodbstreams"),
            roles.stream_arn,
            "PublishChangesFunction",
        )

    first = pump()
    assert roles.run_as("PublishChangesFunction", first.drain) > 0
    assert roles.denials == [] and first.failures == [], roles.denials

    # Then the changes reached the bus (PutEvents on its bus), each once, with the organization
    # read from the connection (GetItem)
    events = received(sqs, url)
    assert events and all(e["source"] == "calendly-sync" for e in events)
    change_ids = [e["detail"]["change_id"] for e in events]
    assert len(change_ids) == len(set(change_ids))
    assert {e["detail"]["organization"] for e in events} == {calendly.organization_uri}

    # And the same records read again (Lambda re-sending a batch) publish nothing: the ledger
    # was written (BatchWriteItem) and is read back (BatchGetItem) with the role
    again = pump()
    assert roles.run_as("PublishChangesFunction", again.drain) > 0
    assert roles.denials == [] and again.failures == [] and received(sqs, url) == []

    # And a batch it gives up on is parked in its own failure queue with its role
    parking = roles.client_as("PublishChangesFunction", "sqs")
    roles.run_as(
        "PublishChangesFunction",
        lambda: parking.send_message(
            QueueUrl=roles.publish_failure_queue_url, MessageBody='{"requestContext": {}}'
        ),
    )
    assert roles.denials == [], roles.denials
    # ...but not in another's, nor onto another bus
    refused = []
    for call in (
        lambda: parking.send_message(QueueUrl=roles.failure_queue_url, MessageBody="{}"),
        lambda: roles.client_as("PublishChangesFunction", "events").put_events(
            Entries=[
                {"Source": "calendly-sync", "DetailType": "x", "Detail": "{}", "EventBusName": "default"}
            ]
        ),
    ):
        try:
            roles.run_as("PublishChangesFunction", call)
        except ClientError as error:
            refused.append(error.response["ResponseMetadata"]["HTTPStatusCode"])
    assert refused == [403, 403] and len(roles.denials) == 2


@pytest.mark.slow
def test_the_publisher_sets_aside_an_event_eventbridge_refuses_with_only_its_own_role(
    aws: LocalAws, function_roles: FunctionRoles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stored, projected change, and EventBridge refusing its event as malformed
    roles = function_roles
    monkeypatch.setenv("EVENT_BUS_NAME", roles.event_bus_name)
    monkeypatch.setenv("PUBLISH_FAILURE_QUEUE_URL", roles.publish_failure_queue_url)
    answer = load_handler("ReceiveWebhookFunction")(
        signed_delivery_event(json.loads(sample_event("event_type_updated")["body"]), SIGNING_KEY),
        FakeLambdaContext(function_name="ReceiveWebhookFunction"),
    )
    assert answer["statusCode"] == 200 and aws.project() == 1

    def malformed(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."} for _ in entries]

    # When Lambda hands the record to the publisher, run under its role
    pump = StreamPump(
        roles.client_as("PublishChangesFunction", "dynamodbstreams"),
        roles.stream_arn,
        "PublishChangesFunction",
        resume_at_failure=True,
    )
    with mock.patch.object(EventsBackend, "put_events", malformed):
        assert roles.run_as("PublishChangesFunction", pump.drain) > 0

    # Then its own code set the change aside in its failure queue (SendMessage with its role),
    # recorded it in the ledger, and reported nothing to retry
    assert roles.denials == [] and pump.failures == [] and pump.held == 0, roles.denials
    (message,) = received(boto3.client("sqs"), roles.publish_failure_queue_url)
    assert message["set_aside"] == "MalformedDetail" and message["detail_type"] == "event_type.created"

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

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from calendly_sync.records import sync_state_key
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.lambda_runtime import FakeLambdaContext, http_api_event, load_handler
from local.stream_pump import StreamPump
from tests.conftest import LocalAws, calendly_invitee_statuses
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
    assert receiver.statuses == Counter(stored=2, duplicate=2)
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
    assert first["ok"] is True and first["done"] is True and first["events_seen"] == 31
    lease = aws.table.get(sync_state_key("LEASE#poll"))
    assert lease is not None and lease["until"] == 0
    second = invoke(roles, "PollCalendlyFunction", {"mode": "sync"})
    assert second["ok"] is True and second["done"] is True and second["events_seen"] == 31

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

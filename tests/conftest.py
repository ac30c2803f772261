"""Shared fixtures: fake AWS credentials, the stack built from template.yaml inside moto.

The environment is set before anything imports the layer, and every cached client, setting
and secret is forgotten between tests, so each test sees only its own moto account.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

# Before any import of the layer: no real credentials, no tracing, a metrics namespace.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "CalendlySync",
        "POWERTOOLS_SERVICE_NAME": "tests",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from calendly_sync.adapters.aws_clients import clear_client_caches
from calendly_sync.adapters.dynamodb import CalendlyTable
from calendly_sync.adapters.secrets import clear_secret_caches
from calendly_sync.observability import metrics
from calendly_sync.settings import get_settings
from local import stack
from local.calendly_sandbox import CalendlySandbox, SandboxConfig
from local.copy_check import CopyCheck, compare, sandbox_facts, table_facts
from local.lambda_runtime import FakeLambdaContext, load_handler, signed_delivery_event
from local.stream_pump import StreamPump

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
# Calendly's OpenAPI description, outside the project (../shared): with it, the sandbox runs strict.
OPENAPI_SPEC = Path(__file__).resolve().parents[2] / "shared/calendly/openapi-2023.yaml"
SIGNING_KEY = "test-signing-key-current"
PREVIOUS_SIGNING_KEY = "test-signing-key-previous"


def forget_process_state() -> None:
    # Tests that call the domain directly never flush metrics the way a handler does.
    metrics.clear_metrics()
    clear_client_caches()
    clear_secret_caches()
    get_settings.cache_clear()


@dataclass
class LocalAws:
    """The stack's resources inside moto, with the environment a function would get."""

    table_name: str
    signing_key_secret_arn: str
    token_secret_arn: str
    dynamodb: Any
    secretsmanager: Any
    stream: StreamPump

    def project(self) -> int:
        """Run ProjectDeliveriesFunction over the stream records written so far, as Lambda would."""
        handed = self.stream.drain()
        assert self.stream.failures == [], "ProjectDeliveriesFunction reported failed records"
        return handed

    def deliver_signed(self, receive_webhook: Any, *bodies: dict[str, Any] | str) -> None:
        """Post each body, signed with ``SIGNING_KEY``, to ReceiveWebhookFunction; then project them."""
        for body in bodies:
            response = receive_webhook(
                signed_delivery_event(body, SIGNING_KEY),
                FakeLambdaContext(function_name="ReceiveWebhookFunction"),
            )
            assert response["statusCode"] == 200, response
        self.project()

    @property
    def table(self) -> CalendlyTable:
        return CalendlyTable(self.table_name, self.dynamodb)

    def set_signing_keys(self, current: str, previous: str | None = None) -> None:
        value = {"current": current} if previous is None else {"current": current, "previous": previous}
        self.secretsmanager.put_secret_value(
            SecretId=self.signing_key_secret_arn, SecretString=json.dumps(value)
        )

    def invitee_statuses(self) -> dict[str, str]:
        """``invitee URI -> status`` of every invitee item the table holds (stubs left out)."""
        items = [i for i in self.all_items() if i.get("entity", {}).get("S") == "invitee" and "status" in i]
        return {i["uri"]["S"]: i["status"]["S"] for i in items}

    def copy_of(self, calendly: CalendlySandbox) -> CopyCheck:
        """The table against Calendly's own state (``local/copy_check``: the one comparison)."""
        return compare(sandbox_facts(calendly.state), table_facts(self.all_items()))

    def all_items(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {"TableName": self.table_name}
        while True:
            page = self.dynamodb.scan(**arguments)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the fast unit layer: everything that needs moto, the sandbox or a server is `slow` -------

# Fixtures that start moto or a loopback server (the sandbox, a webhook receiver).
_SLOW_FIXTURES = frozenset({"aws", "calendly", "sandbox", "receiver", "api", "owner_token"})
# Directories whose tests run moto, the sandbox or a server (every one of them, whatever its fixtures).
_SLOW_DIRECTORIES = frozenset({"integration", "iam", "alarms", "sandbox", "ops"})
_TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``slow`` what ``make test-fast`` (``-m "not slow"``) leaves out, without editing each test."""
    for item in items:
        parts = item.path.resolve().relative_to(_TESTS_DIR).parts
        uses = set(getattr(item, "fixturenames", ()))
        if parts[0] in _SLOW_DIRECTORIES or uses & _SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """Given the stack's table and secrets created from template.yaml in a fresh moto account."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        secretsmanager = boto3.client("secretsmanager")
        table_name = "calendly-test"
        stack.create_table(dynamodb, table_name)
        signing_arn = stack.create_secret(
            secretsmanager, "WebhookSigningKeySecret", "calendly-test/signing-keys"
        )
        token_arn = stack.create_secret(secretsmanager, "CalendlyTokenSecret", "calendly-test/token")
        stream_arn = dynamodb.describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        pump = StreamPump(boto3.client("dynamodbstreams"), stream_arn, "ProjectDeliveriesFunction")
        local = LocalAws(table_name, signing_arn, token_arn, dynamodb, secretsmanager, pump)
        local.set_signing_keys(SIGNING_KEY)
        refs = {
            **stack.parameter_defaults(),
            "CalendlyTable": table_name,
            "WebhookSigningKeySecret": signing_arn,
            "CalendlyTokenSecret": token_arn,
            "WebhookApi": "hooks-test",
            "CalendlyEventBus": "calendly-test-bus",
        }
        # One process plays every function: their environments merged (the same wiring).
        for logical_id in stack.function_ids():
            for name, value in stack.function_environment(logical_id, stack.LocalStack(refs)).items():
                monkeypatch.setenv(name, value)
        forget_process_state()
        yield local
    forget_process_state()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(function_name="ReceiveWebhookFunction", timeout_seconds=8)


@pytest.fixture(scope="session")
def receive_webhook() -> Any:
    """The real ReceiveWebhookFunction entry point, loaded from the template's CodeUri."""
    return load_handler("ReceiveWebhookFunction")


def sample_event(name: str) -> dict[str, Any]:
    """A committed sample API Gateway event from events/receive_webhook/."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / "receive_webhook" / f"{name}.json").read_text())
    return event


def strict_openapi_spec() -> Path | None:
    """The spec strict mode checks requests against, or None where ../shared is absent."""
    return OPENAPI_SPEC if OPENAPI_SPEC.is_file() else None


def fail_on_strict_violations(sandbox: CalendlySandbox) -> None:
    """Fail the test if our client sent anything Calendly's OpenAPI description does not know.

    The sandbox already answered each such request 400 "strict mode: ..."; this catches the
    ones a caller swallowed (a check that reports "unavailable", a best-effort cleanup).
    """
    if sandbox.strict is not None and sandbox.strict.violations:
        pytest.fail(
            "strict mode: requests outside Calendly's OpenAPI description:\n"
            + "\n".join(sorted(set(sandbox.strict.violations)))
        )


@pytest.fixture
def calendly(aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[CalendlySandbox]:
    """Given the Calendly sandbox on loopback, as the functions' CALENDLY_API_BASE_URL.

    Strict whenever ../shared holds Calendly's OpenAPI description: every request the code under
    test makes must also conform to it, or the test fails at teardown.
    """
    # A 2 s rate-limit window: a 429 in a test waits seconds, not the minute Calendly uses.
    with CalendlySandbox(
        SandboxConfig(seed=5, rate_window_seconds=2), strict_openapi=strict_openapi_spec()
    ) as sandbox:
        monkeypatch.setenv("CALENDLY_API_BASE_URL", sandbox.base_url)
        get_settings.cache_clear()
        yield sandbox
        fail_on_strict_violations(sandbox)


# --- every test's logs are scanned: no token, no signing key, no email address -------------

_FORBIDDEN_IN_LOGS = (
    (re.compile(r"sandbox_pat_[0-9a-f]{8}"), "a Calendly token"),
    (re.compile(r"Bearer\s+\S"), "an Authorization header"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "an email address"),
    (re.compile(re.escape(SIGNING_KEY) + "|" + re.escape(PREVIOUS_SIGNING_KEY)), "a signing key"),
)


@pytest.fixture(autouse=True)
def _logs_hold_no_secrets_or_personal_data(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails any test whose captured log records (every field of them) carry a secret or an email."""
    yield
    ours = [r for r in caplog.records if not r.name.startswith(("werkzeug", "botocore", "urllib3", "moto"))]
    text = "\n".join(json.dumps(record.__dict__, default=str) for record in ours)
    for pattern, what in _FORBIDDEN_IN_LOGS:
        found = pattern.search(text)
        if found is not None:
            pytest.fail(f"the logs carry {what}: …{text[max(0, found.start() - 80) : found.end() + 20]}…")


def calendly_invitee_statuses(calendly: CalendlySandbox) -> dict[str, str]:
    """``invitee URI -> status`` of every invitee Calendly holds (the sandbox's own state)."""
    with calendly.state.lock:
        return {
            calendly.state.uris.invitee(i.event_uuid, i.uuid): i.status
            for i in calendly.state.invitees.values()
        }

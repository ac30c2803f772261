"""StackInvoker over real boto3 clients with botocore's Stubber (no network), and LocalInvoker."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ops import FunctionFailed, LocalInvoker, OpsError, StackInvoker
from ops.cli import main
from tests.ops.helpers import TOKEN, subscription_answer, validation_answer

STACK = "calendly-sync-dev"
REGION = "eu-west-1"
PHYSICAL = "calendly-sync-dev-WebhookSubscriptionFunction-AbC123"


@pytest.fixture
def invoker() -> StackInvoker:
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return StackInvoker(STACK, None, session=session)


@pytest.fixture
def stubs(invoker: StackInvoker) -> Iterator[tuple[Stubber, Stubber]]:
    with Stubber(invoker.cloudformation) as cloudformation, Stubber(invoker.lambda_client) as lambda_:
        yield cloudformation, lambda_
        cloudformation.assert_no_pending_responses()
        lambda_.assert_no_pending_responses()


def resource_found(stub: Stubber, logical_id: str, physical: str, status: str = "UPDATE_COMPLETE") -> None:
    stub.add_response(
        "describe_stack_resource",
        {
            "StackResourceDetail": {
                "StackName": STACK,
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": physical,
                "ResourceType": "AWS::Lambda::Function",
                "LastUpdatedTimestamp": datetime(2026, 1, 1, tzinfo=UTC),
                "ResourceStatus": status,
            }
        },
        {"StackName": STACK, "LogicalResourceId": logical_id},
    )


def invoked(
    stub: Stubber, physical: str, payload: dict[str, Any], answer: Any, function_error: str | None = None
) -> None:
    body = json.dumps(answer).encode()
    response: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
    if function_error:
        response["FunctionError"] = function_error
    stub.add_response(
        "invoke",
        response,
        {
            "FunctionName": physical,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(payload).encode(),
        },
    )


def test_resolves_the_physical_name_once_and_invokes_it(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber]
) -> None:
    cloudformation, lambda_ = stubs
    # Given the stack's WebhookSubscriptionFunction deployed under a generated name
    resource_found(cloudformation, "WebhookSubscriptionFunction", PHYSICAL)
    invoked(lambda_, PHYSICAL, {"action": "status"}, subscription_answer(action="status"))
    invoked(lambda_, PHYSICAL, {"action": "ensure"}, subscription_answer())

    # When it is invoked twice
    first = invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})
    second = invoker.invoke("WebhookSubscriptionFunction", {"action": "ensure"})

    # Then CloudFormation was asked once, Lambda twice, and the answers decoded
    assert first == subscription_answer(action="status")
    assert second["ok"] is True
    assert invoker.region == REGION


def test_main_runs_a_command_through_the_stack(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber], capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation, lambda_ = stubs
    # Given a deployed ValidateCredentialsFunction that re-checks the stored token
    physical = "calendly-sync-dev-ValidateCredentialsFunction-XyZ"
    resource_found(cloudformation, "ValidateCredentialsFunction", physical)
    invoked(lambda_, physical, {}, validation_answer())

    # When connect --recheck runs against it
    code = main(["connect", "--recheck"], invoker=invoker)

    # Then the verdict is printed and the exit code says it worked
    assert code == 0
    assert "token valid" in capsys.readouterr().out


def test_function_error_raises_with_the_error_message_but_not_the_payload(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber]
) -> None:
    cloudformation, lambda_ = stubs
    # Given the function raising (Lambda answers 200 with FunctionError and the error as payload)
    physical = "calendly-sync-dev-ValidateCredentialsFunction-XyZ"
    resource_found(cloudformation, "ValidateCredentialsFunction", physical)
    failure = {"errorMessage": "Task timed out after 30.03 seconds", "errorType": "Sandbox.Timedout"}
    invoked(lambda_, physical, {"token": TOKEN}, failure, function_error="Unhandled")

    # When it is invoked with a token
    with pytest.raises(FunctionFailed) as raised:
        invoker.invoke("ValidateCredentialsFunction", {"token": TOKEN})

    # Then the error carries the function's message and a pointer to its logs, never the token
    message = str(raised.value)
    assert "Task timed out after 30.03 seconds" in message and "Sandbox.Timedout" in message
    assert "sam logs -n ValidateCredentialsFunction" in message
    assert TOKEN not in message


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("ValidationError", f"Stack with id {STACK} does not exist", "check --stack"),
        (
            "ValidationError",
            f"Resource WebhookSubscriptionFunction does not exist for stack {STACK}",
            "deploy the current template",
        ),
        ("AccessDenied", "User is not authorized to perform DescribeStackResource", "access denied"),
        ("ExpiredToken", "The security token included in the request is expired", "refresh them"),
        ("Throttling", "Rate exceeded", "try again"),
    ],
)
def test_cloudformation_errors_become_clear_messages(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber], code: str, message: str, expected: str
) -> None:
    cloudformation, _ = stubs
    # Given CloudFormation refusing the lookup
    cloudformation.add_client_error(
        "describe_stack_resource", service_error_code=code, service_message=message, http_status_code=400
    )

    # When a function is invoked
    with pytest.raises(OpsError) as raised:
        invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})

    # Then the message says what to check
    assert expected in str(raised.value)
    assert not isinstance(raised.value, FunctionFailed)


def test_missing_function_and_denied_invoke_become_clear_messages(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber]
) -> None:
    cloudformation, lambda_ = stubs
    # Given a resolved name whose function is gone, then one the caller may not invoke
    resource_found(cloudformation, "WebhookSubscriptionFunction", PHYSICAL)
    lambda_.add_client_error("invoke", service_error_code="ResourceNotFoundException", http_status_code=404)
    lambda_.add_client_error("invoke", service_error_code="AccessDeniedException", http_status_code=403)

    # When it is invoked twice
    with pytest.raises(OpsError) as missing:
        invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})
    with pytest.raises(OpsError) as denied:
        invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})

    # Then each message says what is wrong
    assert "was not found" in str(missing.value)
    assert "access denied for lambda:InvokeFunction" in str(denied.value)


def test_a_deleted_resource_is_reported_not_invoked(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber]
) -> None:
    cloudformation, _ = stubs
    # Given a function resource that the last update deleted
    resource_found(cloudformation, "WebhookSubscriptionFunction", PHYSICAL, status="DELETE_COMPLETE")

    # When it is invoked
    with pytest.raises(OpsError) as raised:
        invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})

    # Then it says so (and Lambda was not called: the stubber has no response for it)
    assert "DELETE_COMPLETE" in str(raised.value)


def test_an_answer_that_is_not_a_json_object_is_an_error(
    invoker: StackInvoker, stubs: tuple[Stubber, Stubber]
) -> None:
    cloudformation, lambda_ = stubs
    # Given a function answering a JSON list
    resource_found(cloudformation, "WebhookSubscriptionFunction", PHYSICAL)
    invoked(lambda_, PHYSICAL, {"action": "status"}, ["not", "an", "object"])

    # When it is invoked
    with pytest.raises(OpsError) as raised:
        invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})

    # Then the error says what came back
    assert "not a JSON object" in str(raised.value)


def test_no_credentials_is_a_clear_error_with_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an environment without any AWS credentials (and no instance metadata to ask)
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    invoker = StackInvoker(STACK, REGION)

    # When a command runs
    code = main(["status"], invoker=invoker)

    # Then it stops before any request with a message about credentials
    assert code == 2
    assert "no usable AWS credentials" in capsys.readouterr().err


def test_no_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given no region anywhere
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))

    # When the invoker is built without --region
    with pytest.raises(OpsError) as raised:
        StackInvoker(STACK, None)

    # Then it asks for one
    assert "--region" in str(raised.value)


def test_an_unknown_profile_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given AWS_PROFILE naming a profile that does not exist
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")

    # When the invoker is built
    with pytest.raises(OpsError) as raised:
        StackInvoker(STACK, REGION)

    # Then the message names the setting to check
    assert "AWS_PROFILE" in str(raised.value)


# --- LocalInvoker -----------------------------------------------------------------------------


class FakeRunner:
    """Stands in for local.runner.LocalStackRunner.invoke_function."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke_function(self, logical_id: str, payload: dict[str, Any]) -> Any:
        self.calls.append((logical_id, payload))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def test_local_invoker_calls_the_runner_and_returns_its_answer() -> None:
    # Given a local stack whose function answers
    runner = FakeRunner(subscription_answer())

    # When the CLI runs through it
    code = main(["subscribe"], invoker=LocalInvoker(runner))

    # Then the runner got the logical id and payload
    assert runner.calls == [("WebhookSubscriptionFunction", {"action": "ensure"})]
    assert code == 0


def test_local_invoker_reports_a_handler_exception_as_a_function_error() -> None:
    # Given a local handler that raises
    invoker = LocalInvoker(FakeRunner(ValueError("no organization in the stored token")))

    # When it is invoked
    with pytest.raises(FunctionFailed) as raised:
        invoker.invoke("ValidateCredentialsFunction", {"token": TOKEN})

    # Then the error names the function and the handler's message, not the payload
    assert raised.value.logical_id == "ValidateCredentialsFunction"
    assert "ValueError" in str(raised.value) and "no organization" in str(raised.value)
    assert TOKEN not in str(raised.value)


def test_local_invoker_refuses_an_answer_that_is_not_an_object() -> None:
    # Given a local handler answering a string
    invoker = LocalInvoker(FakeRunner("done"))

    # When it is invoked
    with pytest.raises(OpsError):
        invoker.invoke("WebhookSubscriptionFunction", {"action": "status"})

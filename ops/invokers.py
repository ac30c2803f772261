"""How the operator commands reach the stack's functions.

``StackInvoker`` finds a deployed function's physical name through CloudFormation and invokes
it synchronously; ``LocalInvoker`` calls the handler inside ``local.runner.LocalStackRunner``.
Both raise :class:`OpsError` (or :class:`FunctionFailed`) with a message meant for a person;
no message ever includes the payload that was sent, since it may carry a token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_lambda import LambdaClient

# A synchronous invoke waits for the function; Lambda's own limit is 15 minutes.
_LAMBDA_CONFIG = Config(connect_timeout=10, read_timeout=900, retries={"mode": "standard", "max_attempts": 3})
_CLOUDFORMATION_CONFIG = Config(connect_timeout=10, read_timeout=30, retries={"mode": "standard"})

_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "KMSAccessDeniedException",
}
_BAD_CREDENTIALS = {
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException"}


class OpsError(Exception):
    """The command could not get an answer; the message says what to check."""


class FunctionFailed(OpsError):
    """The function ran but raised instead of answering (Lambda's ``FunctionError``)."""

    def __init__(self, logical_id: str, error_type: str, error_message: str, hint: str = "") -> None:
        self.logical_id = logical_id
        self.error_type = error_type
        self.error_message = error_message
        text = f"{logical_id} failed with {error_type or 'an error'}: {error_message or '(no message)'}"
        super().__init__(f"{text}. {hint}" if hint else text)


@contextmanager
def aws_session(
    region: str | None, session: boto3.Session | None = None
) -> Iterator[tuple[boto3.Session, str]]:
    """The session to build clients from and the region they are for (``region``, else the session's).

    A missing profile or region, found here or while the block builds its clients, becomes an
    :class:`OpsError` that says what to set.
    """
    try:
        session = session or boto3.Session(region_name=region)
        resolved = region or session.region_name or ""
        if not resolved:
            raise NoRegionError()
        yield session, resolved
    except ProfileNotFound as error:
        raise OpsError(f"{error}: check AWS_PROFILE or ~/.aws/config") from None
    except NoRegionError:
        raise OpsError(
            "no AWS region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION, "
            "or a region in the AWS profile"
        ) from None


def access_error(code: str, message: str, operation: str, where: str = "") -> OpsError | None:
    """What an AWS error code about the credentials (refused, not allowed, throttled) means, if it is one."""
    if code in _ACCESS_DENIED:
        on = f" on {where}" if where else ""
        return OpsError(
            f"access denied for {operation}{on}: the AWS credentials in use "
            f"need permission to call it ({message or code})"
        )
    if code in _BAD_CREDENTIALS:
        return OpsError(
            f"the AWS credentials were refused ({code}): refresh them (aws sso login, or new keys)"
        )
    if code in _THROTTLED:
        return OpsError(f"AWS throttled {operation} ({code}): try again in a moment")
    return None


class FunctionInvoker(Protocol):
    def invoke(self, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]: ...


class _Runner(Protocol):
    def invoke_function(self, logical_id: str, payload: dict[str, Any]) -> Any: ...


class StackInvoker:
    """Invokes a deployed stack's functions by logical id (``RequestResponse``, the answer decoded)."""

    def __init__(self, stack_name: str, region: str | None, session: boto3.Session | None = None) -> None:
        self.stack_name = stack_name
        with aws_session(region, session) as (session, self.region):
            self.cloudformation: CloudFormationClient = session.client(
                "cloudformation", region_name=self.region, config=_CLOUDFORMATION_CONFIG
            )
            self.lambda_client: LambdaClient = session.client(
                "lambda", region_name=self.region, config=_LAMBDA_CONFIG
            )
        self._names: dict[str, str] = {}

    def function_name(self, logical_id: str) -> str:
        """The physical name of the stack's ``logical_id`` (looked up once)."""
        if logical_id not in self._names:
            try:
                answer = self.cloudformation.describe_stack_resource(
                    StackName=self.stack_name, LogicalResourceId=logical_id
                )
            except ClientError as error:
                raise self._client_error(error, "cloudformation:DescribeStackResource", logical_id) from None
            except BotoCoreError as error:
                raise self._botocore_error(error) from None
            detail = answer.get("StackResourceDetail", {})
            physical = detail.get("PhysicalResourceId")
            if not physical or detail.get("ResourceStatus", "").startswith("DELETE"):
                raise OpsError(
                    f"{logical_id} in stack {self.stack_name} has no deployed function "
                    f"(status {detail.get('ResourceStatus', 'unknown')}): check the last deploy"
                )
            self._names[logical_id] = physical
        return self._names[logical_id]

    def invoke(self, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        name = self.function_name(logical_id)
        try:
            response = self.lambda_client.invoke(
                FunctionName=name,
                InvocationType="RequestResponse",
                Payload=json.dumps(payload).encode("utf-8"),
            )
            raw = response["Payload"].read()
        except ClientError as error:
            raise self._client_error(error, "lambda:InvokeFunction", logical_id) from None
        except BotoCoreError as error:
            raise self._botocore_error(error) from None
        logs = f"see `sam logs -n {logical_id} --stack-name {self.stack_name} --region {self.region}`"
        if response.get("FunctionError"):
            failure = _decode(raw, logical_id, required_object=False)
            failure = failure if isinstance(failure, dict) else {}
            raise FunctionFailed(
                logical_id,
                str(failure.get("errorType") or response["FunctionError"]),
                str(failure.get("errorMessage") or ""),
                logs,
            )
        answer: dict[str, Any] = _decode(raw, logical_id, required_object=True)
        return answer

    # --- errors, in words -------------------------------------------------------------------

    def _client_error(self, error: ClientError, operation: str, logical_id: str) -> OpsError:
        info = error.response.get("Error", {})
        code, message = info.get("Code", ""), info.get("Message", "")
        where = f"stack {self.stack_name} in {self.region}"
        if code == "ValidationError" and "does not exist" in message:
            if message.startswith("Stack"):
                return OpsError(
                    f"{where} not found: check --stack (sam deploy's stack_name) and --region, "
                    "and that the AWS credentials are for the right account"
                )
            return OpsError(
                f"{where} has no resource {logical_id}: deploy the current template (sam build && sam deploy)"
            )
        if code == "ResourceNotFoundException":
            return OpsError(
                f"the function behind {logical_id} in {where} was not found: "
                "check the last deploy (sam deploy) and --region"
            )
        return access_error(code, message, operation, where) or OpsError(
            f"{operation} failed on {where}: {code or 'error'}: {message}"
        )

    def _botocore_error(self, error: BotoCoreError) -> OpsError:
        if isinstance(error, NoCredentialsError | PartialCredentialsError):
            return OpsError(
                "no usable AWS credentials: set AWS_PROFILE (and run aws sso login) "
                "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(error, EndpointConnectionError):
            return OpsError(f"cannot reach AWS in {self.region}: check the network and --region ({error})")
        return OpsError(f"AWS call failed: {type(error).__name__}: {error}")


class LocalInvoker:
    """Invokes functions inside a running ``local.runner.LocalStackRunner`` (the embedded stack)."""

    def __init__(self, runner: _Runner) -> None:
        self.runner = runner

    def invoke(self, logical_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = self.runner.invoke_function(logical_id, payload)
        except Exception as error:  # what Lambda reports as FunctionError
            raise FunctionFailed(
                logical_id, type(error).__name__, str(error), "see the functions' log of the local stack"
            ) from None
        if not isinstance(answer, dict):
            raise OpsError(f"{logical_id} answered {type(answer).__name__}, not a JSON object")
        return answer


def _decode(raw: bytes, logical_id: str, *, required_object: bool) -> Any:
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        if not required_object:
            return None
        raise OpsError(f"{logical_id} answered something that is not JSON ({len(raw)} bytes)") from None
    if required_object and not isinstance(value, dict):
        raise OpsError(f"{logical_id} answered {type(value).__name__}, not a JSON object")
    return value

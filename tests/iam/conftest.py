"""Each function runs as its own IAM role, with moto's IAM enforcement on while it runs.

The roles come from the SAM-translated template (``roles.py``), their intrinsics resolved to
the table, stream, secrets and queue this test created, and are assumed through STS, as
Lambda assumes them. moto checks the action against the role's statements; it passes only
``"*"`` as the resource for DynamoDB, DynamoDB Streams and Secrets Manager requests, so the
fixture tells it the ARN each request names (the table, its index, the stream, the secret):
a statement on another resource then grants nothing, as in AWS. What moto does not check is
listed in the README ("Least privilege").
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
import pytest
from moto.core import set_initial_no_auth_action_count
from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
from moto.events.responses import EventsHandler
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.secretsmanager.responses import SecretsManagerResponse
from werkzeug.exceptions import HTTPException

from tests.conftest import LocalAws, forget_process_state
from tests.iam.roles import ACCOUNT_ID, REGION, Resolver, function_ids, function_role, translated_template

T = TypeVar("T")

_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"


# --- the resource each request names, for moto's policy evaluation -----------------------


def _table_resource(handler: Any) -> str:
    body = handler.body if isinstance(handler.body, dict) else {}
    tables = set(body.get("RequestItems") or ()) or {body.get("TableName")}
    if len(tables) != 1 or None in tables:
        return "*"  # several tables or none: only a statement on every resource would allow it
    arn = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{tables.pop()}"
    return f"{arn}/index/{body['IndexName']}" if body.get("IndexName") else arn


def _stream_resource(handler: Any) -> str:
    stream = handler._get_param("StreamArn") or handler._get_param("ShardIterator") or "*"
    # moto's shard iterators are "<stream ARN>|1|<id>"; AWS authorizes GetRecords on the stream.
    return str(stream).split("|", 1)[0]


def _event_bus_resource(handler: Any) -> str:
    """The bus a PutEvents names (each entry names one; AWS authorizes every entry's bus)."""
    if handler._get_action() != "PutEvents":
        return "*"
    names = {entry.get("EventBusName") or "default" for entry in handler._get_param("Entries") or ()}
    if len(names) != 1:
        return "*"  # several buses: only a statement on every resource would allow it
    name = str(names.pop())
    if name.startswith("arn:"):
        return name
    return f"arn:aws:events:{handler.region}:{handler.current_account}:event-bus/{name}"


def _secret_resource(handler: Any) -> str:
    secret_id = handler._get_param("SecretId")
    if not secret_id:
        return "*"
    if str(secret_id).startswith("arn:"):
        return str(secret_id)
    try:  # a name: the ARN it stands for
        return str(handler.backend.describe_secret(secret_id)["ARN"])
    except Exception:
        return "*"


@pytest.fixture
def iam_denials(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request moto's IAM refused, as ``action on resource by principal``.

    Kept apart from what the functions answer: some failures are absorbed by design (a lease
    that cannot be released expires, a failed subscription check lets the poll go on), and an
    AccessDenied there must fail the test all the same.
    """
    monkeypatch.setattr(DynamoHandler, "_determine_resource", _table_resource, raising=False)
    monkeypatch.setattr(DynamoDBStreamsHandler, "_determine_resource", _stream_resource, raising=False)
    monkeypatch.setattr(SecretsManagerResponse, "_determine_resource", _secret_resource, raising=False)
    monkeypatch.setattr(EventsHandler, "_determine_resource", _event_bus_resource, raising=False)
    denials: list[str] = []
    authorize = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

    def recording_authorize(handler: Any, resource: str = "*") -> None:
        try:
            authorize(handler, resource)
        except HTTPException as refused:
            # An unknown or mismatched key is recorded too: a client left with other credentials.
            body = str(refused.description or refused)
            code, message = (re.search(f"<{tag}>(.*?)</{tag}>", body) for tag in ("Code", "Message"))
            reason = f"{code.group(1) if code else ''}: {message.group(1) if message else body[:200]}"
            denials.append(f"{handler._get_action()} on {resource}: {reason}")
            raise

    monkeypatch.setattr(
        ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", recording_authorize
    )
    return denials


# --- one identity per function ------------------------------------------------------------


@dataclass
class FunctionRoles:
    """The stack's functions as moto principals: ``run_as(function, call)`` runs under its role."""

    credentials: dict[str, dict[str, str]]
    failure_queue_url: str
    stream_arn: str
    #: The bus PublishChangesFunction publishes to (CalendlyEventBus) and its failure queue.
    event_bus_name: str
    publish_failure_queue_url: str
    #: What moto refused so far (``iam_denials``).
    denials: list[str]

    def run_as(self, function_id: str, call: Callable[[], T]) -> T:
        """``call()`` with the function's credentials and moto's IAM enforcement on.

        Cached clients and secrets are dropped before and after, as a fresh Lambda container
        would hold none, so every AWS call inside is made (and checked) as this function.
        """
        saved = {name: os.environ.get(name) for name in _CREDENTIAL_VARIABLES}
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": self.credentials[function_id]["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": self.credentials[function_id]["SecretAccessKey"],
                "AWS_SESSION_TOKEN": self.credentials[function_id]["SessionToken"],
            }
        )
        forget_process_state()
        try:
            enforced: Callable[[], T] = set_initial_no_auth_action_count(0)(call)
            return enforced()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            forget_process_state()

    def client_as(self, function_id: str, service: str) -> Any:
        """A client with the function's credentials (for what Lambda does with its role)."""
        credentials = self.credentials[function_id]
        return boto3.client(
            service,
            region_name=REGION,
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )


def _managed_policy_document(arn: str) -> dict[str, Any]:
    if not arn.startswith(_AWS_MANAGED_PREFIX):
        raise ValueError(f"a managed policy the test cannot load: {arn}")
    name = arn.rsplit("/", 1)[-1]
    document: dict[str, Any] = json.loads(aws_managed_policies_data)[name]["Document"]
    return document


@pytest.fixture
def function_roles(aws: LocalAws, iam_denials: list[str]) -> FunctionRoles:
    """Given each function's role from the translated template, assumable in this moto account."""
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="calendly-test-projection-failures")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    publish_queue_url = sqs.create_queue(QueueName="calendly-test-publish-failures")["QueueUrl"]
    publish_queue_arn = sqs.get_queue_attributes(QueueUrl=publish_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    bus_name = "calendly-test-bus"
    bus_arn = boto3.client("events").create_event_bus(Name=bus_name)["EventBusArn"]
    table_arn = aws.dynamodb.describe_table(TableName=aws.table_name)["Table"]["TableArn"]
    stream_arn = aws.dynamodb.describe_table(TableName=aws.table_name)["Table"]["LatestStreamArn"]
    log_groups = {
        f"{logical_id}.Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:calendly-test-{logical_id}:*"
        for logical_id, spec in translated_template()["Resources"].items()
        if spec["Type"] == "AWS::Logs::LogGroup"
    }
    resolver = Resolver(
        refs={
            "CalendlyTable": aws.table_name,
            "CalendlyTokenSecret": aws.token_secret_arn,
            "WebhookSigningKeySecret": aws.signing_key_secret_arn,
            "ProjectionFailureQueue": queue_url,
            "PublishFailureQueue": publish_queue_url,
            "CalendlyEventBus": bus_name,
            "EventBusName": "",
        },
        attributes={
            "CalendlyTable.Arn": table_arn,
            "CalendlyTable.StreamArn": stream_arn,
            "ProjectionFailureQueue.Arn": queue_arn,
            "ProjectionFailureQueue.QueueName": queue_url.rsplit("/", 1)[-1],
            "PublishFailureQueue.Arn": publish_queue_arn,
            "PublishFailureQueue.QueueName": publish_queue_url.rsplit("/", 1)[-1],
            "CalendlyEventBus.Arn": bus_arn,
            **log_groups,
        },
        # The template's defaults: the stack's own bus.
        conditions={"CreateEventBus": True},
    )
    iam = boto3.client("iam")
    sts = boto3.client("sts")
    credentials: dict[str, dict[str, str]] = {}
    for function_id in function_ids():
        role = function_role(function_id)
        role_arn = iam.create_role(
            RoleName=role.logical_id, AssumeRolePolicyDocument=json.dumps(role.trust_policy)
        )["Role"]["Arn"]
        for name, document in role.policies.items():
            # SAM leaves out Version (IAM then reads the 2008 language, the same for statements
            # without policy variables); moto accepts only 2012-10-17.
            resolved = {"Version": "2012-10-17", **resolver.resolve(document)}
            iam.put_role_policy(
                RoleName=role.logical_id, PolicyName=name, PolicyDocument=json.dumps(resolved)
            )
        for arn in role.managed_policy_arns:
            document = _managed_policy_document(arn)
            name = f"{role.logical_id}-{arn.rsplit('/', 1)[-1]}"
            policy_arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"][
                "Arn"
            ]
            iam.attach_role_policy(RoleName=role.logical_id, PolicyArn=policy_arn)
        credentials[function_id] = sts.assume_role(RoleArn=role_arn, RoleSessionName=function_id)[
            "Credentials"
        ]
    return FunctionRoles(credentials, queue_url, stream_arn, bus_name, publish_queue_url, iam_denials)

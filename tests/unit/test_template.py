"""template.yaml: the public contract (logical ids, route, outputs) and its hardening."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from local.stack import http_routes, load_template, resource
from tests.iam.roles import function_role, roles, translated_template

PUBLIC_IDS = {
    "ReceiveWebhookFunction",
    "ValidateCredentialsFunction",
    "WebhookSubscriptionFunction",
    "CalendlyTable",
    "CalendlyTokenSecret",
    "WebhookSigningKeySecret",
    "WebhookApi",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_the_public_logical_ids_exist(template: dict[str, Any]) -> None:
    assert set(template["Resources"]) >= PUBLIC_IDS


def test_the_webhook_route_is_post_webhooks_calendly_on_the_http_api(template: dict[str, Any]) -> None:
    assert http_routes(template) == {("POST", "/webhooks/calendly"): "ReceiveWebhookFunction"}
    (event,) = resource("ReceiveWebhookFunction", template)["Properties"]["Events"].values()
    assert event["Properties"]["ApiId"] == {"Ref": "WebhookApi"}
    assert resource("WebhookApi", template)["Type"] == "AWS::Serverless::HttpApi"


def test_globals_pin_runtime_architecture_tracing_and_powertools(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert "POWERTOOLS_METRICS_NAMESPACE" in function_globals["Environment"]["Variables"]
    assert function_globals["Layers"] == [{"Ref": "CalendlySyncLayer"}]


def test_the_table_is_on_demand_with_pitr_ttl_stream_and_protection(template: dict[str, Any]) -> None:
    table = resource("CalendlyTable", template)
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert {index["IndexName"] for index in properties["GlobalSecondaryIndexes"]} == {"ByTime", "ByEmail"}


def test_the_signing_key_secret_generates_its_first_key(template: dict[str, Any]) -> None:
    generate = resource("WebhookSigningKeySecret", template)["Properties"]["GenerateSecretString"]
    assert generate["GenerateStringKey"] == "current"
    assert generate["PasswordLength"] >= 32


def test_the_receiver_answers_before_calendly_gives_up(template: dict[str, Any]) -> None:
    # Calendly counts a delivery failed after 10 s.
    assert resource("ReceiveWebhookFunction", template)["Properties"]["Timeout"] < 10


def test_the_api_is_throttled_and_access_logged(template: dict[str, Any]) -> None:
    properties = resource("WebhookApi", template)["Properties"]
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(properties["DefaultRouteSettings"])
    assert properties["AccessLogSettings"]["DestinationArn"] == {
        "Fn::GetAtt": ["WebhookApiAccessLogs", "Arn"]
    }


def test_every_function_logs_to_a_group_with_retention(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert resource(group, template)["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, (
            logical_id
        )


# --- least privilege: the roles as SAM translates them (tests/iam proves each is enough) ---

#: Every wildcard a role may hold, with why it cannot be narrower. Anything else with a "*" in
#: an action or a resource fails below.
JUSTIFIED_WILDCARDS = {
    ("xray:PutTraceSegments", "*"): "X-Ray has no resource-level permissions (Tracing: Active)",
    ("xray:PutTelemetryRecords", "*"): "X-Ray has no resource-level permissions (Tracing: Active)",
    ("cloudwatch:PutMetricData", "*"): "CloudWatch metrics have no resource ARNs",
    ("dynamodb:ListStreams", "*"): "ListStreams has no resource-level permission; it returns stream "
    "ARNs, never records (the projector's event source mapping finds the stream with it)",
}

#: Managed policies SAM attaches to the roles it makes, and why each is acceptable.
JUSTIFIED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": "logs: what Lambda needs to "
    "write the function's own log group (SAM attaches it to every role it makes)",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": "traces: X-Ray has no resource-level permissions "
    "(SAM attaches it for Tracing: Active)",
}

#: What each function's code calls (DynamoDB, Secrets Manager, SQS) and not one action more.
ACTIONS_OF = {
    "ReceiveWebhookFunction": {"dynamodb:PutItem", "secretsmanager:GetSecretValue"},
    "ProjectDeliveriesFunction": {
        "dynamodb:UpdateItem",
        "dynamodb:DescribeStream",
        "dynamodb:GetShardIterator",
        "dynamodb:GetRecords",
        "dynamodb:ListStreams",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    },
    "ValidateCredentialsFunction": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
    },
    "WebhookSubscriptionFunction": {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
    },
    "PollCalendlyFunction": {
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
    },
    "PublishChangesFunction": {
        "dynamodb:DescribeStream",
        "dynamodb:GetShardIterator",
        "dynamodb:GetRecords",
        "dynamodb:ListStreams",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "events:PutEvents",
        "sqs:SendMessage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    },
}

#: The one role that writes in batches: the publisher's ledger of published change ids.
BATCH_WRITERS = {"PublishChangesRole"}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard_text(resource: Any) -> str | None:
    """The resource as text when it holds a "*" (a literal or an Fn::Sub pattern), else None."""
    if isinstance(resource, str):
        return resource if "*" in resource else None
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        pattern = resource["Fn::Sub"]
        text = pattern if isinstance(pattern, str) else pattern[0]
        return text if "*" in text else None
    return None  # !Ref / !GetAtt: one resource of this stack


def _stack_resource(resource: Any) -> str | None:
    """The logical id a resource names: !Ref, !GetAtt, or SAM's ``!Sub ["${x}", {x: !Ref ...}]``."""
    if isinstance(resource, dict) and "Fn::Sub" in resource and isinstance(resource["Fn::Sub"], list):
        pattern, variables = resource["Fn::Sub"]
        if len(variables) == 1 and pattern == "${" + next(iter(variables)) + "}":
            resource = next(iter(variables.values()))
    if isinstance(resource, dict) and "Ref" in resource:
        return str(resource["Ref"])
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    return None


def test_no_role_holds_an_unjustified_wildcard() -> None:
    found = []
    for role in roles().values():
        for statement in role.statements():
            assert statement["Effect"] == "Allow" and "NotAction" not in statement, (
                role.logical_id,
                statement,
            )
            assert "NotResource" not in statement, (role.logical_id, statement)
            actions = _listed(statement["Action"])
            for action in actions:
                if "*" in action:
                    found.append(f"{role.logical_id}: action {action}")
            for named in _listed(statement["Resource"]):
                text = _wildcard_text(named)
                for action in actions if text is not None else []:
                    if (action, text) not in JUSTIFIED_WILDCARDS:
                        found.append(f"{role.logical_id}: {action} on {text}")
        for arn in role.managed_policy_arns:
            if arn not in JUSTIFIED_MANAGED_POLICIES:
                found.append(f"{role.logical_id}: managed policy {arn}")
    assert found == []


def test_each_function_is_granted_exactly_what_its_code_calls() -> None:
    for function_id, expected in ACTIONS_OF.items():
        role = function_role(function_id)
        granted = {action for s in role.statements() for action in _listed(s["Action"])}
        assert granted == expected, function_id


def test_stream_reads_and_table_writes_name_this_stack_s_own_resources() -> None:
    for function_id in ACTIONS_OF:
        for statement in function_role(function_id).statements():
            for action in _listed(statement["Action"]):
                if not action.startswith(("dynamodb:", "secretsmanager:", "sqs:")) or action == (
                    "dynamodb:ListStreams"
                ):
                    continue
                for named in _listed(statement["Resource"]):
                    assert _stack_resource(named) in translated_template()["Resources"], (function_id, named)
                    if action in (
                        "dynamodb:GetRecords",
                        "dynamodb:GetShardIterator",
                        "dynamodb:DescribeStream",
                    ):
                        assert named == {"Fn::GetAtt": ["CalendlyTable", "StreamArn"]}, function_id


def test_no_role_can_scan_or_delete_items() -> None:
    for role in roles().values():
        actions = {action for s in role.statements() for action in _listed(s["Action"])}
        assert not actions & {"dynamodb:Scan", "dynamodb:DeleteItem"}, role.logical_id
        # BatchWriteItem can delete too: only the ledger's writer holds it (tests/iam runs it).
        assert "dynamodb:BatchWriteItem" not in actions or role.logical_id in BATCH_WRITERS, role.logical_id


def test_the_publisher_publishes_to_the_stack_s_bus_only() -> None:
    (statement,) = [
        s
        for s in function_role("PublishChangesFunction").statements()
        if "events:PutEvents" in _listed(s["Action"])
    ]
    assert statement["Resource"] == {
        "Fn::If": [
            "CreateEventBus",
            {"Fn::GetAtt": ["CalendlyEventBus", "Arn"]},
            {
                "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/"
                "${EventBusName}"
            },
        ]
    }


def _secrets_read_by(template: dict[str, Any], logical_id: str) -> set[str]:
    policies = resource(logical_id, template)["Properties"].get("Policies", [])
    return {
        p["AWSSecretsManagerGetSecretValuePolicy"]["SecretArn"]["Ref"]
        for p in policies
        if "AWSSecretsManagerGetSecretValuePolicy" in p
    }


def test_only_the_functions_that_need_the_token_can_read_it(template: dict[str, Any]) -> None:
    readers = {f for f in functions(template) if "CalendlyTokenSecret" in _secrets_read_by(template, f)}
    assert readers == {"ValidateCredentialsFunction", "WebhookSubscriptionFunction", "PollCalendlyFunction"}


def test_the_receiver_reads_only_the_signing_keys(template: dict[str, Any]) -> None:
    assert _secrets_read_by(template, "ReceiveWebhookFunction") == {"WebhookSigningKeySecret"}


def test_the_subscription_is_checked_on_a_schedule_with_retries_and_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    events = resource("WebhookSubscriptionFunction", template)["Properties"]["Events"]
    (schedule,) = [e["Properties"] for e in events.values() if e["Type"] == "ScheduleV2"]
    assert schedule["Input"] == '{"action": "ensure"}'
    assert schedule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert schedule["DeadLetterConfig"]["Type"] == "SQS"


def test_the_deploy_time_subscription_is_opt_in(template: dict[str, Any]) -> None:
    custom = resource("WebhookSubscription", template)
    assert custom["Condition"] == "ManageSubscription"
    assert template["Parameters"]["ManageSubscriptionOnDeploy"]["Default"] == "false"
    assert custom["Properties"]["ServiceToken"] == {"Fn::GetAtt": ["WebhookSubscriptionFunction", "Arn"]}


def test_outputs_give_ops_the_webhook_url_table_and_secrets(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert {"WebhookUrl", "CalendlyTableName", "CalendlyTokenSecretArn", "WebhookSigningKeySecretArn"} <= set(
        outputs
    )
    assert outputs["WebhookUrl"]["Value"]["Fn::Sub"].endswith("/webhooks/calendly")


def test_deliveries_are_applied_from_the_stream_with_retries_and_a_failure_queue(
    template: dict[str, Any],
) -> None:
    (event,) = resource("ProjectDeliveriesFunction", template)["Properties"]["Events"].values()
    properties = event["Properties"]
    assert event["Type"] == "DynamoDB"
    assert properties["Stream"] == {"Fn::GetAtt": ["CalendlyTable", "StreamArn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["ProjectionFailureQueue", "Arn"]
    }
    assert '"INSERT"' in properties["FilterCriteria"]["Filters"][0]["Pattern"]


def test_every_asynchronous_path_has_retries_and_a_dead_letter_destination(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        for name, event in function["Properties"].get("Events", {}).items():
            properties = event["Properties"]
            if event["Type"] in ("ScheduleV2", "Schedule"):
                assert properties["RetryPolicy"]["MaximumRetryAttempts"] >= 1, (logical_id, name)
                assert "DeadLetterConfig" in properties, (logical_id, name)
            elif event["Type"] in ("DynamoDB", "SQS", "Kinesis"):
                assert "OnFailure" in properties["DestinationConfig"], (logical_id, name)
                # -1: retried without a count, until the record's age limit (below the stream's 24 h)
                retries, age = properties["MaximumRetryAttempts"], properties.get("MaximumRecordAgeInSeconds")
                assert retries >= 1 or (retries == -1 and 0 < age < 24 * 3600), (logical_id, name)


def test_changes_are_published_from_the_stream_in_order_without_skipping_any(
    template: dict[str, Any],
) -> None:
    function = resource("PublishChangesFunction", template)["Properties"]
    assert function["CodeUri"] == "functions/publish_changes/"
    assert function["Handler"] == "app.lambda_handler"
    assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "publish-changes"
    assert function["Environment"]["Variables"]["EVENT_BUS_NAME"] == {
        "Fn::If": ["CreateEventBus", {"Ref": "CalendlyEventBus"}, {"Ref": "EventBusName"}]
    }
    event = function["Events"]["TableChanges"]
    properties = event["Properties"]
    assert event["Type"] == "DynamoDB"
    assert properties["Stream"] == {"Fn::GetAtt": ["CalendlyTable", "StreamArn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == 100
    # A passing failure never skips a change: no retry count, only the record's age ends it
    assert properties["MaximumRetryAttempts"] == -1
    assert properties["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["PublishFailureQueue", "Arn"]
    }
    (only,) = properties["FilterCriteria"]["Filters"]
    assert json.loads(only["Pattern"]) == {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {
            "NewImage": {
                "entity": {"S": ["invitee", "scheduled_event", "event_type", "routing_form_submission"]}
            }
        },
    }


def test_the_bus_is_the_stack_s_own_unless_one_is_named(template: dict[str, Any]) -> None:
    assert template["Conditions"]["CreateEventBus"] == {"Fn::Equals": [{"Ref": "EventBusName"}, ""]}
    assert template["Parameters"]["EventBusName"]["Default"] == ""
    bus = resource("CalendlyEventBus", template)
    assert bus["Type"] == "AWS::Events::EventBus" and bus["Condition"] == "CreateEventBus"
    outputs = template["Outputs"]
    assert outputs["EventBusName"]["Value"] == {
        "Fn::If": ["CreateEventBus", {"Ref": "CalendlyEventBus"}, {"Ref": "EventBusName"}]
    }
    assert outputs["EventBusArn"]["Value"]["Fn::If"][1] == {"Fn::GetAtt": ["CalendlyEventBus", "Arn"]}


def test_the_poller_never_overlaps_and_leaves_room_to_checkpoint(template: dict[str, Any]) -> None:
    properties = resource("PollCalendlyFunction", template)["Properties"]
    assert properties["ReservedConcurrentExecutions"] == 1
    # poller.SAFETY_MARGIN_MS is 20 s: the timeout must leave a working run well beyond it
    assert properties["Timeout"] >= 120


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.calendly.com", True),
        ("https://api.calendly.com/", True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost", True),
        ("http://[::1]:9000", True),
        ("http://api.calendly.com", False),
        ("http://127.0.0.1.example.com", False),
        ("https://user:secret@api.calendly.com", False),
        ("https://api.calendly.com/?next=x", False),
        ("ftp://api.calendly.com", False),
    ],
)
def test_the_calendly_base_url_parameter_is_https_or_loopback(
    template: dict[str, Any], url: str, allowed: bool
) -> None:
    # CloudFormation matches AllowedPattern against the whole value (Java regex, same syntax here).
    parameter = template["Parameters"]["CalendlyApiBaseUrl"]
    assert (re.fullmatch(parameter["AllowedPattern"], url) is not None) is allowed
    assert re.fullmatch(parameter["AllowedPattern"], parameter["Default"])


# --- forwarding to a URL (ForwardUrl) ------------------------------------------------------

FORWARDING = (
    "ForwardConnection",
    "ForwardDestination",
    "ForwardRule",
    "ForwardRole",
    "ForwardDeadLetterQueue",
)


def test_forwarding_is_off_unless_a_url_is_given(template: dict[str, Any]) -> None:
    assert template["Parameters"]["ForwardUrl"]["Default"] == ""
    assert template["Conditions"]["Forwarding"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ForwardUrl"}, ""]}]}
    for logical_id in (*FORWARDING, "ForwardDeadLetterQueuePolicy", "ForwardDeadLetterAlarm"):
        assert resource(logical_id, template)["Condition"] == "Forwarding", logical_id
    url = re.compile(template["Parameters"]["ForwardUrl"]["AllowedPattern"])
    assert url.fullmatch("https://hooks.example.com/flows/1?key=a") and url.fullmatch("")
    assert not url.fullmatch("http://hooks.example.com/") and not url.fullmatch("https://u:p@example.com/")


def test_the_forward_rule_sends_the_chosen_types_with_retries_and_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    properties = resource("ForwardRule", template)["Properties"]
    assert properties["EventPattern"] == {
        "source": ["calendly-sync"],
        "detail-type": {"Ref": "ForwardDetailTypes"},
    }
    assert properties["EventBusName"] == {
        "Fn::If": ["CreateEventBus", {"Ref": "CalendlyEventBus"}, {"Ref": "EventBusName"}]
    }
    (target,) = properties["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["ForwardDestination", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"]}
    # Every detail-type is forwarded unless the parameter narrows it
    defaults = template["Parameters"]["ForwardDetailTypes"]["Default"].split(",")
    assert len(defaults) == 9 and "scheduled_event.updated" in defaults


def test_the_forward_request_carries_the_header_secret_by_reference(template: dict[str, Any]) -> None:
    connection = resource("ForwardConnection", template)["Properties"]
    assert connection["AuthorizationType"] == "API_KEY"
    api_key = connection["AuthParameters"]["ApiKeyAuthParameters"]
    assert api_key["ApiKeyName"] == {"Ref": "ForwardHeaderName"}
    condition, generated, given = api_key["ApiKeyValue"]["Fn::If"]
    assert condition == "GenerateForwardSecret"
    assert generated == {"Fn::Sub": "{{resolve:secretsmanager:${ForwardHeaderSecret}}}"}
    assert given == {"Fn::Sub": "{{resolve:secretsmanager:${ForwardHeaderSecretArn}}}"}
    assert resource("ForwardHeaderSecret", template)["Condition"] == "GenerateForwardSecret"
    destination = resource("ForwardDestination", template)["Properties"]
    assert destination["HttpMethod"] == "POST" and destination["InvocationEndpoint"] == {"Ref": "ForwardUrl"}


def test_the_forward_rule_s_role_may_only_invoke_its_destination() -> None:
    # moto cannot invoke API destinations: the translated role is the evidence (README, "Least privilege").
    role = roles()["ForwardRole"]
    assert role.trust_policy["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert role.trust_policy["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    assert [(s["Effect"], s["Action"], s["Resource"]) for s in role.statements()] == [
        ("Allow", "events:InvokeApiDestination", {"Fn::GetAtt": ["ForwardDestination", "Arn"]})
    ]
    assert role.managed_policy_arns == []


def test_only_the_forward_rule_may_fill_its_dead_letter_queue(template: dict[str, Any]) -> None:
    (statement,) = resource("ForwardDeadLetterQueuePolicy", template)["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ForwardRule", "Arn"]}}}


def test_the_archive_keeps_the_bus_s_events_for_replay(template: dict[str, Any]) -> None:
    archive = resource("EventArchive", template)["Properties"]
    assert archive["EventPattern"] == {"source": ["calendly-sync"]}
    assert archive["RetentionDays"] == {"Ref": "EventArchiveRetentionDays"}
    assert archive["SourceArn"]["Fn::If"][1] == {"Fn::GetAtt": ["CalendlyEventBus", "Arn"]}
    assert template["Parameters"]["EventArchiveRetentionDays"]["Default"] == 30
    assert "EventArchiveName" in template["Outputs"]


def test_the_bus_policy_exists_only_for_named_consumer_accounts(template: dict[str, Any]) -> None:
    assert template["Parameters"]["ConsumerAccountIds"] == {
        "Type": "CommaDelimitedList",
        "Default": "",
        "Description": template["Parameters"]["ConsumerAccountIds"]["Description"],
    }
    policy = resource("CalendlyEventBusPolicy", template)
    assert policy["Condition"] == "ShareEventBus"
    statement = policy["Properties"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Ref": "ConsumerAccountIds"}}
    # They manage rules on the bus; they never publish to it
    assert "events:PutEvents" not in statement["Action"]
    assert all(
        action.startswith("events:") and any(word in action.lower() for word in ("rule", "target", "tag"))
        for action in statement["Action"]
    )

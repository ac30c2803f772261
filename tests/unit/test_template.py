"""template.yaml: the public contract (logical ids, route, outputs) and its hardening."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.stack import http_routes, load_template, resource

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


def test_policies_are_scoped_to_single_resources_of_the_stack(template: dict[str, Any]) -> None:
    for logical_id, function in functions(template).items():
        for policy in function["Properties"]["Policies"]:
            assert isinstance(policy, dict) and len(policy) == 1, logical_id
            ((name, arguments),) = policy.items()
            if name == "Statement":
                # Inline statements only where no SAM template fits, each on one resource by !Ref
                for statement in arguments:
                    assert statement["Resource"]["Ref"] in template["Resources"], (logical_id, statement)
                    assert "*" not in str(statement["Action"]), (logical_id, statement)
                continue
            # SAM policy templates, each naming one resource of this stack (!Ref or !GetAtt)
            assert name.endswith("Policy") and isinstance(arguments, dict), logical_id
            for value in arguments.values():
                target = value["Fn::GetAtt"][0] if "Fn::GetAtt" in value else value.get("Ref")
                assert target in template["Resources"], (logical_id, name, value)


def _secrets_read_by(template: dict[str, Any], logical_id: str) -> set[str]:
    policies = resource(logical_id, template)["Properties"]["Policies"]
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
                assert properties["MaximumRetryAttempts"] >= 1, (logical_id, name)


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

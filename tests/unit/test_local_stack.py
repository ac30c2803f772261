"""local/stack.py reads what the local runner needs out of a template, restating nothing."""

from __future__ import annotations

import json
from typing import Any

from local.stack import (
    LocalStack,
    event_rule_pattern,
    function_environment,
    function_ids,
    http_routes,
    parameter_defaults,
    schedules,
)

TEMPLATE: dict[str, Any] = {
    "Globals": {
        "Function": {"Environment": {"Variables": {"TABLE_NAME": {"Ref": "Table"}, "LEVEL": "INFO"}}}
    },
    "Resources": {
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Poll": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "app.lambda_handler",
                "CodeUri": "functions/poll/",
                "Environment": {"Variables": {"LEVEL": "DEBUG", "URL": {"Fn::Sub": "https://${Api}/x"}}},
                "Events": {
                    "Every15": {
                        "Type": "ScheduleV2",
                        "Properties": {
                            "ScheduleExpression": "rate(15 minutes)",
                            "Input": json.dumps({"mode": "sync"}),
                        },
                    },
                    "Hook": {"Type": "HttpApi", "Properties": {"Path": "/hook", "Method": "post"}},
                },
            },
        },
    },
}


def test_functions_routes_and_schedules_come_from_the_template() -> None:
    assert function_ids(TEMPLATE) == ["Poll"]
    assert http_routes(TEMPLATE) == {("POST", "/hook"): "Poll"}
    (schedule,) = schedules(TEMPLATE)
    assert (schedule.function, schedule.expression, schedule.payload) == (
        "Poll",
        "rate(15 minutes)",
        {"mode": "sync"},
    )


def test_a_function_environment_is_globals_then_its_own_with_refs_resolved() -> None:
    environment = function_environment("Poll", LocalStack({"Table": "t-1", "Api": "local"}), TEMPLATE)
    assert environment == {"TABLE_NAME": "t-1", "LEVEL": "DEBUG", "URL": "https://local/x"}


BUS_TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "EventBusName": {"Type": "String", "Default": ""},
        "ForwardUrl": {"Type": "String", "Default": ""},
        "ForwardDetailTypes": {"Type": "CommaDelimitedList", "Default": "invitee.created,invitee.canceled"},
        "ConsumerAccountIds": {"Type": "CommaDelimitedList", "Default": ""},
    },
    "Conditions": {
        "CreateEventBus": {"Fn::Equals": [{"Ref": "EventBusName"}, ""]},
        "Forwarding": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ForwardUrl"}, ""]}]},
        "ShareEventBus": {
            "Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "ConsumerAccountIds"}]}, ""]}]
        },
        "ForwardOwnBus": {"Fn::And": [{"Condition": "Forwarding"}, {"Condition": "CreateEventBus"}]},
    },
    "Resources": {
        "Bus": {
            "Type": "AWS::Events::EventBus",
            "Properties": {"Name": {"Fn::Sub": "${AWS::StackName}-bus"}},
        },
        "ForwardRule": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Fn::If": ["CreateEventBus", {"Ref": "Bus"}, {"Ref": "EventBusName"}]},
                "EventPattern": {"source": ["calendly-sync"], "detail-type": {"Ref": "ForwardDetailTypes"}},
            },
        },
    },
}


def local(**refs: str) -> LocalStack:
    return LocalStack({**parameter_defaults(BUS_TEMPLATE), "AWS::StackName": "s", **refs}, BUS_TEMPLATE)


def test_conditions_are_decided_on_the_local_parameter_values() -> None:
    # Given the defaults: the stack makes its own bus, forwards nothing, shares with no account
    defaults = local()
    assert defaults.condition("CreateEventBus") and not defaults.condition("Forwarding")
    assert not defaults.condition("ShareEventBus") and not defaults.condition("ForwardOwnBus")
    # When a run gives a forward URL and consumer accounts, the conditions follow
    forwarding = local(ForwardUrl="http://127.0.0.1:1/flow", ConsumerAccountIds="111111111111")
    assert forwarding.condition("Forwarding") and forwarding.condition("ForwardOwnBus")
    assert forwarding.condition("ShareEventBus")


def test_a_rule_pattern_gets_the_list_parameter_as_a_list_and_its_bus_by_condition() -> None:
    stack = local(Bus="s-bus")
    assert event_rule_pattern("ForwardRule", stack) == {
        "source": ["calendly-sync"],
        "detail-type": ["invitee.created", "invitee.canceled"],
    }
    rule = BUS_TEMPLATE["Resources"]["ForwardRule"]["Properties"]
    assert stack.resolve(rule["EventBusName"]) == "s-bus"
    assert local(EventBusName="shared").resolve(rule["EventBusName"]) == "shared"
    assert stack.resolve(BUS_TEMPLATE["Resources"]["Bus"]["Properties"]["Name"]) == "s-bus"

"""local/stack.py reads what the local runner needs out of a template, restating nothing."""

from __future__ import annotations

import json
from typing import Any

from local.stack import LocalStack, function_environment, function_ids, http_routes, schedules

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

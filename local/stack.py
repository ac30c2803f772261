"""The stack as ``template.yaml`` describes it, for everything that runs it without AWS.

Tests, the demo and the benchmarks build the table and secrets from the template's own
resource definitions and read each function's environment and routes from it, so nothing
here restates the template.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation's short tags (``!Ref x`` -> ``{"Ref": "x"}``)."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


@cache
def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        # A SafeLoader subclass: it builds plain dicts, lists and strings only.
        template: dict[str, Any] = yaml.load(handle, Loader=_TemplateLoader)  # noqa: S506  # nosec B506
    return template


def resource(logical_id: str, template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = (template or load_template())["Resources"]
    if logical_id not in resources:
        raise KeyError(f"template.yaml has no resource {logical_id}")
    found: dict[str, Any] = resources[logical_id]
    return found


def parameter_defaults(template: Mapping[str, Any] | None = None) -> dict[str, str]:
    parameters = (template or load_template()).get("Parameters", {})
    return {name: str(spec["Default"]) for name, spec in parameters.items() if "Default" in spec}


@dataclass(frozen=True)
class LocalStack:
    """Physical names of a locally created stack, keyed like CloudFormation's ``!Ref``."""

    refs: dict[str, str]

    def resolve(self, value: Any) -> str:
        """Resolve the intrinsics the template uses in environment variables."""
        if isinstance(value, str | int | float | bool):
            return str(value)
        if isinstance(value, Mapping) and "Ref" in value:
            return self._ref(value["Ref"])
        if isinstance(value, Mapping) and "Fn::Sub" in value:
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._ref(m.group(1)), value["Fn::Sub"])
        raise ValueError(f"cannot resolve {value!r} locally")

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": "us-east-1",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::AccountId": "123456789012",
        }
        if name in self.refs:
            return self.refs[name]
        if name in pseudo:
            return pseudo[name]
        raise KeyError(f"no local value for !Ref {name}")


def create_table(client: Any, table_name: str, template: Mapping[str, Any] | None = None) -> None:
    """Create ``CalendlyTable`` with the template's keys, indexes, stream and TTL."""
    properties = resource("CalendlyTable", template)["Properties"]
    arguments: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": properties["BillingMode"],
    }
    if "GlobalSecondaryIndexes" in properties:
        arguments["GlobalSecondaryIndexes"] = properties["GlobalSecondaryIndexes"]
    if "StreamSpecification" in properties:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
    client.create_table(**arguments)
    ttl = properties.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)


def create_secret(client: Any, logical_id: str, name: str, template: Mapping[str, Any] | None = None) -> str:
    """Create a template secret; a ``GenerateSecretString`` one gets a fresh random value."""
    properties = resource(logical_id, template)["Properties"]
    generate = properties.get("GenerateSecretString")
    arguments: dict[str, Any] = {"Name": name, "Description": str(properties.get("Description", "")).strip()}
    if generate:
        value = json.loads(generate.get("SecretStringTemplate", "{}"))
        value[generate["GenerateStringKey"]] = secrets.token_urlsafe(generate.get("PasswordLength", 32))[
            : generate.get("PasswordLength", 32)
        ]
        arguments["SecretString"] = json.dumps(value)
    elif "SecretString" in properties:
        arguments["SecretString"] = properties["SecretString"]
    arn: str = client.create_secret(**arguments)["ARN"]
    return arn


def function_environment(
    logical_id: str, stack: LocalStack, template: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """A function's environment as Lambda would see it: Globals, then its own variables."""
    template = template or load_template()
    merged: dict[str, Any] = {}
    merged.update(template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
    merged.update(resource(logical_id, template)["Properties"].get("Environment", {}).get("Variables", {}))
    return {name: stack.resolve(value) for name, value in merged.items()}


def function_ids(template: Mapping[str, Any] | None = None) -> list[str]:
    """Logical ids of every function in the template."""
    resources = (template or load_template())["Resources"]
    return [
        logical_id
        for logical_id, spec in resources.items()
        if spec.get("Type") == "AWS::Serverless::Function"
    ]


def http_routes(template: Mapping[str, Any] | None = None) -> dict[tuple[str, str], str]:
    """``(METHOD, path) -> function logical id`` for every HttpApi event in the template."""
    routes: dict[tuple[str, str], str] = {}
    for logical_id, spec in (template or load_template())["Resources"].items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        for event in spec["Properties"].get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                properties = event["Properties"]
                routes[(properties["Method"].upper(), properties["Path"])] = logical_id
    return routes


@dataclass(frozen=True)
class Schedule:
    function: str
    expression: str
    #: What EventBridge Scheduler hands the function (the target's Input, else an empty object).
    payload: dict[str, Any]


def schedules(template: Mapping[str, Any] | None = None) -> list[Schedule]:
    """Every Schedule/ScheduleV2 event in the template, with the input it invokes with."""
    found: list[Schedule] = []
    for logical_id, spec in (template or load_template())["Resources"].items():
        if spec.get("Type") != "AWS::Serverless::Function":
            continue
        for event in spec["Properties"].get("Events", {}).values():
            if event.get("Type") in ("Schedule", "ScheduleV2"):
                properties = event["Properties"]
                raw_input = properties.get("Input")
                payload = json.loads(raw_input) if isinstance(raw_input, str) else {}
                found.append(Schedule(logical_id, str(properties.get("ScheduleExpression", "")), payload))
    return found


def handler_path(logical_id: str, template: Mapping[str, Any] | None = None) -> tuple[Path, str]:
    """``(source file, function name)`` of a function's handler, e.g. ``functions/x/app.py``."""
    properties = resource(logical_id, template)["Properties"]
    module, function = properties["Handler"].rsplit(".", 1)
    return REPO_ROOT / properties["CodeUri"] / f"{module.replace('.', '/')}.py", function

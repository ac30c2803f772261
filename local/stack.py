"""The stack as ``template.yaml`` describes it, for everything that runs it without AWS.

Tests, the demo and the benchmarks build the table and secrets from the template's own
resource definitions and read each function's environment and routes from it, so nothing
here restates the template.
"""

from __future__ import annotations

import json
import re
import secrets
import string
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
    """Physical names of a locally created stack, keyed like CloudFormation's ``!Ref``.

    Parameters are in ``refs`` too (their defaults, or what the local run chooses), so the
    template's conditions are decided on the values this stack really has.
    """

    refs: dict[str, str]
    template: Mapping[str, Any] | None = None

    def resolve(self, value: Any) -> str:
        """Resolve the intrinsics the template uses in environment variables."""
        resolved = self.resolve_value(value)
        if isinstance(resolved, list):
            return ",".join(str(part) for part in resolved)
        if isinstance(resolved, str | int | float | bool):
            return str(resolved)
        raise ValueError(f"cannot resolve {value!r} locally")

    def resolve_value(self, value: Any) -> Any:
        """Any template value with its intrinsics resolved: lists stay lists, a list parameter a list."""
        if isinstance(value, list):
            return [self.resolve_value(part) for part in value]
        if not isinstance(value, Mapping):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self._ref_value(argument)
            if name == "Fn::Sub":
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._ref(m.group(1)), argument)
            if name == "Fn::If":
                condition, when_true, when_false = argument
                return self.resolve_value(when_true if self.condition(condition) else when_false)
            if name == "Fn::Join":
                separator, parts = argument
                return separator.join(str(part) for part in _flatten(self.resolve_value(parts)))
            if name.startswith("Fn::"):
                raise ValueError(f"cannot resolve {value!r} locally")
        return {key: self.resolve_value(part) for key, part in value.items()}

    def condition(self, name: str) -> bool:
        """A template condition, decided on this stack's parameter values."""
        conditions = self._template().get("Conditions", {})
        if name not in conditions:
            raise KeyError(f"template.yaml has no condition {name}")
        return self._decide(conditions[name])

    def _decide(self, expression: Any) -> bool:
        if isinstance(expression, Mapping) and len(expression) == 1:
            ((name, argument),) = expression.items()
            if name == "Condition":
                return self.condition(argument)
            if name == "Fn::Equals":
                left, right = (self.resolve_value(part) for part in argument)
                return bool(_comparable(left) == _comparable(right))
            if name == "Fn::Not":
                return not self._decide(argument[0])
            if name == "Fn::And":
                return all(self._decide(part) for part in argument)
            if name == "Fn::Or":
                return any(self._decide(part) for part in argument)
        raise ValueError(f"cannot decide {expression!r} locally")

    def _template(self) -> Mapping[str, Any]:
        return self.template if self.template is not None else load_template()

    def _ref_value(self, name: str) -> Any:
        spec = self._template().get("Parameters", {}).get(name, {})
        text = self._ref(name)
        if str(spec.get("Type", "")).startswith(("CommaDelimitedList", "List<")):
            return [part.strip() for part in text.split(",") if part.strip()]
        return text

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": "us-east-1",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::AccountId": "123456789012",
            "AWS::Partition": "aws",
        }
        if name in self.refs:
            return self.refs[name]
        if name in pseudo:
            return pseudo[name]
        raise KeyError(f"no local value for !Ref {name}")


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [inner for part in value for inner in _flatten(part)]
    return [value]


def _comparable(value: Any) -> Any:
    return ",".join(str(part) for part in value) if isinstance(value, list) else str(value)


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
        alphabet = string.ascii_letters + string.digits
        if not generate.get("ExcludePunctuation"):
            alphabet += string.punctuation
        generated = "".join(secrets.choice(alphabet) for _ in range(int(generate.get("PasswordLength", 32))))
        if "GenerateStringKey" in generate:
            value = json.loads(generate.get("SecretStringTemplate", "{}"))
            value[generate["GenerateStringKey"]] = generated
            arguments["SecretString"] = json.dumps(value)
        else:  # a bare generated string, as Secrets Manager makes without a template
            arguments["SecretString"] = generated
    elif "SecretString" in properties:
        arguments["SecretString"] = properties["SecretString"]
    arn: str = client.create_secret(**arguments)["ARN"]
    return arn


def create_event_bus(client: Any, stack: LocalStack) -> tuple[str, str]:
    """Create ``CalendlyEventBus`` under the name the template gives it; ``(name, ARN)``."""
    properties = resource("CalendlyEventBus", stack.template).get("Properties", {})
    name = stack.resolve(properties.get("Name", {"Fn::Sub": "${AWS::StackName}-CalendlyEventBus"}))
    arguments: dict[str, Any] = {"Name": name}
    if "Description" in properties:
        arguments["Description"] = str(properties["Description"])[:512]
    arn: str = client.create_event_bus(**arguments)["EventBusArn"]
    return name, arn


def create_archive(client: Any, logical_id: str, name: str, source_arn: str, stack: LocalStack) -> str | None:
    """Create the template's archive of the bus (pattern and retention from the template)."""
    properties = resource(logical_id, stack.template)["Properties"]
    arguments: dict[str, Any] = {"ArchiveName": name, "EventSourceArn": source_arn}
    if "EventPattern" in properties:
        arguments["EventPattern"] = json.dumps(stack.resolve_value(properties["EventPattern"]))
    if "RetentionDays" in properties:
        arguments["RetentionDays"] = int(stack.resolve(properties["RetentionDays"]))
    arn: str | None = client.create_archive(**arguments).get("ArchiveArn")
    return arn


def event_rule_pattern(logical_id: str, stack: LocalStack) -> dict[str, Any]:
    """A rule's event pattern with its parameters filled in (e.g. a list parameter of detail-types)."""
    pattern = resource(logical_id, stack.template)["Properties"]["EventPattern"]
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    resolved: dict[str, Any] = stack.resolve_value(pattern)
    return resolved


def create_event_rule(client: Any, logical_id: str, stack: LocalStack, name: str | None = None) -> str:
    """Put one of the template's ``AWS::Events::Rule`` on the bus it names; returns the rule's name.

    The name is the template's (else ``name``, else ``<stack>-<logical id>``). Targets are the
    caller's: locally they are queues standing in for what the template targets.
    """
    properties = resource(logical_id, stack.template)["Properties"]
    if "Name" in properties:
        name = stack.resolve(properties["Name"])
    name = name or stack.resolve({"Fn::Sub": f"${{AWS::StackName}}-{logical_id}"})
    arguments: dict[str, Any] = {
        "Name": name,
        "EventPattern": json.dumps(event_rule_pattern(logical_id, stack)),
        "State": properties.get("State", "ENABLED"),
    }
    if "EventBusName" in properties:
        arguments["EventBusName"] = stack.resolve(properties["EventBusName"])
    client.put_rule(**arguments)
    return name


def rule_target(logical_id: str, stack: LocalStack) -> dict[str, Any]:
    """The rule's (single) target as the template writes it, intrinsics resolved where they can be."""
    targets = resource(logical_id, stack.template)["Properties"].get("Targets", [])
    if len(targets) != 1:
        raise ValueError(f"{logical_id} has {len(targets)} targets; the local runner emulates one")
    target: dict[str, Any] = targets[0]
    return target


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

"""The functions' IAM roles exactly as AWS creates them: template.yaml through the SAM translator.

SAM writes each function's role (its ``Policies:`` policy templates, inline statements and
managed policy ARNs, plus what its events add), so the roles are read from the translated
template, never restated here. ``Resolver`` turns the intrinsics in them into the names and
ARNs of the resources a test created.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from local.stack import TEMPLATE_PATH

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
# sam package puts every CodeUri and ContentUri in S3; the translator insists on that form.
_PACKAGED_CODE = "s3://calendly-sync-artifacts/code.zip"


@cache
def _translated() -> dict[str, Any]:
    template = yaml_parse(TEMPLATE_PATH.read_text(encoding="utf-8"))
    for spec in template["Resources"].values():
        properties = spec.get("Properties") or {}
        for name in ("CodeUri", "ContentUri"):
            if name in properties:
                properties[name] = _PACKAGED_CODE
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    # Managed policies named in Policies: by name would need IAM to look up; the template names none.
    translated: dict[str, Any] = translator.translate(
        template, parameter_values={}, get_managed_policy_map=lambda: {}
    )
    return translated


def translated_template() -> dict[str, Any]:
    """The CloudFormation template ``sam deploy`` would submit (a copy: callers may change it)."""
    return copy.deepcopy(_translated())


@dataclass(frozen=True)
class Role:
    """One IAM role of the stack: its inline policy documents and managed policy ARNs."""

    logical_id: str
    trust_policy: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    managed_policy_arns: list[Any] = field(default_factory=list)

    def statements(self) -> Iterator[dict[str, Any]]:
        for document in self.policies.values():
            statements = document["Statement"]
            yield from statements if isinstance(statements, list) else [statements]


def roles(template: Mapping[str, Any] | None = None) -> dict[str, Role]:
    """Every ``AWS::IAM::Role`` of the translated template, by logical id."""
    resources = (template or _translated())["Resources"]
    return {
        logical_id: Role(
            logical_id,
            spec["Properties"]["AssumeRolePolicyDocument"],
            {p["PolicyName"]: p["PolicyDocument"] for p in spec["Properties"].get("Policies", [])},
            list(spec["Properties"].get("ManagedPolicyArns", [])),
        )
        for logical_id, spec in resources.items()
        if spec["Type"] == "AWS::IAM::Role"
    }


def function_role(function_id: str, template: Mapping[str, Any] | None = None) -> Role:
    """The execution role of a function (SAM's generated one, or the one its ``Role`` names)."""
    template = template or _translated()
    role = template["Resources"][function_id]["Properties"]["Role"]
    if not (isinstance(role, Mapping) and "Fn::GetAtt" in role and role["Fn::GetAtt"][1] == "Arn"):
        raise ValueError(f"{function_id}'s role is not a role of this stack: {role!r}")
    return roles(template)[role["Fn::GetAtt"][0]]


def function_ids(template: Mapping[str, Any] | None = None) -> list[str]:
    resources = (template or _translated())["Resources"]
    return [logical_id for logical_id, spec in resources.items() if spec["Type"] == "AWS::Lambda::Function"]


@dataclass(frozen=True)
class Resolver:
    """Resolves ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and ``Fn::Join`` to a test's resources.

    ``refs`` maps a logical id to what ``!Ref`` gives, ``attributes`` ``"Id.Attribute"`` to what
    ``!GetAtt`` gives, ``conditions`` a condition's name to its value for the parameters the
    test stands for (``!If``). Anything else is an error: a role must not name a resource the
    test does not know, or the test would prove nothing about it.
    """

    refs: Mapping[str, str]
    attributes: Mapping[str, str]
    conditions: Mapping[str, bool] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, Mapping):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            target = value["Fn::GetAtt"]
            name = ".".join(target) if isinstance(target, list) else target
            if name not in self.attributes:
                raise KeyError(f"no test value for !GetAtt {name}")
            return self.attributes[name]
        if set(value) == {"Fn::Sub"}:
            return self._sub(value["Fn::Sub"])
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            if condition not in self.conditions:
                raise KeyError(f"no test value for condition {condition}")
            return self.resolve(when_true if self.conditions[condition] else when_false)
        if set(value) == {"Fn::Join"}:
            separator, parts = value["Fn::Join"]
            return separator.join(str(self.resolve(p)) for p in parts)
        if any(key.startswith("Fn::") for key in value):
            raise ValueError(f"cannot resolve {value!r}")
        return {key: self.resolve(v) for key, v in value.items()}

    def _ref(self, name: str) -> str:
        pseudo = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in self.refs:
            return self.refs[name]
        if name in pseudo:
            return pseudo[name]
        raise KeyError(f"no test value for !Ref {name}")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {name: str(self.resolve(v)) for name, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return local[name]
            if "." in name:
                return str(self.resolve({"Fn::GetAtt": name.split(".", 1)}))
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

"""Strict mode: every API request is also checked against Calendly's own OpenAPI description.

The sandbox accepts what the live API accepts; strict mode goes further and refuses what the
published description does not know, so a client bug (a misspelt parameter, an event name
Calendly never heard of, a body member it ignores) fails a test instead of passing silently
here and misbehaving against api.calendly.com. Checked, per operation: the path and method
exist; every query parameter is one the operation lists, and its value fits the parameter's
enum / number range / boolean; every JSON body member is one the operation's body schema lists,
and its value fits that member's enum (arrays item by item).

Not checked, on purpose: missing required parameters or members. The sandbox answers those
400 as Calendly does, and the project sends one on purpose (an empty subscription body probes
the ``webhooks:write`` scope without creating anything).

A violation is answered 400 ``Invalid Argument`` with a message starting "strict mode:", and
recorded, so a fixture can fail the test even if the client swallowed the 400.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What the live API accepts beyond the April 2023 description, each as documented in
# ../shared/calendly/api-facts.md (the section is named). Exactly these, nothing else.
DOCUMENTED_EXTRAS: dict[tuple[str, str], dict[str, Any]] = {
    # "Reading data": GET /scheduled_events takes `organization` or `user` (+ `group`).
    ("GET", "/scheduled_events"): {"query": {"group": None}},
    # "Webhook subscriptions": GET /webhook_subscriptions?organization=&scope=&user=&group=;
    # scope=group is a scope like organization and user (the event table lists it).
    ("GET", "/webhook_subscriptions"): {"query": {"group": None}, "enum": {"scope": {"group"}}},
    # "Webhook subscriptions": body {url, events[], organization, scope, user?, group?, signing_key?};
    # the event table adds the no-show and event-type events to the 2023 enum, and scope=group.
    ("POST", "/webhook_subscriptions"): {
        "body": {"group": None},
        "enum": {
            "scope": {"group"},
            "events": {
                "invitee_no_show.created",
                "invitee_no_show.deleted",
                "event_type.created",
                "event_type.updated",
                "event_type.deleted",
            },
        },
    },
    # "Webhook subscriptions": GET /sample_webhook_data?event=&organization=&scope= (not in the 2023 file).
    ("GET", "/sample_webhook_data"): {
        "new": True,
        "query": {"event": None, "organization": None, "scope": None},
    },
}


@dataclass(frozen=True)
class _Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    query: Mapping[str, Mapping[str, Any] | None]  # name -> schema (None: anything)
    body: Mapping[str, Mapping[str, Any] | None] | None  # member -> schema; None: body not described
    extra_enum: Mapping[str, frozenset[str]] = field(default_factory=dict)


class OpenApiRequestRules:
    """The request rules of one OpenAPI 3.0 document, plus ``DOCUMENTED_EXTRAS``."""

    def __init__(self, spec: Mapping[str, Any], source: str) -> None:
        self.source = source
        self._spec = spec
        operations = [
            op for template, item in spec["paths"].items() for op in self._operations(template, item)
        ]
        described = {(op.method, op.template) for op in operations}
        for (method, template), extra in DOCUMENTED_EXTRAS.items():
            if extra.get("new") and (method, template) not in described:
                operations.append(
                    _Operation(method, template, _path_pattern(template), dict(extra.get("query", {})), None)
                )
        # Literal segments first: /users/me must not be taken for /users/{uuid}.
        self._operations_by_method: dict[str, list[_Operation]] = {}
        for op in sorted(operations, key=lambda op: op.template.count("{")):
            self._operations_by_method.setdefault(op.method, []).append(op)

    @classmethod
    def from_file(cls, path: Path) -> OpenApiRequestRules:
        import yaml  # a development dependency, like the sandbox itself

        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(spec, path.name)

    def violations(
        self, method: str, path: str, query: Mapping[str, Sequence[str]], body: bytes
    ) -> list[str]:
        """What in this request the description does not know (empty when it conforms)."""
        method = method.upper()
        path = path.rstrip("/") or "/"
        operation = next(
            (op for op in self._operations_by_method.get(method, []) if op.pattern.match(path)), None
        )
        if operation is None:
            return [f"{method} {path} is not an operation of Calendly's API ({self.source})"]
        where = f"{method} {operation.template}"
        found: list[str] = []
        for name, values in query.items():
            if name not in operation.query:
                found.append(f"{where}: unknown query parameter {name!r}")
                continue
            for value in values:
                problem = self._value_problem(
                    operation.query[name], value, operation.extra_enum.get(name), query=True
                )
                if problem:
                    found.append(f"{where}: query parameter {name!r} {problem}")
        if operation.body is not None and body.strip():
            found.extend(self._body_violations(operation, where, body))
        return found

    # -- reading the document -----------------------------------------------------------------------

    def _operations(self, template: str, item: Mapping[str, Any]) -> list[_Operation]:
        shared = item.get("parameters", [])
        found = []
        for method, operation in item.items():
            if method == "parameters" or not isinstance(operation, Mapping):
                continue
            extras = DOCUMENTED_EXTRAS.get((method.upper(), template), {})
            query: dict[str, Mapping[str, Any] | None] = {}
            for parameter in [*shared, *operation.get("parameters", [])]:
                parameter = self.resolve(parameter)
                if parameter.get("in") == "query":
                    query[parameter["name"]] = self.resolve(parameter.get("schema", {}))
            query.update(extras.get("query", {}))
            body_schema = (
                operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            )
            body: dict[str, Mapping[str, Any] | None] | None = None
            if body_schema is not None:
                properties = self.resolve(body_schema).get("properties")
                if properties is not None:
                    body = {name: self.resolve(schema) for name, schema in properties.items()}
                    body.update(extras.get("body", {}))
            extra_enum = {name: frozenset(values) for name, values in extras.get("enum", {}).items()}
            found.append(
                _Operation(method.upper(), template, _path_pattern(template), query, body, extra_enum)
            )
        return found

    def resolve(self, node: Any) -> Any:
        while isinstance(node, Mapping) and "$ref" in node:
            target: Any = self._spec
            for part in str(node["$ref"]).removeprefix("#/").split("/"):
                target = target[part]
            node = target
        return node

    # -- checking values --------------------------------------------------------------------------

    def _body_violations(self, operation: _Operation, where: str, body: bytes) -> list[str]:
        assert operation.body is not None
        try:
            parsed = json.loads(body)
        except ValueError:
            return [f"{where}: the body is not JSON"]
        if not isinstance(parsed, dict):
            return [f"{where}: the body is not a JSON object"]
        found = []
        for name, value in parsed.items():
            if name not in operation.body:
                found.append(f"{where}: unknown body member {name!r}")
                continue
            problem = self._value_problem(
                operation.body[name], value, operation.extra_enum.get(name), query=False
            )
            if problem:
                found.append(f"{where}: body member {name!r} {problem}")
        return found

    def _value_problem(
        self, schema: Mapping[str, Any] | None, value: Any, extra: frozenset[str] | None, *, query: bool
    ) -> str | None:
        if not schema:
            return None
        if schema.get("type") == "array" and isinstance(value, list):
            items = self.resolve(schema.get("items", {}))
            for item in value:
                problem = self._value_problem(items, item, extra, query=query)
                if problem:
                    return problem
            return None
        allowed = schema.get("enum")
        extra_allowed = isinstance(value, str) and value in (extra or ())
        if allowed is not None and value not in allowed and not extra_allowed:
            # Enum values are names, never personal data: safe to repeat.
            return f"has {value!r}, not one of {sorted(set(allowed) | set(extra or ()))}"
        if query and schema.get("type") in ("number", "integer"):
            return _number_problem(schema, value)
        if query and schema.get("type") == "boolean" and value not in ("true", "false"):
            return "is not true or false"
        return None


def _number_problem(schema: Mapping[str, Any], raw: str) -> str | None:
    try:
        number = float(raw)
    except ValueError:
        return "is not a number"
    if "minimum" in schema and number < schema["minimum"]:
        return f"is below its minimum {schema['minimum']}"
    if "maximum" in schema and number > schema["maximum"]:
        return f"is above its maximum {schema['maximum']}"
    return None


def _path_pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")


class StrictMode:
    """The rules, and every violation seen so far (the test fixture reads and clears them)."""

    def __init__(self, rules: OpenApiRequestRules) -> None:
        self.rules = rules
        self._lock = threading.Lock()
        self._violations: list[str] = []

    def check(self, method: str, path: str, query: Mapping[str, Sequence[str]], body: bytes) -> list[str]:
        found = self.rules.violations(method, path, query, body)
        if found:
            with self._lock:
                self._violations.extend(found)
        return found

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def clear(self) -> None:
        with self._lock:
            self._violations.clear()

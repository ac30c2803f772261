"""Sandbox responses and deliveries validated against Calendly's own OpenAPI description (2023).

The spec lives outside the project (../shared/calendly/openapi-2023.yaml); without it, or without the
validator packages, these tests skip. The live API has moved on since 2023, so bodies may carry
fields the spec does not list (extra fields are allowed by the schemas) and the subscriptions here
only use the events the 2023 enum knows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from tests.sandbox.conftest import SEED_START
from tests.sandbox.helpers import Api, WebhookReceiver, path_of

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT.parent / "shared/calendly/openapi-2023.yaml"
CALENDLY_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@dataclass(frozen=True)
class Observed:
    """A body the sandbox produced, and where the spec describes it."""

    body: Any
    schema_pointer: tuple[str, ...]  # path into the spec document


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.is_file():
        pytest.skip(f"Calendly OpenAPI spec not present at ../shared/calendly/{SPEC_PATH.name}")
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return loaded


def response_pointer(path: str, method: str, status: str) -> tuple[str, ...]:
    return ("paths", path, method, "responses", status, "content", "application/json", "schema")


@pytest.fixture(scope="module")
def observed() -> Iterator[dict[str, Observed]]:
    """Drive one sandbox through every endpoint the project uses and keep what it answered."""
    with (
        CalendlySandbox(SandboxConfig(seed=2023)) as sandbox,
        WebhookReceiver() as receiver,
    ):
        api = Api(sandbox.base_url, sandbox.add_token(TokenSpec(role="owner")))
        org = sandbox.organization_uri
        sandbox.seed(users=2, event_types_per_user=2, scheduled_events=40, start=SEED_START, days=10)
        created = api.subscribe(receiver.url, org, events=["invitee.created", "invitee.canceled"])
        booked = sandbox.book(start_time=SEED_START + timedelta(hours=3))
        sandbox.reschedule(booked, SEED_START + timedelta(days=2))
        assert sandbox.deliver_pending(timeout=10)

        me = api.get("/users/me").json()
        event = api.get("/scheduled_events", organization=org, count=5).json()
        canceled = api.get("/scheduled_events", organization=org, status="canceled").json()
        event_path = path_of(event["collection"][0]["uri"])
        invitees = api.get(f"{event_path}/invitees").json()
        subscription_path = path_of(created.json()["resource"]["uri"])
        found: dict[str, Observed] = {
            "users/me": Observed(me, response_pointer("/users/me", "get", "200")),
            "users/{uuid}": Observed(
                api.get(path_of(me["resource"]["uri"])).json(),
                response_pointer("/users/{uuid}", "get", "200"),
            ),
            "organization_memberships": Observed(
                api.get("/organization_memberships", organization=org).json(),
                response_pointer("/organization_memberships", "get", "200"),
            ),
            "event_types": Observed(
                api.get("/event_types", organization=org).json(),
                response_pointer("/event_types", "get", "200"),
            ),
            "scheduled_events": Observed(event, response_pointer("/scheduled_events", "get", "200")),
            "scheduled_events canceled": Observed(
                canceled, response_pointer("/scheduled_events", "get", "200")
            ),
            "scheduled_events/{uuid}": Observed(
                api.get(event_path).json(), response_pointer("/scheduled_events/{uuid}", "get", "200")
            ),
            "invitees": Observed(
                invitees, response_pointer("/scheduled_events/{uuid}/invitees", "get", "200")
            ),
            "invitee": Observed(
                api.get(path_of(invitees["collection"][0]["uri"])).json(),
                response_pointer("/scheduled_events/{event_uuid}/invitees/{invitee_uuid}", "get", "200"),
            ),
            "webhook_subscriptions POST": Observed(
                created.json(), response_pointer("/webhook_subscriptions", "post", "201")
            ),
            "webhook_subscriptions": Observed(
                api.get("/webhook_subscriptions", organization=org, scope="organization").json(),
                response_pointer("/webhook_subscriptions", "get", "200"),
            ),
            "webhook_subscriptions/{uuid}": Observed(
                api.get(subscription_path).json(),
                response_pointer("/webhook_subscriptions/{webhook_uuid}", "get", "200"),
            ),
            "error 401": Observed(
                api.get("/users/me", token="bogus").json(), ("components", "schemas", "ErrorResponse")
            ),
            "error 400": Observed(
                api.get("/scheduled_events", organization=org, count=0).json(),
                ("components", "schemas", "ErrorResponse"),
            ),
        }
        for index, delivery in enumerate(receiver.received):
            found[f"delivery {index} {delivery.event}"] = Observed(
                delivery.envelope, ("components", "schemas", "WebhookPayload")
            )
        yield found


def schema_at(spec: dict[str, Any], pointer: tuple[str, ...]) -> dict[str, Any]:
    node: Any = spec
    for part in pointer:
        node = node[part]
    # Wrapping keeps "#/components/..." references resolvable against this document's root.
    return {"allOf": [node], "components": spec["components"]}


CASES = [
    "users/me",
    "users/{uuid}",
    "organization_memberships",
    "event_types",
    "scheduled_events",
    "scheduled_events canceled",
    "scheduled_events/{uuid}",
    "invitees",
    "invitee",
    "webhook_subscriptions POST",
    "webhook_subscriptions",
    "webhook_subscriptions/{uuid}",
    "error 401",
    "error 400",
]


@pytest.mark.parametrize("name", CASES)
def test_response_matches_the_spec(spec: dict[str, Any], observed: dict[str, Observed], name: str) -> None:
    validators = pytest.importorskip("openapi_schema_validator")
    # Given what the sandbox answered and the spec's schema for it
    sample = observed[name]

    # When it is validated (OpenAPI 3.0 semantics: nullable, formats such as date-time)
    validator = validators.OAS30Validator(
        schema_at(spec, sample.schema_pointer), format_checker=validators.oas30_format_checker
    )
    errors = sorted(validator.iter_errors(sample.body), key=lambda error: list(error.path))

    # Then nothing the spec requires is missing or mistyped
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_deliveries_match_the_webhook_payload_schema(
    spec: dict[str, Any], observed: dict[str, Observed]
) -> None:
    validators = pytest.importorskip("openapi_schema_validator")
    # Given the reschedule's two deliveries plus the booking's
    deliveries = {name: sample for name, sample in observed.items() if name.startswith("delivery")}
    assert len(deliveries) == 3

    # When each is validated against WebhookPayload
    for name, sample in deliveries.items():
        validator = validators.OAS30Validator(
            schema_at(spec, sample.schema_pointer), format_checker=validators.oas30_format_checker
        )
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(sample.body)]

        # Then each is a valid Calendly delivery
        assert not errors, f"{name}: {errors[:10]}"


def test_timestamps_use_calendlys_microsecond_format(observed: dict[str, Observed]) -> None:
    # Given every timestamp field in every observed body
    def timestamps(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith(("_at", "_time")) and isinstance(value, str):
                    yield value
                yield from timestamps(value)
        elif isinstance(node, list):
            for item in node:
                yield from timestamps(item)

    found = [stamp for sample in observed.values() for stamp in timestamps(sample.body)]

    # Then all look like 2024-04-04T21:10:40.494211Z
    assert found
    assert [stamp for stamp in found if not CALENDLY_TIMESTAMP.match(stamp)] == []


# --- strict mode: requests checked against the same description ----------------------------------


@pytest.fixture
def strict(spec: dict[str, Any]) -> Iterator[tuple[CalendlySandbox, Api]]:
    """A sandbox in strict mode (skips with the spec), and an owner's API session on it."""
    with CalendlySandbox(SandboxConfig(seed=2024), strict_openapi=SPEC_PATH) as sandbox:
        sandbox.seed(users=1, event_types_per_user=1, scheduled_events=3, start=SEED_START, days=2)
        yield sandbox, Api(sandbox.base_url, sandbox.add_token(TokenSpec(role="owner")))


def test_strict_mode_passes_requests_the_spec_knows(strict: tuple[CalendlySandbox, Api]) -> None:
    sandbox, api = strict
    org = sandbox.organization_uri
    # Given requests using only described parameters, and api-facts.md's documented extras
    answers = [
        api.get("/users/me"),
        api.get("/scheduled_events", organization=org, status="active", sort="start_time:asc", count=100),
        api.get("/event_types", organization=org, active="true", count=1),
        api.get("/webhook_subscriptions", organization=org, scope="organization"),
        api.subscribe(
            "https://hooks.example/strict",
            org,
            events=["invitee.created", "invitee_no_show.created", "event_type.updated"],
        ),
    ]

    # Then none is refused by strict mode and nothing is recorded
    assert [response.status_code for response in answers] == [200, 200, 200, 200, 201]
    assert sandbox.strict is not None and sandbox.strict.violations == []


@pytest.mark.parametrize(
    ("send", "violation"),
    [
        (
            lambda api, org: api.get("/scheduled_events", organization=org, updated_since="2030-01-01"),
            "GET /scheduled_events: unknown query parameter 'updated_since'",
        ),
        (
            lambda api, org: api.get("/scheduled_events", organization=org, status="cancelled"),
            "GET /scheduled_events: query parameter 'status' has 'cancelled'",
        ),
        (
            lambda api, org: api.get("/event_types", organization=org, count=500),
            "GET /event_types: query parameter 'count' is above its maximum 100",
        ),
        (
            lambda api, org: api.subscribe("https://hooks.example/x", org, description="ours"),
            "POST /webhook_subscriptions: unknown body member 'description'",
        ),
        (
            lambda api, org: api.subscribe("https://hooks.example/x", org, events=["invitee.rescheduled"]),
            "POST /webhook_subscriptions: body member 'events' has 'invitee.rescheduled'",
        ),
        (
            lambda api, org: api.get("/scheduled_events/ABC/guests"),
            "GET /scheduled_events/ABC/guests is not an operation of Calendly's API",
        ),
    ],
    ids=[
        "unknown-parameter",
        "misspelt-enum",
        "count-range",
        "unknown-member",
        "unknown-event",
        "unknown-path",
    ],
)
def test_strict_mode_refuses_and_records_what_the_spec_does_not_know(
    strict: tuple[CalendlySandbox, Api], send: Any, violation: str
) -> None:
    sandbox, api = strict
    # When the request is sent
    response = send(api, sandbox.organization_uri)

    # Then it is answered 400 with a message saying why, and the violation is kept for the fixture
    assert response.status_code == 400
    assert response.json()["message"].startswith("strict mode: ")
    assert violation in response.json()["message"]
    assert sandbox.strict is not None
    assert [found for found in sandbox.strict.violations if violation in found]


def test_strict_mode_leaves_missing_members_to_the_endpoint(strict: tuple[CalendlySandbox, Api]) -> None:
    # Given the empty subscription body the connection check sends on purpose (probes webhooks:write)
    sandbox, api = strict
    response = api.post("/webhook_subscriptions", {})

    # Then the sandbox answers as Calendly would, and strict mode records nothing
    assert response.status_code == 400
    assert not response.json()["message"].startswith("strict mode")
    assert sandbox.strict is not None and sandbox.strict.violations == []


def test_every_documented_extra_is_really_missing_from_the_spec(spec: dict[str, Any]) -> None:
    # The extras list must stay exact: an entry the spec already describes is a stale one.
    from local.calendly_sandbox.strict import DOCUMENTED_EXTRAS, OpenApiRequestRules

    rules = OpenApiRequestRules(spec, SPEC_PATH.name)
    for (method, template), extra in DOCUMENTED_EXTRAS.items():
        operation = spec["paths"].get(template, {}).get(method.lower())
        if extra.get("new"):
            assert operation is None, f"{method} {template} is in the spec now"
            continue
        assert operation is not None, f"{method} {template} is not in the spec at all"
        described_query = {rules.resolve(p)["name"] for p in operation.get("parameters", [])}
        assert not set(extra.get("query", {})) & described_query, f"{method} {template}"
        body = (
            operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
        )
        assert not set(extra.get("body", {})) & set(body.get("properties", {})), f"{method} {template}"
        for name, values in extra.get("enum", {}).items():
            schema = body.get("properties", {}).get(name) or next(
                (
                    rules.resolve(p)["schema"]
                    for p in operation.get("parameters", [])
                    if rules.resolve(p)["name"] == name
                ),
                {},
            )
            described = set(schema.get("enum") or schema.get("items", {}).get("enum") or [])
            assert described, f"{method} {template} {name} has no enum in the spec"
            assert not set(values) & described, f"{method} {template} {name}"


def test_a_violation_the_client_swallowed_still_fails_the_test(strict: tuple[CalendlySandbox, Api]) -> None:
    from tests.conftest import fail_on_strict_violations

    # Given a request outside the spec whose 400 nobody looked at
    sandbox, api = strict
    api.get("/users/me", expand="organization")

    # Then the check every `calendly` fixture runs at teardown fails the test, naming it
    with pytest.raises(pytest.fail.Exception, match="GET /users/me: unknown query parameter 'expand'"):
        fail_on_strict_violations(sandbox)

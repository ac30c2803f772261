"""Connecting a token and managing the subscription, with fakes for the table, the secrets,
Calendly and the clock: what each answer says and what is written (no AWS, no sockets).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.connect_and_subscribe import (
    OperationsDependencies,
    manage_subscription,
    validate_credentials,
)
from calendly_sync.errors import CalendlyRejected, CalendlyUnavailable, ConfigurationError
from calendly_sync.observability import metrics
from calendly_sync.settings import Settings
from calendly_sync.subscriptions import PREVIOUS_KEY_GRACE_SECONDS, key_fingerprint
from tests.unit.test_subscriptions import FakeCalendly as SubscriptionsFake

BASE = "https://api.calendly.com"
USER = f"{BASE}/users/U1"
ORG = f"{BASE}/organizations/O1"
URL = "https://hooks.example/webhooks/calendly"
TOKEN = "a-personal-access-token"
KEY = "current-key"
T0 = 1_800_000_000.0


class FakeCalendly(SubscriptionsFake):
    """Calendly for one token: who it is, the scopes it holds, its subscriptions."""

    def __init__(self, *, role: str = "owner", missing: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.role = role
        self.missing = missing
        self.revoked = False
        self.down = False

    def _check(self, scope: str) -> None:
        if self.down:
            raise CalendlyUnavailable("Calendly answered 503 to GET /users/me")
        if self.revoked:
            raise CalendlyRejected("401", status=401, title="Unauthenticated", detail="The token was revoked")
        if scope in self.missing:
            raise CalendlyRejected("403", status=403, title="Permission Denied", detail=f"needs {scope}")

    def current_user(self) -> dict[str, Any]:
        self._check("users:read")
        return {"uri": USER, "current_organization": ORG}

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        scope = {
            "/organization_memberships": "organizations:read",
            "/event_types": "event_types:read",
            "/scheduled_events": "scheduled_events:read",
            "/webhook_subscriptions": "webhooks:read",
            "/routing_forms": "routing_forms:read",
        }[path]
        self._check(scope)
        collection = [{"role": self.role}] if path == "/organization_memberships" else []
        return {"collection": collection, "pagination": {"next_page_token": None}}

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        assert (method, path) == ("POST", "/webhook_subscriptions")  # the write-scope probe
        self._check("webhooks:write")
        raise CalendlyRejected("400", status=400, title="Invalid Argument", detail="url is required")


@dataclass
class FakeTable:
    state: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sync_state(self, name: str) -> dict[str, Any] | None:
        return self.state.get(name)

    def put_sync_state(self, name: str, attributes: Mapping[str, Any]) -> None:
        self.state[name] = dict(attributes)


@dataclass
class FakeTokenSecret:
    value: dict[str, Any] | None = None

    def stored_token(self, *, force_fetch: bool = False) -> dict[str, Any] | None:
        return self.value

    def save_token(self, token: str, metadata: dict[str, Any]) -> None:
        self.value = {**metadata, "token": token}


@dataclass
class FakeSigningKeys:
    value: dict[str, Any] = field(default_factory=lambda: {"current": KEY})
    writes: int = 0

    def state(self) -> dict[str, Any]:
        return dict(self.value)

    def write(self, state: dict[str, Any]) -> None:
        self.value, self.writes = dict(state), self.writes + 1


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    """One deployment's state, and the dependencies its functions would be handed."""

    calendly: FakeCalendly = field(default_factory=FakeCalendly)
    table: FakeTable = field(default_factory=FakeTable)
    token: FakeTokenSecret = field(default_factory=FakeTokenSecret)
    keys: FakeSigningKeys = field(default_factory=FakeSigningKeys)
    clock: FakeClock = field(default_factory=FakeClock)
    webhook_url: str | None = URL
    tokens_used: list[str] = field(default_factory=list)

    def client_for(self, token: str) -> CalendlyClient:
        self.tokens_used.append(token)
        return self.calendly  # type: ignore[return-value]  # duck-typed

    @property
    def deps(self) -> OperationsDependencies:
        settings = Settings("calendly-test", "signing-arn", "token-arn", webhook_url=self.webhook_url)
        return OperationsDependencies(
            settings, self.table, self.token, self.keys, self.client_for, clock=self.clock
        )

    def connect(self) -> dict[str, Any]:
        answer = validate_credentials({"token": TOKEN}, self.deps)
        metrics.clear_metrics()  # as the handler's flush would: the next call is another invocation
        return answer


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> Iterator[None]:
    yield
    metrics.clear_metrics()


# --- ValidateCredentialsFunction -------------------------------------------------------------


@pytest.mark.parametrize("payload", [None, [], {"token": TOKEN, "extra": 1}, {"token": ""}, {"token": "a b"}])
def test_a_payload_that_is_not_one_token_is_refused_and_nothing_is_asked_or_saved(payload: Any) -> None:
    stack = Stack()

    answer = validate_credentials(payload, stack.deps)

    assert (answer["valid"], answer["saved"]) == (False, False)
    assert stack.tokens_used == [] and stack.token.value is None and stack.table.state == {}


def test_a_valid_owner_token_is_saved_with_its_connection_at_the_clocks_time() -> None:
    # Given an owner's token holding every scope
    stack = Stack()

    # When it is connected
    answer = stack.connect()

    # Then it is saved, with what was learnt, and the connection recorded healthy at organization scope
    assert (answer["valid"], answer["saved"], answer["scope"]) == (True, True, "organization")
    assert stack.token.value is not None and stack.token.value["token"] == TOKEN
    connection = stack.table.state["CONNECTION"]
    assert (connection["user"], connection["organization"], connection["healthy"]) == (USER, ORG, True)
    assert connection["checked_at"] == "2027-01-15T08:00:00.000000Z"
    assert json.loads(connection["missing_scopes"]) == []


def test_a_member_without_routing_forms_is_saved_at_user_scope_with_the_scope_noted_missing() -> None:
    stack = Stack(calendly=FakeCalendly(role="user", missing=frozenset({"routing_forms:read"})))

    answer = stack.connect()

    assert (answer["valid"], answer["scope"]) == (True, "user")
    assert "user scope" in answer["message"]


def test_a_token_without_a_required_scope_is_refused_and_not_saved() -> None:
    stack = Stack(calendly=FakeCalendly(missing=frozenset({"webhooks:write"})))

    answer = stack.connect()

    assert (answer["valid"], answer["saved"]) == (False, False)
    assert "webhooks:write" in answer["message"] and stack.token.value is None
    assert "CONNECTION" not in stack.table.state


def test_calendly_down_changes_nothing_and_says_to_try_again() -> None:
    stack = Stack()
    stack.calendly.down = True

    answer = stack.connect()

    assert answer["valid"] is False and "try again" in answer["message"]
    assert stack.token.value is None and stack.table.state == {}


def test_a_recheck_with_no_token_stored_says_to_connect_first() -> None:
    answer = validate_credentials({}, Stack().deps)
    assert answer["valid"] is False and "connect first" in answer["message"]


def test_a_stored_token_that_stopped_working_is_kept_and_its_connection_marked_unhealthy() -> None:
    # Given a connected token, later revoked at Calendly
    stack = Stack()
    stack.connect()
    stack.calendly.revoked = True
    stack.clock.now += 3600

    # When it is re-checked
    answer = validate_credentials({}, stack.deps)

    # Then it is reported, kept, and the connection keeps who it was for but says it fails
    assert answer["valid"] is False and "revoked" in answer["message"]
    assert stack.token.value is not None and stack.token.value["token"] == TOKEN
    connection = stack.table.state["CONNECTION"]
    assert (connection["user"], connection["healthy"]) == (USER, False) and "revoked" in connection["problem"]
    assert connection["checked_at"] == "2027-01-15T09:00:00.000000Z"


# --- WebhookSubscriptionFunction --------------------------------------------------------------


def test_an_unknown_action_is_refused_by_name() -> None:
    answer = manage_subscription("upgrade", Stack().deps)
    assert answer["ok"] is False and "ensure" in answer["message"]


def test_without_a_stored_token_the_answer_says_to_connect_first() -> None:
    answer = manage_subscription("ensure", Stack().deps)
    assert answer["ok"] is False and "connect first" in answer["message"]


def test_without_a_webhook_url_the_stack_is_misconfigured() -> None:
    with pytest.raises(ConfigurationError):
        manage_subscription("ensure", Stack(webhook_url=None).deps)


def test_ensure_creates_the_subscription_records_it_and_then_keeps_it() -> None:
    # Given a connected stack with no subscription
    stack = Stack()
    stack.connect()

    # When ensure runs twice
    first = manage_subscription("ensure", stack.deps)
    second = manage_subscription("ensure", stack.deps)

    # Then it was created with the current key, recorded as ours, and kept the second time
    assert (first["action"], second["action"]) == ("created", "kept")
    (uri,) = stack.calendly.subscriptions
    record = stack.table.state["SUBSCRIPTION"]
    assert json.loads(record["owned"]) == {uri: key_fingerprint(KEY)}
    assert stack.calendly.keys[uri] == KEY and stack.tokens_used[-1] == TOKEN


def test_a_calendly_refusal_is_an_answer_not_an_exception() -> None:
    stack = Stack()
    stack.connect()
    stack.calendly.refuse = [CalendlyRejected("403", status=403, title="Permission Denied", detail="no")]

    answer = manage_subscription("ensure", stack.deps)

    assert answer["ok"] is False and "Calendly refused: 403" in answer["message"]


def test_a_rotation_switches_keys_only_once_the_new_subscription_exists_and_ends_after_the_grace() -> None:
    # Given a connected stack with its subscription
    stack = Stack()
    stack.connect()
    manage_subscription("ensure", stack.deps)
    (old,) = stack.calendly.subscriptions

    # When the key is rotated
    rotated = manage_subscription("rotate-key", stack.deps)

    # Then a subscription signing with the new key exists, the new key is current, the old one
    # still accepted, and the old subscription still running
    new_key = stack.keys.value["current"]
    assert rotated["action"] == "rotated" and new_key != KEY and stack.keys.value["previous"] == KEY
    assert old in stack.calendly.subscriptions and new_key in stack.calendly.keys.values()
    # and a second rotation must wait for the first to finish
    assert manage_subscription("rotate-key", stack.deps)["ok"] is False

    # When the hourly check runs within the grace period, and again once it has passed
    stack.clock.now += 60
    within = manage_subscription("ensure", stack.deps)
    kept_within = (old in stack.calendly.subscriptions, "previous" in stack.keys.value)
    stack.clock.now += PREVIOUS_KEY_GRACE_SECONDS
    after = manage_subscription("ensure", stack.deps)

    # Then the old subscription and key go only the second time
    assert within["action"] == "kept" and kept_within == (True, True)
    assert old not in stack.calendly.subscriptions and "previous" not in stack.keys.value
    assert any("no longer accepted" in note for note in after["notes"])


def test_the_grace_period_is_a_dependency_not_a_constant() -> None:
    # Given a rotation just done
    stack = Stack()
    stack.connect()
    manage_subscription("ensure", stack.deps)
    manage_subscription("rotate-key", stack.deps)

    # When the check runs with no grace period at all
    answer = manage_subscription("ensure", replace(stack.deps, previous_key_grace_seconds=0))

    # Then the rotation finishes at once
    assert answer["ok"] and "previous" not in stack.keys.value and len(stack.calendly.subscriptions) == 1


def test_delete_removes_the_subscription_and_the_record_of_it() -> None:
    stack = Stack()
    stack.connect()
    manage_subscription("ensure", stack.deps)

    answer = manage_subscription("delete", stack.deps)

    assert answer["action"] == "deleted" and stack.calendly.subscriptions == {}
    assert json.loads(stack.table.state["SUBSCRIPTION"]["owned"]) == {}

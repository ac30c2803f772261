"""The stack on one machine against the Calendly sandbox, through real HTTP on loopback.

The runner is what ``make demo`` uses: moto's server as AWS, the HTTP front routing the
template's API events to the real handlers, and the table stream applied by the projector.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.errors import CalendlyUnavailable
from calendly_sync.table_items import parse_invitee_uri
from local.calendly_sandbox import CalendlySandbox, SandboxConfig, TokenSpec
from local.lambda_runtime import load_handler
from local.runner import LocalStackRunner, wait_until

EVENTS = ["invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted"]
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[LocalStackRunner, CalendlySandbox, str]]:
    config = SandboxConfig(seed=11, delivery_initial_backoff_seconds=0.1, delivery_retry_window_seconds=1.5)
    with LocalStackRunner(log_path=tmp_path / "functions.log") as stack, CalendlySandbox(config) as sandbox:
        token = sandbox.add_token(TokenSpec(role="owner"))
        sandbox.seed(users=1, event_types_per_user=1, scheduled_events=0)
        yield stack, sandbox, token


def subscribe(sandbox: CalendlySandbox, token: str, url: str, signing_key: str) -> dict[str, Any]:
    response = requests.post(
        f"{sandbox.base_url}/webhook_subscriptions",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "url": url,
            "events": EVENTS,
            "organization": sandbox.organization_uri,
            "scope": "organization",
            "signing_key": signing_key,
        },
        timeout=10,
    )
    response.raise_for_status()
    resource: dict[str, Any] = response.json()["resource"]
    return resource


def stored_invitee(stack: LocalStackRunner, invitee_uri: str) -> dict[str, Any] | None:
    from calendly_sync.table_items import invitee_key

    ids = parse_invitee_uri(invitee_uri)
    assert ids is not None
    item: dict[str, Any] | None = stack.table.get(invitee_key(*ids))
    return item


def test_a_booking_in_calendly_lands_in_the_table(
    running: tuple[LocalStackRunner, CalendlySandbox, str],
) -> None:
    stack, sandbox, token = running
    # Given the stack's URL subscribed with its own signing key
    subscribe(sandbox, token, stack.webhook_url, stack.signing_key())

    # When someone books and then cancels
    invitee = sandbox.book(start_time=START)
    sandbox.cancel(invitee)
    assert sandbox.deliver_pending(timeout=20)

    # Then both signed deliveries were accepted and the invitee ends canceled in the table
    assert [a.status_code for a in sandbox.deliveries] == [200, 200]
    assert wait_until(lambda: (stored_invitee(stack, invitee) or {}).get("status") == "canceled", timeout=10)


def test_a_forged_delivery_is_refused_over_http(
    running: tuple[LocalStackRunner, CalendlySandbox, str],
) -> None:
    stack, sandbox, token = running
    # Given a subscription whose deliveries are signed with the wrong key
    sandbox.faults.bad_signature = 1
    subscribe(sandbox, token, stack.webhook_url, stack.signing_key())

    # When a booking fires
    invitee = sandbox.book(start_time=START)
    assert sandbox.deliver_pending(timeout=20)
    assert wait_until(lambda: stored_invitee(stack, invitee) is not None, timeout=10)

    # Then the forged attempt got 401 and nothing from it reached the table; the retry, signed right, did
    codes = [a.status_code for a in sandbox.deliveries]
    assert codes[0] == 401 and codes[-1] == 200
    assert stack.responses[401] == 1


def test_duplicates_are_absorbed(running: tuple[LocalStackRunner, CalendlySandbox, str]) -> None:
    stack, sandbox, token = running
    # Given Calendly sends every delivery twice
    subscribe(sandbox, token, stack.webhook_url, stack.signing_key())
    sandbox.faults.duplicate_deliveries = 1.0

    # When three bookings fire
    invitees = [sandbox.book(start_time=START + timedelta(hours=i)) for i in range(3)]
    assert sandbox.deliver_pending(timeout=20)

    # Then each is stored once and its twin acknowledged as a duplicate
    assert stack.statuses["stored"] == 3 and stack.statuses["duplicate"] == 3
    assert wait_until(lambda: all(stored_invitee(stack, uri) for uri in invitees), timeout=10)
    deliveries = stack.table.deliveries_received(datetime.now(UTC).strftime("%Y-%m-%d"))
    assert len(deliveries) == 3


def test_an_endpoint_that_keeps_failing_gets_the_subscription_disabled(
    running: tuple[LocalStackRunner, CalendlySandbox, str],
) -> None:
    stack, sandbox, token = running
    # Given a subscription made with a key the stack does not hold (every delivery answers 401)
    subscription = subscribe(sandbox, token, stack.webhook_url, "a-key-the-stack-never-had")

    # When a booking fires and Calendly retries through its (compressed) retry window
    sandbox.book(start_time=START)
    sandbox.deliver_pending(timeout=20)

    # Then the subscription is disabled with retry_started_at set, as Calendly does after 24 h
    assert wait_until(lambda: sandbox.subscription(subscription["uri"])["state"] == "disabled", timeout=10)
    assert sandbox.subscription(subscription["uri"])["retry_started_at"] is not None
    assert stack.responses[401] >= 2 and stack.statuses.get("stored", 0) == 0


def _unavailable(client: CalendlyClient, body: Any) -> dict[str, Any]:
    raise CalendlyUnavailable("Calendly answered 503 to POST /webhook_subscriptions")


def test_a_signing_key_rotation_loses_no_delivery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from calendly_sync.connect_and_subscribe import manage_subscription

    config = SandboxConfig(seed=13, delivery_initial_backoff_seconds=0.1, delivery_retry_window_seconds=10)
    with (
        CalendlySandbox(config) as sandbox,
        LocalStackRunner(log_path=tmp_path / "functions.log", calendly_url=sandbox.base_url) as stack,
    ):
        # Given a connected stack with its subscription, through the two functions
        token = sandbox.add_token(TokenSpec(role="owner"))
        sandbox.seed(users=1, event_types_per_user=1, scheduled_events=0)
        assert stack.invoke_function("ValidateCredentialsFunction", {"token": token})["valid"] is True
        assert (
            stack.invoke_function("WebhookSubscriptionFunction", {"action": "ensure"})["action"] == "created"
        )
        old_key = stack.signing_key()

        # When bookings keep happening before, during and after a key rotation, whose first
        # attempt meets a Calendly that cannot create subscriptions and is retried as advised
        booked = [sandbox.book(start_time=START + timedelta(hours=i)) for i in range(3)]
        with monkeypatch.context() as outage:
            outage.setattr(CalendlyClient, "create_webhook_subscription", _unavailable)
            failed = stack.invoke_function("WebhookSubscriptionFunction", {"action": "rotate-key"})
        booked += [sandbox.book(start_time=START + timedelta(hours=5 + i)) for i in range(3)]
        assert sandbox.deliver_pending(timeout=30)
        rotation = stack.invoke_function("WebhookSubscriptionFunction", {"action": "rotate-key"})
        booked += [sandbox.book(start_time=START + timedelta(hours=10 + i)) for i in range(3)]
        assert sandbox.deliver_pending(timeout=30)
        # and a later check, once the grace period is over, finishes the rotation (the function's
        # own collaborators, with a grace period that has already passed)
        wired = sys.modules[load_handler("WebhookSubscriptionFunction").__module__].dependencies()
        finish = manage_subscription("ensure", replace(wired, previous_key_grace_seconds=0))
        booked += [sandbox.book(start_time=START + timedelta(hours=20 + i)) for i in range(3)]
        assert sandbox.deliver_pending(timeout=30)

        # Then every delivery was accepted, every booking is in the table, one subscription is left
        assert failed["ok"] is False and "not rotated" in failed["message"]
        assert rotation["action"] == "rotated" and len(sandbox.subscriptions()) == 1
        assert stack.signing_key() != old_key
        assert {a.status_code for a in sandbox.deliveries} == {200}
        assert wait_until(lambda: all(stored_invitee(stack, uri) for uri in booked), timeout=10)
        assert any("no longer accepted" in note for note in finish["notes"])
        keys = json.loads(
            stack.secretsmanager.get_secret_value(SecretId=stack.signing_key_secret_arn)["SecretString"]
        )
        assert "previous" not in keys

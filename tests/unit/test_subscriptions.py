"""The subscription rules on plain data: a fake Calendly, a fixed clock, no AWS, no sockets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, cast

import pytest

from calendly_sync import subscriptions
from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.errors import CalendlyRejected
from calendly_sync.subscriptions import Target, key_fingerprint

URL = "https://hooks.example/webhooks/calendly"
ORG = "https://api.calendly.com/organizations/ORG"
KEY = "current-key"
NOW = 1_800_000_000.0


class FakeCalendly:
    """Webhook subscriptions as Calendly keeps them; ``refuse`` answers the next creations."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.refuse: list[CalendlyRejected] = []
        self.created = 0

    def add(self, url: str, events: list[str], key: str, created_at: str, creator: str = "us") -> str:
        uri = f"https://api.calendly.com/webhook_subscriptions/{len(self.keys) + 1}"
        self.subscriptions[uri] = {
            "uri": uri,
            "callback_url": url,
            "events": events,
            "state": "active",
            "created_at": created_at,
            "creator": creator,
        }
        self.keys[uri] = key
        return uri

    def webhook_subscriptions(self, organization: str, scope: str, user: str | None = None) -> Iterator[Any]:
        yield from list(self.subscriptions.values())

    def create_webhook_subscription(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.refuse:
            raise self.refuse.pop(0)
        self.created += 1
        uri = self.add(body["url"], list(body["events"]), body["signing_key"], f"2030-01-0{self.created}")
        return self.subscriptions[uri]

    def delete_webhook_subscription(self, uri: str) -> None:
        del self.subscriptions[uri]


def client(fake: FakeCalendly) -> CalendlyClient:
    return cast(CalendlyClient, fake)


def target(**changes: Any) -> Target:
    return Target(URL, ORG, "organization", None, KEY, **changes)


def test_a_newer_subscription_with_our_url_that_we_did_not_make_is_deleted_and_ours_kept() -> None:
    # Given ours on record, and a newer one at our URL with another key that copies everything else
    fake = FakeCalendly()
    events = list(target().events)
    ours = fake.add(f"{URL}?v=1", events, KEY, "2029-01-01")
    planted = fake.add(f"{URL}?v=9", events, "their-key", "2029-06-01", creator="another-admin")

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), target(owned={ours: key_fingerprint(KEY)}), NOW)

    # Then ours stays, the planted one is gone and reported, and the record holds only ours
    assert outcome.action == "kept" and outcome.deleted == [planted] and outcome.foreign == [planted]
    assert outcome.unhealthy and outcome.owned == {ours: key_fingerprint(KEY)}
    assert any("another-admin" in note for note in outcome.notes)


def test_a_plan_refusal_and_a_scope_refusal_leave_out_only_their_events() -> None:
    # Given Calendly refuses routing forms for the plan, then event types for a missing scope
    fake = FakeCalendly()
    fake.refuse = [
        CalendlyRejected("403", status=403, title="Permission Denied", detail="Please upgrade your account"),
        CalendlyRejected(
            "400", status=400, title="Invalid Argument", detail="The supplied parameters are invalid."
        ),
    ]

    # When ensure runs, asked which event scopes the token holds only after the 400
    asked: list[bool] = []

    def granted() -> set[str]:
        asked.append(True)
        return {"scheduled_events:read", "routing_forms:read"}

    outcome = subscriptions.ensure(client(fake), target(), NOW, granted_event_scopes=granted)

    # Then the subscription carries the invitee events only, and each left-out event says why
    (made,) = fake.subscriptions.values()
    assert set(made["events"]) == {
        "invitee.created",
        "invitee.canceled",
        "invitee_no_show.created",
        "invitee_no_show.deleted",
    }
    assert asked == [True]
    assert "paid Calendly plan" in outcome.left_out["routing_form_submission.created"]
    assert "event_types:read" in outcome.left_out["event_type.updated"]


def test_a_400_about_something_else_is_not_blamed_on_scopes() -> None:
    # Given a token holding every event scope, and a 400 about the request itself
    fake = FakeCalendly()
    fake.refuse = [CalendlyRejected("400", status=400, title="Invalid Argument", detail="url is invalid")]
    every_scope = {"scheduled_events:read", "event_types:read", "routing_forms:read"}

    # When ensure runs, then the refusal is raised as it is and no event is left out
    with pytest.raises(CalendlyRejected) as refused:
        subscriptions.ensure(client(fake), target(), NOW, granted_event_scopes=lambda: every_scope)
    assert refused.value.detail == "url is invalid" and fake.subscriptions == {}


def test_rotation_keys_are_reused_promoted_and_retired_in_that_order() -> None:
    # Given a secret with only a current key
    state: dict[str, Any] = {"current": KEY}

    # When a rotation starts twice (an interrupted first attempt), then the waiting key is reused
    pending = subscriptions.with_next_key(state)
    assert pending["current"] == KEY and pending["next"] != KEY
    assert subscriptions.with_next_key(pending) == pending
    assert subscriptions.rotation_blocker(pending) is None

    # When it is promoted, then the old key is still accepted and a new rotation must wait
    promoted = subscriptions.promoted_next_key(pending, NOW)
    assert promoted == {"current": pending["next"], "previous": KEY, "rotated_at": int(NOW)}
    assert subscriptions.rotation_blocker(promoted) is not None

    # Then 'previous' stays while a subscription of ours uses it or the grace period runs
    in_use = {"uri-old": key_fingerprint(KEY)}
    late = NOW + subscriptions.PREVIOUS_KEY_GRACE_SECONDS + 1
    assert subscriptions.without_spent_previous(promoted, in_use, late) == promoted
    assert subscriptions.without_spent_previous(promoted, {}, NOW + 60) == promoted
    assert subscriptions.without_spent_previous(promoted, {}, late) == {
        "current": pending["next"],
        "rotated_at": int(NOW),
    }
    # and a waiting 'next' of a later, interrupted rotation is never dropped with it
    waiting = {**promoted, "next": "later-key"}
    assert subscriptions.without_spent_previous(waiting, {}, late)["next"] == "later-key"

"""The subscription rules on plain data: a fake Calendly, a fixed clock, no AWS, no sockets.

Convergence (``ensure``): keep a healthy subscription we made; otherwise create first, then
delete what it replaces; never adopt what a 409 points at; touch only what points at the
stack's URL; judge "ours" by the record of URIs, never by what Calendly shows.
"""

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
        #: Deletions answered with these (by URI) instead of succeeding.
        self.refuse_delete: dict[str, CalendlyRejected] = {}
        self.created = 0
        #: ("create", url) and ("delete", uri), in the order they were asked.
        self.log: list[tuple[str, str]] = []

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
        self.log.append(("create", body["url"]))
        if self.refuse:
            raise self.refuse.pop(0)
        self.created += 1
        uri = self.add(body["url"], list(body["events"]), body["signing_key"], f"2030-01-0{self.created}")
        return self.subscriptions[uri]

    def delete_webhook_subscription(self, uri: str) -> None:
        self.log.append(("delete", uri))
        if uri in self.refuse_delete:
            raise self.refuse_delete[uri]
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


# --- convergence --------------------------------------------------------------------------


def test_a_healthy_subscription_of_ours_is_kept_and_nothing_is_created_or_deleted() -> None:
    # Given our active subscription with every event and the current key
    fake = FakeCalendly()
    ours = fake.add(f"{URL}?v=1", list(target().events), KEY, "2029-01-01")

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), target(owned={ours: key_fingerprint(KEY)}), NOW)

    # Then nothing is asked of Calendly but the listing, and all is well
    assert (outcome.ok, outcome.action, outcome.unhealthy) == (True, "kept", False)
    assert fake.log == [] and outcome.owned == {ours: key_fingerprint(KEY)}


def test_a_disabled_subscription_of_ours_is_replaced_creating_the_new_one_first() -> None:
    # Given our subscription, disabled by Calendly after deliveries kept failing
    fake = FakeCalendly()
    ours = fake.add(f"{URL}?v=1", list(target().events), KEY, "2029-01-01")
    fake.subscriptions[ours].update(state="disabled", retry_started_at="2029-02-01T00:00:00.000000Z")

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), target(owned={ours: key_fingerprint(KEY)}), NOW)

    # Then a new one was created before the disabled one was deleted, and the gap is reported
    (created,) = [uri for uri in fake.subscriptions if uri != ours]
    assert [step for step, _ in fake.log] == ["create", "delete"] and fake.log[1] == ("delete", ours)
    assert (outcome.action, outcome.unhealthy, outcome.deleted) == ("replaced", True, [ours])
    assert outcome.owned == {created: key_fingerprint(KEY)}
    assert outcome.gap_since == "2029-02-01T00:00:00.000000Z"
    assert any("state is disabled" in note for note in outcome.notes)


def test_a_subscription_of_ours_with_another_key_or_other_events_is_replaced() -> None:
    # Given two of ours: one made with an older key, one missing an event
    fake = FakeCalendly()
    events = list(target().events)
    old_key = fake.add(f"{URL}?v=1", events, "old-key", "2029-01-01")
    missing = fake.add(f"{URL}?v=2", events[1:], KEY, "2029-01-02")
    owned = {old_key: key_fingerprint("old-key"), missing: key_fingerprint(KEY)}

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), target(owned=owned), NOW)

    # Then one right subscription is left, made with the current key
    (left,) = fake.subscriptions.values()
    assert outcome.action == "replaced" and set(outcome.deleted) == {old_key, missing}
    assert fake.keys[left["uri"]] == KEY and set(left["events"]) == set(events)


def test_a_409_is_never_adopted_what_holds_the_url_is_replaced() -> None:
    # Given no record of ours, and Calendly answering 409 to the first creation (the URL is held,
    # e.g. by a subscription made by a request of ours whose answer was lost)
    fake = FakeCalendly()
    fake.refuse = [CalendlyRejected("409", status=409, title="Already Exists", detail="url taken")]
    held = fake.add(f"{URL}?v=lost", list(target().events), KEY, "2029-01-01")

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), target(), NOW)

    # Then a second creation used another URL, and what held the first is deleted, not kept
    (first_url, second_url) = [url for step, url in fake.log if step == "create"]
    assert first_url != second_url and all(url.startswith(URL + "?v=") for url in (first_url, second_url))
    (made,) = fake.subscriptions
    assert made != held and outcome.deleted == [held] and outcome.owned == {made: key_fingerprint(KEY)}


def test_only_subscriptions_to_the_stacks_own_url_are_touched() -> None:
    # Given subscriptions of other apps: another host, and a URL that merely starts like ours
    fake = FakeCalendly()
    elsewhere = fake.add("https://other.example/hook", ["invitee.created"], "k", "2029-01-01")
    lookalike = fake.add(URL + "-evil", ["invitee.created"], "k", "2029-01-02")

    # When ensure runs with nothing of ours yet
    outcome = subscriptions.ensure(client(fake), target(), NOW)

    # Then ours is created and theirs are left alone
    assert outcome.action == "created" and outcome.deleted == [] and outcome.foreign == []
    assert {elsewhere, lookalike} < set(fake.subscriptions)


def test_a_403_that_is_not_about_the_plan_is_raised_with_nothing_left_out() -> None:
    # Given Calendly refusing the creation with a 403 that does not ask for an upgrade
    fake = FakeCalendly()
    fake.refuse = [CalendlyRejected("403", status=403, title="Permission Denied", detail="not allowed")]

    # When ensure runs, then the refusal is raised as it is
    with pytest.raises(CalendlyRejected) as refused:
        subscriptions.ensure(client(fake), target(), NOW, granted_event_scopes=lambda: set())
    assert refused.value.status == 403 and fake.subscriptions == {}


def test_when_every_event_is_refused_there_is_nothing_to_subscribe() -> None:
    # Given a token holding no event scope at all, and Calendly answering 400
    fake = FakeCalendly()
    fake.refuse = [CalendlyRejected("400", status=400, title="Invalid Argument", detail="bad scopes")]

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), target(), NOW, granted_event_scopes=lambda: set())

    # Then it fails plainly, names why each event was left out, and creates nothing
    assert (outcome.ok, outcome.unhealthy) == (False, True)
    assert set(outcome.left_out) == set(target().events) and fake.subscriptions == {}


@pytest.mark.parametrize(("grace", "kept"), [(subscriptions.PREVIOUS_KEY_GRACE_SECONDS, True), (0, False)])
def test_during_a_rotation_the_previous_keys_subscription_runs_out_its_grace_period(
    grace: float, kept: bool
) -> None:
    # Given a rotation that started a minute ago: ours on the previous key is still active
    fake = FakeCalendly()
    old = fake.add(f"{URL}?v=1", list(target().events), "old-key", "2029-01-01")
    rotating = target(
        owned={old: key_fingerprint("old-key")},
        previous_key="old-key",
        rotated_at=NOW - 60,
        previous_key_grace_seconds=grace,
    )

    # When ensure runs
    outcome = subscriptions.ensure(client(fake), rotating, NOW)

    # Then the new one is made; the old one stays only while the grace period runs
    assert outcome.ok and (old in fake.subscriptions) is kept
    assert (old in outcome.owned) is kept and (outcome.deleted == []) is kept


def test_the_grace_period_of_a_spent_previous_key_is_a_parameter() -> None:
    # Given a finished rotation whose previous key no subscription of ours uses any more
    promoted = {"current": "new-key", "previous": KEY, "rotated_at": int(NOW)}

    # When the previous key is checked a minute later with a grace period of 30 s, and of the default
    # Then only the shorter one has passed
    assert "previous" not in subscriptions.without_spent_previous(promoted, {}, NOW + 60, grace_seconds=30)
    assert "previous" in subscriptions.without_spent_previous(promoted, {}, NOW + 60)


def test_delete_removes_every_subscription_to_the_url_and_a_404_counts_as_gone() -> None:
    # Given ours, one someone else made to our URL (already gone at Calendly), and one elsewhere
    fake = FakeCalendly()
    ours = fake.add(f"{URL}?v=1", list(target().events), KEY, "2029-01-01")
    gone = fake.add(f"{URL}?v=2", ["invitee.created"], "k", "2029-01-02")
    elsewhere = fake.add("https://other.example/hook", ["invitee.created"], "k", "2029-01-03")
    fake.refuse_delete[gone] = CalendlyRejected("404", status=404, title="Not Found", detail="")

    # When the stack's subscriptions are deleted
    outcome = subscriptions.delete(client(fake), target(owned={ours: key_fingerprint(KEY)}))

    # Then both to our URL count as deleted, and the other app's is untouched
    assert outcome.ok and set(outcome.deleted) == {ours, gone} and elsewhere in fake.subscriptions


def test_a_deletion_calendly_refuses_is_noted_for_the_next_run() -> None:
    fake = FakeCalendly()
    ours = fake.add(f"{URL}?v=1", list(target().events), KEY, "2029-01-01")
    fake.refuse_delete[ours] = CalendlyRejected("403", status=403, title="Permission Denied", detail="no")

    outcome = subscriptions.delete(client(fake), target(owned={ours: key_fingerprint(KEY)}))

    assert not outcome.ok and outcome.deleted == [] and "could not delete" in outcome.notes[0]


def test_status_reports_a_missing_subscription_as_unhealthy_and_ours_as_healthy() -> None:
    # Given no subscription at first, then ours
    fake = FakeCalendly()
    missing = subscriptions.status(client(fake), target())
    ours = fake.add(f"{URL}?v=1", list(target().events), KEY, "2029-01-01")

    # When status is asked again
    found = subscriptions.status(client(fake), target(owned={ours: key_fingerprint(KEY)}))

    # Then the first is unhealthy, the second healthy, and status changed nothing
    assert (missing.ok, missing.unhealthy) == (False, True)
    assert (found.ok, found.unhealthy) == (True, False) and found.subscription is not None
    assert found.subscription["made_by_this_stack"] and fake.log == []

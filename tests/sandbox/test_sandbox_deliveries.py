"""Webhook deliveries: signed envelopes to a real local endpoint, reschedules, retries, faults."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from local.calendly_sandbox import CalendlySandbox, TokenSpec
from tests.sandbox.conftest import SEED_START, SIGNING_KEY
from tests.sandbox.helpers import Api, WebhookReceiver, path_of, signature_is_valid, wait_until

ALL_INVITEE_EVENTS = [
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
    "invitee_no_show.deleted",
]


def subscribe(api: Api, sandbox: CalendlySandbox, url: str, **extra: object) -> str:
    response = api.subscribe(url, sandbox.organization_uri, events=ALL_INVITEE_EVENTS, **extra)  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return str(response.json()["resource"]["uri"])


def test_booking_delivers_a_correctly_signed_envelope(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given an organization subscription with a signing key
    subscription_uri = subscribe(api, sandbox, receiver.url)
    owner_uri = api.get("/users/me").json()["resource"]["uri"]

    # When an invitee books
    invitee_uri = sandbox.book(email="ada@example.com")

    # Then one POST arrives whose signature verifies over the raw body with that key
    [delivery] = receiver.wait_for(1)
    assert delivery.headers["Content-Type"] == "application/json"
    assert signature_is_valid(delivery.headers["Calendly-Webhook-Signature"], delivery.body, SIGNING_KEY)
    assert not signature_is_valid(delivery.headers["Calendly-Webhook-Signature"], delivery.body, "other-key")
    timestamp = int(delivery.headers["Calendly-Webhook-Signature"].split(",")[0].removeprefix("t="))
    assert abs(time.time() - timestamp) < 60
    # ... and carries Calendly's envelope around the invitee, with the event embedded
    envelope = delivery.envelope
    assert set(envelope) == {"created_at", "created_by", "event", "payload"}
    assert envelope["event"] == "invitee.created"
    assert envelope["created_by"] == owner_uri
    payload = envelope["payload"]
    assert payload["uri"] == invitee_uri
    assert payload["email"] == "ada@example.com"
    assert payload["status"] == "active"
    assert payload["scheduled_event"]["uri"] == payload["event"]
    assert payload["rescheduled"] is False
    assert payload["old_invitee"] is None
    assert payload["new_invitee"] is None
    assert sandbox.deliver_pending(timeout=5)
    [attempt] = sandbox.deliveries
    assert (attempt.subscription_uri, attempt.ok, attempt.status_code, attempt.attempt) == (
        subscription_uri,
        True,
        200,
        1,
    )


def test_subscription_without_key_is_delivered_unsigned(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given a subscription created without a signing key
    subscribe(api, sandbox, receiver.url, signing_key=None)

    # When an invitee books
    sandbox.book()

    # Then the delivery has no signature header
    [delivery] = receiver.wait_for(1)
    assert "Calendly-Webhook-Signature" not in delivery.headers


def test_reschedule_sends_canceled_and_created_linked_both_ways(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given a booked invitee and a subscription
    old_uri = sandbox.book(start_time=SEED_START)
    subscribe(api, sandbox, receiver.url)

    # When the invitee reschedules
    new_uri = sandbox.reschedule(old_uri, SEED_START + timedelta(days=1))

    # Then two deliveries arrive (in any order): the old invitee canceled and the new one created
    by_event = {delivery.event: delivery.envelope["payload"] for delivery in receiver.wait_for(2)}
    assert set(by_event) == {"invitee.canceled", "invitee.created"}
    canceled, created = by_event["invitee.canceled"], by_event["invitee.created"]
    assert canceled["uri"] == old_uri
    assert canceled["rescheduled"] is True
    assert canceled["new_invitee"] == new_uri
    assert canceled["status"] == "canceled"
    assert created["uri"] == new_uri
    assert created["old_invitee"] == old_uri
    assert created["scheduled_event"]["start_time"] == "2030-03-02T00:00:00.000000Z"
    # ... and the API agrees, with the old event canceled
    old_event = api.get(path_of(canceled["event"])).json()["resource"]
    assert old_event["status"] == "canceled"


def test_no_show_changes_leave_updated_at_and_cancel_bumps_it(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given a booking
    subscribe(api, sandbox, receiver.url)
    invitee_uri = sandbox.book()

    def read() -> tuple[str, str, object]:
        invitee = api.get(path_of(invitee_uri)).json()["resource"]
        event = api.get(path_of(invitee["event"])).json()["resource"]
        return invitee["updated_at"], event["updated_at"], invitee["no_show"]

    booked = read()

    # When it is marked a no-show, unmarked, marked again, then canceled by the host
    sandbox.mark_no_show(invitee_uri)
    marked = read()
    sandbox.unmark_no_show(invitee_uri)
    unmarked = read()
    sandbox.mark_no_show(invitee_uri)
    remarked = read()
    sandbox.cancel(invitee_uri, reason="Host is away", by="host")
    final = api.get(path_of(invitee_uri)).json()["resource"]

    # Then, as Calendly does, no-show changes leave the invitee's and the event's updated_at
    # as they were; the cancellation moves it on
    assert marked[:2] == unmarked[:2] == remarked[:2] == booked[:2]
    assert final["updated_at"] > booked[0]
    assert final["cancellation"]["canceler_type"] == "host"
    assert final["cancellation"]["reason"] == "Host is away"
    # a re-mark is a new no-show, created after the first
    assert isinstance(marked[2], dict) and isinstance(remarked[2], dict) and unmarked[2] is None
    assert marked[2]["uri"] != remarked[2]["uri"]
    assert marked[2]["uri"].startswith("https://api.calendly.com/invitee_no_shows/")
    assert marked[2]["created_at"] < remarked[2]["created_at"]
    # each change was announced, in envelopes whose created_at follows the changes' order
    # (deliveries may arrive in any order, as Calendly's do)
    deliveries = sorted(receiver.wait_for(5), key=lambda d: str(d.envelope["created_at"]))
    assert [d.event for d in deliveries] == [
        "invitee.created",
        "invitee_no_show.created",
        "invitee_no_show.deleted",
        "invitee_no_show.created",
        "invitee.canceled",
    ]
    assert len({d.envelope["created_at"] for d in deliveries}) == 5
    payloads = [d.envelope["payload"] for d in deliveries]
    assert [p["no_show"]["uri"] for p in payloads[1:4:2]] == [marked[2]["uri"], remarked[2]["uri"]]
    assert {p["updated_at"] for p in payloads[:4]} == {booked[0]}


def test_user_scope_hook_only_hears_about_its_user(
    sandbox: CalendlySandbox, receiver: WebhookReceiver
) -> None:
    # Given a host subscribed at user scope, and another host in the same organization
    host_token = sandbox.add_token(TokenSpec(role="user"))
    host_uri = sandbox.user_uri_for(host_token)
    sandbox.seed(users=1, event_types_per_user=1, scheduled_events=0, start=SEED_START)
    host_api = Api(sandbox.base_url, host_token)
    assert (
        host_api.subscribe(receiver.url, sandbox.organization_uri, scope="user", user=host_uri).status_code
        == 201
    )
    types = host_api.get("/event_types", organization=sandbox.organization_uri).json()["collection"]
    own_type = next(t["uri"] for t in types if t["profile"]["owner"] == host_uri)
    other_type = next(t["uri"] for t in types if t["profile"]["owner"] != host_uri)

    # When both hosts get a booking
    sandbox.book(event_type_uri=other_type)
    mine = sandbox.book(event_type_uri=own_type)

    # Then only the host's own booking is delivered
    assert sandbox.deliver_pending(timeout=5)
    assert [delivery.envelope["payload"]["uri"] for delivery in receiver.received] == [mine]


def test_failing_endpoint_disables_the_subscription(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given a subscription whose endpoint always answers 500 (retry window compressed to 0.6 s)
    receiver.respond_with([], then=500)
    subscription_uri = subscribe(api, sandbox, receiver.url)

    # When a booking is delivered and retried until the window closes
    sandbox.book()
    assert wait_until(lambda: sandbox.subscription(subscription_uri)["retry_started_at"], timeout=5)
    disabled = wait_until(
        lambda: (
            (hook := api.get(path_of(subscription_uri)).json()["resource"])["state"] == "disabled" and hook
        ),
        timeout=5,
    )

    # Then it was retried with back-off, is disabled with retry_started_at, and hears nothing more
    assert disabled["retry_started_at"] is not None
    attempts = sandbox.deliveries
    assert len(attempts) >= 2
    assert [attempt.attempt for attempt in attempts] == list(range(1, len(attempts) + 1))
    assert not any(attempt.ok for attempt in attempts)
    received_before = len(receiver.received)
    sandbox.book()
    assert sandbox.deliver_pending(timeout=5)
    assert len(receiver.received) == received_before


def test_recovering_endpoint_clears_retry_started_at(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given an endpoint that fails twice (one 500, one redirect) and then accepts
    receiver.respond_with([500, 302], then=200)
    subscription_uri = subscribe(api, sandbox, receiver.url)

    # When a booking is delivered
    sandbox.book()
    assert sandbox.deliver_pending(timeout=5)

    # Then the third attempt succeeded and the subscription is healthy again
    assert [(a.attempt, a.status_code, a.ok) for a in sandbox.deliveries] == [
        (1, 500, False),
        (2, 302, False),
        (3, 200, True),
    ]
    hook = sandbox.subscription(subscription_uri)
    assert hook["state"] == "active"
    assert hook["retry_started_at"] is None


def test_a_stuck_endpoint_does_not_hold_back_others(sandbox: CalendlySandbox, api: Api) -> None:
    # Given two subscriptions, one whose endpoint hangs until released
    with WebhookReceiver() as stuck, WebhookReceiver() as healthy:
        stuck.gate = threading.Event()
        subscribe(api, sandbox, stuck.url)
        subscribe(api, sandbox, healthy.url)

        # When a booking is announced to both
        sandbox.book()

        # Then the healthy endpoint is served while the other is still hanging
        healthy.wait_for(1)
        assert stuck.wait_for(1)
        stuck.gate.set()
        assert sandbox.deliver_pending(timeout=5)


def test_duplicate_fault_sends_the_same_delivery_twice(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given the duplicate fault armed for one delivery
    subscribe(api, sandbox, receiver.url)
    sandbox.faults.duplicate_deliveries = 1

    # When two bookings are made
    sandbox.book()
    sandbox.book()
    assert sandbox.deliver_pending(timeout=5)

    # Then three POSTs arrived: one body twice, the other once
    bodies = [delivery.body for delivery in receiver.wait_for(3)]
    assert len(bodies) == 3
    assert sorted(bodies.count(body) for body in set(bodies)) == [1, 2]
    assert [attempt.fault for attempt in sandbox.deliveries].count("duplicate") == 1


def test_drop_fault_loses_a_delivery_without_retry(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given the drop fault armed for one delivery
    subscribe(api, sandbox, receiver.url)
    sandbox.faults.drop_deliveries = 1

    # When two bookings are made, one after the other
    lost = sandbox.book()
    assert sandbox.deliver_pending(timeout=5)
    kept = sandbox.book()
    assert sandbox.deliver_pending(timeout=5)

    # Then only the second arrives, and the first is recorded as dropped, not retried
    assert [delivery.envelope["payload"]["uri"] for delivery in receiver.received] == [kept]
    assert [dropped.payload_uri for dropped in sandbox.dropped_deliveries] == [lost]


def test_bad_signature_fault_signs_with_a_wrong_key(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given the bad-signature fault armed for every delivery
    subscribe(api, sandbox, receiver.url)
    sandbox.faults.bad_signature = 1.0

    # When a booking is delivered
    sandbox.book()

    # Then its signature does not verify with the subscription's key
    [delivery] = receiver.wait_for(1)
    assert not signature_is_valid(delivery.headers["Calendly-Webhook-Signature"], delivery.body, SIGNING_KEY)


def test_reorder_fault_still_delivers_everything(
    sandbox: CalendlySandbox, api: Api, receiver: WebhookReceiver
) -> None:
    # Given deliveries held back and shuffled at random
    subscribe(api, sandbox, receiver.url)
    sandbox.faults.reorder_deliveries = True

    # When five bookings are made
    booked = {sandbox.book() for _ in range(5)}

    # Then all five arrive exactly once, whatever the order
    assert sandbox.deliver_pending(timeout=5)
    assert sorted(d.envelope["payload"]["uri"] for d in receiver.received) == sorted(booked)

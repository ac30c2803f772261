"""The data rules of architecture.md: the receiver's domain call, then the stream projector, in moto.

Dedupe (one effect per delivery), newer-wins, reschedule links both ways, raw payload kept,
and convergence: whatever order one booking's deliveries arrive in, the table ends the same.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendly_sync.adapters.secrets import SigningKeySecret
from calendly_sync.receiver import DeliveryReceipt, ReceiverDependencies, accept_delivery
from calendly_sync.settings import get_settings
from calendly_sync.signature import sign
from calendly_sync.table_items import (
    POLL,
    format_utc,
    invitee_changes,
    invitee_key,
    parse_invitee_uri,
    same_state,
)
from local.calendly_sandbox import CalendlySandbox, TokenSpec
from local.samples import Booking, event_type_envelope
from tests.conftest import SIGNING_KEY, LocalAws
from tests.sandbox.helpers import WebhookReceiver

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _stack(aws: LocalAws) -> None:
    global _aws
    _aws = aws


_aws: LocalAws


def deliver(envelope: dict[str, Any]) -> DeliveryReceipt:
    """Calendly posts it, the receiver stores it, the stream applies it."""
    return deliver_raw(json.dumps(envelope).encode())


def deliver_raw(raw: bytes) -> DeliveryReceipt:
    """``deliver`` for bytes exactly as they came (the sandbox's), signed afresh with our key."""
    now = time.time()
    config = get_settings()  # (``settings`` is hypothesis's here)
    receiver = ReceiverDependencies(
        config, _aws.table, SigningKeySecret(config.signing_key_secret_id), clock=lambda: now
    )
    receipt = accept_delivery(raw, sign(raw, SIGNING_KEY, int(now)), receiver)
    _aws.project()
    return receipt


def resources(aws: LocalAws) -> dict[str, dict[str, Any]]:
    """Every non-delivery item, keyed by pk/sk: the state a reader sees.

    Without ``sequence``: it counts the writes that landed, and an order that delivers the older
    state first lands more of them; what it must do across orders is checked apart.
    """
    return {
        f"{item['pk']['S']}/{item['sk']['S']}": {
            name: value for name, value in item.items() if name != "sequence"
        }
        for item in aws.all_items()
        if item["entity"]["S"] != "delivery"
    }


def delivery_keys(aws: LocalAws) -> set[str]:
    return {item["pk"]["S"] for item in aws.all_items() if item["entity"]["S"] == "delivery"}


def empty_table(aws: LocalAws) -> None:
    for item in aws.all_items():
        aws.dynamodb.delete_item(TableName=aws.table_name, Key={"pk": item["pk"], "sk": item["sk"]})


def booking_story() -> list[dict[str, Any]]:
    """Booked, marked no-show, then rescheduled: four deliveries over two invitees."""
    first = Booking(start=START)
    deliveries = [first.book(), first.mark_no_show()]
    _, rescheduled = first.reschedule(START + timedelta(days=1))
    return deliveries + rescheduled


def test_every_order_of_one_bookings_deliveries_converges(aws: LocalAws) -> None:
    # Given the deliveries of one booking's life, delivered in order
    story = booking_story()
    for envelope in story:
        deliver(envelope)
    expected_resources, expected_deliveries = resources(aws), delivery_keys(aws)

    # When every other order of the same deliveries is delivered into an empty table
    for order in itertools.permutations(story):
        empty_table(aws)
        for envelope in order:
            deliver(envelope)

        # Then the table ends identical, and each item counts the writes that landed on it: at
        # least one, never more than the deliveries there were
        assert resources(aws) == expected_resources, [e["event"] for e in order]
        assert delivery_keys(aws) == expected_deliveries
        sequences = [
            int(item["sequence"]["N"]) for item in aws.all_items() if item["entity"]["S"] != "delivery"
        ]
        assert sequences and all(1 <= sequence <= len(story) for sequence in sequences)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(8))))
def test_duplicated_and_reordered_deliveries_converge(aws: LocalAws, order: list[int]) -> None:
    # Given each delivery of the story sent twice, in any order
    story = booking_story()
    doubled = story + story
    empty_table(aws)
    for envelope in story:
        deliver(envelope)
    expected = resources(aws)
    empty_table(aws)

    # When they arrive shuffled
    receipts = [deliver(doubled[index]) for index in order]

    # Then exactly one of each pair was stored, the other seen as a duplicate, same final state
    assert sorted(r.status for r in receipts) == ["duplicate"] * 4 + ["stored"] * 4
    assert resources(aws) == expected


def test_an_older_update_never_overwrites_a_newer_one(aws: LocalAws) -> None:
    # Given a booking that was made and then canceled
    booking = Booking(start=START)
    created, canceled = booking.book(), booking.cancel()

    # When the cancellation arrives first and the creation after it
    first = deliver(canceled)
    late = deliver(created)

    # Then the invitee stays canceled: the late creation is recorded but changes nothing
    assert (first.status, late.status) == ("stored", "stored")
    invitee = aws.table.get(invitee_key(booking.event_uuid, booking.invitee_uuid))
    assert invitee is not None and invitee["status"] == "canceled"
    assert len(delivery_keys(aws)) == 2


def test_a_reschedule_links_both_ways_even_if_only_the_new_invitee_arrives(aws: LocalAws) -> None:
    # Given a booking that was stored, then rescheduled
    old = Booking(start=START)
    deliver(old.book())
    new, (_, created_new) = old.reschedule(START + timedelta(days=2))

    # When only the new invitee's delivery arrives (the cancellation was lost)
    deliver(created_new)

    # Then the new invitee names the old one, and the old one names the new one
    stored_new = aws.table.get(invitee_key(new.event_uuid, new.invitee_uuid))
    stored_old = aws.table.get(invitee_key(old.event_uuid, old.invitee_uuid))
    assert stored_new is not None and stored_new["old_invitee"] == old.invitee_uri
    assert stored_old is not None and stored_old["new_invitee"] == new.invitee_uri
    assert stored_old["rescheduled"] is True


def test_a_link_survives_a_late_payload_that_does_not_carry_it(aws: LocalAws) -> None:
    # Given the new invitee arrived first and linked the old one (a stub so far)
    old = Booking(start=START)
    booked = old.book()
    new, (_, created_new) = old.reschedule(START + timedelta(days=2))
    deliver(created_new)

    # When the old invitee's original creation arrives late, without any link in it
    deliver(booked)

    # Then the old invitee is filled in and keeps its link to the new one
    stored_old = aws.table.get(invitee_key(old.event_uuid, old.invitee_uuid))
    assert stored_old is not None
    assert stored_old["status"] == "active" and stored_old["new_invitee"] == new.invitee_uri


def test_repeated_changes_of_one_kind_are_not_mistaken_for_duplicates(aws: LocalAws) -> None:
    # Given a no-show marked, removed and marked again
    booking = Booking(start=START)
    deliveries = [booking.book(), booking.mark_no_show(), booking.unmark_no_show(), booking.mark_no_show()]

    # When all four arrive
    receipts = [deliver(envelope) for envelope in deliveries]

    # Then each had its effect and the invitee ends marked
    assert [r.status for r in receipts] == ["stored"] * 4
    invitee = aws.table.get(invitee_key(booking.event_uuid, booking.invitee_uuid))
    assert invitee is not None and invitee["no_show"] == booking.no_show["uri"]  # type: ignore[index]


def test_an_event_type_updated_twice_keeps_the_newest(aws: LocalAws) -> None:
    # Given two updates of one event type, a minute apart, delivered newest first
    older = event_type_envelope(name="Intro call")
    newer = json.loads(json.dumps(older))
    newer["payload"]["name"] = "Intro call (45 min)"
    newer["payload"]["updated_at"] = "2026-11-02T08:01:00.000000Z"
    receipts = [deliver(newer), deliver(older)]

    # Then both are recorded as deliveries and the newest name stays
    assert [r.status for r in receipts] == ["stored", "stored"]
    (event_type,) = [item for item in resources(aws).values() if item["entity"]["S"] == "event_type"]
    assert event_type["name"]["S"] == "Intro call (45 min)"


@pytest.mark.parametrize("final_first", [True, False])
def test_a_tie_on_updated_at_settles_on_the_final_state_in_any_order(
    aws: LocalAws, final_first: bool
) -> None:
    # Given two bodies for one invitee with the same updated_at, one of them canceled
    booking = Booking(start=START)
    active = booking.book()
    canceled = json.loads(json.dumps(active))
    canceled["event"] = "invitee.canceled"
    canceled["payload"]["status"] = "canceled"
    for envelope in [canceled, active] if final_first else [active, canceled]:
        deliver(envelope)

    # Then whichever came first, the canceled one wins
    invitee = aws.table.get(invitee_key(booking.event_uuid, booking.invitee_uuid))
    assert invitee is not None and invitee["status"] == "canceled"


def test_the_access_patterns_answer_from_the_indexes(aws: LocalAws) -> None:
    # Given three bookings on two days, two of them by the same person
    bookings = [
        Booking(start=START, email="Ada@Example.com"),
        Booking(start=START + timedelta(hours=3), email="grace@example.com"),
        Booking(start=START + timedelta(days=1), email="ada@example.com"),
    ]
    for booking in bookings:
        deliver(booking.book())
    table = aws.table

    # Then pattern 1: an event with its invitees, by event uuid
    first = table.scheduled_event_with_invitees(bookings[0].event_uuid)
    assert sorted(item["entity"] for item in first) == ["invitee", "scheduled_event"]
    # pattern 2: the events of a time range, by start time, across days
    window = table.scheduled_events_starting("2026-12-01T00:00:00.000000Z", "2026-12-02T23:59:59.999999Z")
    assert [item["event_uuid"] for item in window] == [b.event_uuid for b in bookings]
    one_day = table.scheduled_events_starting("2026-12-01T00:00:00.000000Z", "2026-12-02T00:00:00.000000Z")
    assert len(one_day) == 2
    # pattern 3: the bookings of one email, whatever its case
    assert {i["event_uuid"] for i in table.bookings_of_email("ADA@example.com")} == {
        bookings[0].event_uuid,
        bookings[2].event_uuid,
    }
    # pattern 4: the deliveries of the day, deduplicated, with their TTL
    deliveries = table.deliveries_received(time.strftime("%Y-%m-%d", time.gmtime()))
    assert len(deliveries) == 3 and all(d["expires_at"] > time.time() + 89 * 86400 for d in deliveries)


# --- no-shows: Calendly leaves updated_at as it was, so order comes from the no-show itself ---


def no_show_of(aws: LocalAws, booking: Booking) -> str | None:
    invitee = aws.table.get(invitee_key(booking.event_uuid, booking.invitee_uuid))
    assert invitee is not None
    return invitee.get("no_show")


def no_show_story(steps: int) -> tuple[Booking, list[dict[str, Any]], list[str | None]]:
    """Booked, then marked / unmarked in turn ``steps`` times: the deliveries, and Calendly's
    no-show after each one (the no-show URI, or None)."""
    booking = Booking(start=START)
    deliveries, truth = [booking.book()], [None]
    for step in range(steps):
        deliveries.append(booking.unmark_no_show() if step % 2 else booking.mark_no_show())
        truth.append(booking.no_show["uri"] if booking.no_show else None)
    return booking, deliveries, truth


@pytest.mark.parametrize("steps", [1, 2, 3], ids=["mark", "mark-unmark", "mark-unmark-remark"])
def test_every_order_of_no_show_changes_ends_as_calendly_does(aws: LocalAws, steps: int) -> None:
    # Given a booking whose no-show was marked, removed and marked again (updated_at never moves)
    booking, story, truth = no_show_story(steps)
    assert len({envelope["payload"]["updated_at"] for envelope in story}) == 1

    for order in itertools.permutations(story):
        empty_table(aws)
        # When its deliveries arrive in any order, then all again (Calendly's retries)
        first = [deliver(envelope) for envelope in order]
        again = [deliver(envelope) for envelope in reversed(order)]

        # Then each real change was stored once, each retry was a duplicate,
        # and the invitee ends with Calendly's final no-show
        assert [r.status for r in first] == ["stored"] * len(story), [e["event"] for e in order]
        assert [r.status for r in again] == ["duplicate"] * len(story)
        assert no_show_of(aws, booking) == truth[-1], [e["event"] for e in order]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.integers(min_value=1, max_value=5),
    cancel=st.booleans(),
    data=st.data(),
)
def test_no_show_histories_with_duplicates_converge_on_calendlys_state(
    aws: LocalAws, steps: int, cancel: bool, data: st.DataObject
) -> None:
    # Given any history of marks and removals (a re-mark, a second removal), maybe a cancellation
    booking, story, truth = no_show_story(steps)
    if cancel:
        story.append(booking.cancel())
    empty_table(aws)
    for envelope in story:
        deliver(envelope)
    expected = resources(aws)

    # When its deliveries arrive shuffled, some of them several times
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(story), max_size=len(story)))
    arrivals = data.draw(st.permutations([e for e, n in zip(story, copies, strict=True) for _ in range(n)]))
    empty_table(aws)
    receipts = [deliver(envelope) for envelope in arrivals]

    # Then one delivery per change was stored, and the table is the one in-order delivery gives
    assert sum(r.status == "stored" for r in receipts) == len(story)
    assert resources(aws) == expected
    assert no_show_of(aws, booking) == truth[-1]


def lagged(envelope: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The envelope as Calendly sends it some time after the change (25 s in a public capture)."""
    created_at = datetime.fromisoformat(envelope["created_at"]) + timedelta(seconds=seconds)
    return {**envelope, "created_at": format_utc(created_at)}


def test_a_removal_wins_over_its_mark_even_when_the_marks_envelope_came_later(aws: LocalAws) -> None:
    # Given a mark removed 2 s later, the mark's envelope made 25 s after it, the removal's at once
    booking = Booking(start=START)
    story = [booking.book(), lagged(booking.mark_no_show(), 25)]
    booking.clock += timedelta(seconds=1)
    story.append(booking.unmark_no_show())

    # When the deliveries arrive in any order, then the invitee ends unmarked
    for order in itertools.permutations(story):
        empty_table(aws)
        for envelope in order:
            deliver(envelope)
        assert no_show_of(aws, booking) is None, [e["event"] for e in order]


def test_a_quick_re_mark_after_a_late_removal_envelope_is_put_right_by_the_next_poll(aws: LocalAws) -> None:
    # Given a no-show removed and marked again 5 s apart, each envelope made 25 s after its change
    # (the removal's envelope then postdates the re-mark: the one order deliveries cannot settle)
    booking = Booking(start=START)
    story = [booking.book(), booking.mark_no_show()]
    booking.clock += timedelta(seconds=5)
    story.append(booking.unmark_no_show())
    booking.clock += timedelta(seconds=5)
    story.append(booking.mark_no_show())
    story = [lagged(envelope, 25) for envelope in story]

    for order in itertools.permutations(story):
        empty_table(aws)
        for envelope in order:
            deliver(envelope)

        # When the poller next reads the invitee (after those envelopes were made) and writes it
        read_at = format_utc(booking.clock + timedelta(minutes=5))
        reading = invitee_changes(booking.invitee(), fallback_updated_at=read_at, as_of=read_at)
        aws.table.apply_changes(reading, origin=POLL)

        # Then the invitee ends marked with the re-mark, and the deliveries' retries do not undo it
        assert no_show_of(aws, booking) == booking.no_show["uri"], [e["event"] for e in order]  # type: ignore[index]
        for envelope in order:
            assert deliver(envelope).status == "duplicate"
        assert no_show_of(aws, booking) == booking.no_show["uri"]  # type: ignore[index]


def test_a_poll_reading_corrects_a_lost_removal_and_a_later_mark_corrects_it(aws: LocalAws) -> None:
    # Given a booking marked a no-show, whose removal's delivery was lost
    booking = Booking(start=START)
    deliver(booking.book())
    deliver(booking.mark_no_show())
    booking.unmark_no_show()
    assert no_show_of(aws, booking) is not None

    # When a poll reads the invitee (no no-show) and writes it as the poller does
    read_at = format_utc(booking.clock + timedelta(seconds=1))
    reading = invitee_changes(booking.invitee(), fallback_updated_at=read_at, as_of=read_at)
    aws.table.apply_changes(reading, origin=POLL)

    # Then the flag is cleared, though updated_at is the one already stored
    assert no_show_of(aws, booking) is None

    # When the invitee is marked again after that reading
    booking.clock += timedelta(seconds=2)
    deliver(booking.mark_no_show())

    # Then the later mark wins over the poll's reading, and replaying that reading changes nothing
    assert no_show_of(aws, booking) == booking.no_show["uri"]  # type: ignore[index]
    outcome = aws.table.apply_changes(reading, origin=POLL)
    assert not outcome.applied and no_show_of(aws, booking) == booking.no_show["uri"]  # type: ignore[index]


def test_a_stale_poll_reading_does_not_undo_a_later_removal(aws: LocalAws) -> None:
    # Given a poll that read the invitee while it was marked, but wrote after the removal arrived
    booking = Booking(start=START)
    deliver(booking.book())
    deliver(booking.mark_no_show())
    read_at = format_utc(booking.clock + timedelta(microseconds=1))
    stale = invitee_changes(booking.invitee(), fallback_updated_at=read_at, as_of=read_at)
    booking.clock += timedelta(seconds=1)
    deliver(booking.unmark_no_show())

    # When that reading is written
    outcome = aws.table.apply_changes(stale, origin=POLL)

    # Then it is stale: the removal stays
    assert not outcome.applied and no_show_of(aws, booking) is None


@pytest.mark.parametrize("digest", ["0000000000000000", "ffffffffffffffff"])
def test_a_mark_wins_over_a_version_written_before_no_show_ordering(aws: LocalAws, digest: str) -> None:
    # Given an invitee stored by the previous release, version <updated_at>#0#<digest>
    booking = Booking(start=START)
    deliver(booking.book())
    key = invitee_key(booking.event_uuid, booking.invitee_uuid)
    stored = aws.table.get(key)
    assert stored is not None
    legacy = f"{stored['updated_at']}#0#{digest}"
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"pk": {"S": key.pk}, "sk": {"S": key.sk}},
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": {"S": legacy}},
    )

    # When the no-show is marked (same updated_at), whatever digest the old version had
    deliver(booking.mark_no_show())

    # Then the mark lands, and the poller sees that state as new (not the same as the old one)
    assert no_show_of(aws, booking) == booking.no_show["uri"]  # type: ignore[index]
    marked = aws.table.get(key)
    assert marked is not None and not same_state(legacy, marked["version"])


def test_the_sandboxs_no_show_deliveries_reordered_and_doubled_end_in_its_state(
    aws: LocalAws, calendly: CalendlySandbox
) -> None:
    # Given the sandbox (behaving as Calendly: no-show changes leave updated_at as it was)
    # delivering to an endpoint out of order and twice over
    token = calendly.add_token(TokenSpec(role="owner"))
    with WebhookReceiver() as endpoint:
        response = requests.post(
            f"{calendly.base_url}/webhook_subscriptions",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "url": endpoint.url,
                "events": ["invitee.created", "invitee_no_show.created", "invitee_no_show.deleted"],
                "organization": calendly.organization_uri,
                "scope": "organization",
                "signing_key": "sandbox-subscription-key",
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
        calendly.faults.duplicate_deliveries = 1.0
        calendly.faults.reorder_deliveries = True

        # When an invitee is booked, marked, unmarked, marked again, unmarked, marked a third time
        invitee = calendly.book()
        for step in range(5):
            (calendly.unmark_no_show if step % 2 else calendly.mark_no_show)(invitee)
        assert calendly.deliver_pending(timeout=20)
        bodies = [delivery.body for delivery in endpoint.received]
        read = requests.get(
            f"{calendly.base_url}/scheduled_events/{invitee.split('/scheduled_events/', 1)[1]}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    truth = read.json()["resource"]["no_show"]["uri"]
    assert len(bodies) == 12

    # Then whether the receiver gets them in the order they came or the reverse,
    # one per change is stored and the invitee ends with the sandbox's own no-show
    ids = parse_invitee_uri(invitee)
    assert ids is not None
    for arrival in (bodies, bodies[::-1]):
        empty_table(aws)
        receipts = [deliver_raw(body) for body in arrival]
        assert sum(r.status == "stored" for r in receipts) == 6
        stored = aws.table.get(invitee_key(*ids))
        assert stored is not None and stored["no_show"] == truth

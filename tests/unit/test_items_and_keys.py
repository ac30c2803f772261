"""Calendly resources -> table items: keys, index keys, what is kept and what is refused.

Pure: the receiver's projector and the poller build the same items from the same objects.
The ordering of versions is in test_records.py; here, what each item holds and where it lives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calendly_sync import table_items
from calendly_sync.deliveries import dedupe_key, plan_delivery, resource_changes
from calendly_sync.envelope import parse_envelope
from calendly_sync.table_items import ItemKey, LinkUpdate, VersionedItem, format_utc
from local.samples import Booking, event_type_envelope

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
BASE = "https://api.calendly.com"


def changes_of(envelope: dict[str, Any]) -> tuple[table_items.Change, ...]:
    return resource_changes(parse_envelope(json.dumps(envelope)))


# --- keys ---------------------------------------------------------------------------------


def test_an_invitee_lives_beside_its_event_and_is_found_by_lower_case_email() -> None:
    # Given a booking made with a mixed-case, padded email
    booking = Booking(start=START, email="  Ada@Example.COM ")

    # When its delivery is turned into items
    invitee, event = changes_of(booking.book())

    # Then the invitee sits in its event's partition, indexed by its normalized email
    assert isinstance(invitee, VersionedItem) and isinstance(event, VersionedItem)
    assert invitee.key == ItemKey(f"EVENT#{booking.event_uuid}", f"INVITEE#{booking.invitee_uuid}")
    assert event.key == ItemKey(f"EVENT#{booking.event_uuid}", "EVENT")
    assert invitee.attributes["email"] == "ada@example.com"
    assert invitee.attributes["gsi2pk"] == "EMAIL#ada@example.com"
    assert str(invitee.attributes["gsi2sk"]).endswith(f"#{booking.invitee_uuid}")


def test_a_scheduled_event_is_found_by_the_utc_day_it_starts() -> None:
    # Given a booking starting at 15:00 UTC
    booking = Booking(start=START)

    # When its event becomes an item
    event = table_items.scheduled_event_item(booking.book()["payload"]["scheduled_event"])

    # Then the time index names its UTC day and sorts it by start time
    assert event is not None
    assert event.attributes["gsi1pk"] == "START#2026-12-01"
    assert event.attributes["gsi1sk"] == f"2026-12-01T15:00:00.000000Z#{booking.event_uuid}"


def test_the_other_resources_each_have_their_own_partition() -> None:
    assert table_items.event_type_key("ET") == ItemKey("EVENT_TYPE#ET", "EVENT_TYPE")
    assert table_items.routing_form_submission_key("S") == ItemKey("ROUTING_FORM_SUBMISSION#S", "SUBMISSION")
    assert table_items.delivery_key("abc") == ItemKey("DELIVERY#abc", "DELIVERY")
    assert table_items.sync_state_key("CONNECTION") == ItemKey("SYNC", "CONNECTION")
    member = table_items.membership_item(
        {"uri": f"{BASE}/organization_memberships/M1", "role": "admin", "created_at": "2026-01-01T00:00:00Z"}
    )
    assert member is not None and member.key == ItemKey("MEMBERSHIP#M1", "MEMBERSHIP")


@pytest.mark.parametrize(
    ("uri", "ids"),
    [
        (f"{BASE}/scheduled_events/E1/invitees/I1", ("E1", "I1")),
        (f"{BASE}/scheduled_events/E1/invitees/I1/", ("E1", "I1")),
        (f"{BASE}/scheduled_events/E1", None),
        (f"{BASE}/scheduled_events/E 1/invitees/I1", None),
        (None, None),
    ],
)
def test_only_an_invitee_uri_names_an_invitee(uri: object, ids: tuple[str, str] | None) -> None:
    assert table_items.parse_invitee_uri(uri) == ids


# --- what an item keeps -------------------------------------------------------------------


def test_an_invitees_raw_leaves_out_its_event_but_keeps_the_events_essentials() -> None:
    # Given a delivered booking (the invitee embeds its scheduled event)
    booking = Booking(start=START)

    # When it becomes items
    invitee, _ = changes_of(booking.book())

    # Then raw is the invitee alone, and the event's essentials ride along for the publisher
    assert isinstance(invitee, VersionedItem)
    assert "scheduled_event" not in json.loads(str(invitee.attributes["raw"]))
    summary = json.loads(str(invitee.attributes["scheduled_event"]))
    assert summary["uri"] == booking.event_uri and summary["start_time"] == "2026-12-01T15:00:00.000000Z"


def test_a_reschedule_links_the_old_and_new_invitees_both_ways() -> None:
    # Given a booking rescheduled: the old invitee canceled, a new one created
    booking = Booking(start=START)
    booking.book()
    new, (canceled, created) = booking.reschedule(START + timedelta(days=1))

    # When both deliveries become items
    old_changes, new_changes = changes_of(canceled), changes_of(created)

    # Then each invitee names the other, and each delivery also writes a link onto the other
    old_item, new_item = old_changes[0], new_changes[0]
    assert isinstance(old_item, VersionedItem) and isinstance(new_item, VersionedItem)
    assert old_item.attributes["new_invitee"] == new.invitee_uri
    assert old_item.attributes["rescheduled"] is True
    assert new_item.attributes["old_invitee"] == booking.invitee_uri
    (link_to_new,) = [c for c in old_changes if isinstance(c, LinkUpdate)]
    (link_to_old,) = [c for c in new_changes if isinstance(c, LinkUpdate)]
    assert link_to_new.key == new_item.key and link_to_new.attributes["old_invitee"] == booking.invitee_uri
    assert link_to_old.key == old_item.key and link_to_old.attributes["new_invitee"] == new.invitee_uri
    assert link_to_old.attributes["rescheduled"] is True


def test_a_link_to_itself_is_ignored_and_a_missing_rescheduled_flag_erases_nothing() -> None:
    # Given an invitee body naming itself as its own new invitee, with rescheduled false
    body = Booking(start=START).book()["payload"]
    body = {**body, "new_invitee": body["uri"], "rescheduled": False}

    # When it becomes items
    changes = table_items.invitee_changes(body, fallback_updated_at=format_utc(START))

    # Then there is only the invitee, with no link and no rescheduled attribute to overwrite one
    (item,) = changes
    assert isinstance(item, VersionedItem)
    assert "new_invitee" not in item.attributes and "rescheduled" not in item.attributes


def test_a_deleted_event_type_is_inactive_and_its_version_final() -> None:
    # Given an event type updated, then deleted, both stamped with the same time
    updated = table_items.event_type_item(event_type_envelope()["payload"])
    deleted = table_items.event_type_item(event_type_envelope("event_type.deleted")["payload"], deleted=True)

    # Then the deleted one is inactive, and its final flag makes it win a tie
    assert updated is not None and deleted is not None
    assert (deleted.attributes["active"], deleted.attributes["deleted"]) == (False, True)
    assert deleted.version.split("#")[1] == "1" and updated.version.split("#")[1] == "0"


@pytest.mark.parametrize(
    "resource",
    [
        None,
        "https://api.calendly.com/scheduled_events/E1",
        {"uri": f"{BASE}/scheduled_events/E1"},  # no time at all
        {"uri": f"{BASE}/event_types/E1", "updated_at": "2026-01-01T00:00:00Z"},  # another kind
        {"uri": f"{BASE}/scheduled_events/E1", "updated_at": "not a time"},
    ],
)
def test_what_is_not_a_scheduled_event_with_a_time_makes_no_item(resource: object) -> None:
    assert table_items.scheduled_event_item(resource) is None


def test_an_invitee_without_a_usable_uri_makes_no_items() -> None:
    body = {**Booking(start=START).book()["payload"], "uri": f"{BASE}/scheduled_events/E1"}
    assert table_items.invitee_changes(body, fallback_updated_at=format_utc(START)) == []
    assert table_items.invitee_changes(["not", "a", "mapping"], fallback_updated_at=format_utc(START)) == []


# --- the delivery's own record ------------------------------------------------------------


def test_a_deliverys_audit_record_is_keyed_by_its_dedupe_key_and_expires() -> None:
    # Given a delivery received at a known moment, kept 90 days
    envelope = parse_envelope(json.dumps(Booking(start=START).book()))
    received = datetime(2026, 11, 2, 9, 0, 5, tzinfo=UTC)

    # When its audit record is planned
    plan = plan_delivery(envelope, "the body", received_at=received, retention_days=90)

    # Then it is found by its dedupe key and by the day it came, and expires 90 days on
    attributes = plan.delivery.attributes
    assert plan.dedupe_key == dedupe_key(envelope)
    assert plan.delivery.key == table_items.delivery_key(plan.dedupe_key)
    assert attributes["gsi1pk"] == "DELIVERIES#2026-11-02"
    assert attributes["gsi1sk"] == f"2026-11-02T09:00:05.000000Z#{plan.dedupe_key}"
    assert attributes["expires_at"] == int((received + timedelta(days=90)).timestamp())
    assert (attributes["body"], attributes["event"]) == ("the body", "invitee.created")


# --- dedupe keys --------------------------------------------------------------------------


def key_of(envelope: dict[str, Any]) -> str:
    return dedupe_key(parse_envelope(json.dumps(envelope)))


def test_two_updates_of_one_resource_are_two_deliveries() -> None:
    # Given one event type updated twice: same event name and URI, another updated_at
    first = event_type_envelope()
    second = json.loads(json.dumps(first))
    second["payload"]["updated_at"] = "2026-11-02T08:05:00.000000Z"

    # Then each update has its own key (a retry's sameness is in test_records.py)
    assert key_of(first) != key_of(second)


def test_the_same_resource_under_another_event_name_is_another_delivery() -> None:
    envelope = event_type_envelope()
    deleted = {**envelope, "event": "event_type.deleted"}
    assert key_of(envelope) != key_of(deleted)


def test_without_a_uri_only_the_content_tells_deliveries_apart() -> None:
    # Given two deliveries of one event name at one moment, neither naming a URI
    base = {"event": "routing_form_submission.created", "created_at": "2026-11-02T08:00:00Z"}
    one = {**base, "payload": {"answers": ["a"]}}
    other = {**base, "payload": {"answers": ["b"]}}

    # Then their content keeps them apart, and the same content is the same delivery
    assert key_of(one) != key_of(other)
    assert key_of(one) == key_of(json.loads(json.dumps(one)))


def test_each_removal_of_a_no_show_is_its_own_delivery() -> None:
    # Given a mark removed twice (each removal delivered in its own envelope, updated_at unchanged)
    booking = Booking(start=START)
    booking.book()
    booking.mark_no_show()
    first_removal = booking.unmark_no_show()
    booking.mark_no_show()
    second_removal = booking.unmark_no_show()

    # Then the removals, told apart only by their envelopes' times, have their own keys
    assert first_removal["payload"]["updated_at"] == second_removal["payload"]["updated_at"]
    assert key_of(first_removal) != key_of(second_removal)

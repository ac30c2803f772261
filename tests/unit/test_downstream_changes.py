"""Which downstream events a table write announces, and how each becomes a PutEvents entry.

Pure: items are built by the same ``table_items``/``deliveries`` code the receiver and the poller use,
applied to an in-memory table with the real table's rules, and the stream records it writes
are classified. No moto.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from calendly_sync import table_items
from calendly_sync.deliveries import resource_changes
from calendly_sync.downstream.changes import DownstreamChange, change_id, record_changes
from calendly_sync.downstream.entries import (
    CLIPPED_STRING_CHARS,
    MAX_REQUEST_BYTES,
    chunks,
    detail_of,
    entry_of,
)
from calendly_sync.envelope import parse_envelope
from calendly_sync.events import DOWNSTREAM_EVENTS
from tests.downstream_helpers import MemoryTable, assert_valid_event, envelope

API = "https://api.calendly.com"
EVENT_UUID = "EV0000000000000001"
INVITEE_UUID = "IN0000000000000001"
EVENT_URI = f"{API}/scheduled_events/{EVENT_UUID}"
INVITEE_URI = f"{EVENT_URI}/invitees/{INVITEE_UUID}"
EVENT_TYPE_URI = f"{API}/event_types/ET0000000000000001"
ORGANIZATION = f"{API}/organizations/ORG0000000000001"


def scheduled_event(**changes: Any) -> dict[str, Any]:
    event = {
        "uri": EVENT_URI,
        "name": "Intro call",
        "status": "active",
        "start_time": "2026-03-02T15:00:00.000000Z",
        "end_time": "2026-03-02T15:30:00.000000Z",
        "event_type": EVENT_TYPE_URI,
        "location": {"type": "zoom", "join_url": "https://zoom.example/j/1"},
        "invitees_counter": {"total": 1, "active": 1, "limit": 1},
        "created_at": "2026-02-20T10:00:00.000000Z",
        "updated_at": "2026-02-20T10:00:00.000000Z",
    }
    event.update(changes)
    return event


def invitee(**changes: Any) -> dict[str, Any]:
    body = {
        "uri": INVITEE_URI,
        "event": EVENT_URI,
        "email": "Someone@Example.com",
        "name": "Some One",
        "status": "active",
        "timezone": "Europe/Paris",
        "rescheduled": False,
        "old_invitee": None,
        "new_invitee": None,
        "no_show": None,
        "cancellation": None,
        "questions_and_answers": [],
        "created_at": "2026-02-20T10:00:00.000000Z",
        "updated_at": "2026-02-20T10:00:00.000000Z",
        "scheduled_event": scheduled_event(),
    }
    body.update(changes)
    return body


def canceled(**changes: Any) -> dict[str, Any]:
    return invitee(
        status="canceled",
        updated_at="2026-02-21T09:00:00.000000Z",
        cancellation={
            "canceler_type": "invitee",
            "canceled_by": "Some One",
            "created_at": "2026-02-21T09:00:00Z",
        },
        **changes,
    )


def no_show(uuid: str, created_at: str) -> dict[str, Any]:
    return {"uri": f"{API}/invitee_no_shows/{uuid}", "created_at": created_at}


def webhook(event: str, payload: dict[str, Any], created_at: str = "2026-02-21T09:00:05.000000Z") -> Any:
    return resource_changes(parse_envelope(envelope(event, payload, created_at)))


def polled_invitee(body: dict[str, Any], read_at: str) -> list[table_items.Change]:
    """The items the poller makes of an invitee it lists (the event listed beside it)."""
    own = {name: value for name, value in body.items() if name != "scheduled_event"}
    return [
        *table_items.invitee_changes(
            own, fallback_updated_at=read_at, as_of=read_at, scheduled_event=body["scheduled_event"]
        ),
        table_items.scheduled_event_item(body["scheduled_event"]),
    ]


def published(table: MemoryTable) -> list[DownstreamChange]:
    return [
        change
        for record in table.take_stream()
        for change in record_changes(record.event_name, record.old_image, record.new_image)
    ]


def kinds(changes: list[DownstreamChange]) -> list[str]:
    return [change.detail_type for change in changes]


# --- invitees -------------------------------------------------------------------------------


def test_a_new_booking_is_one_invitee_created_with_its_event_essentials() -> None:
    # GIVEN an empty table WHEN the invitee.created delivery is applied
    table = MemoryTable()
    table.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)

    # THEN one invitee.created: the invitee, by webhook, at its created_at, with the event's essentials
    (change,) = published(table)
    assert change.detail_type == "invitee.created"
    assert change.origin == "webhook" and change.subject == INVITEE_URI
    assert change.occurred_at == "2026-02-20T10:00:00.000000Z"
    assert change.change_id == change_id("invitee.created", INVITEE_URI)
    resource = change.resource
    assert resource["type"] == "invitee" and resource["email"] == "someone@example.com"
    assert (
        resource["cancellation"] is None and resource["no_show"] is None and resource["rescheduled"] is False
    )
    assert resource["scheduled_event"] == {
        "uri": EVENT_URI,
        "name": "Intro call",
        "status": "active",
        "start_time": "2026-03-02T15:00:00.000000Z",
        "end_time": "2026-03-02T15:30:00.000000Z",
        "event_type": EVENT_TYPE_URI,
        "location": {"type": "zoom", "join_url": "https://zoom.example/j/1"},
        "canceler_type": None,
        "event_memberships": [],
        "event_guests": [],
        "invitees_counter": {"total": 1, "active": 1, "limit": 1},
        "created_at": "2026-02-20T10:00:00.000000Z",
        "updated_at": "2026-02-20T10:00:00.000000Z",
    }
    # AND Calendly's own object, without the embedded event (stored as its own item)
    assert change.calendly["uri"] == INVITEE_URI and "scheduled_event" not in change.calendly
    assert_valid_event(change.detail_type, detail_of(change, ORGANIZATION))


def test_a_cancellation_is_one_invitee_canceled_at_its_cancellation_time() -> None:
    # GIVEN a stored booking
    table = MemoryTable()
    table.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)
    table.take_stream()

    # WHEN the cancellation is delivered
    table.apply(webhook("invitee.canceled", canceled()), table_items.WEBHOOK)

    # THEN one invitee.canceled (the event's own write changes none of its published fields)
    (change,) = published(table)
    assert change.detail_type == "invitee.canceled"
    assert change.occurred_at == "2026-02-21T09:00:00.000000Z"
    assert change.resource["cancellation"] == {
        "canceler_type": "invitee",
        "canceled_at": "2026-02-21T09:00:00.000000Z",
        "reason": None,
        "canceled_by": "Some One",
    }
    assert_valid_event(change.detail_type, detail_of(change, ORGANIZATION))


def test_an_invitee_first_seen_canceled_and_no_show_announces_each_step_in_order() -> None:
    # GIVEN nothing stored WHEN the first we see of an invitee is canceled, with a no-show
    table = MemoryTable()
    mark = no_show("NS1", "2026-02-22T08:00:00Z")
    table.apply(webhook("invitee.canceled", canceled(no_show=mark)), table_items.WEBHOOK)

    # THEN created, canceled, no-show created, in that order, each with its own subject and time
    changes = published(table)
    assert kinds(changes) == ["invitee.created", "invitee.canceled", "invitee_no_show.created"]
    assert changes[2].subject == mark["uri"]
    assert changes[2].occurred_at == "2026-02-22T08:00:00.000000Z"
    assert changes[2].resource["no_show"] == {"uri": mark["uri"], "created_at": "2026-02-22T08:00:00.000000Z"}
    assert len({change.change_id for change in changes}) == 3


def test_no_show_marked_removed_and_marked_again_announce_each_change() -> None:
    # GIVEN a stored booking
    table = MemoryTable()
    table.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)
    table.take_stream()
    first, second = no_show("NS1", "2026-03-02T16:00:00Z"), no_show("NS2", "2026-03-02T17:00:00Z")

    # WHEN a no-show is marked, then removed, then marked again (a new no-show)
    table.apply(
        webhook("invitee_no_show.created", invitee(no_show=first), "2026-03-02T16:00:05Z"),
        table_items.WEBHOOK,
    )
    marked = published(table)
    table.apply(webhook("invitee_no_show.deleted", invitee(), "2026-03-02T16:30:00Z"), table_items.WEBHOOK)
    removed = published(table)
    table.apply(
        webhook("invitee_no_show.created", invitee(no_show=second), "2026-03-02T17:00:05Z"),
        table_items.WEBHOOK,
    )
    marked_again = published(table)

    # THEN created NS1; deleted NS1 as of the removal's delivery; created NS2
    assert [(c.detail_type, c.subject) for c in marked] == [("invitee_no_show.created", first["uri"])]
    assert [(c.detail_type, c.subject) for c in removed] == [("invitee_no_show.deleted", first["uri"])]
    assert removed[0].occurred_at == "2026-03-02T16:30:00.000000Z"
    assert [(c.detail_type, c.subject) for c in marked_again] == [("invitee_no_show.created", second["uri"])]
    for change in marked + removed + marked_again:
        assert_valid_event(change.detail_type, detail_of(change, ORGANIZATION))


def test_a_no_show_replaced_by_another_is_deleted_then_created() -> None:
    # GIVEN an invitee stored with no-show NS1 WHEN a poll reads it with NS2 instead
    table = MemoryTable()
    table.apply(
        webhook("invitee.created", invitee(no_show=no_show("NS1", "2026-03-02T16:00:00Z"))),
        table_items.WEBHOOK,
    )
    table.take_stream()
    table.apply(
        polled_invitee(
            invitee(no_show=no_show("NS2", "2026-03-02T17:00:00Z")), "2026-03-02T18:00:00.000000Z"
        ),
        table_items.POLL,
    )

    # THEN deleted NS1 then created NS2, both from the poll
    changes = published(table)
    assert [(c.detail_type, c.subject.rsplit("/", 1)[1], c.origin) for c in changes] == [
        ("invitee_no_show.deleted", "NS1", "poll"),
        ("invitee_no_show.created", "NS2", "poll"),
    ]


def test_duplicates_replays_and_same_state_rereads_announce_nothing() -> None:
    # GIVEN a booking delivered and then canceled
    table = MemoryTable()
    table.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)
    table.apply(webhook("invitee.canceled", canceled()), table_items.WEBHOOK)
    assert kinds(published(table)) == ["invitee.created", "invitee.canceled"]

    # WHEN the same deliveries come again, the old booking is replayed, and a poll reads the
    # canceled invitee again (a later reading: its version's "as of" is newer)
    table.apply(webhook("invitee.canceled", canceled()), table_items.WEBHOOK)
    table.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)
    table.apply(polled_invitee(canceled(), "2026-02-25T00:00:00.000000Z"), table_items.POLL)

    # THEN nothing more is announced, whatever was rewritten
    assert published(table) == []


def test_a_change_that_is_not_one_of_the_announced_fields_announces_nothing() -> None:
    # GIVEN a stored booking WHEN a newer body differs only in answers and the event's counter
    table = MemoryTable()
    table.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)
    table.take_stream()
    later = invitee(
        updated_at="2026-02-20T11:00:00.000000Z",
        questions_and_answers=[{"question": "Topic?", "answer": "pricing"}],
        scheduled_event=scheduled_event(
            updated_at="2026-02-20T11:00:00.000000Z", invitees_counter={"total": 2, "active": 2, "limit": 2}
        ),
    )
    landed = table.apply(polled_invitee(later, "2026-02-20T12:00:00.000000Z"), table_items.POLL)

    # THEN both writes land and nothing is announced
    assert landed == 2
    assert published(table) == []


def test_reschedule_links_announce_nothing_and_a_stub_counts_as_unseen() -> None:
    # GIVEN the new booking of a reschedule arrives first: it leaves a link stub on the old invitee
    table = MemoryTable()
    old_uri = f"{EVENT_URI}/invitees/IN0000000000000000"
    table.apply(webhook("invitee.created", invitee(old_invitee=old_uri)), table_items.WEBHOOK)
    created = published(table)
    assert [(c.detail_type, c.subject) for c in created] == [("invitee.created", INVITEE_URI)]

    # WHEN the old invitee's cancellation lands on its stub, and its link is written again
    old = canceled(uri=old_uri, rescheduled=True, new_invitee=INVITEE_URI)
    table.apply(webhook("invitee.canceled", old), table_items.WEBHOOK)
    table.apply(webhook("invitee.created", invitee(old_invitee=old_uri)), table_items.WEBHOOK)

    # THEN the old invitee is announced as first seen (created, canceled), the relinking as nothing
    changes = published(table)
    assert [(c.detail_type, c.subject) for c in changes] == [
        ("invitee.created", old_uri),
        ("invitee.canceled", old_uri),
    ]
    assert changes[1].resource["rescheduled"] is True and changes[1].resource["new_invitee"] == INVITEE_URI


def test_a_quiet_backfill_announces_nothing_and_a_loud_one_announces_with_origin_backfill() -> None:
    # GIVEN two tables WHEN one gets a default backfill and the other one with "publish": true
    quiet, loud = MemoryTable(), MemoryTable()
    body = polled_invitee(invitee(), "2026-02-20T12:00:00.000000Z")
    quiet.apply(body, table_items.backfill_origin(publish=False))
    loud.apply(body, table_items.backfill_origin(publish=True))

    # THEN the quiet one announces nothing; the loud one the booking, marked backfill
    assert published(quiet) == []
    assert [(c.detail_type, c.origin) for c in published(loud)] == [("invitee.created", "backfill")]


def test_a_change_after_a_quiet_backfill_is_announced_against_what_the_backfill_stored() -> None:
    # GIVEN a booking stored by a quiet backfill WHEN its cancellation is delivered
    table = MemoryTable()
    table.apply(
        polled_invitee(invitee(), "2026-02-20T12:00:00.000000Z"), table_items.backfill_origin(publish=False)
    )
    table.take_stream()
    table.apply(webhook("invitee.canceled", canceled()), table_items.WEBHOOK)

    # THEN only the cancellation is announced (not a late invitee.created)
    assert kinds(published(table)) == ["invitee.canceled"]


@pytest.mark.parametrize(
    ("event_name", "old", "new"),
    [
        pytest.param("REMOVE", {"entity": "invitee", "version": "a"}, None, id="removal"),
        pytest.param(
            "INSERT", None, {"entity": "delivery", "version": "a", "origin": "webhook"}, id="delivery"
        ),
        pytest.param("INSERT", None, {"entity": "published", "pk": "PUBLISHED#x"}, id="ledger"),
        pytest.param("INSERT", None, {"entity": "invitee", "uri": INVITEE_URI}, id="link-stub"),
        pytest.param(
            "MODIFY", {"entity": "invitee", "version": "a"}, {"entity": "invitee", "version": "a"}, id="same"
        ),
    ],
)
def test_records_that_are_no_change_announce_nothing(event_name: str, old: Any, new: Any) -> None:
    # GIVEN a stream record that is no resource change WHEN classified THEN nothing
    assert record_changes(event_name, old, new) == []


# --- the same change, whoever saw it ---------------------------------------------------------


def test_a_change_has_one_id_whether_a_webhook_or_the_poller_saw_it() -> None:
    # GIVEN the same booking, cancellation and no-show, once delivered and once found by polls
    mark = no_show("NS1", "2026-03-02T16:00:00Z")
    by_webhook, by_poll = MemoryTable(), MemoryTable()
    by_webhook.apply(webhook("invitee.created", invitee()), table_items.WEBHOOK)
    by_webhook.apply(webhook("invitee.canceled", canceled(no_show=mark)), table_items.WEBHOOK)
    by_poll.apply(polled_invitee(invitee(), "2026-02-20T12:00:00.000000Z"), table_items.POLL)
    by_poll.apply(polled_invitee(canceled(no_show=mark), "2026-03-03T00:00:00.000000Z"), table_items.POLL)

    # WHEN each table's stream is classified
    seen_by_webhook, seen_by_poll = published(by_webhook), published(by_poll)

    # THEN the same changes, with the same ids and times, told apart only by origin
    assert [(c.detail_type, c.change_id, c.occurred_at) for c in seen_by_webhook] == [
        (c.detail_type, c.change_id, c.occurred_at) for c in seen_by_poll
    ]
    assert kinds(seen_by_poll) == ["invitee.created", "invitee.canceled", "invitee_no_show.created"]
    assert {c.origin for c in seen_by_webhook} == {"webhook"} and {c.origin for c in seen_by_poll} == {"poll"}


def test_a_scheduled_event_moved_or_relocated_is_scheduled_event_updated_with_its_fields() -> None:
    # GIVEN a stored event (first seen: no event of its own; its invitee's invitee.created carries it)
    table = MemoryTable()
    table.apply([table_items.scheduled_event_item(scheduled_event())], table_items.POLL)
    assert published(table) == []

    # WHEN the poller finds it moved an hour later, then relocated
    moved = scheduled_event(
        start_time="2026-03-02T16:00:00Z", end_time="2026-03-02T16:30:00Z", updated_at="2026-02-25T08:00:00Z"
    )
    table.apply([table_items.scheduled_event_item(moved)], table_items.POLL)
    moved_changes = published(table)
    relocated = {
        **moved,
        "location": {"type": "physical", "location": "Room 4"},
        "updated_at": "2026-02-26T08:00:00Z",
    }
    table.apply([table_items.scheduled_event_item(relocated)], table_items.POLL)
    relocated_changes = published(table)

    # THEN one scheduled_event.updated each, naming what changed, at the event's updated_at
    (first,) = moved_changes
    (second,) = relocated_changes
    assert first.detail_type == "scheduled_event.updated" and first.subject == EVENT_URI
    assert first.changed_fields == ("start_time", "end_time")
    assert first.occurred_at == "2026-02-25T08:00:00.000000Z"
    assert first.resource["start_time"] == "2026-03-02T16:00:00.000000Z"
    assert second.changed_fields == ("location",)
    assert second.resource["location"] == {"type": "physical", "location": "Room 4"}
    assert first.change_id != second.change_id
    detail = detail_of(first, ORGANIZATION)
    assert detail["changed_fields"] == ["start_time", "end_time"]
    assert_valid_event(first.detail_type, detail)

    # AND the same move seen by a webhook's embedded event has the same id
    other = MemoryTable()
    other.apply([table_items.scheduled_event_item(scheduled_event())], table_items.POLL)
    other.take_stream()
    other.apply(webhook("invitee.created", invitee(scheduled_event=moved)), table_items.WEBHOOK)
    assert [c.change_id for c in published(other) if c.detail_type == "scheduled_event.updated"] == [
        first.change_id
    ]


def event_type(**changes: Any) -> dict[str, Any]:
    body = {
        "uri": EVENT_TYPE_URI,
        "name": "Intro call",
        "slug": "intro-call",
        "active": True,
        "profile": {"type": "User", "owner": f"{API}/users/U1"},
        "created_at": "2026-01-01T00:00:00.000000Z",
        "updated_at": "2026-01-01T00:00:00.000000Z",
    }
    body.update(changes)
    return body


def test_event_types_created_updated_twice_and_deleted() -> None:
    # GIVEN an empty table WHEN an event type is created, renamed twice, then deleted
    table = MemoryTable()
    table.apply(webhook("event_type.created", event_type()), table_items.WEBHOOK)
    table.apply(
        webhook("event_type.updated", event_type(name="Intro", updated_at="2026-01-02T00:00:00Z")),
        table_items.WEBHOOK,
    )
    table.apply(
        [table_items.event_type_item(event_type(name="Hello", updated_at="2026-01-03T00:00:00Z"))],
        table_items.POLL,
    )
    gone = event_type(name="Hello", updated_at="2026-01-04T00:00:00Z", deleted_at="2026-01-04T00:00:00Z")
    table.apply(webhook("event_type.deleted", gone), table_items.WEBHOOK)
    # AND the deletion is delivered again
    table.apply(webhook("event_type.deleted", gone), table_items.WEBHOOK)

    # THEN created, updated, updated (two ids: each update is its own change), deleted; no more
    changes = published(table)
    assert kinds(changes) == [
        "event_type.created",
        "event_type.updated",
        "event_type.updated",
        "event_type.deleted",
    ]
    assert [c.origin for c in changes] == ["webhook", "webhook", "poll", "webhook"]
    assert len({c.change_id for c in changes}) == 4
    assert changes[1].change_id == change_id(
        "event_type.updated", EVENT_TYPE_URI, "2026-01-02T00:00:00.000000Z"
    )
    assert changes[3].occurred_at == "2026-01-04T00:00:00.000000Z"
    assert changes[3].resource["deleted"] is True and changes[3].resource["active"] is False
    assert changes[0].resource["owner"] == f"{API}/users/U1"
    for change in changes:
        assert_valid_event(change.detail_type, detail_of(change, ORGANIZATION))


def test_an_event_type_first_seen_deleted_is_announced_deleted() -> None:
    table = MemoryTable()
    table.apply(
        webhook("event_type.deleted", event_type(deleted_at="2026-01-05T00:00:00Z")), table_items.WEBHOOK
    )
    assert kinds(published(table)) == ["event_type.deleted"]


def test_a_routing_form_submission_is_announced_once() -> None:
    # GIVEN a submission delivered WHEN it is delivered again with a later updated_at
    submission = {
        "uri": f"{API}/routing_form_submissions/RF0000000000000001",
        "routing_form": f"{API}/routing_forms/F1",
        "questions_and_answers": [],
        "tracking": {},
        "result": {"type": "event_type", "value": EVENT_TYPE_URI},
        "submitter": INVITEE_URI,
        "submitter_type": "Invitee",
        "created_at": "2026-02-20T09:59:00.000000Z",
        "updated_at": "2026-02-20T09:59:00.000000Z",
    }
    table = MemoryTable()
    table.apply(webhook("routing_form_submission.created", submission), table_items.WEBHOOK)
    table.apply(
        webhook("routing_form_submission.created", {**submission, "updated_at": "2026-02-20T10:05:00Z"}),
        table_items.WEBHOOK,
    )

    # THEN one routing_form_submission.created, at its created_at
    (change,) = published(table)
    assert change.detail_type == "routing_form_submission.created"
    assert change.occurred_at == "2026-02-20T09:59:00.000000Z"
    assert change.resource["result_type"] == "event_type" and change.resource["submitter_type"] == "Invitee"
    assert_valid_event(change.detail_type, detail_of(change, ORGANIZATION))


def test_every_detail_type_is_a_known_downstream_event() -> None:
    # GIVEN the names this suite saw announced THEN each is in DOWNSTREAM_EVENTS, with ours last
    assert DOWNSTREAM_EVENTS[-1] == "scheduled_event.updated"
    assert len(set(DOWNSTREAM_EVENTS)) == 9


# --- entries: truncation and chunks ----------------------------------------------------------


def big_change(payload_bytes: int) -> DownstreamChange:
    table = MemoryTable()
    table.apply(
        webhook("invitee.created", invitee(name="x" * 20, notes="n" * payload_bytes)), table_items.WEBHOOK
    )
    (change,) = published(table)
    return change


def test_an_event_over_256_kb_leaves_calendlys_payload_out_and_says_so() -> None:
    # GIVEN a change whose Calendly payload is 300 KB WHEN it becomes an entry
    change = big_change(300_000)
    entry = entry_of(change, ORGANIZATION)

    # THEN the entry fits, has no calendly, says truncated, and keeps the resource
    assert entry is not None and entry.truncated and entry.size <= MAX_REQUEST_BYTES

    detail = json.loads(entry.detail)
    assert "calendly" not in detail and detail["truncated"] is True
    assert detail["resource"]["uri"] == INVITEE_URI
    assert_valid_event("invitee.created", detail)


def test_a_resource_over_256_kb_on_its_own_is_announced_with_its_long_strings_clipped() -> None:
    # GIVEN an invitee whose own name is 300 KB (the resource alone passes EventBridge's limit)
    table = MemoryTable()
    table.apply(webhook("invitee.created", invitee(name="x" * 300_000)), table_items.WEBHOOK)
    (change,) = published(table)

    # WHEN it becomes an entry
    entry = entry_of(change, ORGANIZATION)

    # THEN it is still announced: it fits, says truncated, and keeps every field of the shape,
    # long strings cut to CLIPPED_STRING_CHARS and everything short (URIs, times, status) whole
    assert entry is not None and entry.truncated and entry.size <= MAX_REQUEST_BYTES
    detail = json.loads(entry.detail)
    assert "calendly" not in detail and detail["truncated"] is True
    assert detail["resource"]["name"] == "x" * CLIPPED_STRING_CHARS
    assert detail["resource"]["uri"] == INVITEE_URI and detail["subject"] == INVITEE_URI
    assert detail["resource"]["status"] == "active" and detail["change_id"] == change.change_id
    assert_valid_event("invitee.created", detail)


def test_an_event_under_the_limit_keeps_calendlys_payload() -> None:
    change = big_change(200_000)
    entry = entry_of(change, None)
    assert entry is not None and not entry.truncated

    detail = json.loads(entry.detail)
    assert detail["calendly"]["notes"] == "n" * 200_000 and detail["organization"] is None
    assert_valid_event("invitee.created", detail)


def test_requests_hold_at_most_ten_entries_and_256_kb() -> None:
    # GIVEN 25 small entries, then 5 of about 100 KB each
    small = entry_of(big_change(10), ORGANIZATION)
    large = entry_of(big_change(100_000), ORGANIZATION)
    assert small is not None and large is not None

    # WHEN chunked THEN 10 + 10 + 5, and two large ones per request (three would pass 256 KB)
    assert [len(chunk) for chunk in chunks([small] * 25)] == [10, 10, 5]
    large_chunks = list(chunks([large] * 5))
    assert [len(chunk) for chunk in large_chunks] == [2, 2, 1]
    assert all(sum(entry.size for entry in chunk) <= MAX_REQUEST_BYTES for chunk in large_chunks)
    # AND order is kept
    mixed = [small, large, small, large, large]
    assert [entry for chunk in chunks(mixed) for entry in chunk] == mixed


def test_change_ids_are_32_hex_and_depend_on_kind_subject_and_marker() -> None:
    ids = {change_id("invitee.created", INVITEE_URI), change_id("invitee.canceled", INVITEE_URI)}
    ids.add(change_id("event_type.updated", EVENT_TYPE_URI, "a"))
    ids.add(change_id("event_type.updated", EVENT_TYPE_URI, "b"))
    assert len(ids) == 4
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_the_resource_is_not_shared_with_the_image() -> None:
    # GIVEN a classified change WHEN its detail is built twice THEN both are the same (nothing mutated)
    change = big_change(10)
    first = copy.deepcopy(detail_of(change, ORGANIZATION))
    assert detail_of(change, ORGANIZATION) == first

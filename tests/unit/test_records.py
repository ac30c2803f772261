"""The data rules in their pure form: invitee versions, ``same_state``, dedupe keys, time text.

The same rules run end to end (receiver, stream, table) in tests/integration/test_data_rules.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from calendly_sync.deliveries import dedupe_key, resource_changes
from calendly_sync.envelope import parse_envelope
from calendly_sync.table_items import (
    VersionedItem,
    format_utc,
    invitee_changes,
    normalize_timestamp,
    same_state,
    scheduled_event_item,
)
from local.samples import Booking

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def version_of(envelope: dict[str, Any]) -> str:
    """The invitee version a delivery carries, as the projector computes it."""
    (item, *_) = resource_changes(parse_envelope(json.dumps(envelope)))
    assert isinstance(item, VersionedItem)
    return item.version


def key_of(envelope: dict[str, Any]) -> str:
    return dedupe_key(parse_envelope(json.dumps(envelope)))


def history() -> tuple[Booking, list[dict[str, Any]]]:
    """Booked, marked, unmarked, marked again, unmarked again: updated_at never moves."""
    booking = Booking(start=START)
    steps = [booking.book(), booking.mark_no_show(), booking.unmark_no_show()]
    steps += [booking.mark_no_show(), booking.unmark_no_show()]
    return booking, steps


# --- versions ---------------------------------------------------------------------------


def test_invitee_versions_sort_in_the_order_calendly_made_the_changes() -> None:
    # Given a no-show history whose bodies all carry the booking's updated_at
    _, steps = history()
    assert len({step["payload"]["updated_at"] for step in steps}) == 1

    # Then their versions sort in the order the changes happened
    versions = [version_of(step) for step in steps]
    assert sorted(versions) == versions and len(set(versions)) == len(versions)


def test_a_cancellation_wins_a_tie_and_a_later_updated_at_wins_over_any_as_of() -> None:
    booking = Booking(start=START)
    booked = booking.book()
    marked = booking.mark_no_show()
    # a canceled body stamped with the same updated_at as the mark, but read earlier
    canceled_tie = json.loads(json.dumps(booked))
    canceled_tie["payload"]["status"] = "canceled"
    canceled = booking.cancel()

    assert version_of(canceled_tie) > version_of(marked)
    assert version_of(canceled) > version_of(canceled_tie) > version_of(booked)


def as_of_part(body: dict[str, Any], **moments: str | None) -> str:
    """The ``as of`` part of the invitee version ``invitee_changes`` gives ``body``."""
    (item, *_) = invitee_changes(body, fallback_updated_at=format_utc(START), **moments)
    assert isinstance(item, VersionedItem)
    return item.version.split("#")[2].removeprefix("~")


def test_a_body_without_a_no_show_holds_as_of_its_reading_or_its_envelope() -> None:
    booking = Booking(start=START)
    body = booking.book()["payload"]
    updated_at = normalize_timestamp(body["updated_at"])
    later = format_utc(START + timedelta(days=1))

    # a poll's reading time, else the envelope's, else updated_at (the earliest it can be)
    assert as_of_part(body, as_of=later, delivered_at=format_utc(START)) == later
    assert as_of_part(body, delivered_at=later) == later
    assert as_of_part(body) == updated_at == as_of_part(body, as_of="not a time")


def test_a_delivered_mark_holds_from_the_no_shows_own_time_not_its_envelopes() -> None:
    # Given a marked state, delivered in an envelope made a minute after the mark
    booking = Booking(start=START)
    booking.book()
    body = booking.mark_no_show()["payload"]
    marked_at = normalize_timestamp(body["no_show"]["created_at"])
    envelope_made = format_utc(booking.clock + timedelta(minutes=1))

    # Then it holds from the mark (by the envelope's time it may have been removed already)
    assert as_of_part(body, delivered_at=envelope_made) == marked_at == as_of_part(body)


def test_a_polled_mark_holds_from_the_reading_or_the_mark_whichever_is_later() -> None:
    booking = Booking(start=START)
    booking.book()
    body = booking.mark_no_show()["payload"]
    marked_at = normalize_timestamp(body["no_show"]["created_at"])
    later = format_utc(booking.clock + timedelta(minutes=1))
    earlier = format_utc(booking.clock - timedelta(minutes=1))  # a reader whose clock is behind

    assert (as_of_part(body, as_of=later), as_of_part(body, as_of=earlier)) == (later, marked_at)


@pytest.mark.parametrize("digest", ["0000000000000000", "9999999999999999", "ffffffffffffffff"])
def test_a_version_with_as_of_wins_a_tie_against_one_written_before_it_existed(digest: str) -> None:
    booking = Booking(start=START)
    booked = booking.book()
    legacy = f"{normalize_timestamp(booked['payload']['updated_at'])}#0#{digest}"
    legacy_final = f"{normalize_timestamp(booked['payload']['updated_at'])}#1#{digest}"
    marked = version_of(booking.mark_no_show())

    assert marked > legacy
    # the final flag still decides before as-of does
    assert legacy_final > marked


def test_other_resources_order_by_updated_at_then_a_final_state_then_one_digest() -> None:
    # Given a scheduled event as booked, canceled at the same updated_at, and changed later
    booking = Booking(start=START)
    booked = booking.book()["payload"]["scheduled_event"]
    canceled_tie = {**booked, "status": "canceled"}
    later = {**booked, "updated_at": "2026-11-03T09:00:00.000000Z"}
    renamed_tie = {**booked, "name": "Renamed"}

    def version(resource: dict[str, Any]) -> str:
        item = scheduled_event_item(resource)
        assert item is not None
        return item.version

    # Then later beats earlier whatever the state, canceled wins a tie, and two other bodies
    # of one moment differ, so one of them wins in either arrival order
    assert version(later) > version(canceled_tie) > version(booked)
    assert version(renamed_tie) != version(booked)
    assert version(renamed_tie).split("#")[:2] == version(booked).split("#")[:2]


def test_a_group_events_seats_order_by_when_each_state_was_known_not_by_digest() -> None:
    # GIVEN a group event whose seats fill as invitees join, Calendly leaving updated_at unchanged
    booking = Booking(start=START)
    event = booking.book()["payload"]["scheduled_event"]
    seats = [{**event, "invitees_counter": {"total": n, "active": n, "limit": 45}} for n in (28, 29, 30)]
    known = [format_utc(START + timedelta(minutes=n)) for n in (1, 2, 3)]

    def version(resource: dict[str, Any], known_at: str) -> str:
        item = scheduled_event_item(resource, known_at=known_at)
        assert item is not None
        return item.version

    versions = [version(body, at) for body, at in zip(seats, known, strict=True)]

    # THEN a later-known counter wins over every earlier one, whatever their digests say
    assert versions == sorted(versions) and len(set(versions)) == 3
    # AND a poll reading the last state again is the same state (the poller does not rewrite it)
    assert same_state(versions[2], version(seats[2], format_utc(START + timedelta(hours=1))))
    assert not same_state(versions[1], versions[2])
    # AND a later updated_at still wins over any moment an older state was known
    moved = {
        **seats[0],
        "updated_at": format_utc(datetime.fromisoformat(event["updated_at"]) + timedelta(seconds=1)),
    }
    assert version(moved, known[0]) > version(seats[2], format_utc(START + timedelta(days=1)))
    # AND a state known before its own updated_at is ordered from its updated_at
    assert version(seats[0], "2000-01-01T00:00:00.000000Z").split("#")[2] == "~" + normalize_timestamp(
        event["updated_at"]
    )


def test_a_delivery_orders_its_embedded_event_by_the_envelopes_created_at() -> None:
    # GIVEN two deliveries of one group event, the later made with one seat more, arriving reversed
    booking = Booking(start=START)
    first = booking.book()
    second = json.loads(json.dumps(first))
    second["created_at"] = format_utc(datetime.fromisoformat(first["created_at"]) + timedelta(minutes=5))
    second["payload"]["scheduled_event"]["invitees_counter"] = {"total": 2, "active": 2, "limit": 10}

    def event_version(envelope: dict[str, Any]) -> str:
        (*_, event) = resource_changes(parse_envelope(json.dumps(envelope)))
        assert isinstance(event, VersionedItem) and event.key.sk == "EVENT"
        return event.version

    # THEN the one made later wins, in either arrival order
    assert event_version(second) > event_version(first)


def test_without_updated_at_a_resources_created_at_orders_it() -> None:
    booking = Booking(start=START)
    body = booking.book()["payload"]["scheduled_event"]
    undated = {name: value for name, value in body.items() if name != "updated_at"}
    item = scheduled_event_item(undated)
    assert item is not None and item.version.startswith(normalize_timestamp(body["created_at"]) or "?")


# --- same_state ---------------------------------------------------------------------------


def test_same_state_ignores_as_of_and_nothing_else() -> None:
    booking = Booking(start=START)
    body = booking.book()["payload"]
    fallback = format_utc(START)

    def version(payload: dict[str, Any], as_of: datetime) -> str:
        (item, *_) = invitee_changes(payload, fallback_updated_at=fallback, as_of=format_utc(as_of))
        assert isinstance(item, VersionedItem)
        return item.version

    first, again = version(body, START), version(body, START + timedelta(hours=1))
    assert first != again and same_state(first, again) and same_state(again, first)
    renamed = {**body, "name": "Ada King"}
    assert not same_state(first, version(renamed, START + timedelta(hours=1)))
    marked = booking.mark_no_show()["payload"]
    assert not same_state(first, version(marked, START + timedelta(hours=1)))
    canceled = {**body, "status": "canceled"}
    assert not same_state(first, version(canceled, START))


def test_same_state_for_versions_without_as_of() -> None:
    # Other resources keep <updated_at>#<final>#<digest>: the same state is the same text
    event_type = "2026-11-02T08:00:00.000000Z#0#0123456789abcdef"
    assert same_state(event_type, event_type)
    assert not same_state(event_type, "2026-11-02T08:00:00.000000Z#1#0123456789abcdef")
    # an invitee stored before as-of existed is rewritten once, so it gains one
    booking = Booking(start=START)
    body = booking.book()["payload"]
    (item, *_) = invitee_changes(body, fallback_updated_at=format_utc(START), as_of=format_utc(START))
    assert isinstance(item, VersionedItem)
    updated_at, final, _, digest = item.version.split("#")
    assert not same_state(f"{updated_at}#{final}#{digest}", item.version)


# --- dedupe keys --------------------------------------------------------------------------


def test_a_retry_has_the_same_key_and_every_real_no_show_change_its_own() -> None:
    _, steps = history()
    _, mark, unmark, remark, unmark_again = steps

    # a retry repeats the body: the same key, whatever its bytes' layout
    assert key_of(mark) == key_of(json.loads(json.dumps(mark, indent=2)))
    # a re-mark after an unmark, and a second unmark, are changes of their own
    keys = [key_of(step) for step in steps]
    assert len(set(keys)) == len(keys)
    assert key_of(remark) != key_of(mark) and key_of(unmark_again) != key_of(unmark)


# --- time text ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
        (datetime(999, 12, 31, 23, 59, tzinfo=UTC), "0999-12-31T23:59:00.000000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
        (datetime(2026, 11, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))), "2026-11-02T09:00:00.000000Z"),
    ],
)
def test_format_utc_is_fixed_width_so_text_order_is_time_order(moment: datetime, text: str) -> None:
    assert format_utc(moment) == text


@pytest.mark.parametrize(
    "value",
    ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+01:00", "10000-01-01T00:00:00Z", "never", "", None, 7],
)
def test_an_unrepresentable_or_unreadable_time_is_none_never_an_exception(value: object) -> None:
    assert normalize_timestamp(value) is None


def test_normalize_timestamp_reads_offsets_and_naive_times_as_utc() -> None:
    assert normalize_timestamp("2026-11-02T10:00:00+01:00") == "2026-11-02T09:00:00.000000Z"
    assert normalize_timestamp("2026-11-02T09:00:00") == "2026-11-02T09:00:00.000000Z"
    assert normalize_timestamp("9999-12-31T23:59:59+00:00") == "9999-12-31T23:59:59.000000Z"

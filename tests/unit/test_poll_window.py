"""Reading a start-time window by position: what is listed, read, written, in which order, and saved.

The reader against an in-memory table and a scripted Calendly (``poll_fakes``): every rule the
sandbox tests show end to end, stated here on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from calendly_sync import table_items
from calendly_sync.errors import CalendlyRejected, StorageUnavailable
from calendly_sync.poll_plan import Window
from calendly_sync.poll_window import (
    LIST_AHEAD_EVENTS,
    MAX_FRUITLESS_LISTINGS,
    SAFETY_MARGIN_MS,
    AnswerUnusable,
    ReadRules,
    StalePageTokens,
    WindowReader,
)
from calendly_sync.table_items import ItemKey, invitee_key, scheduled_event_key
from tests.unit.poll_fakes import NOW, ORGANIZATION, FakeCalendly, FakeTable, reading_run

WINDOW = Window(NOW - timedelta(days=30), NOW + timedelta(days=180))
OWNER = {"organization": ORGANIZATION}


class Saves:
    """A ``SaveProgress`` that remembers each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[datetime | None, bool]] = []

    def __call__(self, reached: datetime | None, finished: bool) -> None:
        self.calls.append((reached, finished))


def seeded(
    events: int, *, invitees: int = 1, start: datetime | None = None, step: timedelta = timedelta(hours=1)
) -> FakeCalendly:
    calendly = FakeCalendly()
    first = start or NOW - timedelta(days=5)
    for n in range(events):
        calendly.add(f"E{n:05d}", first + n * step, invitees=invitees)
    return calendly


def read(
    table: FakeTable,
    calendly: FakeCalendly,
    *,
    rules: ReadRules | None = None,
    window: Window = WINDOW,
    position: datetime | None = None,
    remaining_ms: object = None,
    at: datetime = NOW,
) -> tuple[bool, Saves, object]:
    run = reading_run(table, calendly, **({"remaining_ms": remaining_ms} if remaining_ms else {}))  # type: ignore[arg-type]
    run.clock.advance(at - NOW)  # type: ignore[attr-defined]
    saves = Saves()
    reader = WindowReader(run, rules or ReadRules(OWNER))
    done = reader.read(window, position or window.start, saves)
    return done, saves, run.report


def stored_events(table: FakeTable) -> set[str]:
    return {key.pk.removeprefix("EVENT#") for key in table.entity("scheduled_event")}


# --- listing ------------------------------------------------------------------------------------


def test_every_event_of_the_window_is_read_in_pages_of_100_and_the_window_is_finished() -> None:
    # GIVEN 250 events in the window, none stored
    calendly, table = seeded(250), FakeTable()
    # WHEN the window is read
    done, saves, report = read(table, calendly)
    # THEN all 250 events and their invitees are stored, from 3 pages, and the save says finished
    assert done is True and len(stored_events(table)) == 250 and len(table.entity("invitee")) == 250
    assert report.pages == 3 and report.events_seen == 250 and report.events_changed == 250  # type: ignore[attr-defined]
    assert saves.calls[-1] == (None, True)
    lists = calendly.listed("/scheduled_events")
    assert all(
        p["count"] == "100" and p["sort"] == "start_time:asc" and p["organization"] == ORGANIZATION
        for p in lists
    )


def test_events_starting_at_the_position_itself_are_read() -> None:
    # GIVEN a position equal to an event's start (Calendly lists start times strictly after min_start_time)
    calendly, table = seeded(3), FakeTable()
    position = datetime.fromisoformat(calendly.events["E00001"]["start_time"])
    # WHEN the window is read from that position
    read(table, calendly, position=position)
    # THEN that event is read too; the one before the position is not
    assert stored_events(table) == {"E00001", "E00002"}


def test_events_outside_the_window_are_not_read() -> None:
    calendly = seeded(2)
    calendly.add("EARLY", WINDOW.start - timedelta(minutes=1))
    calendly.add("LATE", WINDOW.end + timedelta(minutes=1))
    table = FakeTable()
    read(table, calendly)
    assert stored_events(table) == {"E00000", "E00001"}


# --- change detection ---------------------------------------------------------------------------


def test_an_unchanged_event_costs_no_invitee_list_and_no_write() -> None:
    # GIVEN a window read once
    calendly, table = seeded(120), FakeTable()
    read(table, calendly)
    calendly.calls.clear()
    writes = len(table.writes)
    # WHEN it is read again with nothing changed at Calendly
    done, _, report = read(table, calendly)
    # THEN only the pages are listed, nothing is written, every event is seen once
    assert done is True and calendly.invitee_lists() == [] and len(table.writes) == writes
    assert report.events_seen == 120 and report.events_changed == 0 and report.items_written == 0  # type: ignore[attr-defined]


def test_only_a_changed_events_invitees_are_read_and_written_again() -> None:
    # GIVEN a window read once, then one event rescheduled and its invitee canceled at Calendly
    calendly, table = seeded(10), FakeTable()
    read(table, calendly)
    calendly.calls.clear()
    changed = NOW - timedelta(hours=2)
    calendly.events["E00004"]["updated_at"] = table_items.format_utc(changed)
    calendly.invitees["E00004"][0].update(status="canceled", updated_at=table_items.format_utc(changed))
    # WHEN read again
    _, _, report = read(table, calendly)
    # THEN one invitee list is read, for that event, and its invitee and itself are written
    assert calendly.invitee_lists() == ["E00004"]
    assert report.events_changed == 1 and report.items_written == 2  # type: ignore[attr-defined]
    assert table.items[invitee_key("E00004", "E00004-i0")]["status"] == "canceled"


def test_an_invitee_read_again_in_the_same_state_is_not_rewritten() -> None:
    # GIVEN a stored event whose invitee was read an hour ago
    calendly, table = seeded(1), FakeTable()
    read(table, calendly)
    key = invitee_key("E00000", "E00000-i0")
    before = table.items[key]["version"]
    # WHEN the event changes (a new name) but its invitee does not, and it is read later
    calendly.events["E00000"].update(
        name="Renamed", updated_at=table_items.format_utc(NOW - timedelta(minutes=5))
    )
    run = reading_run(table, calendly)
    run.clock.advance(timedelta(hours=1))  # type: ignore[attr-defined]
    WindowReader(run, ReadRules(OWNER)).read(WINDOW, WINDOW.start, Saves())
    # THEN the event is written, the invitee is not (its version differs only in "as of")
    assert [w.key for w in table.writes[-1:]] == [scheduled_event_key("E00000")]
    assert table.items[key]["version"] == before and run.report.items_written == 1


def test_unchanged_events_the_rules_recheck_have_their_invitees_read_and_only_changes_written() -> None:
    # GIVEN a stored window, then a no-show marked on one invitee (the event itself unchanged)
    calendly, table = seeded(5), FakeTable()
    read(table, calendly)
    calendly.invitees["E00002"][0]["no_show"] = {
        "uri": "https://api.calendly.com/invitee_no_shows/N1",
        "created_at": table_items.format_utc(NOW - timedelta(minutes=3)),
    }
    calendly.calls.clear()
    # WHEN read again, later, with a rule that re-checks every unchanged event
    rules = ReadRules(OWNER, recheck=lambda _: True)
    _, _, report = read(table, calendly, rules=rules, at=NOW + timedelta(minutes=10))
    # THEN every event's invitees were listed, only the changed invitee was written, no event
    assert sorted(calendly.invitee_lists()) == [f"E0000{n}" for n in range(5)]
    assert [w.key for w in table.writes[-1:]] == [invitee_key("E00002", "E00002-i0")]
    assert report.items_written == 1 and report.events_changed == 0  # type: ignore[attr-defined]


def test_a_poll_invitee_carries_its_listed_event_and_writes_say_how_they_were_seen() -> None:
    calendly, table = seeded(1), FakeTable()
    read(table, calendly, rules=ReadRules(OWNER, origin=table_items.backfill_origin(publish=False)))
    item = table.items[invitee_key("E00000", "E00000-i0")]
    assert '"uri":"https://api.calendly.com/scheduled_events/E00000"' in item["scheduled_event"]
    assert {w.origin for w in table.writes} == {table_items.backfill_origin(publish=False)}


def test_writes_of_a_steady_table_count_as_missed_deliveries_recovered() -> None:
    # GIVEN a table a sync has completed once (steady) and a new booking
    calendly, table = seeded(2), FakeTable()
    _, _, first = read(table, calendly)
    calendly.add("NEW", NOW + timedelta(days=1))
    # WHEN read again THEN the booking's two items are what webhooks missed; the first read's were not
    _, _, report = read(table, calendly, rules=ReadRules(OWNER, steady=True))
    assert first.missed_deliveries_recovered == 0 and report.missed_deliveries_recovered == 2  # type: ignore[attr-defined]


# --- commit order ---------------------------------------------------------------------------------


def test_each_event_is_written_after_its_invitees() -> None:
    # GIVEN events with three invitees each
    calendly, table = seeded(60, invitees=3), FakeTable()
    # WHEN read
    read(table, calendly)
    # THEN each event's own write comes after every write of its invitees
    position: dict[ItemKey, int] = {w.key: n for n, w in enumerate(table.writes)}
    for uuid in calendly.events:
        event_at = position[scheduled_event_key(uuid)]
        assert all(position[invitee_key(uuid, f"{uuid}-i{i}")] < event_at for i in range(3)), uuid


def test_a_failed_invitee_write_leaves_its_event_unwritten_and_the_position_before_it() -> None:
    # GIVEN DynamoDB refusing the second invitee of the 8th event for good
    calendly, table = seeded(20, invitees=2), FakeTable()
    table.refuse = lambda change: change.key == invitee_key("E00007", "E00007-i1")
    # WHEN the window is read
    run = reading_run(table, calendly)
    saves = Saves()
    with pytest.raises(StorageUnavailable):
        WindowReader(run, ReadRules(OWNER)).read(WINDOW, WINDOW.start, saves)
    # THEN that event is not stored (it still looks changed to the next run), and the saved
    # position is not past its start
    assert "E00007" not in stored_events(table)
    reached, finished = saves.calls[-1]
    assert finished is False and reached is not None
    assert reached <= datetime.fromisoformat(calendly.events["E00007"]["start_time"])
    # AND the next read, with the write working again, completes the window
    table.refuse = lambda _: False
    done, _, _ = read(table, calendly, position=reached)
    assert done is True and len(stored_events(table)) == 20 and len(table.entity("invitee")) == 40


# --- page tokens ------------------------------------------------------------------------------------


def test_a_stale_page_token_restarts_the_listing_from_the_position_and_nothing_is_done_twice() -> None:
    # GIVEN 250 events and Calendly refusing the first page token it is handed as stale
    calendly, table = seeded(250), FakeTable()
    refused: list[str] = []
    calendly.stale = lambda token: not refused and not refused.append(token)  # type: ignore[func-returns-value]
    # WHEN the window is read
    done, _, report = read(table, calendly)
    # THEN the listing began again from the position reached, and every event was applied once
    assert done is True and report.page_token_restarts == 1  # type: ignore[attr-defined]
    assert len(stored_events(table)) == 250 and report.events_seen == 250 and report.events_changed == 250  # type: ignore[attr-defined]
    assert sorted(calendly.invitee_lists()) == sorted(calendly.events)
    assert [p.get("page_token") for p in calendly.listed("/scheduled_events")].count(None) == 2


def test_with_every_token_stale_the_window_is_read_page_by_page_from_its_position() -> None:
    calendly, table = seeded(250), FakeTable()
    calendly.stale = lambda _: True
    done, saves, report = read(table, calendly)
    assert done is True and len(stored_events(table)) == 250
    assert report.page_token_restarts >= 2  # type: ignore[attr-defined]
    # each listing's position moved on: saved between listings, never a token
    assert all(reached is None or isinstance(reached, datetime) for reached, _ in saves.calls)


def test_a_tie_longer_than_a_page_with_every_token_stale_fails_after_listings_that_got_nowhere() -> None:
    # GIVEN 150 events at one start time, and every page token stale
    calendly, table = FakeCalendly(), FakeTable()
    moment = NOW + timedelta(days=2)
    for n in range(150):
        calendly.add(f"T{n:03d}", moment)
    calendly.stale = lambda _: True
    # WHEN read THEN it stops, saying why, after MAX_FRUITLESS_LISTINGS listings that got nowhere
    run = reading_run(table, calendly)
    with pytest.raises(StalePageTokens):
        WindowReader(run, ReadRules(OWNER)).read(WINDOW, WINDOW.start, Saves())
    first_pages = [p for p in calendly.listed("/scheduled_events") if "page_token" not in p]
    assert len(first_pages) == 1 + MAX_FRUITLESS_LISTINGS
    # AND the first page landed, each event complete
    assert len(stored_events(table)) == 100 and run.report.events_changed == 100


def test_a_tie_longer_than_a_page_is_read_through_when_tokens_work() -> None:
    calendly, table = FakeCalendly(), FakeTable()
    for n in range(230):
        calendly.add(f"T{n:03d}", NOW + timedelta(days=2))
    done, _, _ = read(table, calendly)
    assert done is True and len(stored_events(table)) == 230


def test_a_400_to_a_listing_without_a_token_is_no_stale_token_and_fails_the_read() -> None:
    # GIVEN Calendly refusing the first listing itself (no page token in it)
    calendly, table = seeded(5), FakeTable()
    calendly.refusal = CalendlyRejected("refused", status=400, parameters=("min_start_time",))
    # WHEN read THEN the refusal propagates: listing again would be refused the same way
    with pytest.raises(CalendlyRejected):
        read(table, calendly)
    assert len(calendly.listed("/scheduled_events")) == 1


# --- listing ahead, time, unusable answers ------------------------------------------------------


def test_listing_stops_at_enough_work_applies_it_then_lists_again_from_the_position() -> None:
    # GIVEN more new events than the reader lists ahead
    calendly, table = seeded(LIST_AHEAD_EVENTS + 150, step=timedelta(minutes=10)), FakeTable()
    # WHEN read
    done, saves, report = read(table, calendly)
    # THEN it listed 5 pages, applied them, saved the position, and listed from it again
    # (one page read twice at most)
    assert done is True and len(stored_events(table)) == LIST_AHEAD_EVENTS + 150
    unpaged = [p for p in calendly.listed("/scheduled_events") if "page_token" not in p]
    assert len(unpaged) == 2 and report.pages <= 8  # type: ignore[attr-defined]
    assert saves.calls[0][1] is False and saves.calls[-1] == (None, True)


def test_when_time_runs_short_the_reader_saves_its_position_and_stops() -> None:
    # GIVEN a Lambda whose time falls under the safety margin once 100 invitee lists are read
    calendly, table = seeded(250), FakeTable()

    def remaining() -> int:
        return SAFETY_MARGIN_MS - 1 if len(calendly.invitee_lists()) >= 100 else 300_000

    # WHEN read
    done, saves, _ = read(table, calendly, remaining_ms=remaining)
    # THEN it is not done, and the saved position has every event before it stored
    assert done is False
    reached, finished = saves.calls[-1]
    assert finished is False and reached is not None
    before = {
        uuid for uuid, e in calendly.events.items() if datetime.fromisoformat(e["start_time"]) < reached
    }
    assert len(before) == 100 and before == stored_events(table)
    # AND a read from that position completes the window
    assert read(table, calendly, position=reached)[0] is True and len(stored_events(table)) == 250


def test_a_listed_event_that_cannot_be_read_is_counted_and_skipped() -> None:
    calendly, table = seeded(3), FakeTable()
    calendly.events["E00001"]["uri"] = "https://api.calendly.com/not-an-event"
    done, _, report = read(table, calendly)
    assert done is True and report.unreadable_events == 1 and stored_events(table) == {"E00000", "E00002"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "answer",
    [
        [],
        None,
        {"collection": []},
        {"pagination": {"next_page_token": None}},
        {"collection": [], "pagination": {"next_page_token": 5}},
    ],
)
def test_an_answer_without_collection_and_pagination_is_unusable_and_the_position_is_kept(
    answer: object,
) -> None:
    calendly, table = seeded(3), FakeTable()
    calendly.odd_answers = [answer]
    saves = Saves()
    with pytest.raises(AnswerUnusable):
        WindowReader(reading_run(table, calendly), ReadRules(OWNER)).read(WINDOW, WINDOW.start, saves)
    assert saves.calls == [(WINDOW.start, False)] and not table.writes


def test_a_400_naming_no_parameter_to_a_page_token_counts_as_stale() -> None:
    # GIVEN Calendly refusing the first page token with a 400 that names nothing (the same query
    # was accepted without the token a moment before)
    calendly, table = seeded(150), FakeTable()
    refused: list[str] = []

    def refuse_once(params: dict[str, str]) -> None:
        if "page_token" in params and not refused:
            refused.append(params["page_token"])
            raise CalendlyRejected("refused", status=400, title="Invalid Argument")

    calendly.before_listing = refuse_once
    # WHEN read THEN the listing begins again from the position and the window is completed
    done, _, report = read(table, calendly)
    assert done is True and report.page_token_restarts == 1 and len(stored_events(table)) == 150  # type: ignore[attr-defined]


def test_time_running_short_while_listing_saves_the_first_unapplied_events_start() -> None:
    # GIVEN a Lambda whose time falls under the margin once a page has been listed
    calendly, table = seeded(150), FakeTable()

    def remaining() -> int:
        return SAFETY_MARGIN_MS - 1 if calendly.listed("/scheduled_events") else 300_000

    # WHEN read THEN nothing was applied, and the position saved is the first listed event's start
    # (the window holds nothing before it)
    done, saves, _ = read(table, calendly, remaining_ms=remaining)
    first = datetime.fromisoformat(calendly.events["E00000"]["start_time"])
    assert done is False and saves.calls == [(first, False)] and not table.writes

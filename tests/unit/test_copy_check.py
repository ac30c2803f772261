"""local/copy_check.py: the table's copy against the sandbox's bookings, without a server or AWS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local.calendly_sandbox import CalendlySandbox, SandboxConfig
from local.copy_check import api_facts, compare, sandbox_facts, table_facts


def _calendly() -> tuple[CalendlySandbox, str]:
    """A sandbox (never started: no server, no subscription) with one booking canceled, one marked."""
    sandbox = CalendlySandbox(SandboxConfig(seed=5))
    sandbox.seed(users=1, event_types_per_user=1, scheduled_events=4, start=datetime(2030, 1, 1, tzinfo=UTC))
    kept = sandbox.book(start_time=datetime(2030, 2, 1, 9, tzinfo=UTC))
    canceled = sandbox.book(start_time=datetime(2030, 2, 1, 10, tzinfo=UTC))
    sandbox.cancel(canceled)
    sandbox.mark_no_show(kept)
    return sandbox, kept


def _typed_items(sandbox: CalendlySandbox) -> list[dict[str, Any]]:
    """The table a correct copy leaves, as a low-level scan returns it (plus what is not compared)."""
    state = sandbox.state
    items: list[dict[str, Any]] = [{"entity": {"S": "delivery"}, "body": {"S": "{}"}}]
    for event in state.events.values():
        items.append(
            {
                "entity": {"S": "scheduled_event"},
                "uri": {"S": state.uris.scheduled_event(event.uuid)},
                "status": {"S": event.status},
            }
        )
    for invitee in state.invitees.values():
        item = {
            "entity": {"S": "invitee"},
            "uri": {"S": state.uris.invitee(invitee.event_uuid, invitee.uuid)},
            "status": {"S": invitee.status},
        }
        if invitee.no_show is not None:
            item["no_show"] = {"S": state.uris.no_show(invitee.no_show.uuid)}
        items.append(item)
    return items


def test_a_faithful_copy_matches_in_either_item_form() -> None:
    # GIVEN the items a correct copy holds, typed as scanned and decoded as the adapter reads them
    sandbox, _ = _calendly()
    typed = _typed_items(sandbox)
    plain = [{name: next(iter(value.values())) for name, value in item.items()} for item in typed]

    # WHEN each is compared with the sandbox's state
    checks = [compare(sandbox_facts(sandbox.state), table_facts(items)) for items in (typed, plain)]

    # THEN both match, counting every invitee and scheduled event on each side
    for check in checks:
        assert check.matches, check.summary()
        assert check.invitees.calendly_count == check.invitees.table_count == 6
        assert check.scheduled_events.calendly_count == check.scheduled_events.table_count == 6


def test_missing_extra_and_differing_fields_are_named() -> None:
    # GIVEN a copy that lost one invitee, holds one Calendly never had, missed a no-show mark
    # and a cancellation, and has an event of another status
    sandbox, marked = _calendly()
    items = _typed_items(sandbox)
    invitees = [i for i in items if i["entity"]["S"] == "invitee"]
    events = [i for i in items if i["entity"]["S"] == "scheduled_event"]
    removed = next(i for i in invitees if i["status"]["S"] == "active" and i["uri"]["S"] != marked)
    lost = removed["uri"]["S"]
    items.remove(removed)
    forged = "https://api.calendly.com/scheduled_events/E/invitees/FORGED"
    items.append({"entity": {"S": "invitee"}, "uri": {"S": forged}, "status": {"S": "active"}})
    marked_item = next(i for i in invitees if i["uri"]["S"] == marked)
    del marked_item["no_show"]
    canceled_item = next(i for i in invitees if i["status"]["S"] == "canceled")
    canceled_item["status"] = {"S": "active"}
    events[0]["status"] = {"S": "canceled" if events[0]["status"]["S"] == "active" else "active"}

    # WHEN it is compared with the sandbox's state
    check = compare(sandbox_facts(sandbox.state), table_facts(items))

    # THEN each difference is reported where it belongs, with both sides' values
    assert not check.matches
    assert check.invitees.missing == (lost,)
    assert check.invitees.extra == (forged,)
    assert check.invitees.differing_on("no_show") == (marked,)
    assert check.invitees.differing_on("status") == (canceled_item["uri"]["S"],)
    (event_difference,) = check.scheduled_events.differing
    assert event_difference.uri == events[0]["uri"]["S"] and event_difference.field == "status"
    assert event_difference.table == events[0]["status"]["S"]
    assert set(check.invitees.lost) == {lost, marked, canceled_item["uri"]["S"]}
    assert "1 missing, 1 extra, 2 differing" in check.summary()


def test_a_stub_left_by_a_reschedule_link_is_not_a_copy() -> None:
    # GIVEN the table holds only the link stub of an invitee (no status: its own record never came)
    sandbox, kept = _calendly()
    items = [i for i in _typed_items(sandbox) if i.get("uri", {}).get("S") != kept]
    items.append({"entity": {"S": "invitee"}, "uri": {"S": kept}, "new_invitee": {"S": "x"}})

    # WHEN compared
    check = compare(sandbox_facts(sandbox.state), table_facts(items))

    # THEN that invitee is missing, not present with an empty status
    assert check.invitees.missing == (kept,) and check.invitees.differing == ()


def test_calendly_read_through_its_api_gives_the_same_facts_as_its_state() -> None:
    # GIVEN the sandbox's resources rendered as GET /scheduled_events and .../invitees answer
    sandbox, _ = _calendly()
    state = sandbox.state
    events = [state.renderer.scheduled_event(e, state.invitees_of(e)) for e in state.events.values()]
    invitees = [
        state.renderer.invitee(i, state.events[i.event_uuid], state.invitees_of(state.events[i.event_uuid]))
        for i in state.invitees.values()
    ]

    # WHEN both are turned into facts
    # THEN they are equal: a client's view and the sandbox's state are compared alike
    assert api_facts(events, invitees) == sandbox_facts(state)

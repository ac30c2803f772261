"""The publisher over stream batches, with a fake ledger and bus: each change on the bus once.

GIVEN stream records written by the table's rules (``MemoryTable``), WHEN a batch is published
(and handed again, as Lambda does from the reported record), THEN every change reaches the bus
once from our side, in stream order, and the outcome names the record to resume from.
"""

from __future__ import annotations

import json

import pytest

from calendly_sync import table_items
from calendly_sync.adapters.eventbridge import EventBridgeBus
from calendly_sync.deliveries import resource_changes
from calendly_sync.downstream.publisher import PublishOutcome, StreamRecord, publish_stream_batch
from calendly_sync.envelope import parse_envelope
from tests.downstream_helpers import FakeBus, FakeLedger, MemoryTable, assert_valid_event, envelope
from tests.putevents_fakes import FakeFailureQueue, StrictPutEvents

API = "https://api.calendly.com"
ORGANIZATION = f"{API}/organizations/ORG1"


def booking(n: int, *, status: str = "active", notes: str = "") -> str:
    event = f"{API}/scheduled_events/EV{n:04d}"
    payload = {
        "uri": f"{event}/invitees/IN{n:04d}",
        "event": event,
        "email": f"person{n}@example.com",
        "name": f"Person {n}",
        "status": status,
        "timezone": "UTC",
        "created_at": "2026-02-20T10:00:00.000000Z",
        "updated_at": "2026-02-20T10:00:00.000000Z" if status == "active" else "2026-02-21T10:00:00.000000Z",
        "cancellation": {"canceler_type": "host", "created_at": "2026-02-21T10:00:00Z"}
        if status == "canceled"
        else None,
        "no_show": None,
        "notes": notes,
        "scheduled_event": {
            "uri": event,
            "name": "Call",
            "status": "active",
            "start_time": "2026-03-01T10:00:00Z",
            "end_time": "2026-03-01T10:30:00Z",
            "event_type": f"{API}/event_types/ET1",
            "location": None,
            "created_at": "2026-02-20T10:00:00Z",
            "updated_at": "2026-02-20T10:00:00Z",
        },
    }
    name = "invitee.created" if status == "active" else "invitee.canceled"
    return envelope(name, payload, "2026-02-21T10:00:05Z")


def stream_of(*bodies: str) -> list[StreamRecord]:
    table = MemoryTable()
    for body in bodies:
        table.apply(resource_changes(parse_envelope(body)), table_items.WEBHOOK)
    return table.take_stream()


def publish(batch: list[StreamRecord], ledger: FakeLedger, bus: FakeBus) -> PublishOutcome:
    return publish_stream_batch(batch, ledger=ledger, bus=bus, organization_of=lambda: ORGANIZATION)


def resume_from(batch: list[StreamRecord], outcome: PublishOutcome) -> list[StreamRecord]:
    """What Lambda hands again after a reported batch item failure: that record and the rest."""
    numbers = [record.sequence_number for record in batch]
    return batch[numbers.index(outcome.first_failed) :] if outcome.first_failed else []


def test_a_batch_publishes_each_change_once_in_stream_order_and_records_it() -> None:
    # GIVEN a batch of 12 bookings (12 invitee records and 12 event records)
    batch = stream_of(*(booking(n) for n in range(12)))
    ledger, bus = FakeLedger(), FakeBus()

    # WHEN it is published
    outcome = publish(batch, ledger, bus)

    # THEN 12 invitee.created, in order, in requests of at most 10, each id in the ledger
    assert outcome.first_failed is None and outcome.published == 12
    assert bus.detail_types() == ["invitee.created"] * 12
    assert [json.loads(e.detail)["subject"][-6:] for e in bus.published] == [f"IN{n:04d}" for n in range(12)]
    assert [len(request) for request in bus.requests] == [10, 2]
    assert ledger.ids == {entry.change_id for entry in bus.published}
    # AND the organization is on every event, which holds to its schema
    for entry in bus.published:
        detail = json.loads(entry.detail)
        assert detail["organization"] == ORGANIZATION and detail["origin"] == "webhook"
        assert_valid_event(entry.detail_type, detail)


def test_a_batch_handed_again_publishes_nothing_more() -> None:
    # GIVEN a published batch WHEN Lambda hands the same batch again
    batch = stream_of(booking(1), booking(2))
    ledger, bus = FakeLedger(), FakeBus()
    publish(batch, ledger, bus)
    outcome = publish(batch, ledger, bus)

    # THEN nothing is put again: both changes are already in the ledger
    assert outcome.already_published == 2 and outcome.published == 0
    assert len(bus.published) == 2 and len(bus.requests) == 1


def test_a_partial_putevents_failure_reports_the_first_failed_record_and_the_retry_completes_once() -> None:
    # GIVEN five bookings, and a bus that refuses the third and fourth entries once
    batch = stream_of(*(booking(n) for n in range(5)))
    ledger, bus = FakeLedger(), FakeBus()
    probe = FakeBus()
    publish(batch, FakeLedger(), probe)
    ids = [entry.change_id for entry in probe.published]
    bus.refuse = {ids[2], ids[3]}

    # WHEN the batch is published
    outcome = publish(batch, ledger, bus)

    # THEN the entries before and after the failures were published and recorded, and the batch
    # reports the third booking's record (the first with a failed entry)
    assert outcome.failed == 2 and outcome.published == 3
    third_invitee_record = next(r for r in batch if r.new_image and r.new_image["uri"].endswith("IN0002"))
    assert outcome.first_failed == third_invitee_record.sequence_number
    assert ledger.ids == {ids[0], ids[1], ids[4]}

    # WHEN the bus recovers and Lambda hands the batch again from that record
    bus.refuse = set()
    retry = publish(resume_from(batch, outcome), ledger, bus)

    # THEN the two missing changes are published, the fifth is not put again: each once, nothing lost
    assert retry.first_failed is None and retry.published == 2 and retry.already_published == 1
    assert sorted(entry.change_id for entry in bus.published) == sorted(ids)


def test_a_bus_outage_publishes_nothing_and_resumes_at_the_first_record() -> None:
    # GIVEN 12 bookings and a bus that refuses every request
    batch = stream_of(*(booking(n) for n in range(12)))
    ledger, bus = FakeLedger(), FakeBus(unavailable=True)

    # WHEN published THEN the first request fails, no later one is sent, nothing is recorded
    outcome = publish(batch, ledger, bus)
    assert outcome.first_failed == batch[0].sequence_number and outcome.failed == 10
    assert len(bus.requests) == 1 and ledger.ids == set() and bus.published == []

    # AND once the bus is back the whole batch is published once
    bus.unavailable = False
    retry = publish(resume_from(batch, outcome), ledger, bus)
    assert retry.published == 12 and len({entry.change_id for entry in bus.published}) == 12


def test_a_crash_after_putevents_before_the_ledger_write_puts_that_chunk_again() -> None:
    """The documented window: consumers dedupe on change_id (delivery to targets is at least once too)."""

    # GIVEN a ledger whose write fails after the bus accepted the events (as a crash would)
    class CrashingLedger(FakeLedger):
        def record_published(self, change_ids: list[str]) -> None:  # type: ignore[override]
            raise RuntimeError("process ended")

    batch = stream_of(booking(1))
    bus = FakeBus()
    with pytest.raises(RuntimeError):
        publish(batch, CrashingLedger(), bus)

    # WHEN the batch is handed again THEN the event is put a second time, with the same change_id
    publish(batch, FakeLedger(), bus)
    first, second = bus.published
    assert first.change_id == second.change_id and first.detail == second.detail


def test_the_organization_is_read_only_when_something_is_published() -> None:
    # GIVEN a batch of records that change nothing downstream (an event's own first write)
    batch = stream_of(booking(1))
    events_only = [r for r in batch if r.new_image and r.new_image["entity"] == "scheduled_event"]
    lookups: list[int] = []

    def organization() -> str:
        lookups.append(1)
        return ORGANIZATION

    # WHEN published THEN neither the ledger nor the connection is read, and nothing is put
    ledger, bus = FakeLedger(), FakeBus()
    outcome = publish_stream_batch(events_only, ledger=ledger, bus=bus, organization_of=organization)
    assert outcome.changes == 0 and ledger.reads == 0 and lookups == [] and bus.requests == []


def test_an_oversized_change_is_published_without_calendlys_payload() -> None:
    # GIVEN a booking whose Calendly payload is 300 KB
    batch = stream_of(booking(1, notes="n" * 300_000), booking(2))
    ledger, bus = FakeLedger(), FakeBus()

    # WHEN published THEN both go out, the first truncated (small again: one request holds both)
    outcome = publish(batch, ledger, bus)
    assert outcome.published == 2 and outcome.truncated == 1
    first, second = (json.loads(entry.detail) for entry in bus.published)
    assert first["truncated"] is True and "calendly" not in first
    assert second["truncated"] is False and second["calendly"]["uri"].endswith("IN0002")
    assert [len(request) for request in bus.requests] == [2]
    assert_valid_event("invitee.created", first)


def test_a_change_repeated_within_a_batch_is_put_once() -> None:
    # GIVEN a batch where two records announce the same change (a record handed twice)
    batch = stream_of(booking(1))
    invitee_record = next(r for r in batch if r.new_image and r.new_image["entity"] == "invitee")
    ledger, bus = FakeLedger(), FakeBus()

    # WHEN published THEN one event
    outcome = publish([invitee_record, invitee_record], ledger, bus)
    assert outcome.changes == 1 and len(bus.published) == 1


# --- entries EventBridge refuses for what they are: set aside, the batch goes on -------------


def strict_bus(double: StrictPutEvents) -> EventBridgeBus:
    """The real adapter over a PutEvents that refuses the way AWS documents."""
    return EventBridgeBus("calendly-test-bus", double)


def publish_strictly(
    batch: list[StreamRecord], ledger: FakeLedger, double: StrictPutEvents, queue: FakeFailureQueue | None
) -> PublishOutcome:
    return publish_stream_batch(
        batch,
        ledger=ledger,
        bus=strict_bus(double),
        organization_of=lambda: ORGANIZATION,
        failure_queue=queue,
    )


def invitee_changes(batch: list[StreamRecord]) -> list[tuple[str, StreamRecord]]:
    """(change id, record) of each booking's invitee.created, in stream order."""
    probe = FakeBus()
    publish(batch, FakeLedger(), probe)
    record_of = {r.new_image["uri"]: r for r in batch if r.new_image and r.new_image["entity"] == "invitee"}
    return [(e.change_id, record_of[json.loads(e.detail)["subject"]]) for e in probe.published]


def test_an_entry_refused_as_malformed_is_set_aside_at_once_and_the_records_behind_it_are_published() -> None:
    # GIVEN 12 bookings, and EventBridge refusing the 4th entry (MalformedDetail) and the 11th
    # (InvalidArgument) for what they are: both refused again on every retry
    batch = stream_of(*(booking(n) for n in range(12)))
    changes = invitee_changes(batch)
    double = StrictPutEvents(refuse={changes[3][0]: "MalformedDetail", changes[10][0]: "InvalidArgument"})
    ledger, queue = FakeLedger(), FakeFailureQueue()

    # WHEN the batch is published
    outcome = publish_strictly(batch, ledger, double, queue)

    # THEN nothing is left to retry: the other ten are on the bus, in order, and the two refused
    # are in the failure queue at once, counted, with what finds them again (no personal data)
    assert outcome.first_failed is None and outcome.failed == 0
    assert outcome.published == 10 and outcome.set_aside == 2
    published = [detail["change_id"] for detail in double.accepted_details()]
    assert published == [change_id for n, (change_id, _) in enumerate(changes) if n not in (3, 10)]
    expected = []
    for n, code in ((3, "MalformedDetail"), (10, "InvalidArgument")):
        change_id, record = changes[n]
        assert record.new_image is not None
        expected.append(
            {
                "set_aside": code,
                "change_id": change_id,
                "detail_type": "invitee.created",
                "subject": record.new_image["uri"],
                "item": {"pk": record.new_image["pk"], "sk": record.new_image["sk"]},
                "stream_sequence_number": record.sequence_number,
            }
        )
    assert queue.messages == expected
    assert "@" not in json.dumps(queue.messages)  # ids only: no invitee e-mail
    # AND all twelve are in the ledger: a batch handed again puts nothing and sets nothing aside again
    assert ledger.ids == {change_id for change_id, _ in changes}
    requests = double.requests
    again = publish_strictly(batch, ledger, double, queue)
    assert again.already_published == 12 and double.requests == requests and len(queue.messages) == 2


def test_entries_refused_for_a_passing_cause_or_the_stack_s_wiring_wait_on_the_stream() -> None:
    # GIVEN EventBridge refusing entries with codes it documents as retryable (InternalFailure,
    # ThrottlingException) or that an operator fixes (AccessDeniedException)
    batch = stream_of(*(booking(n) for n in range(5)))
    changes = invitee_changes(batch)
    double = StrictPutEvents(
        refuse={
            changes[1][0]: "ThrottlingException",
            changes[2][0]: "AccessDeniedException",
            changes[3][0]: "InternalFailure",
        }
    )
    ledger, queue = FakeLedger(), FakeFailureQueue()

    # WHEN published THEN none is set aside: the batch resumes at the first of them
    outcome = publish_strictly(batch, ledger, double, queue)
    assert outcome.set_aside == 0 and queue.messages == [] and outcome.failed == 3
    assert outcome.first_failed == changes[1][1].sequence_number

    # AND once EventBridge takes them, the retry publishes each once
    double.refuse = {}
    retry = publish_strictly(resume_from(batch, outcome), ledger, double, queue)
    assert retry.first_failed is None and retry.published == 3
    assert sorted(d["change_id"] for d in double.accepted_details()) == sorted(c for c, _ in changes)


def test_a_malformed_entry_waits_on_the_stream_while_the_failure_queue_is_down_or_absent() -> None:
    # GIVEN EventBridge refusing the second booking's entry as malformed, and no queue taking it
    batch = stream_of(*(booking(n) for n in range(3)))
    changes = invitee_changes(batch)
    double = StrictPutEvents(refuse={changes[1][0]: "MalformedDetail"})
    for queue in (FakeFailureQueue(unavailable=True), None):
        ledger = FakeLedger()

        # WHEN published THEN it is not lost: not in the ledger, and the batch resumes there
        outcome = publish_strictly(batch, ledger, double, queue)
        assert outcome.set_aside == 0 and outcome.failed == 1
        assert outcome.first_failed == changes[1][1].sequence_number
        assert changes[1][0] not in ledger.ids and {changes[0][0], changes[2][0]} <= ledger.ids

    # AND once the queue is back, the retry sets it aside and nothing else is put again
    queue = FakeFailureQueue()
    retry = publish_strictly(resume_from(batch, outcome), ledger, double, queue)
    assert retry.first_failed is None and retry.set_aside == 1 and retry.already_published == 1
    assert [message["change_id"] for message in queue.messages] == [changes[1][0]]


def test_a_stored_item_holding_nan_or_infinity_never_stalls_the_batch_nor_reaches_the_bus() -> None:
    # GIVEN an invitee item stored before Calendly's JSON was read by calendly_json: its raw
    # holds NaN and Infinity (what json.dumps wrote for 1e400), and a booking behind it
    batch = stream_of(booking(1), booking(2))
    legacy = next(r for r in batch if r.new_image and r.new_image["uri"].endswith("IN0001"))
    assert legacy.new_image is not None
    legacy.new_image["raw"] = legacy.new_image["raw"][:-1] + ',"seats":Infinity,"ratio":NaN}'
    double, ledger, queue = StrictPutEvents(), FakeLedger(), FakeFailureQueue()

    # WHEN published
    outcome = publish_strictly(batch, ledger, double, queue)

    # THEN nothing waits and nothing PutEvents refuses was sent: both bookings are on the bus as
    # JSON, the legacy one with NaN and Infinity read back as their text (calendly_json), not lost
    assert outcome.first_failed is None and double.refused == [] and queue.messages == []
    by_subject = {detail["subject"]: detail for detail in double.accepted_details()}
    assert set(by_subject) == {legacy.new_image["uri"], *(s for s in by_subject if s.endswith("IN0002"))}
    legacy_detail = by_subject[legacy.new_image["uri"]]
    assert legacy_detail["calendly"]["seats"] == "Infinity" and legacy_detail["calendly"]["ratio"] == "NaN"
    assert outcome.published == 2 and outcome.set_aside == 0 and len(ledger.ids) == 2

"""The README's rule patterns on the bus: each one receives exactly what its sentence says.

The patterns are read from README.md itself (each ```json block after a sentence of the
"**Rule patterns.**" paragraph), so the README and this test cannot drift apart. A realistic
mix of changes goes through the real functions into moto: the real Calendly bodies of
``tests/fixtures/calendly_real/`` (and, where ``../shared`` holds them, the real-world bodies of
``../shared/calendly/realworld/webhooks/``), booking lives delivered by webhook, history a
backfill published, and changes only a poll finds (a reschedule, a host's cancellation, a
meeting moved, one made longer, one relocated). PublishChangesFunction puts them on the bus; each README
pattern is a rule there with a queue behind it, beside a rule for every ``calendly-sync``
event. A rule must receive every published event its sentence describes and nothing else.
The sentences are written out below as Python predicates over the published events; where
a sentence names what an event is about (its event type), the predicate reads it from what
was made, not from the event. moto's EventBridge evaluates the patterns (``$or`` and array
matching included, as AWS documents them), nothing here matches patterns itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.calendly_sandbox import CalendlySandbox
from local.samples import CALENDLY, Booking, event_type_envelope
from local.stream_pump import StreamPump
from tests.conftest import LocalAws
from tests.integration.test_poll import connect, poll
from tests.integration.test_real_bodies import BODIES, body_text

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
#: Real-world bodies beside the project (``../shared``; see its SOURCES.md), absent on some machines.
REALWORLD = REPO.parent / "shared" / "calendly" / "realworld" / "webhooks"

START = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)

Event = dict[str, Any]


# --- the README's patterns --------------------------------------------------------------------


def readme_patterns() -> dict[str, str]:
    """``sentence -> pattern text`` for each ```json block of the README's "**Rule patterns.**".

    The paragraph runs to the next bold lead-in; a pattern's sentence is the paragraph just
    above its block, ending with a colon (the lead-in itself left out).
    """
    text = README.read_text(encoding="utf-8")
    start = text.index("**Rule patterns.**")
    end = text.index("\n**", start + 1)
    section = text[start:end].replace("**Rule patterns.**", "", 1)
    found: dict[str, str] = {}
    position = 0
    for block in re.finditer(r"```json\n(.*?)\n```", section, re.S):
        before = section[position : block.start()].strip()
        sentence = " ".join(before.split("\n\n")[-1].split())
        assert sentence.endswith(":"), f"a pattern without its sentence: {block.group(1)[:60]}…"
        found[sentence.removesuffix(":")] = block.group(1)
        position = block.end()
    return found


def pattern_for(text: str, made: Made) -> dict[str, Any]:
    """The README's pattern, its placeholder event type made the mix's chosen one."""
    pattern: dict[str, Any] = json.loads(text.replace("<uuid>", made.chosen_type_uuid))
    return pattern


# --- what was made, and the sentences as predicates -------------------------------------------


@dataclass
class Made:
    """What the test made, beside what was published: the truth the sentences are read against."""

    #: The event type given for the README's ``<uuid>``: a sandbox one, so polls find it too.
    chosen_type_uuid: str = ""
    #: invitee URI -> its event type's URI, for every invitee made whose event type is known.
    event_type_of: dict[str, str] = field(default_factory=dict)

    @property
    def chosen_type(self) -> str:
        return f"{CALENDLY}/event_types/{self.chosen_type_uuid}"

    def of_chosen_type(self, event: Event) -> bool:
        """The event's invitee (an invitee's, or a no-show's resource) is a meeting of the chosen type."""
        return self.event_type_of.get(event["detail"]["resource"]["uri"]) == self.chosen_type


def invitee_canceled_of_chosen_type(event: Event, made: Made) -> bool:
    return event["detail-type"] == "invitee.canceled" and made.of_chosen_type(event)


def new_booking_or_moved_meeting_found_by_webhook_or_poll(event: Event, made: Made) -> bool:
    detail = event["detail"]
    if detail["origin"] not in {"webhook", "poll"}:
        return False
    if event["detail-type"] == "invitee.created":
        return True
    return event["detail-type"] == "scheduled_event.updated" and "start_time" in detail["changed_fields"]


def booking_the_host_canceled_not_rescheduled(event: Event, made: Made) -> bool:
    return (
        event["detail-type"] == "invitee.canceled"
        and canceler(event) == "host"
        and resource(event)["rescheduled"] is False
    )


def no_show_of_chosen_type(event: Event, made: Made) -> bool:
    return event["detail-type"] == "invitee_no_show.created" and made.of_chosen_type(event)


Sentence = Callable[[Event, Made], bool]

#: Each README sentence as a predicate: the README's sentences and these keys must be the same.
SENTENCES: dict[str, Sentence] = {
    "Invitee cancellations of one event type, a reschedule's old invitee included (`rescheduled: true`)": (
        invitee_canceled_of_chosen_type
    ),
    "New bookings, a reschedule's new invitee included (`old_invitee` set), and meetings whose start "
    "time moved, found by a webhook or a poll (what a backfill publishes, `origin: backfill`, left out)": (
        new_booking_or_moved_meeting_found_by_webhook_or_poll
    ),
    "Bookings the host canceled, a host's reschedule (`rescheduled: true`) left out": (
        booking_the_host_canceled_not_rescheduled
    ),
    "No-shows marked on one event type's meetings": no_show_of_chosen_type,
}


def origin(event: Event) -> str:
    found: str = event["detail"]["origin"]
    return found


def resource(event: Event) -> dict[str, Any]:
    found: dict[str, Any] = event["detail"]["resource"]
    return found


def canceler(event: Event) -> str | None:
    """Who canceled: the invitee's cancellation's canceler, or the scheduled event's."""
    if event["detail-type"] == "scheduled_event.updated":
        found: str | None = resource(event)["canceler_type"]
        return found
    return (resource(event)["cancellation"] or {}).get("canceler_type")


def changed(event: Event) -> list[str]:
    found: list[str] = event["detail"]["changed_fields"]
    return found


#: What the mix must hold, so that no sentence passes for want of what it must tell apart:
#: ``kind -> (detail-type, what else is true of such an event)``.
KINDS: dict[str, tuple[str, Callable[[Event], bool]]] = {
    "a booking by webhook": ("invitee.created", lambda e: origin(e) == "webhook"),
    "a booking found by a poll": ("invitee.created", lambda e: origin(e) == "poll"),
    "history a backfill published": ("invitee.created", lambda e: origin(e) == "backfill"),
    "a reschedule's new invitee, found by a poll": (
        "invitee.created",
        lambda e: resource(e)["old_invitee"] is not None and origin(e) == "poll",
    ),
    "a reschedule's old invitee, found by a poll": (
        "invitee.canceled",
        lambda e: resource(e)["rescheduled"] is True and origin(e) == "poll",
    ),
    "an invitee's own cancellation": (
        "invitee.canceled",
        lambda e: canceler(e) == "invitee" and resource(e)["rescheduled"] is False,
    ),
    "a host's cancellation by webhook": (
        "invitee.canceled",
        lambda e: canceler(e) == "host" and origin(e) == "webhook",
    ),
    "a host's cancellation found by a poll": (
        "invitee.canceled",
        lambda e: canceler(e) == "host" and origin(e) == "poll",
    ),
    "a host's reschedule": (
        "invitee.canceled",
        lambda e: canceler(e) == "host" and resource(e)["rescheduled"] is True,
    ),
    "a meeting moved, found by a poll": (
        "scheduled_event.updated",
        lambda e: changed(e) == ["start_time", "end_time"] and origin(e) == "poll",
    ),
    "a meeting made longer": ("scheduled_event.updated", lambda e: changed(e) == ["end_time"]),
    "a meeting relocated": ("scheduled_event.updated", lambda e: changed(e) == ["location"]),
    "a meeting its host canceled": (
        "scheduled_event.updated",
        lambda e: changed(e) == ["status"] and canceler(e) == "host",
    ),
    "a meeting canceled by a reschedule": (
        "scheduled_event.updated",
        lambda e: changed(e) == ["status"] and canceler(e) == "invitee",
    ),
    "a no-show marked, then removed": ("invitee_no_show.deleted", lambda e: True),
}


# --- the stack, a rule per pattern -------------------------------------------------------------


@dataclass
class Bus:
    """PublishChangesFunction on the table's stream, and a queue behind each rule on its bus."""

    aws: LocalAws
    receive_webhook: Any
    publisher: StreamPump
    sqs: Any
    queues: dict[str, str] = field(default_factory=dict)

    def add_rule(self, name: str, pattern: dict[str, Any]) -> None:
        queue_url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events, bus = boto3.client("events"), os.environ["EVENT_BUS_NAME"]
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
        self.queues[name] = queue_url

    def deliver(self, *bodies: dict[str, Any] | str) -> None:
        """Post each body, signed, to ReceiveWebhookFunction; then project the stored deliveries."""
        self.aws.deliver_signed(self.receive_webhook, *bodies)

    def publish(self) -> None:
        """Hand the stream's new records to PublishChangesFunction, as Lambda would."""
        self.publisher.drain()
        assert self.publisher.failures == [], "PublishChangesFunction reported failed records"

    def received(self, name: str) -> list[Event]:
        """What the queue behind rule ``name`` got (and is then emptied of)."""
        events: list[Event] = []
        while True:
            page = self.sqs.receive_message(QueueUrl=self.queues[name], MaxNumberOfMessages=10)
            messages = page.get("Messages", [])
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queues[name], ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def bus(aws: LocalAws, receive_webhook: Any) -> Bus:
    """Given the bus PublishChangesFunction publishes to, with a rule for every calendly-sync event."""
    events = boto3.client("events")
    name = os.environ["EVENT_BUS_NAME"]
    if name not in {b["Name"] for b in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=name)
    stream_arn = aws.dynamodb.describe_table(TableName=aws.table_name)["Table"]["LatestStreamArn"]
    publisher = StreamPump(
        boto3.client("dynamodbstreams"), stream_arn, "PublishChangesFunction", resume_at_failure=True
    )
    found = Bus(aws, receive_webhook, publisher, boto3.client("sqs"))
    found.add_rule("everything", {"source": ["calendly-sync"]})
    return found


# --- the mix -----------------------------------------------------------------------------------


def seeded(calendly: CalendlySandbox, now: datetime) -> Made:
    """An account with two event types and past bookings, connected; the first type chosen."""
    calendly.seed(users=1, event_types_per_user=2, scheduled_events=4, start=now - timedelta(days=15), days=5)
    connect(calendly)
    with calendly.state.lock:
        return Made(chosen_type_uuid=sorted(calendly.state.event_types)[0])


def made_by_polls(bus: Bus, calendly: CalendlySandbox, made: Made, now: datetime) -> None:
    """History a backfill publishes, then bookings and the changes to them only a poll finds."""
    chosen = made.chosen_type_uuid
    with calendly.state.lock:
        other = next(uuid for uuid in sorted(calendly.state.event_types) if uuid != chosen)
    since = (now - timedelta(days=20)).date().isoformat()
    assert poll({"mode": "backfill", "since": since, "publish": True})["ok"] is True

    # No webhook subscription: each change below is found by the next poll.
    booked = {
        name: calendly.book(calendly.state.uris.event_type(type_uuid), now + timedelta(days=days))
        for name, type_uuid, days in (
            ("rescheduled", chosen, 2),
            ("host_canceled", chosen, 3),
            ("moved", other, 4),
            ("longer", other, 5),
            ("relocated", chosen, 6),
        )
    }
    assert poll()["ok"] is True
    calendly.reschedule(booked["rescheduled"], now + timedelta(days=7))
    calendly.cancel(booked["host_canceled"], by="host")
    with calendly.state.lock:
        # The sandbox has no call that changes a meeting in place: its state is changed here.
        for name, change in (
            ("moved", {"start_time": timedelta(hours=2), "end_time": timedelta(hours=2)}),
            ("longer", {"end_time": timedelta(minutes=30)}),
            ("relocated", {}),
        ):
            event = calendly.state.events[booked[name].split("/")[-3]]
            for attribute, by in change.items():
                setattr(event, attribute, getattr(event, attribute) + by)
            if name == "relocated":
                event.location = {"type": "physical", "location": "Room 4"}
            event.updated_at = calendly.state.clock.after(event.updated_at)
    assert poll()["ok"] is True
    bus.publish()
    with calendly.state.lock:
        for invitee in calendly.state.invitees.values():
            event_type = calendly.state.events[invitee.event_uuid].event_type_uuid
            made.event_type_of[calendly.state.uris.invitee(invitee.event_uuid, invitee.uuid)] = (
                calendly.state.uris.event_type(event_type)
            )


def made_by_webhooks(bus: Bus, made: Made, *, realworld: bool) -> None:
    """Booking lives delivered as Calendly sends them, the real corpus, an event type's change."""

    def life(type_uuid: str, hours: int) -> Booking:
        booking = Booking(start=START + timedelta(hours=hours))
        booking.event_type_uuid = type_uuid
        return booking

    chosen, other = made.chosen_type_uuid, "OTHERTYPE0000001"
    marked, host_canceled, rescheduled, by_host, elsewhere = (
        life(chosen, 0),
        life(chosen, 1),
        life(chosen, 2),
        life(chosen, 3),
        life(other, 4),
    )
    bodies: list[dict[str, Any] | str] = [
        *(booking.book() for booking in (marked, host_canceled, rescheduled, by_host, elsewhere)),
        marked.mark_no_show(),
        marked.unmark_no_show(),
        marked.mark_no_show(),
        marked.cancel(),
        host_canceled.cancel(by="host"),
        elsewhere.mark_no_show(),
        elsewhere.cancel(by="host"),
    ]
    new, halves = rescheduled.reschedule(START + timedelta(days=1))
    bodies += halves
    new_by_host, (canceled, created) = by_host.reschedule(START + timedelta(days=2))
    # A host's reschedule: Calendly names the host as the old invitee's canceler.
    canceled["payload"]["cancellation"].update(canceler_type="host", canceled_by="Host")
    bodies += [canceled, created, event_type_envelope("event_type.created")]
    for booking in (marked, host_canceled, rescheduled, by_host, elsewhere, new, new_by_host):
        made.event_type_of[booking.invitee_uri] = f"{CALENDLY}/event_types/{booking.event_type_uuid}"

    corpus = [body_text(body) for body in BODIES]
    if realworld:
        corpus += [path.read_text(encoding="utf-8") for path in sorted(REALWORLD.glob("*.json"))]
    for text in corpus:
        payload = json.loads(text)["payload"]
        embedded = payload.get("scheduled_event")
        if isinstance(embedded, dict) and embedded.get("event_type"):
            made.event_type_of[payload["uri"]] = embedded["event_type"]
    bus.deliver(*bodies, *corpus)
    bus.publish()


@dataclass
class Mix:
    #: Every event published (what the rule for every calendly-sync event received).
    everything: list[Event]
    made: Made
    #: ``sentence -> pattern``, as put on the bus.
    patterns: dict[str, dict[str, Any]]


def published_mix(bus: Bus, calendly: CalendlySandbox, *, realworld: bool) -> Mix:
    """The README's rules put on the bus, then the mix made and published."""
    now = datetime.now(UTC)
    made = seeded(calendly, now)
    patterns = put_readme_rules(bus, made)
    made_by_polls(bus, calendly, made, now)
    made_by_webhooks(bus, made, realworld=realworld)
    everything = bus.received("everything")
    assert len({event["detail"]["change_id"] for event in everything}) == len(everything)
    return Mix(everything, made, patterns)


def put_readme_rules(bus: Bus, made: Made) -> dict[str, dict[str, Any]]:
    """A rule on the bus for each README pattern: ``sentence -> pattern`` as put."""
    patterns = {sentence: pattern_for(text, made) for sentence, text in readme_patterns().items()}
    for sentence, pattern in patterns.items():
        bus.add_rule(rule_name(sentence), pattern)
    return patterns


def rule_name(sentence: str) -> str:
    return f"readme-pattern-{list(SENTENCES).index(sentence)}"


def summary(event: Event) -> tuple[str, str, str]:
    return (event["detail-type"], event["detail"]["origin"], event["detail"]["subject"])


def detail_types_named(pattern: dict[str, Any]) -> set[str]:
    named = set(pattern.get("detail-type", []))
    for branch in pattern.get("$or", []):
        named |= set(branch.get("detail-type", []))
    return named


def assert_the_mix_holds_every_kind(everything: list[Event]) -> None:
    missing = [
        kind
        for kind, (detail_type, test) in KINDS.items()
        if not any(event["detail-type"] == detail_type and test(event) for event in everything)
    ]
    assert not missing, f"the mix holds none of: {missing}"


def assert_each_rule_receives_what_its_sentence_says(bus: Bus, mix: Mix) -> None:
    by_id = {event["detail"]["change_id"]: event for event in mix.everything}
    for sentence, pattern in mix.patterns.items():
        wanted = {i for i, event in by_id.items() if SENTENCES[sentence](event, mix.made)}
        refused = {i for i, event in by_id.items() if event["detail-type"] in detail_types_named(pattern)}
        refused -= wanted
        # Not vacuous: some events are wanted, and some of the very detail-types it names are not.
        assert wanted and refused, f"the mix does not test: {sentence}"
        got = [event["detail"]["change_id"] for event in bus.received(rule_name(sentence))]
        assert len(got) == len(set(got)), f"an event arrived twice at: {sentence}"
        missing = sorted(summary(by_id[i]) for i in wanted - set(got))
        unwanted = sorted(summary(by_id[i]) if i in by_id else ("?", "?", i) for i in set(got) - wanted)
        assert not missing and not unwanted, f"{sentence}:\n missing {missing}\n unwanted {unwanted}"


# --- tests -------------------------------------------------------------------------------------


def test_the_readme_shows_one_pattern_for_each_sentence_written_here_and_no_other() -> None:
    patterns = readme_patterns()
    assert set(patterns) == set(SENTENCES)
    for text in patterns.values():
        pattern = json.loads(text)
        assert pattern["source"] == ["calendly-sync"]


def test_each_readme_pattern_receives_exactly_the_events_its_sentence_describes(
    bus: Bus, calendly: CalendlySandbox
) -> None:
    # GIVEN a rule on the bus for each pattern the README shows
    # WHEN a mix of changes is published: booking lives by webhook, the real corpus, a backfill
    # that publishes, and a reschedule, a host's cancellation and meetings changed found by polls
    mix = published_mix(bus, calendly, realworld=False)

    # THEN the mix holds every kind of change the sentences tell apart
    assert_the_mix_holds_every_kind(mix.everything)

    # AND each rule received every event its sentence describes, and nothing else
    assert_each_rule_receives_what_its_sentence_says(bus, mix)


@pytest.mark.skipif(
    not REALWORLD.is_dir(), reason="../shared/calendly/realworld/webhooks/ is not on this machine"
)
def test_each_readme_pattern_holds_with_the_real_world_bodies_in_the_mix(
    bus: Bus, calendly: CalendlySandbox
) -> None:
    # GIVEN the same rules, and the mix with Calendly's real-world deliveries added (SOURCES.md):
    # a host's reschedule (28), a reschedule's new invitee (29), group and guest bookings
    # WHEN it is published
    mix = published_mix(bus, calendly, realworld=True)

    # THEN the real bodies' changes are there, as real Calendly made them
    real = {
        json.loads(path.read_text(encoding="utf-8"))["payload"]["uri"]: path.name
        for path in REALWORLD.glob("*.json")
    }
    by_subject = {(e["detail-type"], e["detail"]["subject"]): e for e in mix.everything}
    host_reschedule = next(uri for uri, name in real.items() if name.startswith("28_"))
    new_half = next(uri for uri, name in real.items() if name.startswith("29_"))
    assert (
        booking_the_host_canceled_not_rescheduled(by_subject["invitee.canceled", host_reschedule], mix.made)
        is False
    )
    assert canceler(by_subject["invitee.canceled", host_reschedule]) == "host"
    assert resource(by_subject["invitee.created", new_half])["old_invitee"] is not None
    assert_the_mix_holds_every_kind(mix.everything)

    # AND each rule still received exactly what its sentence describes
    assert_each_rule_receives_what_its_sentence_says(bus, mix)

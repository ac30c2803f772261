"""Event types and bookings, and the changes to them that Calendly announces (book, cancel,
reschedule, no-shows), each returning the webhook events it fires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .accounts import Accounts
from .models import (
    CancelerType,
    Cancellation,
    EventType,
    Invitee,
    NoShow,
    ScheduledEvent,
    User,
    WebhookEvent,
)
from .sample_data import COLORS, EVENT_TYPE_NAMES, FIRST_NAMES, LAST_NAMES, TIMEZONES
from .uris import invitee_reference, reference_uuid


class Bookings(Accounts):
    # -- event types ------------------------------------------------------------------------------

    def _add_event_type(self, owner: User, created_at: datetime) -> EventType:
        name, minutes = self._data_random.choice(EVENT_TYPE_NAMES)
        index = sum(1 for event_type in self.event_types.values() if event_type.owner_uuid == owner.uuid) + 1
        event_type = EventType(
            uuid=self.new_uuid(),
            owner_uuid=owner.uuid,
            name=name,
            slug=f"{name.lower().replace(' ', '-')}-{index}",
            duration_minutes=minutes,
            color=self._data_random.choice(COLORS),
            created_at=created_at,
            updated_at=created_at,
            description=f"{name} with {owner.name}",
            location_kind=self._data_random.choice(("google_conference", "physical")),
        )
        self.event_types[event_type.uuid] = event_type
        return event_type

    def _default_event_type(self) -> EventType:
        active = [event_type for event_type in self.event_types.values() if event_type.active]
        if active:
            return active[0]
        host = next(iter(self.users.values()), None) or self.add_user("user", name="Sandbox Host")
        return self._add_event_type(host, self.clock.now())

    def _random_invitee_email(self) -> str:
        first = self._data_random.choice(FIRST_NAMES).lower()
        return f"{first}.{self._data_random.randrange(100_000):05d}@example.com"

    # -- changes Calendly announces ---------------------------------------------------------------

    def book(
        self, event_type_reference: str | None, start_time: datetime | None, email: str | None
    ) -> tuple[Invitee, list[WebhookEvent]]:
        with self.lock:
            if event_type_reference is None:
                event_type = self._default_event_type()
            else:
                found = self.event_types.get(reference_uuid(event_type_reference, "event_types") or "")
                if found is None:
                    raise KeyError(f"unknown event type {event_type_reference!r}")
                event_type = found
            if start_time is None:
                # Successive default bookings land on distinct hourly slots starting tomorrow.
                self._booking_counter += 1
                base = self.clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
                start_time = base + timedelta(hours=self._booking_counter)
            event, invitee = self._create_booking(
                event_type, start_time, email or self._random_invitee_email()
            )
            return invitee, [self._invitee_event("invitee.created", invitee, event)]

    def cancel(self, invitee_reference_: str, reason: str | None, by: CancelerType) -> list[WebhookEvent]:
        with self.lock:
            invitee, event = self._active_invitee(invitee_reference_)
            self._cancel(invitee, event, reason, by, self.clock.now())
            return [self._invitee_event("invitee.canceled", invitee, event)]

    def reschedule(self, invitee_reference_: str, new_start: datetime) -> tuple[Invitee, list[WebhookEvent]]:
        """No reschedule event exists: the old invitee is canceled and a new one created, linked both ways."""
        with self.lock:
            old, old_event = self._active_invitee(invitee_reference_)
            event_type = self.event_types[old_event.event_type_uuid]
            new_event, new = self._create_booking(
                event_type,
                new_start,
                old.email,
                first_name=old.first_name,
                last_name=old.last_name,
                timezone=old.timezone,
                questions_and_answers=old.questions_and_answers,
            )
            old_uri = self.uris.invitee(old.event_uuid, old.uuid)
            new.old_invitee = old_uri
            old.rescheduled = True
            old.new_invitee = self.uris.invitee(new.event_uuid, new.uuid)
            self._cancel(old, old_event, None, "invitee", self.clock.now())
            return new, [
                self._invitee_event("invitee.canceled", old, old_event),
                self._invitee_event("invitee.created", new, new_event),
            ]

    def mark_no_show(self, invitee_reference_: str) -> list[WebhookEvent]:
        with self.lock:
            invitee, event = self._find_invitee(invitee_reference_)
            if invitee.no_show is not None:
                raise ValueError("invitee is already marked as a no-show")
            # As Calendly does: a new no-show (its own uuid each time) and the invitee's and
            # the event's updated_at left as they were (README, "No-shows").
            invitee.no_show = NoShow(self.new_uuid(), self.clock.now())
            return [self._invitee_event("invitee_no_show.created", invitee, event)]

    def unmark_no_show(self, invitee_reference_: str) -> list[WebhookEvent]:
        with self.lock:
            invitee, event = self._find_invitee(invitee_reference_)
            if invitee.no_show is None:
                raise ValueError("invitee is not marked as a no-show")
            invitee.no_show = None  # updated_at left as it was, as for a mark
            return [self._invitee_event("invitee_no_show.deleted", invitee, event)]

    def _create_booking(
        self,
        event_type: EventType,
        start_time: datetime,
        email: str,
        *,
        created_at: datetime | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        timezone: str | None = None,
        questions_and_answers: list[dict[str, Any]] | None = None,
    ) -> tuple[ScheduledEvent, Invitee]:
        rng = self._data_random
        created = created_at or self.clock.now()
        start_time = start_time.astimezone(UTC) if start_time.tzinfo else start_time.replace(tzinfo=UTC)
        event_uuid = self.new_uuid()
        if event_type.location_kind == "physical":
            location: dict[str, Any] = {"type": "physical", "location": "Calendly Office"}
        else:
            location = {
                "type": "google_conference",
                "status": "pushed",
                "join_url": self.uris.scheduling_page("events", event_uuid, "google_meet"),
            }
        event = ScheduledEvent(
            uuid=event_uuid,
            event_type_uuid=event_type.uuid,
            host_uuid=event_type.owner_uuid,
            name=event_type.name,
            start_time=start_time,
            end_time=start_time + timedelta(minutes=event_type.duration_minutes),
            location=location,
            created_at=created,
            updated_at=created,
        )
        local_part = email.split("@", 1)[0]
        guessed_first = local_part.split(".", 1)[0].capitalize() or "Guest"
        invitee = Invitee(
            uuid=self.new_uuid(),
            event_uuid=event.uuid,
            email=email,
            first_name=first_name or guessed_first,
            last_name=last_name or rng.choice(LAST_NAMES),
            timezone=timezone or rng.choice(TIMEZONES),
            created_at=created,
            updated_at=created,
            questions_and_answers=(
                [dict(answer) for answer in questions_and_answers]
                if questions_and_answers is not None
                else [
                    {
                        "question": "What would you like to discuss?",
                        "answer": "Project kickoff",
                        "position": 0,
                    }
                ]
            ),
            tracking={"utm_source": rng.choice(("newsletter", "website", None))},
            scheduling_method=None,
        )
        event.invitee_uuids.append(invitee.uuid)
        self.events[event.uuid] = event
        self.invitees[invitee.uuid] = invitee
        return event, invitee

    def _cancel(
        self,
        invitee: Invitee,
        event: ScheduledEvent,
        reason: str | None,
        by: CancelerType,
        when: datetime,
    ) -> None:
        canceled_by = invitee.name if by == "invitee" else self.users[event.host_uuid].name
        when = max(when, invitee.updated_at + timedelta(microseconds=1))
        cancellation = Cancellation(canceled_by, reason, by, when)
        invitee.status = "canceled"
        invitee.cancellation = cancellation
        invitee.updated_at = when
        # One-on-one events end when their last invitee leaves.
        if all(self.invitees[other].status == "canceled" for other in event.invitee_uuids):
            event.status = "canceled"
            event.cancellation = cancellation
        event.updated_at = max(when, event.updated_at + timedelta(microseconds=1))

    def _find_invitee(self, reference: str) -> tuple[Invitee, ScheduledEvent]:
        parsed = invitee_reference(reference)
        invitee_uuid = parsed[1] if parsed else reference.strip()
        invitee = self.invitees.get(invitee_uuid)
        if invitee is None or (parsed is not None and parsed[0] != invitee.event_uuid):
            raise KeyError(f"unknown invitee {reference!r}")
        return invitee, self.events[invitee.event_uuid]

    def _active_invitee(self, reference: str) -> tuple[Invitee, ScheduledEvent]:
        invitee, event = self._find_invitee(reference)
        if invitee.status != "active":
            raise ValueError("invitee is already canceled")
        return invitee, event

    def invitees_of(self, event: ScheduledEvent) -> list[Invitee]:
        return [self.invitees[invitee_uuid] for invitee_uuid in event.invitee_uuids]

    def _invitee_event(self, name: str, invitee: Invitee, event: ScheduledEvent) -> WebhookEvent:
        payload = self.renderer.invitee(invitee, event, self.invitees_of(event))
        return WebhookEvent(name, payload, self.clock.after(invitee.updated_at), event.host_uuid)

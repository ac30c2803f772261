"""Calendly webhook payloads shaped like the real ones (api-facts.md), for samples and tests.

One booking's life: ``booking()`` makes the scheduled event and invitee, and the methods
return the envelopes Calendly would deliver as it changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

CALENDLY = "https://api.calendly.com"
ORGANIZATION = f"{CALENDLY}/organizations/AAAAAAAAAAAAAAAA"
HOST = f"{CALENDLY}/users/BBBBBBBBBBBBBBBB"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def envelope(event: str, payload: dict[str, Any], created_at: datetime) -> dict[str, Any]:
    return {"created_at": _timestamp(created_at), "created_by": HOST, "event": event, "payload": payload}


@dataclass
class Booking:
    """A scheduled event with one invitee, moved through Calendly's states by its methods."""

    start: datetime
    email: str = "ada@example.com"
    name: str = "Ada Lovelace"
    clock: datetime = field(default_factory=lambda: datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    event_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    invitee_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    event_type_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    event_status: str = "active"
    invitee_status: str = "active"
    event_updated: datetime | None = None
    invitee_updated: datetime | None = None
    created: datetime | None = None
    no_show: dict[str, Any] | None = None
    cancellation: dict[str, Any] | None = None
    rescheduled: bool = False
    old_invitee: str | None = None
    new_invitee: str | None = None

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=1, microseconds=123)
        return self.clock

    @property
    def event_uri(self) -> str:
        return f"{CALENDLY}/scheduled_events/{self.event_uuid}"

    @property
    def invitee_uri(self) -> str:
        return f"{self.event_uri}/invitees/{self.invitee_uuid}"

    def scheduled_event(self) -> dict[str, Any]:
        assert self.created and self.event_updated
        return {
            "uri": self.event_uri,
            "name": "30 Minute Meeting",
            "status": self.event_status,
            "start_time": _timestamp(self.start),
            "end_time": _timestamp(self.start + timedelta(minutes=30)),
            "event_type": f"{CALENDLY}/event_types/{self.event_type_uuid}",
            "location": {"type": "zoom", "location": None},
            "invitees_counter": {"total": 1, "active": 1 if self.event_status == "active" else 0, "limit": 1},
            "created_at": _timestamp(self.created),
            "updated_at": _timestamp(self.event_updated),
            "event_memberships": [{"user": HOST}],
            "event_guests": [],
            "cancellation": self.cancellation if self.event_status == "canceled" else None,
        }

    def invitee(self) -> dict[str, Any]:
        assert self.created and self.invitee_updated
        first, _, last = self.name.partition(" ")
        return {
            "uri": self.invitee_uri,
            "email": self.email,
            "name": self.name,
            "first_name": first,
            "last_name": last or None,
            "status": self.invitee_status,
            "timezone": "Europe/London",
            "created_at": _timestamp(self.created),
            "updated_at": _timestamp(self.invitee_updated),
            "event": self.event_uri,
            "scheduled_event": self.scheduled_event(),
            "cancel_url": f"https://calendly.com/cancellations/{self.invitee_uuid}",
            "reschedule_url": f"https://calendly.com/reschedulings/{self.invitee_uuid}",
            "rescheduled": self.rescheduled,
            "old_invitee": self.old_invitee,
            "new_invitee": self.new_invitee,
            "cancellation": self.cancellation,
            "questions_and_answers": [{"question": "Anything to prepare?", "answer": "No", "position": 0}],
            "tracking": {"utm_campaign": None, "utm_source": None, "salesforce_uuid": None},
            "routing_form_submission": None,
            "payment": None,
            "no_show": self.no_show,
            "reconfirmation": None,
            "text_reminder_number": None,
            "scheduling_method": None,
            "invitee_scheduled_by": None,
        }

    # --- what happens to a booking, and what Calendly delivers --------------------------

    def book(self) -> dict[str, Any]:
        self.created = self.event_updated = self.invitee_updated = self._tick()
        return envelope("invitee.created", self.invitee(), self.clock)

    def cancel(self, *, by: str = "invitee", reason: str = "Something came up") -> dict[str, Any]:
        moment = self._tick()
        self.invitee_status = self.event_status = "canceled"
        self.cancellation = {
            "canceled_by": self.name,
            "reason": reason,
            "canceler_type": by,
            "created_at": _timestamp(moment),
        }
        self.invitee_updated = self.event_updated = moment
        return envelope("invitee.canceled", self.invitee(), moment)

    # Calendly leaves the invitee's (and the event's) updated_at as it was when a no-show is
    # marked or removed (api-facts.md); each mark is a new no-show with its own URI.
    def mark_no_show(self) -> dict[str, Any]:
        moment = self._tick()
        self.no_show = {
            "uri": f"{CALENDLY}/invitee_no_shows/{uuid.uuid4()}",
            "created_at": _timestamp(moment),
        }
        return envelope("invitee_no_show.created", self.invitee(), moment)

    def unmark_no_show(self) -> dict[str, Any]:
        moment = self._tick()
        self.no_show = None
        return envelope("invitee_no_show.deleted", self.invitee(), moment)

    def reschedule(self, new_start: datetime) -> tuple[Booking, list[dict[str, Any]]]:
        """The new booking, and the two deliveries: old invitee canceled, new invitee created."""
        new = Booking(start=new_start, email=self.email, name=self.name, clock=self.clock)
        new.event_type_uuid = self.event_type_uuid
        moment = self._tick()
        new.clock = moment
        new.created = new.event_updated = new.invitee_updated = moment
        new.old_invitee = self.invitee_uri
        self.rescheduled, self.new_invitee = True, new.invitee_uri
        self.invitee_status = self.event_status = "canceled"
        self.cancellation = {
            "canceled_by": self.name,
            "reason": "Rescheduled",
            "canceler_type": "invitee",
            "created_at": _timestamp(moment),
        }
        self.invitee_updated = self.event_updated = moment
        canceled = envelope("invitee.canceled", self.invitee(), moment)
        created = envelope("invitee.created", new.invitee(), moment)
        return new, [canceled, created]


def event_type_envelope(
    event: str = "event_type.updated", *, name: str = "30 Minute Meeting"
) -> dict[str, Any]:
    moment = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    payload = {
        "uri": f"{CALENDLY}/event_types/{uuid.uuid4()}",
        "name": name,
        "slug": "30min",
        "active": event != "event_type.deleted",
        "kind": "solo",
        "duration": 30,
        "profile": {"type": "User", "name": "Host", "owner": HOST},
        "created_at": _timestamp(moment - timedelta(days=30)),
        "updated_at": _timestamp(moment),
    }
    return envelope(event, payload, moment)

"""Deterministic data made silently (no webhooks), as if it existed before anyone subscribed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .bookings import Bookings
from .models import EventType
from .sample_data import CANCEL_REASONS


@dataclass(frozen=True)
class SeedSummary:
    users: int
    event_types: int
    scheduled_events: int


class Seeding(Bookings):
    def seed(
        self,
        users: int,
        event_types_per_user: int,
        scheduled_events: int,
        start: datetime,
        days: int,
    ) -> SeedSummary:
        """Create deterministic data silently (no webhooks): it existed before anyone subscribed."""
        if min(users, event_types_per_user, scheduled_events) < 0 or days < 1:
            raise ValueError("seed sizes must be >= 0 and days >= 1")
        start = start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)
        rng = self._data_random
        with self.lock:
            new_users = [self.add_user("user") for _ in range(users)]
            owners_with_types = {event_type.owner_uuid for event_type in self.event_types.values()}
            hosts = [user for user in self.users.values() if user.uuid not in owners_with_types]
            created_types: list[EventType] = []
            for host in hosts:
                for _ in range(event_types_per_user):
                    created_types.append(
                        self._add_event_type(host, start - timedelta(days=rng.randint(60, 400)))
                    )
            bookable = [event_type for event_type in self.event_types.values() if event_type.active]
            if scheduled_events and not bookable:
                bookable = [self._default_event_type()]
            for _ in range(scheduled_events):
                event_type = rng.choice(bookable)
                slot = start + timedelta(minutes=15 * rng.randrange(days * 24 * 4))
                created = start - timedelta(days=rng.randint(1, 30), seconds=rng.randint(0, 86_399))
                created += timedelta(microseconds=rng.randint(0, 999_999))
                event, invitee = self._create_booking(
                    event_type, slot, self._random_invitee_email(), created_at=created
                )
                if rng.random() < 0.1:
                    canceled_at = created + (slot - created) * rng.random()
                    self._cancel(invitee, event, rng.choice(CANCEL_REASONS), "invitee", canceled_at)
            return SeedSummary(len(new_users), len(created_types), scheduled_events)

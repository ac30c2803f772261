"""The sandbox's world: one organization, its users, event types, scheduled events, invitees,
webhook subscriptions and access tokens, plus the changes (book, cancel, ...) that Calendly announces.

All mutation and reading happens under `SandboxState.lock` (re-entrant), because the HTTP server
threads, the delivery worker and the test thread all share it.
"""

from __future__ import annotations

import random
import threading
import uuid as uuid_module
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .clock import StrictClock
from .config import Role, SandboxConfig, TokenSpec, TokenState
from .models import (
    AccessToken,
    CancelerType,
    Cancellation,
    EventType,
    Invitee,
    Membership,
    NoShow,
    Organization,
    ScheduledEvent,
    SubscriptionScope,
    User,
    WebhookEvent,
    WebhookSubscription,
)
from .render import Renderer
from .uris import UriBuilder, invitee_reference, reference_uuid

_FIRST_NAMES = (
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances", "Dennis",
    "Radia", "Tim", "Katherine", "Linus", "Hedy", "John", "Karen", "Niklaus", "Sophie", "Guido",
)  # fmt: skip
_LAST_NAMES = (
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Allen",
    "Ritchie", "Perlman", "Berners-Lee", "Johnson", "Torvalds", "Lamarr", "McCarthy", "Jones", "Wirth",
)  # fmt: skip
_TIMEZONES = (
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "UTC",
)
_EVENT_TYPE_NAMES = (
    ("15 Minute Meeting", 15), ("30 Minute Meeting", 30), ("Intro Call", 20), ("Demo", 45),
    ("Office Hours", 60), ("Interview", 50), ("Quick Sync", 10), ("Strategy Session", 90),
)  # fmt: skip
_COLORS = ("#fff200", "#0069ff", "#8247f5", "#ff4f00", "#17e885", "#e55cff")
_CANCEL_REASONS = ("Schedule conflict", "No longer needed", "Feeling unwell", None)


@dataclass(frozen=True)
class SeedSummary:
    users: int
    event_types: int
    scheduled_events: int


@dataclass(frozen=True)
class FailureVerdict:
    disabled: bool
    window_ends_monotonic: float  # retries scheduled past this moment are pointless


class SandboxState:
    def __init__(self, config: SandboxConfig, clock: StrictClock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        # Separate generators so that, for the same sequence of calls, ids and data repeat exactly.
        self._id_random = random.Random(f"ids:{config.seed}")
        self._data_random = random.Random(f"data:{config.seed}")
        self.uris = UriBuilder(config.public_base, config.scheduling_base)
        created = datetime(2020, 1, 2, 3, 4, 5, 678123, tzinfo=UTC)
        self.organization = Organization(self.new_uuid(), config.organization_name, created, created)
        self.renderer = Renderer(self.uris, self.organization)

        self.users: dict[str, User] = {}
        self.memberships: dict[str, Membership] = {}  # by user uuid
        self.tokens: dict[str, AccessToken] = {}
        self.event_types: dict[str, EventType] = {}
        self.events: dict[str, ScheduledEvent] = {}
        self.invitees: dict[str, Invitee] = {}
        self.subscriptions: dict[str, WebhookSubscription] = {}
        self._booking_counter = 0

    # -- ids --------------------------------------------------------------------------------------

    def new_uuid(self) -> str:
        return str(uuid_module.UUID(int=self._id_random.getrandbits(128), version=4))

    # -- users and tokens -------------------------------------------------------------------------

    def add_user(self, role: Role, name: str | None = None, email: str | None = None) -> User:
        with self.lock:
            index = len(self.users) + 1
            if name is None:
                name = f"{self._data_random.choice(_FIRST_NAMES)} {self._data_random.choice(_LAST_NAMES)}"
            slug = f"{name.lower().replace(' ', '-')}-{index}"
            email = email or f"{slug}@example.com"
            created = self.clock.now()
            user = User(
                uuid=self.new_uuid(),
                name=name,
                slug=slug,
                email=email,
                timezone=self._data_random.choice(_TIMEZONES),
                created_at=created,
                updated_at=created,
            )
            self.users[user.uuid] = user
            self.memberships[user.uuid] = Membership(self.new_uuid(), user.uuid, role, created, created)
            return user

    def add_token(self, spec: TokenSpec) -> AccessToken:
        with self.lock:
            if spec.user is not None:
                user = self.user_by_reference(spec.user)
                if user is None:
                    raise KeyError(f"unknown user {spec.user!r}")
                role = self.memberships[user.uuid].role
                if spec.role is not None and spec.role != role:
                    raise ValueError(f"user {spec.user!r} is {role}, not {spec.role}")
            else:
                user = self.add_user(spec.role or "owner", spec.name, spec.email)
            value = f"sandbox_pat_{self._id_random.getrandbits(192):048x}"
            token = AccessToken(value, user.uuid, spec.plan, spec.effective_scopes(), spec.state)
            self.tokens[value] = token
            return token

    def set_token_state(self, value: str, state: TokenState) -> None:
        with self.lock:
            self.tokens[value].state = state

    def user_by_reference(self, reference: str) -> User | None:
        user_uuid = reference_uuid(reference, "users")
        return self.users.get(user_uuid) if user_uuid else None

    def role_of(self, user_uuid: str) -> Role:
        return self.memberships[user_uuid].role

    def is_admin(self, user_uuid: str) -> bool:
        return self.role_of(user_uuid) in ("owner", "admin")

    def is_own_organization(self, reference: str) -> bool:
        return reference_uuid(reference, "organizations") == self.organization.uuid

    # -- seeding ----------------------------------------------------------------------------------

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
                    self._cancel(invitee, event, rng.choice(_CANCEL_REASONS), "invitee", canceled_at)
            return SeedSummary(len(new_users), len(created_types), scheduled_events)

    def _add_event_type(self, owner: User, created_at: datetime) -> EventType:
        name, minutes = self._data_random.choice(_EVENT_TYPE_NAMES)
        index = sum(1 for event_type in self.event_types.values() if event_type.owner_uuid == owner.uuid) + 1
        event_type = EventType(
            uuid=self.new_uuid(),
            owner_uuid=owner.uuid,
            name=name,
            slug=f"{name.lower().replace(' ', '-')}-{index}",
            duration_minutes=minutes,
            color=self._data_random.choice(_COLORS),
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
        first = self._data_random.choice(_FIRST_NAMES).lower()
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
            last_name=last_name or rng.choice(_LAST_NAMES),
            timezone=timezone or rng.choice(_TIMEZONES),
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

    # -- webhook subscriptions --------------------------------------------------------------------

    def add_subscription(
        self,
        callback_url: str,
        events: list[str],
        scope: SubscriptionScope,
        user_uuid: str | None,
        group: str | None,
        creator_uuid: str,
        signing_key: str | None,
    ) -> WebhookSubscription:
        with self.lock:
            now = self.clock.now()
            subscription = WebhookSubscription(
                uuid=self.new_uuid(),
                callback_url=callback_url,
                events=list(dict.fromkeys(events)),
                scope=scope,
                user_uuid=user_uuid,
                group=group,
                creator_uuid=creator_uuid,
                signing_key=signing_key,
                created_at=now,
                updated_at=now,
            )
            self.subscriptions[subscription.uuid] = subscription
            return subscription

    def subscription_by_url(self, callback_url: str) -> WebhookSubscription | None:
        with self.lock:
            return next((s for s in self.subscriptions.values() if s.callback_url == callback_url), None)

    def recipients(self, event: WebhookEvent) -> list[WebhookSubscription]:
        """Active subscriptions that Calendly would notify about `event`."""
        with self.lock:
            return [
                subscription
                for subscription in self.subscriptions.values()
                if subscription.state == "active"
                and event.name in subscription.events
                and (
                    subscription.scope == "organization"
                    or (subscription.scope == "user" and subscription.user_uuid == event.host_uuid)
                )
            ]

    # Delivery health: the worker reports outcomes; these implement Calendly's retry bookkeeping.

    def delivery_target(self, subscription_uuid: str) -> tuple[str, str | None] | None:
        """(callback url, signing key) while the subscription can still receive deliveries."""
        with self.lock:
            subscription = self.subscriptions.get(subscription_uuid)
            if subscription is None or subscription.state != "active":
                return None
            return subscription.callback_url, subscription.signing_key

    def note_delivery_success(self, subscription_uuid: str) -> None:
        with self.lock:
            subscription = self.subscriptions.get(subscription_uuid)
            if subscription is not None and subscription.state == "active" and subscription.retry_started_at:
                subscription.retry_started_at = None
                subscription.retry_started_monotonic = None
                subscription.updated_at = self.clock.after(subscription.updated_at)

    def note_delivery_failure(self, subscription_uuid: str, monotonic_now: float) -> FailureVerdict:
        window = self.config.delivery_retry_window_seconds
        with self.lock:
            subscription = self.subscriptions.get(subscription_uuid)
            if subscription is None or subscription.state != "active":
                return FailureVerdict(disabled=True, window_ends_monotonic=monotonic_now)
            if subscription.retry_started_monotonic is None:
                subscription.retry_started_monotonic = monotonic_now
                subscription.retry_started_at = self.clock.now()
                subscription.updated_at = self.clock.after(subscription.updated_at)
            window_ends = subscription.retry_started_monotonic + window
            if monotonic_now >= window_ends:
                subscription.state = "disabled"
                subscription.updated_at = self.clock.after(subscription.updated_at)
                return FailureVerdict(disabled=True, window_ends_monotonic=window_ends)
            return FailureVerdict(disabled=False, window_ends_monotonic=window_ends)

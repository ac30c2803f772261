"""In-memory records behind the sandbox API. Rendering to Calendly's JSON lives in render.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .config import Plan, Role, TokenState

EventStatus = Literal["active", "canceled"]
SubscriptionScope = Literal["organization", "user", "group"]
SubscriptionState = Literal["active", "disabled"]
CancelerType = Literal["host", "invitee"]


@dataclass
class Organization:
    uuid: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass
class User:
    uuid: str
    name: str
    slug: str
    email: str
    timezone: str
    created_at: datetime
    updated_at: datetime
    locale: str = "en"
    time_notation: str = "12h"


@dataclass
class Membership:
    uuid: str
    user_uuid: str
    role: Role
    created_at: datetime
    updated_at: datetime


@dataclass
class AccessToken:
    value: str
    user_uuid: str
    plan: Plan
    scopes: frozenset[str]
    state: TokenState

    def grants(self, scope: str) -> bool:
        """A `:write` scope implies the matching `:read` scope."""
        if scope in self.scopes:
            return True
        resource, _, access = scope.partition(":")
        return access == "read" and f"{resource}:write" in self.scopes


@dataclass
class EventType:
    uuid: str
    owner_uuid: str
    name: str
    slug: str
    duration_minutes: int
    color: str
    created_at: datetime
    updated_at: datetime
    active: bool = True
    description: str | None = None
    location_kind: str = "google_conference"


@dataclass
class Cancellation:
    canceled_by: str
    reason: str | None
    canceler_type: CancelerType
    created_at: datetime


@dataclass
class NoShow:
    uuid: str
    created_at: datetime


@dataclass
class ScheduledEvent:
    uuid: str
    event_type_uuid: str
    host_uuid: str
    name: str
    start_time: datetime
    end_time: datetime
    location: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: EventStatus = "active"
    cancellation: Cancellation | None = None
    invitee_uuids: list[str] = field(default_factory=list)
    invitee_limit: int = 1


@dataclass
class Invitee:
    uuid: str
    event_uuid: str
    email: str
    first_name: str
    last_name: str
    timezone: str
    created_at: datetime
    updated_at: datetime
    status: EventStatus = "active"
    rescheduled: bool = False
    old_invitee: str | None = None  # URI
    new_invitee: str | None = None  # URI
    cancellation: Cancellation | None = None
    no_show: NoShow | None = None
    questions_and_answers: list[dict[str, Any]] = field(default_factory=list)
    tracking: dict[str, str | None] = field(default_factory=dict)
    text_reminder_number: str | None = None
    scheduling_method: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class WebhookSubscription:
    uuid: str
    callback_url: str
    events: list[str]
    scope: SubscriptionScope
    user_uuid: str | None
    group: str | None  # URI; the sandbox has no groups, so group hooks never fire
    creator_uuid: str
    signing_key: str | None
    created_at: datetime
    updated_at: datetime
    state: SubscriptionState = "active"
    retry_started_at: datetime | None = None
    # Monotonic twin of retry_started_at so the retry window is immune to wall-clock jumps.
    retry_started_monotonic: float | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """One change Calendly would announce: the event name and the payload as it was at that moment."""

    name: str
    payload: dict[str, Any]
    created_at: datetime
    host_uuid: str  # the user whose calendar changed; user-scoped hooks of that user receive it

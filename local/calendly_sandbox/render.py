"""Turning records into the JSON resources Calendly returns (and sends in webhook payloads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clock import format_timestamp
from .models import (
    Cancellation,
    EventType,
    Invitee,
    Membership,
    Organization,
    ScheduledEvent,
    User,
    WebhookSubscription,
)
from .uris import UriBuilder


@dataclass(frozen=True)
class Renderer:
    uris: UriBuilder
    organization: Organization

    @property
    def organization_uri(self) -> str:
        return self.uris.organization(self.organization.uuid)

    def user(self, user: User) -> dict[str, Any]:
        return {
            "uri": self.uris.user(user.uuid),
            "name": user.name,
            "slug": user.slug,
            "email": user.email,
            "scheduling_url": self.uris.scheduling_page(user.slug),
            "timezone": user.timezone,
            "avatar_url": None,
            "created_at": format_timestamp(user.created_at),
            "updated_at": format_timestamp(user.updated_at),
            "current_organization": self.organization_uri,
            "resource_type": "User",
            "locale": user.locale,
            "time_notation": user.time_notation,
        }

    def membership(self, membership: Membership, user: User) -> dict[str, Any]:
        return {
            "uri": self.uris.membership(membership.uuid),
            "role": membership.role,
            "user": self.user(user),
            "organization": self.organization_uri,
            "updated_at": format_timestamp(membership.updated_at),
            "created_at": format_timestamp(membership.created_at),
        }

    def event_type(self, event_type: EventType, owner: User) -> dict[str, Any]:
        description = event_type.description
        return {
            "uri": self.uris.event_type(event_type.uuid),
            "name": event_type.name,
            "active": event_type.active,
            "booking_method": "instant",
            "slug": event_type.slug,
            "scheduling_url": self.uris.scheduling_page(owner.slug, event_type.slug),
            "duration": event_type.duration_minutes,
            "kind": "solo",
            "pooling_type": None,
            "type": "StandardEventType",
            "color": event_type.color,
            "created_at": format_timestamp(event_type.created_at),
            "updated_at": format_timestamp(event_type.updated_at),
            "internal_note": None,
            "description_plain": description,
            "description_html": f"<p>{description}</p>" if description else None,
            "profile": {"type": "User", "name": owner.name, "owner": self.uris.user(owner.uuid)},
            "secret": False,
            "deleted_at": None,
            "admin_managed": False,
            "custom_questions": [],
            "kind_description": "One-on-One",
        }

    def cancellation(self, cancellation: Cancellation) -> dict[str, Any]:
        return {
            "canceled_by": cancellation.canceled_by,
            "reason": cancellation.reason,
            "canceler_type": cancellation.canceler_type,
            "created_at": format_timestamp(cancellation.created_at),
        }

    def scheduled_event(self, event: ScheduledEvent, invitees: list[Invitee]) -> dict[str, Any]:
        active = sum(1 for invitee in invitees if invitee.status == "active")
        body: dict[str, Any] = {
            "uri": self.uris.scheduled_event(event.uuid),
            "name": event.name,
            "meeting_notes_plain": None,
            "meeting_notes_html": None,
            "status": event.status,
            "start_time": format_timestamp(event.start_time),
            "end_time": format_timestamp(event.end_time),
            "event_type": self.uris.event_type(event.event_type_uuid),
            "location": dict(event.location),
            "invitees_counter": {"total": len(invitees), "active": active, "limit": event.invitee_limit},
            "created_at": format_timestamp(event.created_at),
            "updated_at": format_timestamp(event.updated_at),
            "event_memberships": [{"user": self.uris.user(event.host_uuid)}],
            "event_guests": [],
            "calendar_event": None,
        }
        # The 2023 spec types `cancellation` as a non-nullable object, so it is only present once set.
        if event.cancellation is not None:
            body["cancellation"] = self.cancellation(event.cancellation)
        return body

    def invitee(
        self, invitee: Invitee, event: ScheduledEvent | None = None, siblings: list[Invitee] | None = None
    ) -> dict[str, Any]:
        """The Invitee resource; with `event` it also embeds `scheduled_event` as webhook payloads do."""
        reschedule_token = invitee.uuid
        body: dict[str, Any] = {
            "uri": self.uris.invitee(invitee.event_uuid, invitee.uuid),
            "email": invitee.email,
            "name": invitee.name,
            "first_name": invitee.first_name,
            "last_name": invitee.last_name,
            "status": invitee.status,
            "timezone": invitee.timezone,
            "created_at": format_timestamp(invitee.created_at),
            "updated_at": format_timestamp(invitee.updated_at),
            "event": self.uris.scheduled_event(invitee.event_uuid),
            "cancel_url": self.uris.scheduling_page("cancellations", reschedule_token),
            "reschedule_url": self.uris.scheduling_page("reschedulings", reschedule_token),
            "rescheduled": invitee.rescheduled,
            "old_invitee": invitee.old_invitee,
            "new_invitee": invitee.new_invitee,
            "questions_and_answers": [dict(answer) for answer in invitee.questions_and_answers],
            "tracking": {
                key: invitee.tracking.get(key)
                for key in (
                    "utm_campaign",
                    "utm_source",
                    "utm_medium",
                    "utm_content",
                    "utm_term",
                    "salesforce_uuid",
                )
            },
            "text_reminder_number": invitee.text_reminder_number,
            "routing_form_submission": None,
            "payment": None,
            "no_show": (
                {
                    "uri": self.uris.no_show(invitee.no_show.uuid),
                    "created_at": format_timestamp(invitee.no_show.created_at),
                }
                if invitee.no_show is not None
                else None
            ),
            "reconfirmation": None,
            "scheduling_method": invitee.scheduling_method,
            "invitee_scheduled_by": None,
        }
        if invitee.cancellation is not None:
            body["cancellation"] = self.cancellation(invitee.cancellation)
        if event is not None:
            body["scheduled_event"] = self.scheduled_event(
                event, siblings if siblings is not None else [invitee]
            )
        return body

    def webhook_subscription(self, subscription: WebhookSubscription) -> dict[str, Any]:
        """The subscription as the API shows it: never with its signing key."""
        return {
            "uri": self.uris.webhook_subscription(subscription.uuid),
            "callback_url": subscription.callback_url,
            "created_at": format_timestamp(subscription.created_at),
            "updated_at": format_timestamp(subscription.updated_at),
            "retry_started_at": (
                format_timestamp(subscription.retry_started_at) if subscription.retry_started_at else None
            ),
            "state": subscription.state,
            "events": list(subscription.events),
            "scope": subscription.scope,
            "organization": self.organization_uri,
            "user": self.uris.user(subscription.user_uuid) if subscription.user_uuid else None,
            "group": subscription.group,
            "creator": self.uris.user(subscription.creator_uuid),
        }

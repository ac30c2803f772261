"""Every Calendly scope the stack relies on, with the calls and webhook events that need it.

This is the one table: the token check probes it, the subscription subscribes only to the
events whose scope the token holds, and a test holds the README's runbook table to it.
Calendly checks scopes per endpoint (403 with ``required_scopes``) and, on
``POST /webhook_subscriptions``, per event as well (400, not 403).
"""

from __future__ import annotations

from dataclasses import dataclass

from calendly_sync.events import EVENT_TYPE_EVENTS, INVITEE_EVENTS, ROUTING_FORM_EVENTS


@dataclass(frozen=True, slots=True)
class ScopeNeed:
    scope: str
    #: API calls that Calendly refuses without the scope.
    calls: tuple[str, ...]
    #: Webhook events that ``POST /webhook_subscriptions`` refuses without the scope.
    events: tuple[str, ...]
    used_for: str
    #: Without an optional scope the stack still works, with the events it covers left out.
    optional: bool = False


REQUIRED_SCOPES: tuple[ScopeNeed, ...] = (
    ScopeNeed("users:read", ("GET /users/me",), (), "who the token is, and its organization"),
    ScopeNeed(
        "organizations:read",
        ("GET /organization_memberships",),
        (),
        "the token owner's role: organization scope needs an owner or admin",
    ),
    ScopeNeed(
        "scheduled_events:read",
        ("GET /scheduled_events", "GET /scheduled_events/{uuid}/invitees"),
        INVITEE_EVENTS,
        "the poller's events and invitees; the webhook's booking, cancellation and no-show events",
    ),
    ScopeNeed(
        "event_types:read",
        ("GET /event_types",),
        EVENT_TYPE_EVENTS,
        "the poller's event types; the webhook's event-type changes",
    ),
    ScopeNeed(
        "routing_forms:read",
        ("GET /routing_forms",),
        ROUTING_FORM_EVENTS,
        "routing-form submissions (organization scope and a paid plan only); without it they are left out",
        optional=True,
    ),
    ScopeNeed("webhooks:read", ("GET /webhook_subscriptions",), (), "finding the stack's subscription"),
    ScopeNeed(
        "webhooks:write",
        ("POST /webhook_subscriptions", "DELETE /webhook_subscriptions/{uuid}"),
        (),
        "creating and replacing the subscription",
    ),
)

#: Event name -> the scope Calendly requires to subscribe to it.
EVENT_SCOPE: dict[str, str] = {event: need.scope for need in REQUIRED_SCOPES for event in need.events}
#: Routing-form submissions exist only at organization scope, and only on paid plans.
ORGANIZATION_ONLY_EVENTS = ROUTING_FORM_EVENTS


def events_for(subscription_scope: str) -> tuple[str, ...]:
    """Every event the stack subscribes to at ``organization`` or ``user`` scope, table order."""
    return tuple(
        event
        for need in REQUIRED_SCOPES
        for event in need.events
        if subscription_scope == "organization" or event not in ORGANIZATION_ONLY_EVENTS
    )


def need(scope: str) -> ScopeNeed:
    return next(n for n in REQUIRED_SCOPES if n.scope == scope)

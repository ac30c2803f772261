"""Webhook subscription endpoints and sample webhook data."""

from __future__ import annotations

import uuid as uuid_module
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

from flask import Blueprint, Response, request

from .clock import format_timestamp
from .errors import (
    ErrorDetail,
    already_exists,
    invalid_argument,
    invalid_parameter,
    missing_event_scopes,
    not_found,
    permission_denied,
)
from .http_support import Caller, json_body, list_response, query_sort, require_scope, sandbox
from .models import (
    Cancellation,
    EventType,
    Invitee,
    NoShow,
    ScheduledEvent,
    SubscriptionScope,
    WebhookSubscription,
)

webhooks = Blueprint("calendly_webhooks", __name__)

# Event name -> scopes it can be subscribed with (api-facts.md).
EVENT_SCOPES: dict[str, frozenset[str]] = {
    "invitee.created": frozenset({"organization", "user", "group"}),
    "invitee.canceled": frozenset({"organization", "user", "group"}),
    "invitee_no_show.created": frozenset({"organization", "user", "group"}),
    "invitee_no_show.deleted": frozenset({"organization", "user", "group"}),
    "event_type.created": frozenset({"organization", "user", "group"}),
    "event_type.updated": frozenset({"organization", "user", "group"}),
    "event_type.deleted": frozenset({"organization", "user", "group"}),
    "routing_form_submission.created": frozenset({"organization"}),
    "meeting_recap.created": frozenset({"user"}),
}
# Event name -> the token scope Calendly requires before it lets a hook carry the event (api-facts.md).
EVENT_REQUIRED_SCOPE: dict[str, str] = {
    "invitee.created": "scheduled_events:read",
    "invitee.canceled": "scheduled_events:read",
    "invitee_no_show.created": "scheduled_events:read",
    "invitee_no_show.deleted": "scheduled_events:read",
    "event_type.created": "event_types:read",
    "event_type.updated": "event_types:read",
    "event_type.deleted": "event_types:read",
    "routing_form_submission.created": "routing_forms:read",
}
# Free plans may subscribe to invitee, no-show and event-type events; these still need a paid plan.
PAID_PLAN_EVENTS = frozenset({"routing_form_submission.created", "meeting_recap.created"})
SCOPES: tuple[SubscriptionScope, ...] = ("organization", "user", "group")


@webhooks.post("/webhook_subscriptions")
def create_subscription() -> tuple[dict[str, Any], int]:
    who = require_scope("webhooks:write")
    body = json_body()
    url, events, organization, scope, signing_key = _validated_subscription_fields(body)
    state = sandbox().state
    if not state.is_own_organization(organization):
        raise permission_denied()
    # Per event, after the endpoint's own scope: the live API answers 400 (not 403) when the token
    # cannot read what the hook would carry, and names the scopes in `required_scopes`.
    lacking = [
        event
        for event in events
        if event in EVENT_REQUIRED_SCOPE and not who.token.grants(EVENT_REQUIRED_SCOPE[event])
    ]
    if lacking:
        raise missing_event_scopes(lacking, sorted({EVENT_REQUIRED_SCOPE[event] for event in lacking}))
    unsupported = [event for event in events if scope not in EVENT_SCOPES[event]]
    if unsupported:
        raise invalid_parameter("events", f"{', '.join(unsupported)} cannot be subscribed with scope {scope}")

    user_uuid: str | None = None
    group: str | None = None
    if scope == "organization":
        if not who.is_admin:
            raise permission_denied()
    elif scope == "user":
        user_reference = body.get("user")
        if not isinstance(user_reference, str) or not user_reference:
            raise invalid_parameter("user", "is required when scope is user")
        user = state.user_by_reference(user_reference)
        if user is None:
            raise permission_denied()
        if user.uuid != who.user.uuid and not who.is_admin:
            raise permission_denied("You do not have permission")
        user_uuid = user.uuid
    else:
        group_reference = body.get("group")
        if not isinstance(group_reference, str) or not group_reference:
            raise invalid_parameter("group", "is required when scope is group")
        if not who.is_admin:
            raise permission_denied()
        group = group_reference

    if who.token.plan == "free" and any(event in PAID_PLAN_EVENTS for event in events):
        raise permission_denied("Please upgrade your Calendly account to Standard")
    with state.lock:
        if state.subscription_by_url(url) is not None:
            raise already_exists("Hook with this url already exists")
        subscription = state.add_subscription(
            url, events, scope, user_uuid, group, who.user.uuid, signing_key
        )
        return {"resource": state.renderer.webhook_subscription(subscription)}, 201


@webhooks.get("/webhook_subscriptions")
def list_subscriptions() -> dict[str, Any]:
    who = require_scope("webhooks:read")
    state = sandbox().state
    organization = request.args.get("organization")
    scope = request.args.get("scope")
    missing = [
        ErrorDetail(name, "is required") for name in ("organization", "scope") if not request.args.get(name)
    ]
    if missing:
        raise invalid_argument(*missing)
    if scope not in SCOPES:
        raise invalid_parameter("scope", f"must be one of: {', '.join(SCOPES)}")
    if not state.is_own_organization(cast(str, organization)):
        raise permission_denied("You do not have permission")
    user_uuid: str | None = None
    group = request.args.get("group")
    if scope == "organization" and not who.is_admin:
        raise permission_denied()
    if scope == "user":
        user_reference = request.args.get("user")
        if not user_reference:
            raise invalid_parameter("user", "is required when scope is user")
        user = state.user_by_reference(user_reference)
        if user is None or (user.uuid != who.user.uuid and not who.is_admin):
            raise permission_denied("Unauthorized")
        user_uuid = user.uuid
    if scope == "group" and not group:
        raise invalid_parameter("group", "is required when scope is group")
    descending = query_sort("created_at")
    with state.lock:
        rows = [
            subscription
            for subscription in state.subscriptions.values()
            if subscription.scope == scope
            and (user_uuid is None or subscription.user_uuid == user_uuid)
            and (scope != "group" or subscription.group == group)
        ]
        return list_response(
            rows,
            lambda s: (format_timestamp(s.created_at), s.uuid),
            state.renderer.webhook_subscription,
            descending,
        )


@webhooks.get("/webhook_subscriptions/<subscription_uuid>")
def get_subscription(subscription_uuid: str) -> dict[str, Any]:
    who = require_scope("webhooks:read")
    state = sandbox().state
    with state.lock:
        subscription = _visible_subscription(who, subscription_uuid)
        return {"resource": state.renderer.webhook_subscription(subscription)}


@webhooks.delete("/webhook_subscriptions/<subscription_uuid>")
def delete_subscription(subscription_uuid: str) -> Response:
    who = require_scope("webhooks:write")
    sb = sandbox()
    with sb.state.lock:
        subscription = _visible_subscription(who, subscription_uuid)
        del sb.state.subscriptions[subscription.uuid]
    sb.delivery.forget(subscription.uuid)
    return Response(status=204)


@webhooks.get("/routing_forms")
def list_routing_forms() -> dict[str, Any]:
    """Routing forms are not modelled (always none); the list exists for its scope check."""
    require_scope("routing_forms:read")
    state = sandbox().state
    organization = request.args.get("organization")
    if not organization:
        raise invalid_parameter("organization", "is required")
    if not state.is_own_organization(organization):
        raise permission_denied()
    descending = query_sort("created_at")
    no_forms: list[dict[str, Any]] = []
    return list_response(no_forms, lambda form: (str(form["created_at"]), str(form["uri"])), dict, descending)


@webhooks.get("/sample_webhook_data")
def sample_webhook_data() -> dict[str, Any]:
    who = require_scope("webhooks:read")
    state = sandbox().state
    missing = [
        ErrorDetail(name, "is required")
        for name in ("event", "organization", "scope")
        if not request.args.get(name)
    ]
    if missing:
        raise invalid_argument(*missing)
    event = request.args["event"]
    scope = request.args["scope"]
    if event not in EVENT_SCOPES:
        raise invalid_parameter("event", f"must be one of: {', '.join(EVENT_SCOPES)}")
    if scope not in EVENT_SCOPES[event]:
        raise invalid_parameter("scope", f"{event} is not available for scope {scope}")
    if not state.is_own_organization(request.args["organization"]):
        raise permission_denied()
    with state.lock:
        payload = _sample_payload(event, who)
        return {
            "created_at": format_timestamp(_SAMPLE_TIME),
            "created_by": state.uris.user(who.user.uuid),
            "event": event,
            "payload": payload,
        }


# -- helpers --------------------------------------------------------------------------------------


def _validated_subscription_fields(
    body: dict[str, Any],
) -> tuple[str, list[str], str, SubscriptionScope, str | None]:
    details: list[ErrorDetail] = []
    url = body.get("url")
    if not isinstance(url, str) or not url:
        details.append(ErrorDetail("url", "is required"))
    elif urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        details.append(ErrorDetail("url", "must be a valid http(s) URL"))
    events = body.get("events")
    if not isinstance(events, list) or not events:
        details.append(ErrorDetail("events", "must be a non-empty list of event names"))
    else:
        unknown = [event for event in events if not isinstance(event, str) or event not in EVENT_SCOPES]
        if unknown:
            details.append(ErrorDetail("events", f"unknown event(s): {', '.join(map(str, unknown))}"))
    organization = body.get("organization")
    if not isinstance(organization, str) or not organization:
        details.append(ErrorDetail("organization", "is required"))
    scope = body.get("scope")
    if scope not in SCOPES:
        details.append(ErrorDetail("scope", f"must be one of: {', '.join(SCOPES)}"))
    signing_key = body.get("signing_key")
    if signing_key is not None and (not isinstance(signing_key, str) or not signing_key):
        details.append(ErrorDetail("signing_key", "must be a non-empty string"))
    if details:
        raise invalid_argument(*details)
    return (
        cast(str, url),
        cast(list[str], events),
        cast(str, organization),
        cast(SubscriptionScope, scope),
        cast("str | None", signing_key),
    )


def _visible_subscription(who: Caller, subscription_uuid: str) -> WebhookSubscription:
    subscription = sandbox().state.subscriptions.get(subscription_uuid)
    if subscription is None:
        raise not_found()
    own = subscription.creator_uuid == who.user.uuid or subscription.user_uuid == who.user.uuid
    if not (who.is_admin or own):
        raise permission_denied()
    return subscription


_SAMPLE_TIME = datetime(2020, 11, 23, 17, 51, 18, 327602, tzinfo=UTC)


def _sample_uuid(name: str) -> str:
    # Fixed ids for sample data, so asking for a sample never disturbs the seeded id sequence.
    return str(uuid_module.uuid5(uuid_module.NAMESPACE_URL, f"calendly-sandbox-sample:{name}"))


def _sample_payload(event: str, who: Caller) -> dict[str, Any]:
    state = sandbox().state
    renderer = state.renderer
    if event.startswith("event_type."):
        event_type = EventType(
            _sample_uuid("event_type"),
            who.user.uuid,
            "15 Minute Meeting",
            "15min",
            15,
            "#0069ff",
            _SAMPLE_TIME,
            _SAMPLE_TIME,
        )
        return renderer.event_type(event_type, who.user)
    if event == "routing_form_submission.created":
        return {
            "uri": state.uris.routing_form_submission(_sample_uuid("submission")),
            "routing_form": state.uris.routing_form(_sample_uuid("routing_form")),
            "questions_and_answers": [
                {
                    "question_uuid": _sample_uuid("question"),
                    "question": "What is your industry?",
                    "answer": "IT",
                }
            ],
            "tracking": dict.fromkeys(
                ("utm_campaign", "utm_source", "utm_medium", "utm_content", "utm_term", "salesforce_uuid")
            ),
            "result": {"type": "event_type", "value": state.uris.event_type(_sample_uuid("event_type"))},
            "submitter": None,
            "submitter_type": None,
            "created_at": format_timestamp(_SAMPLE_TIME),
            "updated_at": format_timestamp(_SAMPLE_TIME),
        }
    scheduled = ScheduledEvent(
        uuid=_sample_uuid("event"),
        event_type_uuid=_sample_uuid("event_type"),
        host_uuid=who.user.uuid,
        name="15 Minute Meeting",
        start_time=_SAMPLE_TIME,
        end_time=_SAMPLE_TIME,
        location={"type": "physical", "location": "Calendly Office"},
        created_at=_SAMPLE_TIME,
        updated_at=_SAMPLE_TIME,
    )
    invitee = Invitee(
        uuid=_sample_uuid("invitee"),
        event_uuid=scheduled.uuid,
        email="test@example.com",
        first_name="John",
        last_name="Doe",
        timezone="America/New_York",
        created_at=_SAMPLE_TIME,
        updated_at=_SAMPLE_TIME,
    )
    if event == "invitee.canceled":
        invitee.status = scheduled.status = "canceled"
        invitee.cancellation = Cancellation("John Doe", "Meeting Conflict", "invitee", _SAMPLE_TIME)
        scheduled.cancellation = invitee.cancellation
    elif event == "invitee_no_show.created":
        invitee.no_show = NoShow(_sample_uuid("no_show"), _SAMPLE_TIME)
    scheduled.invitee_uuids.append(invitee.uuid)
    return renderer.invitee(invitee, scheduled, [invitee])

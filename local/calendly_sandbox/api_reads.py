"""Read endpoints: users, organization memberships, event types, scheduled events and invitees."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from .clock import format_timestamp
from .errors import not_found, permission_denied
from .http_support import (
    Caller,
    list_response,
    query_bool,
    query_choice,
    query_sort,
    query_time,
    require_one_of,
    require_scope,
    sandbox,
)
from .models import EventType, Invitee, Membership, ScheduledEvent, User
from .uris import reference_uuid

reads = Blueprint("calendly_reads", __name__)

NOT_ALLOWED_TO_VIEW_EVENT = "You are not allowed to view this event"
USER_NOT_IN_ORGANIZATION = "This user is not in your organization"


# -- users ----------------------------------------------------------------------------------------


@reads.get("/users/me")
def get_current_user() -> dict[str, Any]:
    who = require_scope("users:read")
    state = sandbox().state
    with state.lock:
        return {"resource": state.renderer.user(who.user)}


@reads.get("/users/<user_uuid>")
def get_user(user_uuid: str) -> dict[str, Any]:
    require_scope("users:read")
    state = sandbox().state
    with state.lock:
        user = _found(state.users.get(user_uuid))
        return {"resource": state.renderer.user(user)}


# -- organization memberships ---------------------------------------------------------------------


@reads.get("/organization_memberships")
def list_memberships() -> dict[str, Any]:
    require_scope("organizations:read")
    state = sandbox().state
    user_filter = _organization_or_user_filter()
    email = request.args.get("email")
    with state.lock:
        rows = [
            membership
            for membership in state.memberships.values()
            if (user_filter is None or membership.user_uuid == user_filter.uuid)
            and (email is None or state.users[membership.user_uuid].email == email)
        ]

        def render(membership: Membership) -> dict[str, Any]:
            return state.renderer.membership(membership, state.users[membership.user_uuid])

        return list_response(rows, lambda m: (format_timestamp(m.created_at), m.uuid), render)


@reads.get("/organization_memberships/<membership_uuid>")
def get_membership(membership_uuid: str) -> dict[str, Any]:
    require_scope("organizations:read")
    state = sandbox().state
    with state.lock:
        membership = _found(next((m for m in state.memberships.values() if m.uuid == membership_uuid), None))
        return {"resource": state.renderer.membership(membership, state.users[membership.user_uuid])}


# -- event types ----------------------------------------------------------------------------------


@reads.get("/event_types")
def list_event_types() -> dict[str, Any]:
    require_scope("event_types:read")
    state = sandbox().state
    owner = _organization_or_user_filter()
    active = query_bool("active")
    descending = query_sort("name")
    with state.lock:
        rows = [
            event_type
            for event_type in state.event_types.values()
            if (owner is None or event_type.owner_uuid == owner.uuid)
            and (active is None or event_type.active == active)
        ]

        def render(event_type: EventType) -> dict[str, Any]:
            return state.renderer.event_type(event_type, state.users[event_type.owner_uuid])

        return list_response(rows, lambda e: (e.name, e.uuid), render, descending)


@reads.get("/event_types/<event_type_uuid>")
def get_event_type(event_type_uuid: str) -> dict[str, Any]:
    require_scope("event_types:read")
    state = sandbox().state
    with state.lock:
        event_type = _found(state.event_types.get(event_type_uuid))
        return {"resource": state.renderer.event_type(event_type, state.users[event_type.owner_uuid])}


# -- scheduled events -----------------------------------------------------------------------------


@reads.get("/scheduled_events")
def list_scheduled_events() -> dict[str, Any]:
    who = require_scope("scheduled_events:read")
    require_one_of("organization", "user")
    host = _authorize_event_listing(who)
    status = query_choice("status", ("active", "canceled"))
    invitee_email = request.args.get("invitee_email")
    min_start = query_time("min_start_time")
    max_start = query_time("max_start_time")
    descending = query_sort("start_time")
    state = sandbox().state
    with state.lock:
        rows = [
            event
            for event in state.events.values()
            if (host is None or event.host_uuid == host.uuid)
            and (status is None or event.status == status)
            and (min_start is None or event.start_time >= min_start)
            and (max_start is None or event.start_time < max_start)
            and (invitee_email is None or any(i.email == invitee_email for i in state.invitees_of(event)))
        ]

        def render(event: ScheduledEvent) -> dict[str, Any]:
            return state.renderer.scheduled_event(event, state.invitees_of(event))

        return list_response(rows, lambda e: (format_timestamp(e.start_time), e.uuid), render, descending)


@reads.get("/scheduled_events/<event_uuid>")
def get_scheduled_event(event_uuid: str) -> dict[str, Any]:
    who = require_scope("scheduled_events:read")
    state = sandbox().state
    with state.lock:
        event = _visible_event(who, event_uuid)
        return {"resource": state.renderer.scheduled_event(event, state.invitees_of(event))}


@reads.get("/scheduled_events/<event_uuid>/invitees")
def list_invitees(event_uuid: str) -> dict[str, Any]:
    who = require_scope("scheduled_events:read")
    status = query_choice("status", ("active", "canceled"))
    email = request.args.get("email")
    descending = query_sort("created_at")
    state = sandbox().state
    with state.lock:
        event = _visible_event(who, event_uuid)
        rows = [
            invitee
            for invitee in state.invitees_of(event)
            if (status is None or invitee.status == status) and (email is None or invitee.email == email)
        ]

        def render(invitee: Invitee) -> dict[str, Any]:
            return state.renderer.invitee(invitee)

        return list_response(rows, lambda i: (format_timestamp(i.created_at), i.uuid), render, descending)


@reads.get("/scheduled_events/<event_uuid>/invitees/<invitee_uuid>")
def get_invitee(event_uuid: str, invitee_uuid: str) -> dict[str, Any]:
    who = require_scope("scheduled_events:read")
    state = sandbox().state
    with state.lock:
        event = _visible_event(who, event_uuid)
        if invitee_uuid not in event.invitee_uuids:
            raise not_found()
        return {"resource": state.renderer.invitee(state.invitees[invitee_uuid])}


# -- helpers --------------------------------------------------------------------------------------


def _found[T](resource: T | None) -> T:
    """The resource a GET names, or Calendly's 404 when there is none."""
    if resource is None:
        raise not_found()
    return resource


def _organization_or_user_filter() -> User | None:
    """A listing filtered by ``organization`` (the caller's own, else 403) or ``user``; one is required."""
    require_one_of("organization", "user")
    organization = request.args.get("organization")
    if organization and not sandbox().state.is_own_organization(organization):
        raise permission_denied()
    return _optional_user_filter("user")


def _optional_user_filter(parameter: str) -> User | None:
    reference = request.args.get(parameter)
    if not reference:
        return None
    user = sandbox().state.user_by_reference(reference)
    if user is None:
        raise not_found()
    return user


def _authorize_event_listing(who: Caller) -> User | None:
    """Who may list whose events; returns the host to filter on (None: the whole organization).

    Organization-wide listing needs an owner/admin; `user` alone only works for the caller's own events.
    """
    state = sandbox().state
    organization = request.args.get("organization")
    user_reference = request.args.get("user")
    host: User | None = None
    if user_reference:
        host = state.user_by_reference(user_reference)
        if host is None:
            raise permission_denied(USER_NOT_IN_ORGANIZATION)
    if organization:
        if not state.is_own_organization(organization):
            raise permission_denied()
        if not who.is_admin and (host is None or host.uuid != who.user.uuid):
            raise permission_denied()
        return host
    if host is not None and host.uuid != who.user.uuid:
        if who.is_admin:
            raise permission_denied(
                "Please also specify organization when requesting events for a user within your organization."
            )
        raise permission_denied("You do not have permission")
    return host


def _visible_event(who: Caller, event_uuid: str) -> ScheduledEvent:
    state = sandbox().state
    event = state.events.get(reference_uuid(event_uuid, "scheduled_events") or "")
    if event is None:
        raise not_found()
    if not who.is_admin and event.host_uuid != who.user.uuid:
        raise permission_denied(NOT_ALLOWED_TO_VIEW_EVENT)
    return event

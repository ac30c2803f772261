"""Unauthenticated /_sandbox/* endpoints: the Python API for other processes (make demo, benchmarks).

Each handler only translates JSON to a CalendlySandbox call and back.
"""

from __future__ import annotations

from typing import Any, cast

from flask import Blueprint

from .clock import parse_timestamp
from .config import TokenSpec
from .errors import ApiError, invalid_argument, not_found
from .http_support import json_body, sandbox
from .models import CancelerType

ADMIN_PREFIX = "/_sandbox"

admin = Blueprint("calendly_admin", __name__)


@admin.errorhandler(KeyError)
def _unknown_reference(error: KeyError) -> tuple[dict[str, Any], int]:
    api_error = not_found(str(error.args[0]) if error.args else "not found")
    return api_error.to_json(), api_error.status


@admin.errorhandler(ValueError)
@admin.errorhandler(TypeError)
def _bad_request(error: Exception) -> tuple[dict[str, Any], int]:
    api_error: ApiError = invalid_argument(message=str(error))
    return api_error.to_json(), api_error.status


@admin.get("/info")
def info() -> dict[str, Any]:
    sb = sandbox()
    return {
        "base_url": sb.base_url,
        "organization": sb.organization_uri,
        "public_base": sb.config.public_base,
    }


@admin.post("/tokens")
def create_token() -> tuple[dict[str, Any], int]:
    body = json_body()
    scopes = body.get("scopes")
    spec = TokenSpec(
        role=body.get("role"),
        plan=body.get("plan", "paid"),
        scopes=frozenset(scopes) if scopes is not None else None,
        state=body.get("state", "valid"),
        user=body.get("user"),
        name=body.get("name"),
        email=body.get("email"),
    )
    if spec.role not in (None, "owner", "admin", "user") or spec.plan not in ("paid", "free"):
        raise ValueError("role must be owner|admin|user and plan paid|free")
    sb = sandbox()
    token = sb.add_token(spec)
    return {"token": token, "user": sb.user_uri_for(token)}, 201


@admin.post("/tokens/state")
def set_token_state() -> dict[str, Any]:
    body = json_body()
    state = body.get("state")
    if state not in ("valid", "expired", "revoked"):
        raise ValueError("state must be valid|expired|revoked")
    sandbox().set_token_state(str(body.get("token")), state)
    return {"token": body.get("token"), "state": state}


@admin.post("/seed")
def seed() -> dict[str, Any]:
    body = json_body()
    start = body.get("start")
    summary = sandbox().seed(
        users=int(body.get("users", 3)),
        event_types_per_user=int(body.get("event_types_per_user", 2)),
        scheduled_events=int(body.get("scheduled_events", 200)),
        start=parse_timestamp(start) if start else None,
        days=int(body.get("days", 30)),
    )
    return {
        "users": summary.users,
        "event_types": summary.event_types,
        "scheduled_events": summary.scheduled_events,
    }


@admin.post("/book")
def book() -> tuple[dict[str, Any], int]:
    body = json_body()
    start = body.get("start_time")
    invitee = sandbox().book(
        event_type_uri=body.get("event_type"),
        start_time=parse_timestamp(start) if start else None,
        email=body.get("email"),
    )
    return {"invitee": invitee}, 201


@admin.post("/cancel")
def cancel() -> dict[str, Any]:
    body = json_body()
    by = body.get("by", "invitee")
    if by not in ("invitee", "host"):
        raise ValueError("by must be invitee|host")
    sandbox().cancel(_invitee(body), reason=body.get("reason"), by=cast(CancelerType, by))
    return {"invitee": _invitee(body)}


@admin.post("/reschedule")
def reschedule() -> tuple[dict[str, Any], int]:
    body = json_body()
    if not body.get("start_time"):
        raise ValueError("start_time is required")
    new_invitee = sandbox().reschedule(_invitee(body), parse_timestamp(str(body["start_time"])))
    return {"old_invitee": _invitee(body), "invitee": new_invitee}, 201


@admin.post("/no_show")
def no_show() -> dict[str, Any]:
    """{"invitee": uri, "no_show": true} marks the invitee as a no-show; false removes the mark."""
    body = json_body()
    if body.get("no_show", True):
        sandbox().mark_no_show(_invitee(body))
    else:
        sandbox().unmark_no_show(_invitee(body))
    return {"invitee": _invitee(body), "no_show": bool(body.get("no_show", True))}


@admin.get("/faults")
def get_faults() -> dict[str, Any]:
    return sandbox().faults.as_dict()


@admin.post("/faults")
def set_faults() -> dict[str, Any]:
    body = json_body()
    faults = sandbox().faults
    if body.pop("reset", False):
        faults.reset()
    faults.update(body)
    return faults.as_dict()


@admin.post("/deliver_pending")
def deliver_pending() -> dict[str, Any]:
    body = json_body()
    return {"drained": sandbox().deliver_pending(timeout=float(body.get("timeout", 10.0)))}


@admin.get("/stats")
def stats() -> dict[str, Any]:
    return sandbox().stats()


@admin.post("/reset_counts")
def reset_counts() -> dict[str, Any]:
    sandbox().reset_counts()
    return {"reset": True}


@admin.get("/subscriptions")
def subscriptions() -> dict[str, Any]:
    return {"collection": sandbox().subscriptions()}


def _invitee(body: dict[str, Any]) -> str:
    invitee = body.get("invitee")
    if not isinstance(invitee, str) or not invitee:
        raise ValueError("invitee (an invitee URI) is required")
    return invitee

"""Keep the stack's Calendly webhook subscription right, and say what was done.

Calendly refuses a second subscription to the same URL and offers no update, so the stack
tells its subscriptions apart by the callback URL's query: ``?key=<fingerprint of the
signing key>&v=<version>`` on the stack's own webhook route. That lets a replacement be
created *before* the subscription it replaces is deleted (never a gap), and shows which key
each subscription was made with, though Calendly never returns the key itself.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.errors import CalendlyRejected

INVITEE_EVENTS = ("invitee.created", "invitee.canceled", "invitee_no_show.created", "invitee_no_show.deleted")
EVENT_TYPE_EVENTS = ("event_type.created", "event_type.updated", "event_type.deleted")
#: Organization scope only, and refused on free plans ("Please upgrade ...").
PAID_ORGANIZATION_EVENTS = ("routing_form_submission.created",)
#: Keep the previous key this long after its last subscription is gone: deliveries signed with
#: it may still be on their way.
PREVIOUS_KEY_GRACE_SECONDS = 15 * 60


def key_fingerprint(key: str) -> str:
    """Names a signing key in a URL without giving anything of it away."""
    return hashlib.sha256(b"calendly-sync signing key\0" + key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Target:
    """What the subscription should be."""

    webhook_url: str
    organization: str
    scope: str  # "organization" or "user"
    user: str | None
    signing_key: str
    routing_forms_allowed: bool = True
    #: During a rotation: the key being replaced, and when the rotation started (unix seconds).
    previous_key: str | None = None
    rotated_at: float | None = None

    def in_rotation_grace(self, subscription: dict[str, Any], now: float) -> bool:
        """An active subscription on the previous key, kept a while so deliveries under way arrive."""
        if not self.previous_key or self.rotated_at is None:
            return False
        return (
            subscription.get("state") == "active"
            and _fingerprint_in(subscription) == key_fingerprint(self.previous_key)
            and now - self.rotated_at < PREVIOUS_KEY_GRACE_SECONDS
        )

    @property
    def events(self) -> tuple[str, ...]:
        extra = (
            PAID_ORGANIZATION_EVENTS if self.scope == "organization" and self.routing_forms_allowed else ()
        )
        return INVITEE_EVENTS + EVENT_TYPE_EVENTS + extra

    def callback_url(self, version: str) -> str:
        query = urlencode({"key": key_fingerprint(self.signing_key), "v": version})
        return f"{self.webhook_url}?{query}"

    def is_ours(self, subscription: dict[str, Any]) -> bool:
        url = str(subscription.get("callback_url", ""))
        return url == self.webhook_url or url.startswith(self.webhook_url + "?")

    def problems(self, subscription: dict[str, Any]) -> list[str]:
        found: list[str] = []
        if subscription.get("state") != "active":
            found.append(f"state is {subscription.get('state')}: Calendly stopped delivering to it")
        wanted, has = set(self.events), set(subscription.get("events") or [])
        if wanted - has:
            found.append("missing events: " + ", ".join(sorted(wanted - has)))
        if has - wanted:
            found.append("unexpected events: " + ", ".join(sorted(has - wanted)))
        if _fingerprint_in(subscription) != key_fingerprint(self.signing_key):
            found.append("made with another signing key")
        return found


@dataclass
class Outcome:
    ok: bool
    action: str
    message: str
    subscription: dict[str, Any] | None = None
    deleted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    routing_forms_allowed: bool = True
    #: Found missing, disabled or wrong (not just never made yet): what the alarm watches.
    unhealthy: bool = False
    #: Our subscriptions left in Calendly afterwards (internal: decides when a rotation ends).
    remaining: list[dict[str, Any]] = field(default_factory=list)
    #: When deliveries started failing for a subscription this replaced (its retry_started_at).
    gap_since: str | None = None

    def as_response(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "action": self.action,
            "message": self.message,
            "subscription": self.subscription,
            "deleted": self.deleted,
            "notes": self.notes,
        }


def describe(subscription: dict[str, Any], target: Target) -> dict[str, Any]:
    problems = target.problems(subscription)
    return {
        "uri": subscription.get("uri"),
        "callback_url": subscription.get("callback_url"),
        "state": subscription.get("state"),
        "events": subscription.get("events"),
        "retry_started_at": subscription.get("retry_started_at"),
        "created_at": subscription.get("created_at"),
        "matches": not problems,
        "problems": problems,
    }


def ours(client: CalendlyClient, target: Target) -> list[dict[str, Any]]:
    """Every subscription on the stack's webhook route, from every page, newest first."""
    found = [
        s
        for s in client.webhook_subscriptions(target.organization, target.scope, target.user)
        if target.is_ours(s)
    ]
    return sorted(found, key=lambda s: str(s.get("created_at", "")), reverse=True)


def status(client: CalendlyClient, target: Target) -> Outcome:
    found = ours(client, target)
    if not found:
        return Outcome(
            False,
            "status",
            "no webhook subscription points at this stack",
            notes=[target.webhook_url],
            unhealthy=True,
        )
    healthy = [s for s in found if not target.problems(s)]
    chosen = healthy[0] if healthy else found[0]
    notes = [f"also subscribed: {s.get('uri')} ({s.get('state')})" for s in found if s is not chosen]
    if chosen.get("retry_started_at"):
        notes.append(f"Calendly has been retrying failed deliveries since {chosen['retry_started_at']}")
    message = "subscription is healthy" if healthy else "subscription needs repair: run ensure"
    return Outcome(
        bool(healthy), "status", message, describe(chosen, target), notes=notes, unhealthy=not healthy
    )


def ensure(client: CalendlyClient, target: Target, now: float | None = None) -> Outcome:
    """Converge: keep a matching subscription, else create one first and delete the rest after.

    During a key rotation the old key's subscription is left running for a grace period, so
    deliveries it already has under way still arrive (the copies both send are duplicates,
    absorbed); a later run deletes it.
    """
    now = time.time() if now is None else now
    found = ours(client, target)
    healthy = [s for s in found if not target.problems(s)]
    notes: list[str] = []
    if healthy:
        keep, action = healthy[0], "kept"
    else:
        keep, target, notes = _create(client, target, found)
        action = "replaced" if found else "created"
    others = [s for s in found if s.get("uri") != keep.get("uri")]
    waiting = [s for s in others if target.in_rotation_grace(s, now)]
    leftovers = [s for s in others if s not in waiting]
    deleted = _delete_all(client, leftovers)
    notes.extend(
        f"kept {s.get('uri')} (previous key) for the rest of the rotation's grace period" for s in waiting
    )
    if found and not healthy:
        notes.extend(f"replaced {s.get('uri')}: {'; '.join(target.problems(s))}" for s in leftovers)
    message = {
        "kept": "subscription already right: nothing to do",
        "created": "subscription created",
        "replaced": "subscription replaced: the new one was created before the old one was deleted",
    }[action]
    return Outcome(
        True,
        action,
        message,
        describe(keep, target),
        deleted,
        notes,
        target.routing_forms_allowed,
        unhealthy=action == "replaced",
        remaining=[keep, *waiting],
        gap_since=min(
            (str(s["retry_started_at"]) for s in leftovers if s.get("retry_started_at")), default=None
        ),
    )


def delete(client: CalendlyClient, target: Target) -> Outcome:
    found = ours(client, target)
    deleted = _delete_all(client, found)
    message = f"deleted {len(deleted)} subscription(s)" if deleted else "no subscription to delete"
    return Outcome(True, "deleted", message, None, deleted)


def rotate_key(state: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """The signing key secret's next state: a fresh ``current``, the old one kept as ``previous``."""
    return {
        "current": secrets.token_urlsafe(36),
        "previous": state["current"],
        "rotated_at": int(time.time() if now is None else now),
    }


def without_spent_previous(
    state: dict[str, Any], remaining: Iterable[dict[str, Any]], now: float
) -> dict[str, Any]:
    """Drop ``previous`` once no subscription uses it and the grace period has passed."""
    previous = state.get("previous")
    if not previous:
        return state
    still_used = any(_fingerprint_in(s) == key_fingerprint(previous) for s in remaining)
    if still_used or now - float(state.get("rotated_at") or 0) < PREVIOUS_KEY_GRACE_SECONDS:
        return state
    return {
        "current": state["current"],
        **({"rotated_at": state["rotated_at"]} if "rotated_at" in state else {}),
    }


def _create(
    client: CalendlyClient, target: Target, found: Sequence[dict[str, Any]]
) -> tuple[dict[str, Any], Target, list[str]]:
    notes: list[str] = []
    url = target.callback_url(_new_version())
    for _attempt in range(4):  # each 409 or plan refusal changes the request; never loops forever
        body: dict[str, Any] = {
            "url": url,
            "events": list(target.events),
            "organization": target.organization,
            "scope": target.scope,
            "signing_key": target.signing_key,
        }
        if target.scope == "user":
            body["user"] = target.user
        try:
            return client.create_webhook_subscription(body), target, notes
        except CalendlyRejected as rejected:
            if rejected.status == 409:
                # Someone (a concurrent run, an earlier attempt) made it already: adopt it if it is
                # right, else take another version of the URL.
                for subscription in ours(client, target):
                    if subscription.get("callback_url") == url and not target.problems(subscription):
                        notes.append("adopted a subscription another run had just created")
                        return subscription, target, notes
                url = target.callback_url(_new_version())
                continue
            if (
                rejected.status == 403
                and "upgrade" in rejected.detail.lower()
                and target.routing_forms_allowed
            ):
                notes.append(
                    "routing_form_submission.created needs a paid Calendly plan: subscribed without it"
                )
                target = replace(target, routing_forms_allowed=False)
                continue
            raise
    raise CalendlyRejected(
        "Calendly kept answering 409 for new subscription URLs", status=409, title="Already Exists"
    )


def _new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + secrets.token_hex(2)


def _delete_all(client: CalendlyClient, subscriptions: Iterable[dict[str, Any]]) -> list[str]:
    deleted: list[str] = []
    for subscription in subscriptions:
        uri = str(subscription.get("uri"))
        try:
            client.delete_webhook_subscription(uri)
        except CalendlyRejected as rejected:
            if rejected.status != 404:  # gone already is what we wanted
                raise
        deleted.append(uri)
    return deleted


def _fingerprint_in(subscription: dict[str, Any]) -> str | None:
    query = parse_qs(urlsplit(str(subscription.get("callback_url", ""))).query)
    values = query.get("key")
    return values[0] if values else None

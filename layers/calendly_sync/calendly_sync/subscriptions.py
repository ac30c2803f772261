"""Keep the stack's Calendly webhook subscription right, and say what was done.

Which subscription is ours is decided by the table, never by what Calendly shows: anyone who
can list the organization's subscriptions sees our callback URL, and an admin can delete ours
and re-create one with the very same URL and their own signing key. The URI Calendly assigned
when *we* created a subscription cannot be forged, so the table records it (with the
fingerprint of the key we gave it). A subscription to our URL that is not on that record is
replaced, create-first, and reported; with no record at all (a new table) every one is.

Calendly refuses a second subscription to the same URL and offers no update, so each one we
make gets its own ``?v=<random>`` on the stack's webhook route: a replacement can be created
*before* what it replaces is deleted (never a gap).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from calendly_sync import scopes
from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.errors import CalendlyRejected, CalendlyUnavailable

#: Keep the previous key this long after its last subscription is gone: deliveries signed with
#: it may still be on their way.
PREVIOUS_KEY_GRACE_SECONDS = 15 * 60
#: Each refusal that leaves events out (or a 409) changes the request; never loops forever.
_MAX_CREATE_ATTEMPTS = 6
PAID_PLAN_REASON = "needs a paid Calendly plan"


def key_fingerprint(key: str) -> str:
    """Names a signing key in the table without giving anything of it away."""
    return hashlib.sha256(b"calendly-sync signing key\0" + key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Target:
    """What the subscription should be, and which subscriptions the stack knows it made."""

    webhook_url: str
    organization: str
    scope: str  # "organization" or "user"
    user: str | None
    signing_key: str
    #: URI -> key fingerprint of every subscription this stack created (from the table).
    owned: Mapping[str, str] = field(default_factory=dict)
    #: Events not subscribed, and why (a scope the token lacks, a plan that refuses them).
    left_out: Mapping[str, str] = field(default_factory=dict)
    #: During a rotation: the key being replaced, and when the rotation started (unix seconds).
    previous_key: str | None = None
    rotated_at: float | None = None
    #: How long our subscription on the previous key keeps running after a rotation started.
    previous_key_grace_seconds: float = PREVIOUS_KEY_GRACE_SECONDS

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(e for e in scopes.events_for(self.scope) if e not in self.left_out)

    def callback_url(self) -> str:
        return f"{self.webhook_url}?{urlencode({'v': _new_version()})}"

    def points_here(self, subscription: Mapping[str, Any]) -> bool:
        url = str(subscription.get("callback_url", ""))
        return url == self.webhook_url or url.startswith(self.webhook_url + "?")

    def made_by_us(self, subscription: Mapping[str, Any]) -> bool:
        return str(subscription.get("uri")) in self.owned

    def key_of(self, subscription: Mapping[str, Any]) -> str | None:
        return self.owned.get(str(subscription.get("uri")))

    def in_rotation_grace(self, subscription: Mapping[str, Any], now: float) -> bool:
        """Ours on the previous key and active, kept a while so deliveries under way arrive."""
        if not self.previous_key or self.rotated_at is None:
            return False
        return (
            subscription.get("state") == "active"
            and self.key_of(subscription) == key_fingerprint(self.previous_key)
            and now - self.rotated_at < self.previous_key_grace_seconds
        )

    def problems(self, subscription: Mapping[str, Any]) -> list[str]:
        if not self.made_by_us(subscription):
            return [_foreign_problem(subscription)]
        found: list[str] = []
        if subscription.get("state") != "active":
            found.append(f"state is {subscription.get('state')}: Calendly stopped delivering to it")
        wanted, has = set(self.events), set(subscription.get("events") or [])
        if wanted - has:
            found.append("missing events: " + ", ".join(sorted(wanted - has)))
        if has - wanted:
            found.append("unexpected events: " + ", ".join(sorted(has - wanted)))
        if self.key_of(subscription) != key_fingerprint(self.signing_key):
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
    #: Found missing, disabled, wrong or not ours (not just never made yet): what the alarm watches.
    unhealthy: bool = False
    #: URI -> key fingerprint of our subscriptions left in Calendly afterwards: the table's record.
    owned: dict[str, str] = field(default_factory=dict)
    #: Events not subscribed, and why.
    left_out: dict[str, str] = field(default_factory=dict)
    #: Subscriptions to our URL that the stack did not make (deleted if ``deleted`` names them).
    foreign: list[str] = field(default_factory=list)
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


class NothingToSubscribe(Exception):
    """Every event was refused (scopes, plan): there is no subscription to make."""

    def __init__(self, left_out: Mapping[str, str]) -> None:
        super().__init__("no webhook event can be subscribed: " + "; ".join(_left_out_notes(left_out)))
        self.left_out = dict(left_out)


def describe(subscription: Mapping[str, Any], target: Target) -> dict[str, Any]:
    problems = target.problems(subscription)
    return {
        "uri": subscription.get("uri"),
        "callback_url": subscription.get("callback_url"),
        "state": subscription.get("state"),
        "events": subscription.get("events"),
        "retry_started_at": subscription.get("retry_started_at"),
        "created_at": subscription.get("created_at"),
        "made_by_this_stack": target.made_by_us(subscription),
        "matches": not problems,
        "problems": problems,
    }


def pointing_here(client: CalendlyClient, target: Target) -> list[dict[str, Any]]:
    """Every subscription to the stack's webhook route, whoever made it, all pages, newest first."""
    found = [
        s
        for s in client.webhook_subscriptions(target.organization, target.scope, target.user)
        if target.points_here(s)
    ]
    return sorted(found, key=lambda s: str(s.get("created_at", "")), reverse=True)


def status(client: CalendlyClient, target: Target) -> Outcome:
    found = pointing_here(client, target)
    if not found:
        return Outcome(
            False,
            "status",
            "no webhook subscription points at this stack",
            notes=[target.webhook_url],
            unhealthy=True,
        )
    healthy = [s for s in found if not target.problems(s)]
    foreign = [s for s in found if not target.made_by_us(s)]
    chosen = healthy[0] if healthy else found[0]
    notes = [
        f"also subscribed: {s.get('uri')} ({s.get('state')})"
        for s in found
        if s is not chosen and target.made_by_us(s)
    ]
    notes.extend(f"{s.get('uri')}: {_foreign_problem(s)}" for s in foreign if s is not chosen)
    notes.extend(_left_out_notes(target.left_out))
    if chosen.get("retry_started_at"):
        notes.append(f"Calendly has been retrying failed deliveries since {chosen['retry_started_at']}")
    ok = bool(healthy) and not foreign
    if ok:
        message = "subscription is healthy"
    elif healthy:
        message = "a subscription this stack did not make points at it: run ensure to replace it"
    else:
        message = "subscription needs repair: run ensure"
    return Outcome(
        ok,
        "status",
        message,
        describe(chosen, target),
        notes=notes,
        unhealthy=not ok,
        owned=_owned_after(target, [s for s in found if target.made_by_us(s)]),
        left_out=dict(target.left_out),
        foreign=[str(s.get("uri")) for s in foreign],
    )


def ensure(
    client: CalendlyClient,
    target: Target,
    now: float | None = None,
    *,
    granted_event_scopes: Callable[[], Collection[str]] | None = None,
) -> Outcome:
    """Converge: keep a healthy subscription we made, else create one first and delete the rest.

    ``granted_event_scopes`` asks Calendly which event scopes the token holds; it is called only
    when a subscription is refused with 400, to learn which events to leave out.

    During a key rotation our subscription on the previous key is left running for a grace
    period, so deliveries it already has under way still arrive (the copies both send are
    duplicates, absorbed); a later run deletes it.
    """
    now = time.time() if now is None else now
    found = pointing_here(client, target)
    foreign = [s for s in found if not target.made_by_us(s)]
    healthy = [s for s in found if not target.problems(s)]
    notes: list[str] = []
    if healthy:
        keep, action = healthy[0], "kept"
    else:
        try:
            keep, target, conflicted = _create(client, target, granted_event_scopes)
        except NothingToSubscribe as nothing:
            return Outcome(
                False,
                "ensure",
                str(nothing),
                unhealthy=True,
                owned=_owned_after(target, found),
                left_out=nothing.left_out,
                foreign=[str(s.get("uri")) for s in foreign],
            )
        action = "replaced" if found else "created"
        if conflicted:  # what held the URL we first tried is replaced now, not on the next run
            found = pointing_here(client, target)
            foreign = [s for s in found if not target.made_by_us(s) and s.get("uri") != keep.get("uri")]
    others = [s for s in found if s.get("uri") != keep.get("uri")]
    waiting = [s for s in others if target.in_rotation_grace(s, now)]
    leftovers = [s for s in others if s not in waiting]
    for subscription in leftovers:
        notes.append(f"replaced {subscription.get('uri')}: {'; '.join(target.problems(subscription))}")
    deleted = _delete_all(client, leftovers, notes)
    notes.extend(
        f"kept {s.get('uri')} (previous key) for the rest of the rotation's grace period" for s in waiting
    )
    notes.extend(_left_out_notes(target.left_out))
    message = {
        "kept": "subscription already right: nothing to do",
        "created": "subscription created",
        "replaced": "subscription replaced: the new one was created before the old one was deleted",
    }[action]
    if foreign:
        message += f"; {len(foreign)} subscription(s) to this stack's URL were not made by it"
    # Our own subscription, just made, signs with the current key whatever the record said.
    owned = {**_owned_after(target, waiting), str(keep.get("uri")): key_fingerprint(target.signing_key)}
    return Outcome(
        True,
        action,
        message,
        describe(keep, replace(target, owned=owned)),
        deleted,
        notes,
        unhealthy=action == "replaced" or bool(foreign),
        owned=owned,
        left_out=dict(target.left_out),
        foreign=[str(s.get("uri")) for s in foreign],
        gap_since=min(
            (str(s["retry_started_at"]) for s in leftovers if s.get("retry_started_at")), default=None
        ),
    )


def delete(client: CalendlyClient, target: Target) -> Outcome:
    """Delete every subscription to the stack's URL, ours or not: the stack is going away."""
    found = pointing_here(client, target)
    notes: list[str] = []
    deleted = _delete_all(client, found, notes)
    message = f"deleted {len(deleted)} subscription(s)" if deleted else "no subscription to delete"
    return Outcome(not notes, "deleted", message, None, deleted, notes)


# --- the signing key secret: ``current``, ``previous`` during a rotation, ``next`` before one ---


def rotation_blocker(state: Mapping[str, Any]) -> str | None:
    """Why a new rotation must wait, or None: a second one would drop a key still in use."""
    if state.get("previous"):
        return (
            "the last rotation has not finished: its previous key is still accepted until its "
            "subscription is gone and the grace period has passed (the hourly check finishes it). "
            "Nothing was changed: run status, then rotate-key again once no previous key is left"
        )
    return None


def with_next_key(state: Mapping[str, Any]) -> dict[str, Any]:
    """The secret with a ``next`` key the receiver accepts before any subscription uses it.

    A ``next`` left by an interrupted rotation is reused, never replaced: a subscription Calendly
    made without telling us (a lost answer) may already sign with it.
    """
    if state.get("next"):
        return dict(state)
    return {**state, "next": secrets.token_urlsafe(36)}


def promoted_next_key(state: Mapping[str, Any], now: float) -> dict[str, Any]:
    """``next`` becomes ``current``; the old ``current`` stays accepted as ``previous``."""
    return {"current": state["next"], "previous": state["current"], "rotated_at": int(now)}


def without_spent_previous(
    state: Mapping[str, Any],
    owned: Mapping[str, str],
    now: float,
    *,
    grace_seconds: float = PREVIOUS_KEY_GRACE_SECONDS,
) -> dict[str, Any]:
    """Drop ``previous`` once none of our subscriptions uses it and ``grace_seconds`` have passed."""
    previous = state.get("previous")
    if not previous:
        return dict(state)
    still_used = key_fingerprint(previous) in owned.values()
    if still_used or now - float(state.get("rotated_at") or 0) < grace_seconds:
        return dict(state)
    return {name: value for name, value in state.items() if name != "previous"}


# --- helpers -----------------------------------------------------------------------------


def _create(
    client: CalendlyClient,
    target: Target,
    granted_event_scopes: Callable[[], Collection[str]] | None,
) -> tuple[dict[str, Any], Target, bool]:
    url = target.callback_url()
    conflicted = False
    for _attempt in range(_MAX_CREATE_ATTEMPTS):
        if not target.events:
            raise NothingToSubscribe(target.left_out)
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
            return client.create_webhook_subscription(body), target, conflicted
        except CalendlyRejected as rejected:
            if rejected.status == 409:
                # Never adopted: a subscription we cannot prove we made is not ours. Whatever
                # holds this URL (a lost answer to our own request) is replaced like any other.
                url, conflicted = target.callback_url(), True
                continue
            left_out = _refused_events(rejected, target, granted_event_scopes)
            if not left_out:
                raise
            target = replace(target, left_out={**target.left_out, **left_out})
    raise CalendlyRejected("Calendly kept refusing the new subscription", status=409, title="Already Exists")


def _refused_events(
    rejected: CalendlyRejected,
    target: Target,
    granted_event_scopes: Callable[[], Collection[str]] | None,
) -> dict[str, str]:
    """The events a refusal is about, with the reason: empty when it is about something else."""
    if rejected.status == 403 and "upgrade" in rejected.detail.lower():
        paid_only = [e for e in target.events if e in scopes.ROUTING_FORM_EVENTS]
        reason = f"{PAID_PLAN_REASON} (Calendly answered 403: {rejected.detail})"
        return dict.fromkeys(paid_only, reason)
    if rejected.status == 400 and granted_event_scopes is not None:
        # Calendly checks each event's scope and answers 400, not 403; ask which scopes it is.
        granted = set(granted_event_scopes())
        return {
            event: f"the token lacks {scopes.EVENT_SCOPE[event]} (Calendly answered 400 to the subscription)"
            for event in target.events
            if scopes.EVENT_SCOPE.get(event) not in granted
        }
    return {}


def _left_out_notes(left_out: Mapping[str, str]) -> list[str]:
    by_reason: dict[str, list[str]] = {}
    for event, reason in left_out.items():
        by_reason.setdefault(reason, []).append(event)
    return [f"left out {', '.join(events)}: {reason}" for reason, events in by_reason.items()]


def _owned_after(target: Target, subscriptions: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    return {str(s.get("uri")): target.owned[str(s.get("uri"))] for s in subscriptions if target.made_by_us(s)}


def _foreign_problem(subscription: Mapping[str, Any]) -> str:
    creator = subscription.get("creator") or "someone"
    # True for a planted one and for one the table lost track of (a new table): neither can be
    # trusted to sign with our key, so both are replaced.
    return (
        f"not made by this stack as far as its record shows (created by {creator} at "
        f"{subscription.get('created_at')}): its signing key cannot be known"
    )


def _new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + secrets.token_hex(4)


def _delete_all(
    client: CalendlyClient, subscriptions: Sequence[Mapping[str, Any]], notes: list[str]
) -> list[str]:
    """Delete each; one that cannot be deleted now is noted, and the next run tries again."""
    deleted: list[str] = []
    for subscription in subscriptions:
        uri = str(subscription.get("uri"))
        try:
            client.delete_webhook_subscription(uri)
        except CalendlyRejected as rejected:
            if rejected.status != 404:  # gone already is what we wanted
                notes.append(f"could not delete {uri}: Calendly answered {rejected.status} {rejected.detail}")
                continue
        except CalendlyUnavailable as error:
            notes.append(f"could not delete {uri} now ({error}): the next check tries again")
            continue
        deleted.append(uri)
    return deleted

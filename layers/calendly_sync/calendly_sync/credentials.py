"""Is this Personal Access Token good for the whole stack? A verdict a person can act on.

``GET /users/me`` identifies the token's owner and organization; then one cheap call per
scope the stack relies on shows whether the token carries it, and the owner's membership
shows whether organization scope is possible. Nothing is written here: the caller saves
only a verdict that says ``valid``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from calendly_sync import scopes
from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.errors import CalendlyRejected

SUCCESS_MESSAGE = "Connection Saved Successfully!"
ADMIN_ROLES = frozenset({"owner", "admin"})
_SCOPE_NAMES = frozenset(need.scope for need in scopes.REQUIRED_SCOPES)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    #: A failed check that is not required leaves part of the stack out instead of refusing the token.
    required: bool = True


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    message: str
    user: str | None = None
    organization: str | None = None
    role: str | None = None
    scope: str | None = None
    checks: tuple[Check, ...] = field(default_factory=tuple)
    #: Optional scopes the token lacks (the subscription leaves their events out).
    missing_scopes: tuple[str, ...] = ()

    def as_response(self, *, saved: bool) -> dict[str, Any]:
        answer = asdict(self)
        answer["checks"] = [asdict(check) for check in self.checks]
        answer["saved"] = saved
        return answer


def check_token(client: CalendlyClient) -> Verdict:
    """Run every check; ``CalendlyUnavailable`` propagates (try again later, nothing decided)."""
    checks: list[Check] = []
    try:
        me = client.current_user()
    except CalendlyRejected as rejected:
        return Verdict(
            False, _token_refused(rejected), checks=(Check("token", False, _token_refused(rejected)),)
        )
    user, organization = me.get("uri"), me.get("current_organization")
    if not isinstance(user, str) or not isinstance(organization, str):
        problem = "Calendly's /users/me did not name the user and organization"
        return Verdict(False, problem, checks=(Check("token", False, problem),))
    checks.append(Check("token", True, "accepted by GET /users/me (users:read)"))

    role = _membership_role(client, organization, user, checks)
    admin = role in ADMIN_ROLES
    scope = scope_for(role)
    if role is not None:
        checks.append(
            Check(
                "organization role",
                True,
                f"{role}: organization-wide webhooks and sync"
                if admin
                else f"{role}, not an owner or admin: user scope will be used (only this user's bookings)",
            )
        )

    for need in scopes.REQUIRED_SCOPES:
        probe = _probe_for(need.scope, client, organization, user, scope)
        if probe is None:
            continue
        check = _scope_check(need, probe)
        if need.optional and not check.ok:
            check = replace(check, required=False)
        checks.append(check)
    if scope != "organization":
        checks.append(
            Check(
                "routing_forms:read",
                True,
                "not checked: routing-form submissions are subscribed only at organization scope",
                required=False,
            )
        )
    checks.append(
        Check(
            "plan",
            True,
            "not shown by the API: routing-form webhooks need a paid plan; subscribing reports it if refused",
        )
    )

    problems = [check for check in checks if not check.ok and check.required]
    if problems:
        message = "The token cannot be used: " + "; ".join(f"{c.name}: {c.detail}" for c in problems)
        return Verdict(False, message, user, organization, role, scope, tuple(checks))
    missing = tuple(c.name for c in checks if not c.ok and c.name in _SCOPE_NAMES)
    notes = [] if admin else ["user scope: not an organization owner or admin"]
    notes.extend(
        f"without {name}: {', '.join(scopes.need(name).events)} left out of the subscription"
        for name in missing
    )
    message = SUCCESS_MESSAGE + (f" ({'; '.join(notes)})" if notes else "")
    return Verdict(True, message, user, organization, role, scope, tuple(checks), missing)


class SyncStateReader(Protocol):
    def sync_state(self, name: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class Connection:
    """Whom the stored token acts for: what subscriptions and polls are made for."""

    user: str
    organization: str
    #: ``"organization"`` or ``"user"``.
    scope: str
    #: The ``SYNC/CONNECTION`` item as stored ({} for a token put in place by hand).
    record: Mapping[str, Any] = field(default_factory=dict)


def load_connection(table: SyncStateReader, client: CalendlyClient) -> Connection:
    """The connection recorded when the token was checked, else learnt from Calendly now."""
    record = table.sync_state("CONNECTION") or {}
    if record.get("organization") and record.get("user"):
        return Connection(
            record["user"], record["organization"], record.get("scope") or "organization", record
        )
    # A token put in place by hand was never checked: ask Calendly whose it is.
    user, organization, role = identify(client)
    return Connection(user, organization, scope_for(role), record)


def scope_for(role: str | None) -> str:
    """Organization scope needs an owner or admin; anyone else can only watch their own bookings."""
    return "user" if role is not None and role not in ADMIN_ROLES else "organization"


def identify(client: CalendlyClient) -> tuple[str, str, str | None]:
    """``(user, organization, role)`` of the token's owner: what the subscription is made for."""
    me = client.current_user()
    checks: list[Check] = []
    role = _membership_role(client, me["current_organization"], me["uri"], checks)
    return me["uri"], me["current_organization"], role


def _token_refused(rejected: CalendlyRejected) -> str:
    if rejected.status == 401:
        detail = rejected.detail.lower()
        if "expired" in detail:
            return "Calendly says the token has expired: create a new Personal Access Token"
        if "revoked" in detail:
            return "Calendly says the token was revoked: create a new Personal Access Token"
        return "Calendly does not recognise the token: check it was copied whole (it is shown only once)"
    if rejected.status == 403:
        return "the token lacks users:read, which every call starts with"
    return f"Calendly refused GET /users/me: {rejected.status} {rejected.title}: {rejected.detail}"


def _membership_role(client: CalendlyClient, organization: str, user: str, checks: list[Check]) -> str | None:
    try:
        memberships = client.get("/organization_memberships", {"organization": organization, "user": user})
    except CalendlyRejected as rejected:
        checks.append(_scope_failure("organizations:read", "read the organization role", rejected))
        return None
    for membership in memberships.get("collection", []):
        role = membership.get("role")
        if isinstance(role, str):
            return role
    checks.append(Check("organization role", False, "the user is not a member of its current organization"))
    return None


def _probe_for(
    scope_name: str, client: CalendlyClient, organization: str, user: str, scope: str
) -> Callable[[], object] | None:
    """One cheap call that Calendly refuses (403) without ``scope_name``; None: checked elsewhere."""
    # A member's lists name the organization too, or they span every organization the user is in.
    owner_filter = {"organization": organization} | ({} if scope == "organization" else {"user": user})
    subscription_filter = {"organization": organization, "scope": scope} | (
        {} if scope == "organization" else {"user": user}
    )
    probes: dict[str, Callable[[], object]] = {
        "event_types:read": lambda: client.get("/event_types", {**owner_filter, "count": "1"}),
        "scheduled_events:read": lambda: client.get("/scheduled_events", {**owner_filter, "count": "1"}),
        "webhooks:read": lambda: client.get("/webhook_subscriptions", {**subscription_filter, "count": "1"}),
        "webhooks:write": lambda: _probe_webhook_write(client),
    }
    if scope == "organization":
        probes["routing_forms:read"] = lambda: client.get(
            "/routing_forms", {"organization": organization, "count": "1"}
        )
    return probes.get(scope_name)


def granted_event_scopes(client: CalendlyClient, organization: str, user: str, scope: str) -> set[str]:
    """Which scopes that webhook events need the token holds, asked of Calendly now."""
    granted: set[str] = set()
    for need in scopes.REQUIRED_SCOPES:
        probe = _probe_for(need.scope, client, organization, user, scope) if need.events else None
        if probe is not None and _scope_check(need, probe).ok:
            granted.add(need.scope)
    return granted


def _probe_webhook_write(client: CalendlyClient) -> None:
    """An empty POST: Calendly checks the scope before the body, so 400 means allowed."""
    try:
        client.request("POST", "/webhook_subscriptions", body={})
    except CalendlyRejected as rejected:
        if rejected.status == 400:
            return
        raise


def _scope_check(need: scopes.ScopeNeed, probe: Callable[[], object]) -> Check:
    try:
        probe()
    except CalendlyRejected as rejected:
        return _scope_failure(need.scope, need.used_for, rejected)
    return Check(need.scope, True, f"granted ({need.used_for})")


def _scope_failure(scope: str, used_for: str, rejected: CalendlyRejected) -> Check:
    if rejected.status == 403 and "upgrade" not in rejected.detail.lower():
        return Check(scope, False, f"missing scope {scope}, needed for {used_for}: add it to the token")
    return Check(scope, False, f"Calendly answered {rejected.status} {rejected.title}: {rejected.detail}")

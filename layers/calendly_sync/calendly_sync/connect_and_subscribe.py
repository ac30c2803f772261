"""What ValidateCredentialsFunction and WebhookSubscriptionFunction do, over the adapters.

Each returns the JSON answer its function gives; errors a person should read become a
``valid: false`` / ``ok: false`` answer with a message, never a stack trace. The adapters,
the settings and the clock come in as ``OperationsDependencies``, built by the handlers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from calendly_sync import scopes, subscriptions, table_items
from calendly_sync.adapters.calendly import CalendlyClient
from calendly_sync.credentials import check_token, granted_event_scopes, load_connection
from calendly_sync.errors import CalendlyRejected, CalendlyUnavailable, ConfigurationError, SecretUnavailable
from calendly_sync.observability import logger, metrics
from calendly_sync.settings import Settings
from calendly_sync.table_items import AttributeValue

SUBSCRIPTION_ACTIONS = ("ensure", "status", "delete", "rotate-key")
_MAX_TOKEN_LENGTH = 4096
_EVENT_SCOPES = frozenset(need.scope for need in scopes.REQUIRED_SCOPES if need.events)


class SyncStateTable(Protocol):
    """The sync-state items these use (``adapters.dynamodb.CalendlyTable``)."""

    def sync_state(self, name: str) -> dict[str, Any] | None: ...

    def put_sync_state(self, name: str, attributes: Mapping[str, AttributeValue]) -> None: ...


class TokenStore(Protocol):
    """``adapters.secrets.TokenSecret``."""

    def stored_token(self, *, force_fetch: bool = False) -> dict[str, Any] | None: ...

    def save_token(self, token: str, metadata: dict[str, Any]) -> None: ...


class SigningKeyStore(Protocol):
    """``adapters.secrets.SigningKeySecret``: the whole secret, read afresh, and written."""

    def state(self) -> dict[str, Any]: ...

    def write(self, state: dict[str, Any]) -> None: ...


#: A Calendly client for a token (interactive: answers at once, no retries).
CalendlyFactory = Callable[[str], CalendlyClient]


@dataclass(frozen=True, slots=True)
class SubscriptionDependencies:
    """What the subscription work needs, for WebhookSubscriptionFunction and the poller's check."""

    table: SyncStateTable
    #: The stack's own webhook route, given to Calendly.
    webhook_url: str
    signing_keys: SigningKeyStore
    #: Unix seconds now.
    clock: Callable[[], float] = time.time
    previous_key_grace_seconds: float = subscriptions.PREVIOUS_KEY_GRACE_SECONDS


@dataclass(frozen=True, slots=True)
class OperationsDependencies:
    """What ValidateCredentialsFunction and WebhookSubscriptionFunction work with, built by their handlers."""

    settings: Settings
    table: SyncStateTable
    token: TokenStore
    signing_keys: SigningKeyStore
    calendly: CalendlyFactory
    #: Unix seconds now.
    clock: Callable[[], float] = time.time
    previous_key_grace_seconds: float = subscriptions.PREVIOUS_KEY_GRACE_SECONDS


def _timestamp(clock: Callable[[], float]) -> str:
    return table_items.format_utc(datetime.fromtimestamp(clock(), UTC))


# --- ValidateCredentialsFunction ---------------------------------------------------------


def validate_credentials(payload: Any, deps: OperationsDependencies) -> dict[str, Any]:
    """``{"token": ...}`` checks then saves; ``{}`` re-checks the stored token."""
    if not isinstance(payload, dict) or (set(payload) - {"token"}):
        return _refusal(
            'send {"token": "<Personal Access Token>"} to connect, or {} to re-check the stored one'
        )
    recheck = "token" not in payload
    if recheck:
        stored = deps.token.stored_token(force_fetch=True)
        if stored is None:
            return _refusal('no token is stored yet: connect first with {"token": "<Personal Access Token>"}')
        token = stored["token"]
    else:
        token = payload["token"].strip() if isinstance(payload["token"], str) else ""
        if not token or len(token) > _MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
            return _refusal(
                "the token must be one non-empty string without spaces (copy it again from Calendly)"
            )

    try:
        verdict = check_token(deps.calendly(token))
    except CalendlyUnavailable as error:
        return _refusal(f"{error}: nothing was changed, try again shortly")

    checked_at = _timestamp(deps.clock)
    metrics.add_dimension(name="Outcome", value="valid" if verdict.valid else "invalid")
    metrics.add_metric(name="ConnectionChecks", unit=MetricUnit.Count, value=1)
    logger.info(
        "token checked",
        valid=verdict.valid,
        recheck=recheck,
        failed_checks=[check.name for check in verdict.checks if not check.ok],
        organization=verdict.organization,
    )
    table = deps.table
    if verdict.valid:
        if not recheck:
            deps.token.save_token(
                token, {"user": verdict.user, "organization": verdict.organization, "checked_at": checked_at}
            )
        table.put_sync_state(
            "CONNECTION",
            {
                "user": verdict.user,
                "organization": verdict.organization,
                "role": verdict.role,
                "scope": verdict.scope,
                "missing_scopes": json.dumps(list(verdict.missing_scopes)),
                "checked_at": checked_at,
                "healthy": True,
            },
        )
    elif recheck:
        # The stored token stays (it may be fixed on Calendly's side); the record says it fails.
        previous = table.sync_state("CONNECTION") or {}
        table.put_sync_state(
            "CONNECTION",
            {
                **{
                    k: v
                    for k, v in previous.items()
                    if k in ("user", "organization", "role", "scope", "missing_scopes")
                },
                "checked_at": checked_at,
                "healthy": False,
                "problem": verdict.message,
            },
        )
    if verdict.valid and recheck:
        verdict = replace(verdict, message="The stored token still works: nothing needed saving.")
    return verdict.as_response(saved=verdict.valid and not recheck)


def _refusal(message: str) -> dict[str, Any]:
    return {
        "valid": False,
        "message": message,
        "user": None,
        "organization": None,
        "role": None,
        "scope": None,
        "checks": [],
        "saved": False,
    }


# --- WebhookSubscriptionFunction ----------------------------------------------------------


def manage_subscription(action: str, deps: OperationsDependencies) -> dict[str, Any]:
    """``ensure`` (default), ``status``, ``delete`` or ``rotate-key``; answers what was found or done."""
    if action not in SUBSCRIPTION_ACTIONS:
        return subscriptions.Outcome(
            False, action, f"unknown action {action!r}: use one of {', '.join(SUBSCRIPTION_ACTIONS)}"
        ).as_response()
    webhook_url = deps.settings.webhook_url
    if not webhook_url:
        raise ConfigurationError("WEBHOOK_URL is not set")
    stored = deps.token.stored_token()
    if stored is None:
        return subscriptions.Outcome(
            False,
            action,
            'no Calendly token is stored: connect first (ValidateCredentialsFunction {"token": ...})',
        ).as_response()
    client = deps.calendly(stored["token"])
    work = SubscriptionDependencies(
        deps.table, webhook_url, deps.signing_keys, deps.clock, deps.previous_key_grace_seconds
    )
    try:
        outcome = run_subscription_action(action, client, work)
    except CalendlyUnavailable as error:
        outcome = subscriptions.Outcome(False, action, f"{error}: nothing was changed, try again shortly")
    except CalendlyRejected as rejected:
        outcome = subscriptions.Outcome(
            False, action, f"Calendly refused: {rejected.status} {rejected.detail}"
        )
    observe_subscription(outcome)
    return outcome.as_response()


def run_subscription_action(
    action: str, client: CalendlyClient, deps: SubscriptionDependencies
) -> subscriptions.Outcome:
    """The subscription work itself, for this function and for the poller's check each run."""
    table = deps.table
    connected = load_connection(table, client)
    connection, user, organization, scope = (
        connected.record,
        connected.user,
        connected.organization,
        connected.scope,
    )
    keys = deps.signing_keys.state()
    record = table.sync_state("SUBSCRIPTION") or {}
    token_checked_at = str(connection.get("checked_at") or "")
    target = subscriptions.Target(
        webhook_url=deps.webhook_url,
        organization=organization,
        scope=scope,
        user=user if scope == "user" else None,
        signing_key=keys["current"],
        owned=_json_object(record.get("owned")),
        left_out=_known_left_out(connection, record, token_checked_at),
        previous_key=keys.get("previous"),
        rotated_at=keys.get("rotated_at"),
        previous_key_grace_seconds=deps.previous_key_grace_seconds,
    )

    def granted() -> set[str]:
        return granted_event_scopes(client, organization, user, scope)

    if action == "status":
        return subscriptions.status(client, target)
    if action == "delete":
        outcome = subscriptions.delete(client, target)
        remaining = {uri: key for uri, key in target.owned.items() if uri not in outcome.deleted}
        table.put_sync_state(
            "SUBSCRIPTION",
            {
                "owned": json.dumps(remaining),
                "checked_at": _timestamp(deps.clock),
                "last_action": "deleted",
                "ok": outcome.ok,
            },
        )
        return outcome
    if action == "rotate-key":
        return _rotate_key(client, deps, target, keys, granted, token_checked_at)

    outcome = subscriptions.ensure(client, target, deps.clock(), granted_event_scopes=granted)
    # Created again after one was recorded: it went missing.
    outcome.unhealthy |= outcome.action == "created" and bool(record.get("uri"))
    if outcome.ok:
        settled = subscriptions.without_spent_previous(
            keys, outcome.owned, deps.clock(), grace_seconds=deps.previous_key_grace_seconds
        )
        if settled != keys:
            deps.signing_keys.write(settled)
            outcome.notes.append("the previous signing key is no longer accepted (rotation finished)")
    _record(deps, outcome, token_checked_at)
    return outcome


def _rotate_key(
    client: CalendlyClient,
    deps: SubscriptionDependencies,
    target: subscriptions.Target,
    keys: dict[str, Any],
    granted: Callable[[], set[str]],
    token_checked_at: str,
) -> subscriptions.Outcome:
    """New key as ``next`` (accepted at once) -> its subscription -> record -> ``current``.

    ``current`` changes only once a subscription signing with the new key exists, and no key a
    live subscription signs with is ever dropped, so a failure at any step is safe to retry.
    """
    blocker = subscriptions.rotation_blocker(keys)
    if blocker:
        return subscriptions.Outcome(False, "rotate-key", blocker)
    pending = subscriptions.with_next_key(keys)
    if pending != keys:
        try:
            deps.signing_keys.write(pending)
        except SecretUnavailable as error:
            return subscriptions.Outcome(
                False, "rotate-key", f"{error}: the signing key was not rotated, nothing was changed"
            )
    now = deps.clock()
    rotating = replace(target, signing_key=pending["next"], previous_key=keys["current"], rotated_at=now)
    not_rotated = (
        "the signing key was not rotated: the current key and its subscription are unchanged and "
        "still in use. A new key waits as 'next' (accepted, used by no subscription yet); running "
        "rotate-key again uses it"
    )
    try:
        outcome = subscriptions.ensure(client, rotating, now, granted_event_scopes=granted)
    except CalendlyUnavailable as error:
        return subscriptions.Outcome(False, "rotate-key", f"{error}: {not_rotated}")
    except CalendlyRejected as rejected:
        return subscriptions.Outcome(
            False, "rotate-key", f"Calendly refused: {rejected.status} {rejected.detail}: {not_rotated}"
        )
    if not outcome.ok:
        outcome.action, outcome.message = "rotate-key", f"{outcome.message}: {not_rotated}"
        return outcome
    # Recorded first: from here the new subscription is provably ours.
    _record(deps, outcome, token_checked_at)
    try:
        deps.signing_keys.write(subscriptions.promoted_next_key(pending, now))
    except SecretUnavailable as error:
        outcome.ok, outcome.action = False, "rotate-key"
        outcome.message = (
            f"{error}: a subscription signing with the new key exists and the receiver accepts that "
            "key (as 'next'), but it did not become 'current': run rotate-key again to finish"
        )
        return outcome
    outcome.action, outcome.unhealthy = "rotated", False
    outcome.message = "signing key rotated; " + outcome.message
    outcome.notes.append(
        "the previous key is still accepted until its subscription is gone and "
        f"{deps.previous_key_grace_seconds / 60:g} minutes pass"
    )
    return outcome


def _record(deps: SubscriptionDependencies, outcome: subscriptions.Outcome, token_checked_at: str) -> None:
    """What the next run trusts: which subscriptions we made, and which events were left out."""
    subscription = outcome.subscription or {}
    deps.table.put_sync_state(
        "SUBSCRIPTION",
        {
            "uri": subscription.get("uri"),
            "callback_url": subscription.get("callback_url"),
            "state": subscription.get("state"),
            "events": json.dumps(subscription.get("events") or []),
            "owned": json.dumps(outcome.owned),
            "left_out": json.dumps(outcome.left_out),
            # Left-out events are tried again once the token is checked again (a new scope, a plan).
            "left_out_for": token_checked_at,
            "checked_at": _timestamp(deps.clock),
            "last_action": outcome.action,
            "ok": outcome.ok,
        },
    )


def _known_left_out(
    connection: Mapping[str, Any], record: Mapping[str, Any], token_checked_at: str
) -> dict[str, str]:
    left_out: dict[str, str] = {}
    if record.get("left_out_for", "") == token_checked_at:
        left_out.update(_json_object(record.get("left_out")))
    missing = json.loads(connection.get("missing_scopes") or "[]")
    for scope_name in missing if isinstance(missing, list) else []:
        if scope_name in _EVENT_SCOPES:
            for event in scopes.need(scope_name).events:
                left_out.setdefault(event, f"the token lacks {scope_name} (found when it was checked)")
    return left_out


def _json_object(text: Any) -> dict[str, str]:
    """A JSON object of strings from the table, or {} for anything else (an old or damaged record)."""
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def observe_subscription(outcome: subscriptions.Outcome) -> None:
    # The alarm watches this: a subscription found missing, disabled, wrong or not made by us.
    metrics.add_metric(
        name="SubscriptionUnhealthy", unit=MetricUnit.Count, value=1 if outcome.unhealthy else 0
    )
    if not outcome.ok:
        metrics.add_metric(name="SubscriptionFailures", unit=MetricUnit.Count, value=1)
    if outcome.foreign:
        # Someone else subscribed the stack's URL: worth a person's look (who, and why).
        logger.warning("subscriptions not made by this stack point at it", foreign=outcome.foreign)
    logger.info(
        "subscription " + outcome.action,
        ok=outcome.ok,
        subscription=(outcome.subscription or {}).get("uri"),
        deleted=outcome.deleted,
        left_out=sorted(outcome.left_out),
        detail=outcome.message,
    )

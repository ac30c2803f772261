"""CalendlySandbox: the public face of the sandbox, tying state, HTTP server and delivery together."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from local.loopback import StartStop

from .app import create_app
from .clock import StrictClock, format_timestamp
from .config import SandboxConfig, TokenSpec, TokenState
from .delivery import DeliveryAttempt, DeliveryWorker, DroppedDelivery
from .faults import Faults
from .models import CancelerType, WebhookEvent
from .ratelimit import RateLimiter
from .request_log import RequestLog, RequestRecord
from .server import BackgroundServer
from .state import SandboxState, SeedSummary
from .strict import OpenApiRequestRules, StrictMode
from .uris import reference_uuid


class CalendlySandbox(StartStop):
    """A loopback HTTP server speaking Calendly API v2, with scripted changes and real webhook deliveries.

    Use as a context manager (or call start()/stop()). Changes made through book/cancel/reschedule/
    no-show bump `updated_at` and queue the deliveries Calendly would send to each active subscription.
    """

    def __init__(self, config: SandboxConfig | None = None, *, strict_openapi: Path | None = None) -> None:
        """``strict_openapi``: an OpenAPI description every API request must also conform to (strict.py)."""
        self.config = config or SandboxConfig()
        self.strict = StrictMode(OpenApiRequestRules.from_file(strict_openapi)) if strict_openapi else None
        self.clock = StrictClock()
        self.state = SandboxState(self.config, self.clock)
        self.faults = Faults(seed=self.config.seed)
        self.rate_limiter = RateLimiter(self.config.rate_window_seconds)
        self.request_recorder = RequestLog()
        self.delivery = DeliveryWorker(self.config, self.faults, self.state)
        self._server: BackgroundServer | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is None:
            self._server = BackgroundServer(create_app(self), self.config.host, self.config.port)
            self._server.start()
            self.delivery.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.delivery.stop()
            self._server.stop()
            self._server = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not running; use `with CalendlySandbox(...)` or start()")
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def organization_uri(self) -> str:
        return self.state.uris.organization(self.state.organization.uuid)

    # -- tokens and data --------------------------------------------------------------------------

    def add_token(self, spec: TokenSpec | None = None) -> str:
        """Mint a token (owner, paid, all scopes, valid by default) bound to a new or given user."""
        return self.state.add_token(spec or TokenSpec()).value

    def set_token_state(self, token: str, state: TokenState) -> None:
        """Expire or revoke a token after the fact (or make it valid again)."""
        self.state.set_token_state(token, state)

    def user_uri_for(self, token: str) -> str:
        return self.state.uris.user(self.state.tokens[token].user_uuid)

    def seed(
        self,
        users: int = 3,
        event_types_per_user: int = 2,
        scheduled_events: int = 200,
        start: datetime | None = None,
        days: int = 30,
    ) -> SeedSummary:
        """Deterministic (from config.seed) users, event types and events starting at `start`
        (default: today 00:00 UTC) over `days`; about 10% canceled. Fires no webhooks."""
        if start is None:
            start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return self.state.seed(users, event_types_per_user, scheduled_events, start, days)

    # -- changes that fire webhooks ---------------------------------------------------------------

    def book(
        self, event_type_uri: str | None = None, start_time: datetime | None = None, email: str | None = None
    ) -> str:
        """Book a new scheduled event with one invitee; fires invitee.created. Returns the invitee URI."""
        invitee, events = self.state.book(event_type_uri, start_time, email)
        self._announce(events)
        return self.state.uris.invitee(invitee.event_uuid, invitee.uuid)

    def cancel(self, invitee_uri: str, reason: str | None = None, by: CancelerType = "invitee") -> None:
        """Cancel an invitee (and its one-on-one event); fires invitee.canceled."""
        self._announce(self.state.cancel(invitee_uri, reason, by))

    def reschedule(self, invitee_uri: str, new_start: datetime) -> str:
        """Cancel the invitee (rescheduled=true) and book a linked new one; fires canceled, then created."""
        invitee, events = self.state.reschedule(invitee_uri, new_start)
        self._announce(events)
        return self.state.uris.invitee(invitee.event_uuid, invitee.uuid)

    def mark_no_show(self, invitee_uri: str) -> None:
        self._announce(self.state.mark_no_show(invitee_uri))

    def unmark_no_show(self, invitee_uri: str) -> None:
        self._announce(self.state.unmark_no_show(invitee_uri))

    def _announce(self, events: list[WebhookEvent]) -> None:
        for event in events:
            for subscription in self.state.recipients(event):
                envelope = {
                    "created_at": format_timestamp(event.created_at),
                    "created_by": self.state.uris.user(subscription.creator_uuid),
                    "event": event.name,
                    "payload": event.payload,
                }
                self.delivery.enqueue(
                    subscription.uuid,
                    self.state.uris.webhook_subscription(subscription.uuid),
                    event.name,
                    event.payload.get("uri"),
                    json.dumps(envelope, separators=(",", ":")).encode(),
                )

    # -- webhook subscriptions and deliveries -----------------------------------------------------

    def subscription(self, uri: str) -> dict[str, Any]:
        """The subscription as GET /webhook_subscriptions/{uuid} shows it (KeyError if absent)."""
        with self.state.lock:
            found = self.state.subscriptions[reference_uuid(uri, "webhook_subscriptions") or ""]
            return self.state.renderer.webhook_subscription(found)

    def disable_subscription(self, uri: str) -> None:
        """What Calendly does after 24 h of failed deliveries, done at once (for tests and demos)."""
        with self.state.lock:
            found = self.state.subscriptions[reference_uuid(uri, "webhook_subscriptions") or ""]
            found.retry_started_at = found.retry_started_at or self.state.clock.now()
            found.state = "disabled"
            found.updated_at = self.state.clock.after(found.updated_at)

    def subscriptions(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [self.state.renderer.webhook_subscription(s) for s in self.state.subscriptions.values()]

    def deliver_pending(self, timeout: float | None = 10.0) -> bool:
        """Block until every queued delivery is delivered or given up; False if `timeout` passed first."""
        return self.delivery.wait_idle(timeout)

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        return self.delivery.attempts

    @property
    def dropped_deliveries(self) -> list[DroppedDelivery]:
        return self.delivery.dropped

    # -- observability ----------------------------------------------------------------------------

    @property
    def request_log(self) -> list[RequestRecord]:
        """API requests answered so far, oldest first: (method, path, status, time) tuples."""
        return self.request_recorder.records()

    def requests_count(self, method: str | None = None, path_prefix: str | None = None) -> int:
        return self.request_recorder.count(method, path_prefix)

    def reset_counts(self) -> None:
        """Forget recorded API requests, delivery attempts and dropped deliveries."""
        self.request_recorder.clear()
        self.delivery.clear_records()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": {
                "total": self.requests_count(),
                "per_endpoint": self.request_recorder.per_endpoint(),
            },
            "deliveries": {
                "attempts": len(self.deliveries),
                "succeeded": sum(1 for attempt in self.deliveries if attempt.ok),
                "failed": sum(1 for attempt in self.deliveries if not attempt.ok),
                "dropped": len(self.dropped_deliveries),
                "pending": self.delivery.pending,
                "log": [
                    {
                        "subscription": attempt.subscription_uri,
                        "event": attempt.event,
                        "payload_uri": attempt.payload_uri,
                        "attempt": attempt.attempt,
                        "status_code": attempt.status_code,
                        "error": attempt.error,
                        "ok": attempt.ok,
                        "fault": attempt.fault,
                        "sent_at": attempt.sent_at,
                    }
                    for attempt in self.deliveries
                ],
            },
            "subscriptions": self.subscriptions(),
        }

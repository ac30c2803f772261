"""What a poll run works with: built by PollCalendlyFunction's handler and passed in.

The poller reads no environment and builds no adapter: the handler makes these once per
container, and tests pass fakes (an in-memory table, a scripted Calendly, a clock they move)
or the real adapters, as they choose.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from calendly_sync.adapters.calendly import POLLING_RETRIES, TIMEOUT_SECONDS, CalendlyClient
from calendly_sync.adapters.dynamodb import ChangeOutcome
from calendly_sync.poll_report import PollReport
from calendly_sync.settings import Settings
from calendly_sync.subscriptions import Outcome
from calendly_sync.table_items import AttributeValue, Change, ItemKey, Origin


class Clock(Protocol):
    def now(self) -> datetime:
        """The time of day, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: deadlines and durations."""
        ...


@dataclass(frozen=True, slots=True)
class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class PollTable(Protocol):
    """What the poller asks of the table (``adapters.dynamodb.CalendlyTable``)."""

    def claim_lease(self, name: str, owner: str, now: int, seconds: int) -> bool: ...

    def release_lease(self, name: str, owner: str) -> None: ...

    def checkpoint(self, name: str) -> dict[str, Any] | None: ...

    def save_checkpoint(
        self, name: str, attributes: Mapping[str, AttributeValue], *, expected_seq: int | None
    ) -> int: ...

    def sync_state(self, name: str) -> dict[str, Any] | None: ...

    def stored_versions(self, keys: Sequence[ItemKey]) -> dict[ItemKey, str]: ...

    def apply_changes(self, changes: Sequence[Change], *, origin: Origin) -> ChangeOutcome: ...


class TokenSource(Protocol):
    """``adapters.secrets.stored_token``: the stored token and its metadata, or None."""

    def __call__(self, *, force_fetch: bool = False) -> dict[str, Any] | None: ...


#: The run's Calendly client for ``(token, deadline)``; ``deadline`` is a ``Clock.monotonic`` value.
ClientFactory = Callable[[str, float], CalendlyClient]
#: The webhook subscription's ``ensure`` with the run's client (``connect_and_subscribe``' code).
SubscriptionCheck = Callable[[CalendlyClient], Outcome]


@dataclass(frozen=True, slots=True)
class CalendlyClients:
    """The poller's clients: retried as polling needs, paced and timed by the run's clock."""

    base_url: str
    clock: Callable[[], float] = time.monotonic
    #: ``(connect, read)`` seconds of each request.
    timeout: tuple[float, float] = TIMEOUT_SECONDS

    def __call__(self, token: str, deadline: float) -> CalendlyClient:
        return CalendlyClient(
            self.base_url,
            token,
            retry=POLLING_RETRIES,
            deadline=deadline,
            clock=self.clock,
            timeout=self.timeout,
        )


@dataclass(frozen=True, slots=True)
class PollDependencies:
    settings: Settings
    table: PollTable
    calendly: ClientFactory
    stored_token: TokenSource
    #: None where the stack has no webhook URL: nothing to check.
    check_subscription: SubscriptionCheck | None
    clock: Clock = SystemClock()


@dataclass(frozen=True, slots=True)
class PollRun:
    """One run's working set: the table, its Calendly client (a new one if the token is replaced),
    its report, the Lambda time it has left, its clock."""

    table: PollTable
    client: CalendlyClient
    report: PollReport
    remaining_ms: Callable[[], int]
    clock: Clock

"""The sandbox's world: one organization, its users, event types, scheduled events, invitees,
webhook subscriptions and access tokens, plus the changes (book, cancel, ...) that Calendly announces.

Each concern has its own module; `SandboxState` is all of them over one shared `World`:

- world.py: the data, the lock that guards it (re-entrant: server threads, the delivery worker
  and the test thread share it) and the seeded ids;
- accounts.py: users, memberships and access tokens;
- bookings.py: event types, bookings and the changes that fire webhooks;
- seeding.py: deterministic data made without webhooks (sample_data.py holds its pools);
- subscriptions.py: webhook subscriptions and who is notified of a change;
- delivery_health.py: the retry window per subscription, fed by the delivery worker.
"""

from __future__ import annotations

from .delivery_health import DeliveryHealth, FailureVerdict
from .seeding import Seeding, SeedSummary
from .subscriptions import Subscriptions

__all__ = ["FailureVerdict", "SandboxState", "SeedSummary"]


class SandboxState(Seeding, Subscriptions, DeliveryHealth):
    """Everything the sandbox holds and every change made to it, under `lock`."""

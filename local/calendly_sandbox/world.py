"""The data every part of the sandbox's state shares, and the lock that guards it.

All mutation and reading happens under `World.lock` (re-entrant), because the HTTP server
threads, the delivery worker and the test thread all share it. The behaviour lives in the
classes built on this one (accounts, bookings, seeding, subscriptions, delivery health);
`state.SandboxState` puts them together.
"""

from __future__ import annotations

import random
import threading
import uuid as uuid_module
from datetime import UTC, datetime

from . import models
from .clock import StrictClock
from .config import SandboxConfig
from .render import Renderer
from .uris import UriBuilder


class World:
    """One organization and everything in it; ids and data repeat exactly for the same seed."""

    def __init__(self, config: SandboxConfig, clock: StrictClock) -> None:
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        # Separate generators so that, for the same sequence of calls, ids and data repeat exactly.
        self._id_random = random.Random(f"ids:{config.seed}")
        self._data_random = random.Random(f"data:{config.seed}")
        self.uris = UriBuilder(config.public_base, config.scheduling_base)
        created = datetime(2020, 1, 2, 3, 4, 5, 678123, tzinfo=UTC)
        self.organization = models.Organization(self.new_uuid(), config.organization_name, created, created)
        self.renderer = Renderer(self.uris, self.organization)

        self.users: dict[str, models.User] = {}
        self.memberships: dict[str, models.Membership] = {}  # by user uuid
        self.tokens: dict[str, models.AccessToken] = {}
        self.event_types: dict[str, models.EventType] = {}
        self.events: dict[str, models.ScheduledEvent] = {}
        self.invitees: dict[str, models.Invitee] = {}
        self.subscriptions: dict[str, models.WebhookSubscription] = {}
        self._booking_counter = 0

    def new_uuid(self) -> str:
        return str(uuid_module.UUID(int=self._id_random.getrandbits(128), version=4))

"""The lease that keeps poll runs from overlapping (reserved concurrency 1 is the other guard).

A run holds ``SYNC`` / ``LEASE#poll`` for its Lambda time plus a minute. One that cannot
claim it stops at once; one that ends gives it up, and one that dies leaves it to expire.
"""

from __future__ import annotations

import uuid

from calendly_sync.errors import CalendlySyncError
from calendly_sync.observability import logger
from calendly_sync.poll_dependencies import Clock, PollTable

LEASE_NAME = "poll"
#: Held at least this long, and this much beyond the run's own time.
MIN_LEASE_SECONDS = 60


class PollLease:
    def __init__(self, table: PollTable, clock: Clock) -> None:
        self.table, self.clock = table, clock
        self.owner = str(uuid.uuid4())
        #: Asked for and not refused: a claim that failed part way may have landed all the same.
        self._maybe_held = False

    def claim(self, remaining_ms: int) -> bool:
        """Take the lease for ``remaining_ms`` and a minute; False while another run holds it."""
        seconds = max(MIN_LEASE_SECONDS, remaining_ms // 1000 + MIN_LEASE_SECONDS)
        now = int(self.clock.now().timestamp())
        self._maybe_held = True
        self._maybe_held = self.table.claim_lease(LEASE_NAME, self.owner, now, seconds)
        return self._maybe_held

    def release(self) -> None:
        """Give it up unless it was refused; a failure only delays the next run until it expires."""
        if not self._maybe_held:
            return
        self._maybe_held = False
        try:
            self.table.release_lease(LEASE_NAME, self.owner)
        except CalendlySyncError as error:
            logger.warning("poll lease not released", reason=error.reason)

"""Fixed-window rate limiting per access token, reported through X-RateLimit-* headers."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int  # seconds until the window resets (Calendly sends a duration, not an epoch)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


@dataclass
class _Window:
    started: float
    used: int


class RateLimiter:
    """Counts requests per key in windows of `window_seconds` that start with the key's first request."""

    def __init__(self, window_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._window_seconds = window_seconds
        self._monotonic = monotonic
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int) -> RateDecision:
        """Record one request for `key`; requests past `limit` are refused until the window resets."""
        now = self._monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.started >= self._window_seconds:
                window = _Window(started=now, used=0)
                self._windows[key] = window
            window.used += 1
            reset = max(0, math.ceil(window.started + self._window_seconds - now))
            return RateDecision(
                allowed=window.used <= limit,
                limit=limit,
                remaining=max(0, limit - window.used),
                reset_seconds=reset,
            )

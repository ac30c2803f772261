"""Calendly API v2 over HTTPS: bearer auth, timeouts, pacing, bounded retries, every page.

One ``requests.Session`` per process. Before a request, the client waits out the rate-limit
window when the last answer said none are left (``X-RateLimit-Remaining`` /
``X-RateLimit-Reset``, a duration in seconds), so a steady reader never meets a 429. A 429
still waits for the reset; 5xx, timeouts and connection errors back off with jitter; other
4xx are never retried. Whatever remains becomes ``CalendlyRejected`` (4xx) or
``CalendlyUnavailable``; a wait that would pass the caller's deadline raises
``TimeBudgetExhausted`` instead, so a Lambda can checkpoint and stop.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import requests

from calendly_sync.errors import CalendlyRejected, CalendlyUnavailable, TimeBudgetExhausted

# Calendly's own delivery timeouts are 10 s connect, 15 s read; our reads are smaller calls.
TIMEOUT_SECONDS = (5.0, 15.0)
MAX_PAGE_SIZE = 100


@cache
def _session() -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    session.headers["User-Agent"] = "calendly-sync"
    return session


@dataclass
class CallStats:
    """What one client did: the poller's metrics and the benchmarks read these."""

    requests: int = 0
    throttled: int = 0  # 429 answers
    retries: int = 0
    paced_seconds: float = 0.0  # time spent waiting for the rate-limit window


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 1  # 1 = no retry (interactive calls answer at once)
    base_delay: float = 0.5
    max_delay: float = 8.0


POLLING_RETRIES = RetryPolicy(attempts=5)


class CalendlyClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        session: requests.Session | None = None,
        *,
        retry: RetryPolicy = RetryPolicy(),
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._session = session or _session()
        self._retry = retry
        #: ``clock()`` value after which no wait may end (None: no limit).
        self.deadline = deadline
        self._sleep = sleep
        self._clock = clock
        self._remaining: int | None = None
        self._reset_seconds = 0.0
        self.stats = CallStats()

    def __repr__(self) -> str:  # never show the token
        return f"CalendlyClient({self._base_url!r})"

    def current_user(self) -> dict[str, Any]:
        """``GET /users/me``: the token's owner, with ``current_organization``."""
        resource: dict[str, Any] = self.get("/users/me")["resource"]
        return resource

    def scheduled_events(self, organization: str, **filters: str) -> Iterator[dict[str, Any]]:
        """Every scheduled event of the organization matching ``filters`` (all pages)."""
        yield from self.collection("/scheduled_events", {"organization": organization, **filters})

    def invitees(self, event_uri: str) -> Iterator[dict[str, Any]]:
        yield from self.collection(
            f"/scheduled_events/{event_uri.rstrip('/').rsplit('/', 1)[-1]}/invitees", {}
        )

    def collection(self, path: str, params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Follow ``next_page_token`` until it is null, keeping the other query parameters."""
        query = {**params, "count": str(MAX_PAGE_SIZE)}
        while True:
            page = self.get(path, query)
            yield from page.get("collection", [])
            token = (page.get("pagination") or {}).get("next_page_token")
            if not token:
                return
            query = {**query, "page_token": token}

    def webhook_subscriptions(
        self, organization: str, scope: str, user: str | None = None
    ) -> Iterator[dict[str, Any]]:
        params = {"organization": organization, "scope": scope, **({"user": user} if user else {})}
        yield from self.collection("/webhook_subscriptions", params)

    def create_webhook_subscription(self, body: Mapping[str, Any]) -> dict[str, Any]:
        resource: dict[str, Any] = self.request("POST", "/webhook_subscriptions", body=body)["resource"]
        return resource

    def delete_webhook_subscription(self, uri: str) -> None:
        self.request("DELETE", f"/webhook_subscriptions/{uri.rstrip('/').rsplit('/', 1)[-1]}")

    def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One call, paced and retried by the policy; 2xx answers its JSON body (``{}`` for 204)."""
        for attempt in range(1, self._retry.attempts + 1):
            if self._remaining is not None and self._remaining <= 0:
                self._wait(self._reset_seconds, paced=True)
                self._remaining = None
            try:
                response = self._session.request(
                    method,
                    f"{self._base_url}{path}",
                    params=params,
                    json=body,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=TIMEOUT_SECONDS,
                )
            except requests.RequestException as error:
                self.stats.requests += 1
                failure = f"Calendly unreachable ({type(error).__name__})"
                self._back_off(attempt, failure)
                continue
            self.stats.requests += 1
            self._note_rate_limit(response)
            if response.status_code == 429:
                self.stats.throttled += 1
                if attempt < self._retry.attempts:
                    self.stats.retries += 1
                    self._wait(max(self._reset_seconds, 1.0), paced=True)
                    continue
                raise CalendlyUnavailable(f"Calendly answered 429 to {method} {path}")
            if response.status_code >= 500:
                self._back_off(attempt, f"Calendly answered {response.status_code} to {method} {path}")
                continue
            return _answer(response, method, path)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def _note_rate_limit(self, response: requests.Response) -> None:
        try:
            self._remaining = int(response.headers["X-RateLimit-Remaining"])
            self._reset_seconds = float(response.headers["X-RateLimit-Reset"])
        except (KeyError, ValueError):
            self._remaining = None

    def _back_off(self, attempt: int, failure: str) -> None:
        if attempt >= self._retry.attempts:
            raise CalendlyUnavailable(failure)
        self.stats.retries += 1
        delay = min(self._retry.max_delay, self._retry.base_delay * 2 ** (attempt - 1))
        self._wait(delay * random.uniform(0.5, 1.0), paced=False)  # noqa: S311 (jitter, not security)

    def _wait(self, seconds: float, *, paced: bool) -> None:
        if self.deadline is not None and self._clock() + seconds > self.deadline:
            raise TimeBudgetExhausted(f"waiting {seconds:.1f} s for Calendly would pass the time budget")
        if paced:
            self.stats.paced_seconds += seconds
        self._sleep(seconds)


def _answer(response: requests.Response, method: str, path: str) -> dict[str, Any]:
    if response.status_code >= 400:
        title, message = _error_body(response)
        raise CalendlyRejected(
            f"Calendly answered {response.status_code} {title}: {message}",
            status=response.status_code,
            title=title,
            detail=message,
        )
    if response.status_code == 204 or not response.content:
        return {}
    try:
        answer: dict[str, Any] = response.json()
    except ValueError:
        raise CalendlyUnavailable(f"Calendly answered {method} {path} with a body that is not JSON") from None
    return answer


def _error_body(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return response.reason or "Error", ""
    return str(body.get("title", response.reason)), str(body.get("message", ""))
